"""Lockstep steps per second of the live QEMU drivers against a naive design, in one run.

The naive design is what a first script does: one process per monitor command (a fresh
QMP client process for each, like calling ``qmp-shell`` or ``virsh qemu-monitor-command``
per command) and the snapshot table from a ``qemu-img info`` process per observation.
Everything else (the QEMU, the guest, the views) is the same, so the ratio is the cost of
those processes.  Both run the same seeded histories (the same operations, as long as both
conform).

    .venv/bin/python benchmarks/qemu_live_speed.py [--examples 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from qemu.qmp import ExecuteError
from qemu.qmp.message import Message
from qemu.qmp.models import ErrorResponse

from snaptree.oracle import CheckConfig, run_check
from snaptree.oracle.drivers.qemu_common import snapshot_table
from snaptree.oracle.drivers.qemu_hmp_qmp import QemuHmpDriver, QemuQmpDriver
from snaptree.oracle.drivers.qemu_live import LiveQemuDriver
from snaptree.oracle.drivers.qemu_process import QMP_TIMEOUT, Qemu

# one QMP command in a process of its own: connect, negotiate, execute, print the answer
ONE_COMMAND = """
import json, sys
from qemu.qmp.legacy import QEMUMonitorProtocol
qmp = QEMUMonitorProtocol(sys.argv[1])
qmp.connect()
print(json.dumps(qmp.cmd_obj(json.loads(sys.argv[2]))))
qmp.close()
"""


class NaiveQemu(Qemu):
    def extra_argv(self) -> list[str]:
        return ["-qmp", f"unix:naive-{self.tag}.sock,server=on,wait=off"]

    @property
    def naive_socket(self) -> str:
        return self.reach(f"naive-{self.tag}.sock", pid=str(os.getpid()))

    def cmd(self, command: str, **args: Any) -> Any:
        sent = {"execute": command, "arguments": args}
        done = subprocess.run([sys.executable, "-c", ONE_COMMAND, self.naive_socket, json.dumps(sent)],
                              capture_output=True, text=True, timeout=QMP_TIMEOUT, check=True)
        answer = json.loads(done.stdout)
        if "error" in answer:
            raise ExecuteError(ErrorResponse(answer), Message(sent), Message(answer))
        return answer["return"]

    def table(self) -> list[dict[str, Any]]:
        return snapshot_table(self.image, force_share=True)


class NaiveHmp(QemuHmpDriver):
    qemu_class = NaiveQemu


class NaiveQmp(QemuQmpDriver):
    qemu_class = NaiveQemu


def rate(driver: type[LiveQemuDriver], examples: int, seed: int) -> tuple[float, int, float]:
    result = run_check(CheckConfig(driver=driver, profile=driver.profiles[0], examples=examples, steps=20, seed=seed,
                                   database=None, out="snaptree-out"), progress=None)
    if not result.conforms:
        raise SystemExit(f"{driver.__name__} diverged: {result.divergence}")
    stats = result.stats
    return stats.steps / stats.seconds, stats.steps, stats.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for fast, naive in ((QemuHmpDriver, NaiveHmp), (QemuQmpDriver, NaiveQmp)):
        ours, ours_steps, ours_s = rate(fast, args.examples, args.seed)
        slow, slow_steps, slow_s = rate(naive, args.examples, args.seed)
        print(f"{fast.name}: {ours:.1f} steps/s ({ours_steps} steps in {ours_s:.1f} s); naive "
              f"{slow:.1f} steps/s ({slow_steps} steps in {slow_s:.1f} s); ratio {ours / slow:.1f}x")


if __name__ == "__main__":
    main()
