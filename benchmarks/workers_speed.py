"""Steps per second of `snaptree check` on 1 and on 2 workers, with the same seeded shards (so
the same histories), on qemu-hmp and on libvirt-qemu; then a 4-shard run's wall time against
the sum of its shards' own times.  Target on a 2-core machine: 2 workers at least 1.7x one.

Each run is a `snaptree check --shards N --workers W` process, as a user runs it; steps/s is
the run's steps over its wall time (the workers' start-up included).  The load average is
printed before and after: other work on the machine takes cores from the workers.

    .venv/bin/python benchmarks/workers_speed.py [--examples 24] [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SNAPTREE = Path(sys.executable).with_name("snaptree")
DRIVERS = {"qemu-hmp": ("--driver", "qemu-hmp"), "libvirt-qemu": ("--driver", "libvirt", "--profile", "libvirt-qemu")}
TARGET = 1.7


def run(driver: tuple[str, ...], examples: int, seed: int, shards: int, workers: int) -> dict[str, Any]:
    argv = [str(SNAPTREE), "check", *driver, "--examples", str(examples), "--seed", str(seed), "--database", "none",
            "--format", "json", "--shards", str(shards), "--workers", str(workers), "--out", "snaptree-out/bench"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"workers_speed: {' '.join(argv[1:])} failed: {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    if not report["conforms"]:
        print(f"  note: {driver[1]} diverged; the runs may differ in length")
    return report


def shard_times(report: dict[str, Any]) -> str:
    return ", ".join(f"{s['seconds']:.1f}" for s in report["shards"])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=24, help="examples per run (default 24)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="8 examples, qemu-hmp only")
    args = parser.parse_args()
    examples = 8 if args.quick else args.examples
    drivers = {"qemu-hmp": DRIVERS["qemu-hmp"]} if args.quick else DRIVERS
    print(f"{os.cpu_count()} cores; load average before: {load()}")
    missed = []
    for name, driver in drivers.items():
        one = run(driver, examples, args.seed, 2, 1)
        two = run(driver, examples, args.seed, 2, 2)
        rates = [r["steps"] / r["seconds"] for r in (one, two)]
        ratio = rates[1] / rates[0]
        same = "same histories" if one["steps"] == two["steps"] else "NOT the same histories"
        print(f"{name}: 2 shards, {one['examples']} examples, {one['steps']} steps ({same})")
        print(f"  1 worker : {one['seconds']:7.1f} s  {rates[0]:6.1f} steps/s  (shards {shard_times(one)} s)")
        print(f"  2 workers: {two['seconds']:7.1f} s  {rates[1]:6.1f} steps/s  (shards {shard_times(two)} s)  ratio {ratio:.2f}x"
              + ("" if ratio >= TARGET else f"  MISSES TARGET {TARGET}x"))
        if ratio < TARGET:
            missed.append(name)
        four = run(driver, examples, args.seed, 4, 2)
        own = sum(s["seconds"] for s in four["shards"])
        print(f"  4 shards on 2 workers: {four['seconds']:.1f} s of wall time, {own:.1f} s the shards' own "
              f"({shard_times(four)}): {own / four['seconds']:.2f}x")
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
