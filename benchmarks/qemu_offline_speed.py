"""How fast are the offline QEMU drivers, against a naive design measured in the same run?

    .venv/bin/python benchmarks/qemu_offline_speed.py [--histories N] [--steps N] [--seed S]

Both drivers (qemu-img: internal snapshots; qcow2-chain: external overlays, under esx) run
the same seeded random histories in lockstep with the model (every step is compared, so a
wrong answer fails the run), and so does a NAIVE subclass of each that is what a first
version would do: one process per call, nothing cached:

- every write is its own qemu-io process, and the state it leaves is read by qemu-img convert;
- after every step everything is read again, one process per point in time (qemu-img
  convert per snapshot and for the current state), plus ``qemu-img info`` for the table
  (qemu-img) or for each file's backing file (qcow2-chain).

Printed: steps/s of each, and the ratio (target: the driver at least 3x the naive design).
Exit status 1 if a driver diverges from the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from snaptree.model import ops
from snaptree.oracle.driver import Driver, Result
from snaptree.oracle.drivers.qcow2_chain import SNAP_FILE, Qcow2ChainDriver
from snaptree.oracle.drivers.qemu_common import call, qemu_io_writes, read_view, snapshot_table
from snaptree.oracle.drivers.qemu_img import QemuImgDriver, failed
from snaptree.oracle.lockstep import Lockstep

TARGET_RATIO = 3.0
NAMES = ("A", "B", "C", "D", "with space", "ünïcødé ✓")
BLOCKS = 8


class NaiveQemuImg(QemuImgDriver):
    """qemu-img, one process per call, everything read again after every step."""

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.Write):
            try:
                call(["qemu-io", "-f", "qcow2"] + qemu_io_writes([(op.block, op.value)]) + [str(self.image)])
            except Exception as error:
                return failed(error)  # type: ignore[arg-type]
            return Result(True)
        return super().apply(op)

    def refresh(self, table: bool, current: bool) -> None:
        self.table = snapshot_table(self.image)

    def observe(self) -> dict[str, Any]:
        self.table = snapshot_table(self.image)
        scratch = self.image.with_name("export")
        self.snapshot_views = {self.entry_key(s): read_view(self.image, self.blocks, scratch, snapshot_id=s["id"])
                               for s in self.table}
        self.current_view = read_view(self.image, self.blocks, scratch)
        return super().observe()


class NaiveQcow2Chain(Qcow2ChainDriver):
    """qcow2-chain, one process per call, everything read again after every step."""

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.Write):
            call(["qemu-io", "-f", "qcow2"] + qemu_io_writes([(op.block, op.value)]) + [str(self.file(None))])
            return Result(True)
        return super().apply(op)

    def parent(self, snapshot_id: str | None) -> str | None:
        info = json.loads(call(["qemu-img", "info", "--output=json", "-U", str(self.file(snapshot_id))]))
        backing = info.get("backing-filename")
        match = SNAP_FILE.match(Path(backing).name) if backing else None
        return match.group(1) if match else None

    def read_views(self) -> None:
        scratch = self.dir / "export"
        self.views = {sid: read_view(self.file(sid), self.blocks, scratch) for sid in [*self.snaps, None]}

    def observe(self) -> dict[str, Any]:
        self.stale = True
        return super().observe()


def history(rng: random.Random, steps: int, by_id: bool) -> list[ops.Operation]:
    """A random history that mostly names snapshots that exist (so that most steps succeed)."""
    made: list[str] = []
    trace: list[ops.Operation] = []
    for _ in range(steps):
        kind = rng.choices(("write", "snapshot", "revert", "delete"), (4, 3, 2, 2))[0]
        if kind == "write":
            trace.append(ops.Write(rng.randrange(BLOCKS), rng.choice("abcd")))
        elif kind == "snapshot" or not made:
            made.append(rng.choice(NAMES))
            trace.append(ops.CreateSnapshot(made[-1]))
        elif kind == "revert":
            trace.append(ops.Revert(rng.choice(made)))
        else:
            trace.append(ops.Delete(rng.choice(made)))
    return trace


def run(driver: Driver, histories: list[list[ops.Operation]]) -> tuple[float, int]:
    """Seconds and steps for every history in lockstep (setup and teardown not timed)."""
    seconds, steps = 0.0, 0
    for trace in histories:
        with Lockstep(driver, BLOCKS) as lockstep:
            started = time.perf_counter()
            for op in trace:
                lockstep.step(op)
            seconds += time.perf_counter() - started
            steps += len(trace)
    return seconds, steps


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    qemu = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}, {qemu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--histories", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"{args.histories} histories of {args.steps} steps, seed {args.seed}, {BLOCKS} blocks of 64 KiB\n")
    print(f"{'driver':<24}{'steps/s':>10}{'naive steps/s':>16}{'ratio':>8}")
    missed = []
    for fast, naive, profile in ((QemuImgDriver, NaiveQemuImg, "qemu-img"), (Qcow2ChainDriver, NaiveQcow2Chain, "esx")):
        rng = random.Random(args.seed)
        histories = [history(rng, args.steps, fast.by_id) for _ in range(args.histories)]
        rates = []
        for cls in (fast, naive):
            driver = cls(profile)
            seconds, steps = run(driver, histories)
            driver.close()
            rates.append(steps / seconds)
        ratio = rates[0] / rates[1]
        label = f"{fast.name} ({profile})"
        print(f"{label:<24}{rates[0]:>10.1f}{rates[1]:>16.1f}{ratio:>7.1f}x")
        if ratio < TARGET_RATIO:
            missed.append(f"{label}: {ratio:.1f}x < {TARGET_RATIO:.0f}x")
    print("\ntarget: at least 3x the naive design: " + ("met" if not missed else "MISSED (" + "; ".join(missed) + ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
