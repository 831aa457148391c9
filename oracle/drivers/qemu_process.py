"""One live ``qemu-system-x86_64`` for the live QEMU drivers (``qemu_live``): starting it, its
QMP monitor (and HMP through ``human-monitor-command``), stopping it, and QEMU's messages as
the model's error kinds.

One QEMU per example (TCG, 64 MiB, no network, no display) holds the model's disk as the qcow2
``-blockdev`` node ``disk0``, beside the guest's read-only boot disk; the client is
``qemu.qmp`` on a unix socket in the example's directory.  The guest increments the 32-bit
counter at 0x500 forever: :meth:`Qemu.counter` reads it.

Lifetime: one QEMU per example, quit at teardown (SIGKILL to its session if it lingers); the
boot disk is made once per driver.  QEMU runs in a session of its own with PR_SET_PDEATHSIG,
an atexit hook kills whatever is left, and ``snaptree.oracle.lifetime`` turns SIGTERM and
SIGHUP into an exception and removes the directories, so no signal leaves a process or file.

HMP ``qemu-io`` prints its report, errors included, on QEMU's stdout, never to the monitor:
QEMU runs under ``stdbuf -o0`` (its stdout is a log file, otherwise block-buffered), so what a
write printed is in the log when the command returns, and a refused write is seen as refused.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snaptree.model.profiles.qemu_live import DISK_NODE

from .. import lifetime
from ..driver import Result
from ..lifetime import Workspace
from .qemu_common import WRITE_REFUSALS, refusals, size

try:
    from qemu.qmp import ExecuteError
    from qemu.qmp.legacy import QEMUMonitorProtocol
except ImportError:  # availability() says how to install it
    QEMUMonitorProtocol = None  # type: ignore[assignment,misc]
    ExecuteError = RuntimeError  # type: ignore[assignment,misc]

# qemu.qmp logs a signal's exception passing through its reader task, and the disconnect after
# it, as errors with tracebacks on stderr; every failure reaches the driver as an exception
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

COUNTER = 0x500
QMP_TIMEOUT = 30.0  # seconds for any one monitor command
START_TIMEOUT = 30.0  # launch, connect and boot
QUIT_TIMEOUT = 5.0  # then SIGKILL

# QEMU's messages (the same in 7.2.22 and 10.0.2) -> the model's error kinds
ERROR_KINDS = (
    ("does not exist", "not-found"),  # "Snapshot 'x' does not exist in one or more devices"
    ("already exists", "duplicate-name"),  # snapshot-save; blockdev-snapshot-internal-sync
    ("disk-only snapshot", "disk-only"),  # "This is a disk-only snapshot. Revert to it  offline ..."
    ("while loading VM state", "disk-only"),  # the load went by id to a disk-only snapshot
    ("is missing", "invalid-argument"),  # "Parameter 'tag' is missing", "Parameter 'name' is missing"
    ("string expected", "invalid-argument"),  # HMP loadvm/delvm without a name
    ("Name is empty", "invalid-argument"),  # blockdev-snapshot-internal-sync ""
    ('"write" lock', "invalid-state"),  # a second QEMU on the image: 'Failed to get "write" lock'
    ("does not support snapshots", "unsupported"),  # "Device 'vdb' is writable but does not support snapshots"
    *WRITE_REFUSALS,  # qemu-io outside the disk
)


def error_kind(message: str) -> str:
    for text, kind in ERROR_KINDS:
        if text in message:
            return kind
    return "unexpected"  # reported by the checker as a divergence, with the message


def failure(message: str) -> Result:
    """QEMU's error: HMP's "Error: ..." line where there is one (after "Not a migration stream"),
    else the first line ("loadvm: string expected", then a "Try help" line)."""
    lifetime.raise_if_machine_failure(message, "QEMU")  # a full disk is no answer of QEMU's
    lines = [line for line in message.strip().splitlines() if line.strip()] or ["(no message)"]
    message = next((line for line in lines if line.startswith("Error: ")), lines[0]).removeprefix("Error: ")
    return Result.error(error_kind(message), message)


def hmp_quote(name: str) -> str:
    """An HMP string argument: double quotes, with backslash escapes for \\ and " (the HMP
    parser's get_str); spaces, ';', ' and unicode need nothing more."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- one QEMU process ---------------------------------------------------------------------------

_processes: set[subprocess.Popen[bytes]] = set()  # killed at exit, whatever happened


