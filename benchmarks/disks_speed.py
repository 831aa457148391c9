"""What do several disks cost?  A rerunnable benchmark.

    .venv/bin/python benchmarks/disks_speed.py [--ops N] [--seed S] [--libvirt] [--backports]

1. The model: one seeded random trace (writes, creates, reverts, deletes; at most 40 snapshots)
   replayed through ``Machine.perform`` on a VM of one disk (the baseline, measured in the same
   run) and on a VM of three disks, whose writes go to all three (the same number of writes, so
   the same work but spread).  Target: three disks at least half the one-disk speed.
2. With ``--libvirt``: ``snaptree check`` of libvirt's QEMU driver (9.0 here; 11.3 with
   ``--backports``, run inside the chroot) on histories of one disk and of two disks, steps/s of
   each and their ratio.  Needs ``bash .ci/setup --real``.

Exit status 0 unless a replay fails.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections.abc import Sequence

from snaptree.model import Machine, ModelError, get_profile, ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk

PROFILES = ("esx", "libvirt-test", "qemu-qmp")
THREE = (Disk("vda"), Disk("vdb"), Disk("vdc"))
BLOCKS = 2**16


def make_trace(n_ops: int, seed: int, disks: tuple[Disk, ...]) -> list[ops.Operation]:
    """Writes (60%), creates, reverts and deletes of names a-z; each write to a random disk."""
    rng = random.Random(seed)
    names: list[str] = []
    trace: list[ops.Operation] = []
    for i in range(n_ops):
        roll = rng.random()
        if roll < 0.6 or not names and roll < 0.8:
            disk = rng.choice(disks).name
            trace.append(ops.Write(rng.randrange(BLOCKS), f"v{i}", None if disk == disks[0].name else disk))
        elif roll < 0.8 or not names:
            name = f"s{i}"
            names.append(name)
            trace.append(ops.CreateSnapshot(name, memory=False))
            if len(names) > 40:
                trace.append(ops.Delete(names.pop(rng.randrange(len(names)))))
        elif roll < 0.9:
            trace.append(ops.Revert(rng.choice(names)))
        else:
            trace.append(ops.Delete(names.pop(rng.randrange(len(names)))))
    return trace


def replay(profile: str, disks: tuple[Disk, ...], trace: Sequence[ops.Operation]) -> float:
    """Seconds to perform the whole trace (refusals count as performed)."""
    machine = Machine(get_profile(profile), BLOCKS, disks)
    start = time.perf_counter()
    for op in trace:
        with contextlib.suppress(ModelError):
            machine.perform(op)
    return time.perf_counter() - start


def model_part(n_ops: int, seed: int, repeats: int) -> bool:
    print(f"1. the model: {n_ops:,} operations (60% writes), {BLOCKS:,} blocks per disk, best of {repeats}")
    print(f"   {'profile':<14} {'1 disk ops/s':>14} {'3 disks ops/s':>14} {'ratio':>7}  target >= 0.50")
    ok = True
    for profile in PROFILES:
        one, three = make_trace(n_ops, seed, DEFAULT_LAYOUT), make_trace(n_ops, seed, THREE)
        best_one = min(replay(profile, DEFAULT_LAYOUT, one) for _ in range(repeats))
        best_three = min(replay(profile, THREE, three) for _ in range(repeats))
        ratio = best_one / best_three
        ok = ok and ratio >= 0.5
        print(f"   {profile:<14} {len(one) / best_one:>14,.0f} {len(three) / best_three:>14,.0f} {ratio:>7.2f}  "
              f"{'met' if ratio >= 0.5 else 'MISSED'}")
    return ok


def libvirt_part(seed: int, examples: int, profile: str) -> None:
    from snaptree.oracle import CheckConfig, run_check

    print(f"2. libvirt's QEMU driver ({profile}): {examples} examples of 20 steps each, seed {seed}")
    rates = []
    for label, disks in (("1 disk", DEFAULT_LAYOUT), ("2 disks", (Disk("vda"), Disk("vdb")))):
        result = run_check(CheckConfig(driver="libvirt", profile=profile, seed=seed, examples=examples, steps=20,
                                       disks=disks, database=None, out="/tmp/snaptree-bench"), progress=None)
        steps, seconds = result.stats.steps, result.stats.ended - result.stats.started
        rates.append(steps / seconds)
        print(f"   {label:<8} {steps:>5} steps in {seconds:6.1f} s: {steps / seconds:6.2f} steps/s "
              f"({'conforms' if result.conforms else 'diverges'})")
    print(f"   2 disks / 1 disk: {rates[1] / rates[0]:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--libvirt", action="store_true", help="also time libvirt's QEMU driver (real)")
    parser.add_argument("--backports", action="store_true", help="libvirt 11.3 (run inside the backports chroot)")
    parser.add_argument("--examples", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"snaptree disks benchmark, Python {sys.version.split()[0]}, median machine noise not removed")
    model_ok = model_part(args.ops, args.seed, args.repeats)
    if args.libvirt:
        libvirt_part(args.seed, args.examples, "libvirt-qemu-11.3" if args.backports else "libvirt-qemu")
    print("model target:", "met" if model_ok else "MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
