"""How much faster is the model than libvirt's own test driver?  A rerunnable benchmark.

    .venv/bin/python benchmarks/libvirt_speed.py [--ops N] [--seed S]

One seeded random trace of creates, reverts and deletes (some with CHILDREN or CHILDREN_ONLY,
at most --max-snapshots alive) is generated up front, then replayed in the same run on the
libvirt 9.0 test driver (test:///default, through snaptree's libvirt driver, in process) and on
the model's libvirt-test profile.  Only the replays are timed; both must end in the same tree.
Target: the model at least 20 times faster.  Exit status 1 if the two disagree.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from snaptree.model import Machine, get_profile, observe, ops
from snaptree.oracle.drivers.libvirt import LibvirtDriver

TARGET = 20.0


def make_trace(n: int, seed: int, max_snapshots: int) -> list[ops.Operation]:
    """Operations that mostly succeed: targets are drawn from the snapshots alive at that point."""
    rng = random.Random(seed)
    m = Machine(get_profile("libvirt-test"), 1)
    trace: list[ops.Operation] = [ops.Start()]
    m.perform(trace[0])
    serial = 0
    while len(trace) < n:
        alive = list(m.by_name)
        roll = rng.random()
        if not alive or (roll < 0.45 and len(alive) < max_snapshots):
            serial += 1
            op: ops.Operation = ops.CreateSnapshot(f"s{serial}", description=rng.choice(["", "note"]))
        elif roll < 0.75:
            op = ops.Revert(rng.choice(alive), flags=rng.choice([(), (), ("paused",), ("running",)]))
        else:
            op = ops.Delete(rng.choice(alive), flags=rng.choice([(), (), (), ("children",), ("children-only",)]))
        m.perform(op)
        trace.append(op)
    return trace


def replay_model(trace: list[ops.Operation]) -> tuple[float, dict]:
    m = Machine(get_profile("libvirt-test"), 1)
    started = time.perf_counter()
    for op in trace:
        m.perform(op)
    return time.perf_counter() - started, observe(m, views=False)


def replay_libvirt(trace: list[ops.Operation]) -> tuple[float, dict]:
    driver = LibvirtDriver("libvirt-test", uri="test:///default")
    driver.setup(1)
    try:
        started = time.perf_counter()
        for op in trace:
            result = driver.apply(op)
            if not result.ok:
                raise SystemExit(f"libvirt refused {ops.describe(op)}: {result.message}")
        seconds = time.perf_counter() - started
        return seconds, driver.observe()
    finally:
        driver.teardown()
        driver.close()


def shape(observation: dict) -> tuple:
    return (observation["current"], observation["power"],
            sorted((s["name"], s["parent"], s["state"]) for s in observation["snapshots"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-snapshots", type=int, default=60)
    args = parser.parse_args()
    trace = make_trace(args.ops, args.seed, args.max_snapshots)
    libvirt_seconds, libvirt_state = replay_libvirt(trace)
    model_seconds, model_state = replay_model(trace)
    libvirt_rate, model_rate = len(trace) / libvirt_seconds, len(trace) / model_seconds
    ratio = model_rate / libvirt_rate
    print(f"trace: {len(trace)} operations, seed {args.seed}, at most {args.max_snapshots} snapshots")
    print(f"libvirt 9.0 test driver  {libvirt_seconds:8.3f} s  {libvirt_rate:12,.0f} ops/s")
    print(f"model, libvirt-test      {model_seconds:8.3f} s  {model_rate:12,.0f} ops/s")
    print(f"model / libvirt          {ratio:8.1f}x  (target >= {TARGET:.0f}x: {'met' if ratio >= TARGET else 'MISSED'})")
    if shape(libvirt_state) != shape(model_state):
        print("the final trees differ", file=sys.stderr)
        return 1
    print("final trees: the same")
    return 0


if __name__ == "__main__":
    sys.exit(main())
