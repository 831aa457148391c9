"""What the real-driver tests share: failing (not skipping) without the real component, and
`snaptree check` as a process of its own, to signal it, fill its disk, and look for what it
left behind (processes, directories) afterwards."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snaptree.oracle import lifetime
from snaptree.oracle.drivers import load
from snaptree.oracle.drivers.qemu_common import missing

SNAPTREE = Path(sys.executable).with_name("snaptree")

# every real driver, as `snaptree check` arguments
CHECKS = {
    "qemu-img": ("--driver", "qemu-img"),
    "qcow2-chain": ("--driver", "qcow2-chain", "--profile", "esx"),
    "qemu-hmp": ("--driver", "qemu-hmp"),
    "qemu-qmp": ("--driver", "qemu-qmp"),
    "libvirt-test": ("--driver", "libvirt", "--uri", "test:///default"),
    "libvirt-qemu": ("--driver", "libvirt", "--profile", "libvirt-qemu"),
    "vsphere": ("--driver", "vsphere", "--profile", "vcsim"),
}
# the test driver has no disk or process; the simulator keeps no disk
WITH_DISK = [name for name in CHECKS if name not in ("libvirt-test", "vsphere")]


def require_qemu() -> None:
    problem = missing("qemu-img", "qemu-io")
    if problem:
        pytest.fail(f"the real component is missing: {problem} (or run `bash .ci/setup --real`)")


def require(name: str) -> None:
    """Fail, naming the install command, where a driver's real component is missing."""
    problem = load(CHECKS[name][1]).availability()
    if name in WITH_DISK:
        problem = problem or missing("qemu-system-x86_64", "qemu-img", "qemu-io")
    if problem:
        pytest.fail(f"the real component is missing: {problem} (or run `bash .ci/setup --real`)")


class Check:
    """One `snaptree check` process whose TMPDIR is ``tmpdir``; its progress is off (json), so
    that stderr holds only what it says when it stops."""

    def __init__(self, name: str, tmpdir: Path, out: Path, examples: int = 10_000, seed: int = 5,
                 extra: tuple[str, ...] = ()):
        self.name, self.tmpdir = name, tmpdir
        env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONFAULTHANDLER="1")  # SIGABRT dumps every thread
        argv = [str(SNAPTREE), "check", *CHECKS[name], "--examples", str(examples), "--seed", str(seed),
                "--database", "none", "--format", "json", "--out", str(out), *extra]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=_default_signals)
        self.pids = {self.proc.pid}  # and its workers' (--workers), as they are seen

    def note_workers(self) -> None:
        """The pids of its child processes that are snaptree (workers name their directories after
        their own pid)."""
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and int((entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[1]) == self.proc.pid \
                        and b"snaptree" in (entry / "cmdline").read_bytes():
                    self.pids.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue

    def workspaces(self) -> list[Path]:
        """Its scratch directories (and its workers'): under TMPDIR, or /tmp for libvirt's sockets."""
        found: set[Path] = set()
        for pid in self.pids:
            pattern = f"snaptree-*-{pid}-*"
            found |= {*self.tmpdir.glob(pattern), *Path(lifetime.SHORT_BASE).glob(pattern)}
        return sorted(found)

    def worker_workspaces(self) -> list[Path]:
        return [p for p in self.workspaces() if not p.name.startswith(f"snaptree-check-{self.proc.pid}-")]

    def wait_inside(self, workers: int = 0) -> None:
        """Until it is inside an example (a workspace exists, with ``workers`` one of each worker's;
        the test driver makes none: a second), then a random moment more."""
        deadline = time.monotonic() + 90

        def inside() -> bool:
            if workers:
                self.note_workers()
                return len({p.name.split("-")[-2] for p in self.worker_workspaces()}) >= workers
            return bool(self.workspaces()) if self.name in WITH_DISK else time.monotonic() - self.started > 1.5

        while not inside():
            if self.proc.poll() is not None:
                pytest.fail(f"snaptree check ended early: {self.finish()[2]}")
            assert time.monotonic() < deadline, "snaptree check made no workspace within 90 s"
            time.sleep(0.02)
        time.sleep(random.uniform(0, 1.5))

    def finish(self, timeout: float = 90) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # the stacks of where it hangs, on stderr
            try:
                out, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
            pytest.fail(f"snaptree check did not end within {timeout:.0f} s: {err.decode(errors='replace')}")
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def leftovers(self, seconds: float = 15) -> list[str]:
        """Processes (qemu-system, qemu-img, qemu-io, the libvirt helper, virtlogd: anything
        naming its TMPDIR or workspaces) still alive after ``seconds``, and its directories."""
        folders = [self.tmpdir, *self.workspaces()]
        deadline = time.monotonic() + seconds
        while (alive := lifetime.processes_using(folders)) and time.monotonic() < deadline:
            time.sleep(0.05)
        processes = [f"process {pid}: {_cmdline(pid)}" for pid in alive]
        return processes + [f"directory {p}" for p in self.workspaces()]


def _default_signals() -> None:
    """Start the check as a terminal would: a test run under nohup, or started in the background
    by a script, hands its children SIGINT and SIGHUP ignored, and snaptree rightly leaves an
    ignored signal ignored (seen: every SIGINT and SIGHUP test timed out that way)."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(gone)"


def one_line(stderr: str) -> str:
    """The one line a stopped run says on stderr (and never a traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    return lines[0]
