"""What the offline QEMU driver tests share: failing (not skipping) without QEMU, and
interrupting a `snaptree check` run to look for what it left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snaptree.oracle.drivers.qemu_common import missing

SNAPTREE = Path(sys.executable).with_name("snaptree")


def require_qemu() -> None:
    problem = missing("qemu-img", "qemu-io")
    if problem:
        pytest.fail(f"the real component is missing: {problem} (or run `bash .ci/setup --real`)")


def processes_using(folder: Path) -> list[str]:
    """Command lines of live processes that name anything under ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(str(folder).encode() in arg for arg in argv):
            found.append(" ".join(a.decode(errors="replace") for a in argv))
    return found


def start_check(driver: str, profile: str, tmp: Path) -> subprocess.Popen[bytes]:
    """A long `snaptree check` whose scratch directories go to ``tmp``; returns once it is
    inside an example (a workspace exists)."""
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen(
        [str(SNAPTREE), "check", "--driver", driver, "--profile", profile, "--examples", "100000", "--seed", "5",
         "--database", "none", "--out", str(tmp / "out")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp.glob(f"snaptree-{driver}-*")):
        assert proc.poll() is None, f"snaptree check ended early: {proc.stderr.read().decode() if proc.stderr else ''}"
        assert time.monotonic() < deadline, "snaptree check made no workspace within 60 s"
        time.sleep(0.05)
    time.sleep(0.7)  # well into the run, likely in the middle of a qemu-img/qemu-io call
    return proc


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("snaptree-*"))


def wait_for_no_processes(tmp: Path, seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while (alive := processes_using(tmp)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def interrupt_and_check(driver: str, profile: str, tmp: Path, signum: int) -> None:
    """SIGINT and SIGTERM: the run ends, every process and scratch directory with it."""
    proc = start_check(driver, profile, tmp)
    proc.send_signal(signum)
    try:
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert wait_for_no_processes(tmp, 5) == [], "qemu processes outlived the run"
    assert leftovers(tmp) == [], f"scratch directories left after {signal.Signals(signum).name}"


def kill_and_check(driver: str, profile: str, tmp: Path) -> None:
    """SIGKILL: nothing can run in the killed process.  Its qemu children are short calls that
    end by themselves; its scratch directory is removed by the next run."""
    proc = start_check(driver, profile, tmp)
    proc.kill()
    proc.wait(timeout=30)
    assert wait_for_no_processes(tmp) == [], "qemu processes outlived the killed run"
    env = dict(os.environ, TMPDIR=str(tmp))
    done = subprocess.run([str(SNAPTREE), "check", "--driver", driver, "--profile", profile, "--examples", "2",
                           "--seed", "1", "--database", "none", "--out", str(tmp / "out")],
                          env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert leftovers(tmp) == [], "the next run did not remove the killed run's scratch directory"
