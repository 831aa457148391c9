"""How fast the oracle checks, and how much of a lockstep step is the oracle's own work.

    python benchmarks/oracle_speed.py [--examples N] [--steps N] [--seed S]

For each profile it records the histories one `snaptree check --driver model` run generates,
then times the same histories three ways, all in this run:

- driver:   the model driver alone, apply + observe per step (the baseline: what a step
            costs with no oracle around it; a real driver costs far more);
- lockstep: the reference model and the driver side by side, with the comparison;
- check:    the full Hypothesis state machine (generation, lockstep, bookkeeping).

The oracle's own overhead per step is check minus driver.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

from snaptree.model import PROFILES
from snaptree.oracle import CheckConfig, run_check
from snaptree.oracle.driver import Result
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.lockstep import Lockstep

BLOCKS = 8


def record(profile: str, examples: int, steps: int, seed: int) -> tuple[list[list[Any]], float, int]:
    """The histories a check generates, the check's time, and its step count."""
    histories: list[list[Any]] = []

    class Recorder(ModelDriver):
        def setup(self, blocks: int) -> None:
            histories.append([])
            super().setup(blocks)

        def apply(self, op: Any) -> Result:
            histories[-1].append(op)
            return super().apply(op)

    started = time.perf_counter()
    result = run_check(CheckConfig(driver=Recorder, profile=profile, examples=examples, steps=steps, seed=seed,
                                   database=None), progress=None)
    seconds = time.perf_counter() - started
    assert result.conforms, result.divergence
    return histories, seconds, result.stats.steps


def time_driver(profile: str, histories: list[list[Any]]) -> float:
    driver = ModelDriver(profile)
    started = time.perf_counter()
    for history in histories:
        driver.setup(BLOCKS)
        for op in history:
            driver.apply(op)
            driver.observe()
    return time.perf_counter() - started


def time_lockstep(profile: str, histories: list[list[Any]]) -> float:
    driver = ModelDriver(profile)
    started = time.perf_counter()
    for history in histories:
        with Lockstep(driver, BLOCKS) as lockstep:
            for op in history:
                lockstep.step(op)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; "
          f"{args.examples} examples of up to {args.steps} steps per profile, seed {args.seed}")
    print(f"{'profile':<14} {'steps':>6} {'check steps/s':>14} {'driver µs':>10} {'lockstep µs':>12} "
          f"{'check µs':>9} {'oracle share':>13}")
    for profile in PROFILES:
        histories, check_seconds, steps = record(profile, args.examples, args.steps, args.seed)
        replayed = sum(len(h) for h in histories)
        driver = time_driver(profile, histories) / replayed * 1e6
        lockstep = time_lockstep(profile, histories) / replayed * 1e6
        full = check_seconds / steps * 1e6
        print(f"{profile:<14} {steps:>6} {steps / check_seconds:>14.0f} {driver:>10.0f} {lockstep:>12.0f} "
              f"{full:>9.0f} {(full - driver) / full:>13.0%}")
    print("µs are per step. driver: the model driver alone (baseline); lockstep: model + driver + comparison;")
    print("check: the whole Hypothesis run. oracle share = (check - driver) / check: against a real driver,")
    print("whose steps take milliseconds, the same absolute overhead is a small fraction.")


if __name__ == "__main__":
    main()
