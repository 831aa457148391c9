"""Steps/s of the real drivers' checks, against the way they read and tore down before, in the same run.

    .venv/bin/python benchmarks/real_check_speed.py [--examples N] [--steps N] [--seed S] [--drivers a,b]
    bash .ci/backports run python benchmarks/real_check_speed.py --drivers qemu-hmp,qemu-qmp,libvirt-qemu

Each driver's check runs twice on the same seed (so the same histories, every step compared
with the model): first as before (the baseline), then as now.

- **baseline:** every point in time is read by its own `qemu-img convert` and every snapshot table
  by `qemu-img info` (``SNAPTREE_READ_WITH=qemu-img``); libvirt's domain is undefined at the end of
  each example (a graceful destroy of its QEMU first), and the QEMU that libvirt daemonizes is
  left to the machine's init to reap (``embedded.REAP_QEMU = False``); the live QEMU guest boots
  through SeaBIOS (``qemu_process.COUNTING_FIRMWARE = False``);
- **now:** points in time and tables are read in this process (``oracle/drivers/image_reader.py``),
  qemu-img only where the reader does not know the image; libvirt's helper reaps its QEMU at once
  and is killed with it at the end of an example; the live guest's loop is its firmware.

Printed: steps/s of each and the ratio. Targets (issue "real checks at the speed of the
component"): qemu-img and qcow2-chain >= 150 steps/s, libvirt-qemu >= 20 steps/s.
Exit status 1 if a check diverges.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from collections.abc import Iterator
from typing import Any

from snaptree.oracle import CheckConfig, run_check
from snaptree.oracle.drivers import qemu_common, qemu_process
from snaptree.oracle.drivers.libvirt import LibvirtDriver, embedded
from snaptree.oracle.drivers.libvirt.session import LibvirtFailure

CHECKS = {  # name: (driver, profile, target steps/s or None)
    "qemu-img": ("qemu-img", None, 150.0),
    "qcow2-chain": ("qcow2-chain", None, 150.0),
    "qemu-hmp": ("qemu-hmp", None, None),
    "qemu-qmp": ("qemu-qmp", None, None),
    "libvirt-qemu": ("libvirt", "libvirt-qemu", 20.0),
}


class UndefiningLibvirtDriver(LibvirtDriver):
    """The libvirt driver as it tore an example down before: undefine the domain first."""

    def teardown(self) -> None:
        if self.qemu and self.session is not None:
            with contextlib.suppress(LibvirtFailure, TimeoutError, OSError):
                self.session.call("undefine")
        super().teardown()


@contextlib.contextmanager
def as_before() -> Iterator[None]:
    reading, reaping, firmware = qemu_common.READ_WITH, embedded.REAP_QEMU, qemu_process.COUNTING_FIRMWARE
    qemu_common.READ_WITH, embedded.REAP_QEMU, qemu_process.COUNTING_FIRMWARE = "qemu-img", False, False
    try:
        yield
    finally:
        qemu_common.READ_WITH, embedded.REAP_QEMU, qemu_process.COUNTING_FIRMWARE = reading, reaping, firmware


def timed(driver: Any, profile: str | None, args: argparse.Namespace) -> tuple[float, int]:
    started = time.perf_counter()
    result = run_check(CheckConfig(driver=driver, profile=profile, examples=args.examples, steps=args.steps,
                                   seed=args.seed, database=None), progress=None)
    seconds = time.perf_counter() - started
    if not result.conforms:
        print(f"  DIVERGES: {result.divergence}")
        sys.exit(1)
    return seconds, result.stats.steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drivers", default=",".join(CHECKS), help=f"of {', '.join(CHECKS)}")
    parser.add_argument("--profile", help="libvirt-qemu's profile (libvirt-qemu-11.3 in the chroot)")
    args = parser.parse_args()
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, python {platform.python_version()}; "
          f"{args.examples} examples x {args.steps} steps, seed {args.seed}")
    print(f"{'check':14} {'baseline steps/s':>17} {'now steps/s':>12} {'ratio':>6}  target")
    for name in args.drivers.split(","):
        driver, profile, target = CHECKS[name]
        profile = args.profile if name == "libvirt-qemu" and args.profile else profile
        with as_before():
            before, steps = timed(UndefiningLibvirtDriver if driver == "libvirt" else driver, profile, args)
        after, steps_now = timed(driver, profile, args)
        assert steps == steps_now, "the same seed must give the same histories"
        rate_before, rate_now = steps / before, steps / after
        verdict = "" if target is None else f">= {target:.0f}: {'met' if rate_now >= target else 'MISSES TARGET'}"
        print(f"{name:14} {rate_before:17.1f} {rate_now:12.1f} {rate_now / rate_before:5.1f}x  {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