def _kill_all() -> None:
    for process in list(_processes):
        _kill(process)


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(QUIT_TIMEOUT)
    _processes.discard(process)


atexit.register(_kill_all)


# the guest's loop is the firmware (qemu_guest.counter_bios); False: SeaBIOS boots the boot
# sector, as before (benchmarks/real_check_speed.py)
COUNTING_FIRMWARE = True


class QemuStartFailed(Exception):
    pass


@dataclass(frozen=True)
class Node:
    """One disk of the VM as a block node named after the disk (messages name it)."""

    name: str
    path: Path
    format: str = "qcow2"
    role: str = "disk"
    readonly: bool = False


@dataclass(frozen=True)
class Firmware:
    """OVMF as pflash0 (read-only) and the guest as an EFI application (``-kernel``)."""

    code: Path
    application: Path


def node_argv(nodes: tuple[Node, ...], firmware: bool) -> list[str]:
    """Every node attached to a device (semantics.md §9.8): the NVRAM to pflash1 (the machine's
    option), each other disk to a virtio-blk device, in layout order, so the VM state goes to the
    first disk [§9.3].  Under OVMF the pflash BlockBackend is made with the machine, before any
    -device: the first disk is then a -drive (its BlockBackend made before the machine's), so
    it still comes first."""
    argv: list[str] = []
    for index, node in enumerate(nodes):
        ro = ",read-only=on" if node.readonly else ""
        path = str(node.path).replace(",", ",,")
        if firmware and index == 0:
            argv += ["-drive", f"if=none,id={node.name}-drive,file={path},format={node.format},node-name={node.name}"
                     + (",readonly=on" if node.readonly else ""),
                     "-device", f"virtio-blk-pci,drive={node.name}-drive,share-rw=on"]
            continue
        argv += ["-blockdev", f"driver=file,filename={path},node-name={node.name}-file{ro}",
                 "-blockdev", f"driver={node.format},file={node.name}-file,node-name={node.name}{ro}"]
        if node.role != "nvram":
            argv += ["-device", f"virtio-blk-pci,drive={node.name},share-rw=on"]
    return argv


