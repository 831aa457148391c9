"""How fast does `snaptree check --driver vsphere` run, and what does keeping one simulator and
one login for the whole check buy?  A rerunnable benchmark.

    .venv/bin/python benchmarks/vsphere_speed.py [--examples N] [--seed S]

Both runs are measured in the same process with the same seed against the same profile (vcsim):
the vsphere driver as shipped (one simulator, one login, a fresh VM per example), and a naive
driver that starts a fresh simulator and logs in for every example.  Targets: at least 200
steps/s, and at least 3 times the naive driver's rate.  Exit status 1 if a target is missed or
either run diverges.
"""

from __future__ import annotations

import argparse
import sys
import time

from snaptree.oracle import CheckConfig, run_check
from snaptree.oracle.drivers.vsphere import VsphereDriver

STEPS_PER_SECOND, RATIO = 200.0, 3.0


class NaiveVsphere(VsphereDriver):
    """A fresh simulator and a fresh login per example."""

    def teardown(self) -> None:
        super().teardown()
        self.close()


def rate(driver: type[VsphereDriver], examples: int, seed: int) -> tuple[float, int]:
    started = time.perf_counter()
    result = run_check(CheckConfig(driver=driver, profile="vcsim", examples=examples, steps=20, seed=seed, database=None,
                                   out="snaptree-out"), progress=None)
    seconds = time.perf_counter() - started
    if result.divergence is not None:
        sys.exit(f"{driver.__name__} diverged: {result.divergence}")
    return result.stats.steps / seconds, result.stats.steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    shipped, steps = rate(VsphereDriver, args.examples, args.seed)
    naive, _ = rate(NaiveVsphere, args.examples, args.seed)
    ratio = shipped / naive
    print(f"vsphere driver: {shipped:.0f} steps/s over {steps} steps (target {STEPS_PER_SECOND:.0f})")
    print(f"naive driver (a simulator and a login per example): {naive:.0f} steps/s")
    print(f"ratio: {ratio:.1f}x (target {RATIO:.0f}x)")
    return 0 if shipped >= STEPS_PER_SECOND and ratio >= RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