class Qemu:
    """One qemu-system-x86_64 process, its QMP connection, and the guest's counter."""

    def __init__(self, space: Workspace, image: Path, boot_disk: Path, tag: str,
                 nodes: tuple[Node, ...] | None = None, firmware: Firmware | None = None):
        # A unix socket's path has at most 107 bytes, and TMPDIR may be deep: QEMU binds the
        # socket relative to its working directory, we reach it through a descriptor of that.
        self.folder = os.open(space.path, os.O_RDONLY | os.O_DIRECTORY)
        socket = f"qmp-{tag}.sock"
        self.space, self.tag, self.image = space, tag, image
        self.log = space.file(f"qemu-{tag}.log")
        self.nodes = nodes or (Node(DISK_NODE, image),)
        machine = "pc,accel=tcg"
        if firmware is None:  # the guest's firmware beside its boot disk (qemu_guest.counter_bios)
            boot = ["-bios", str(boot_disk.with_suffix(".bios"))] if COUNTING_FIRMWARE else []
            boot += ["-blockdev", f"driver=file,filename={boot_disk},node-name=boot-file,read-only=on",
                    "-blockdev", "driver=raw,file=boot-file,node-name=boot,read-only=on",
                    "-device", "virtio-blk-pci,drive=boot,bootindex=0"]
        else:  # OVMF: its code read-only as pflash0, the guest an EFI application given as -kernel
            nvram = next(node for node in self.nodes if node.role == "nvram")
            machine += f",pflash0=ovmf-code,pflash1={nvram.name}"
            boot = ["-kernel", str(firmware.application),
                    "-blockdev", f"driver=file,filename={firmware.code},node-name=ovmf-code-file,read-only=on",
                    "-blockdev", "driver=raw,file=ovmf-code-file,node-name=ovmf-code,read-only=on"]
        argv = [
            "stdbuf", "-o0", "qemu-system-x86_64", "-machine", machine, "-m", "64", "-nodefaults", "-no-user-config",
            "-display", "none", "-nographic", "-qmp", f"unix:{socket},server=on,wait=off",
            *boot, *node_argv(self.nodes, firmware is not None),
        ] + self.extra_argv()
        with open(self.log, "wb") as log:
            # a session of its own: a terminal's Ctrl-C reaches snaptree, which ends QEMU itself
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=space.path,
                                            start_new_session=True, preexec_fn=lifetime.die_with_parent)
        _processes.add(self.process)
        self.qmp: Any = None
        try:
            self._connect(space.file(socket), self.reach(socket), time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.kill()
            raise

    def extra_argv(self) -> list[str]:
        return []

    def reach(self, name: str, pid: str = "self") -> str:
        """A short path to a file in the example's directory (for ``pid``'s eyes)."""
        return f"/proc/{pid}/fd/{self.folder}/{name}"

    def _connect(self, socket: Path, address: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise QemuStartFailed(self.log.read_text(errors="replace").strip() or "QEMU exited")
            if socket.exists():
                qmp = QEMUMonitorProtocol(address)
                try:
                    qmp.connect()
                except Exception:  # QEMU listens before it opens the disks, and may still fail
                    with contextlib.suppress(Exception):
                        qmp.close()
                    time.sleep(0.005)
                    continue
                qmp.settimeout(QMP_TIMEOUT)
                self.qmp = qmp
                return
            time.sleep(0.002)
        raise QemuStartFailed(f"QEMU did not answer on {socket} within {START_TIMEOUT:.0f} s")

    def cmd(self, command: str, **args: Any) -> Any:
        try:
            return self.qmp.cmd(command, **args)
        except Exception:
            lifetime.raise_if_terminating()  # a signal the client's event loop took for a lost connection
            raise

    def hmp(self, line: str) -> str:
        output: str = self.cmd("human-monitor-command", **{"command-line": line})
        return output

    def qemu_io(self, command: str, node: str = DISK_NODE) -> str:
        """HMP qemu-io on a disk's node: what it printed on QEMU's stdout if that reports a failure."""
        before = size(self.log)
        answer = self.hmp(f"qemu-io {node} {hmp_quote(command)}")  # only an unknown device answers here
        return answer or refusals(self.log, before)

    def counter(self) -> int:
        return int(self.hmp(f"xp /1wx {COUNTER:#x}").split()[-1], 16)  # "0000000000000500: 0x0033e9dc"

    def status(self) -> str:
        status: str = self.cmd("query-status")["status"]
        return status

    def wait_for_boot(self) -> None:
        """Until the guest's loop runs (SeaBIOS takes ~50 ms): memory tokens need a moving counter."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.counter() == 0:
            if time.monotonic() > deadline:
                raise QemuStartFailed("the guest did not boot")
            time.sleep(0.005)

    def wait_past(self, value: int) -> None:
        """Until the running guest's counter has moved on from ``value``."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.counter() == value and time.monotonic() < deadline:
            time.sleep(0.001)

    def table(self) -> list[dict[str, Any]]:
        for device in self.cmd("query-block"):
            inserted = device.get("inserted", {})
            if inserted.get("node-name") == self.nodes[0].name:  # the first disk's
                return list(inserted["image"].get("snapshots", []))
        raise RuntimeError(f"QEMU lost the node {self.nodes[0].name}")

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Every disk node's snapshot table, by node name (a VM of several disks)."""
        wanted = {node.name for node in self.nodes}
        found = {node["node-name"]: list(node["image"].get("snapshots", []))
                 for node in self.cmd("query-named-block-nodes", flat=True) if node.get("node-name") in wanted}
        lost = wanted - set(found)
        if lost:
            raise RuntimeError(f"QEMU lost the node {sorted(lost)[0]}")
        return found

    def job(self, command: str, job_id: str, **args: Any) -> str | None:
        """Run a snapshot job to its end; its error, or None."""
        self.cmd(command, **{"job-id": job_id}, **args)
        deadline = time.monotonic() + QMP_TIMEOUT
        while True:
            job = next(j for j in self.cmd("query-jobs") if j["id"] == job_id)
            if job["status"] == "concluded":
                self.cmd("job-dismiss", id=job_id)
                return job.get("error")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command} job {job_id} still {job['status']} after {QMP_TIMEOUT:.0f} s")
            time.sleep(0.001)

    def quit(self) -> None:
        """Quit QEMU (the image closes cleanly); kill it if it does not go."""
        try:
            with contextlib.suppress(Exception):
                self.cmd("quit")
            self.process.wait(QUIT_TIMEOUT)
            _processes.discard(self.process)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        if self.qmp is not None:
            with contextlib.suppress(Exception):  # never a signal's Terminated
                self.qmp.close()
            self.qmp = None
        _kill(self.process)
        if self.folder >= 0:
            os.close(self.folder)
            self.folder = -1

