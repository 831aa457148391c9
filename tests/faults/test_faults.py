"""Faults around a real driver: `snaptree check` is signalled at a random moment, its disk
fills up, it is given a disk or a block no qcow2 can hold.  Each ends with the documented exit
status, one line on stderr and no traceback, and leaves no process, directory or mount behind.
These need the real components (`bash .ci/setup --real`): without them they FAIL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.oracle import lifetime
from snaptree.oracle.driver import Result
from snaptree.oracle.drivers import load
from snaptree.oracle.drivers.model import ModelDriver

from ..checks import check
from ..fault_kit import CHECKS, SNAPTREE, WITH_DISK, Check, one_line, require

MESSAGES = {signal.SIGINT: "snaptree: interrupted", signal.SIGTERM: "snaptree: terminated by SIGTERM",
            signal.SIGHUP: "snaptree: terminated by SIGHUP"}


# -- signals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
@pytest.mark.parametrize("name", list(CHECKS))
def test_signal_ends_the_run_and_everything_it_started(name: str, signum: signal.Signals, tmp_path: Path) -> None:
    """128 + the signal, one line, no replay of the example (Hypothesis must not take the
    signal for a failing example), and nothing left: processes, directories."""
    require(name)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = Check(name, tmpdir, tmp_path / "out")
    run.wait_inside()
    sent = time.monotonic()
    run.proc.send_signal(signum)
    status, out, err = run.finish()
    assert (status, one_line(err)) == (128 + signum, MESSAGES[signum]), out
    assert time.monotonic() - sent < 30, "the run took long to stop: did it replay the example?"
    assert run.leftovers() == []
    assert not (tmp_path / "out").exists(), "a signal is no divergence: no counterexample"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("name", ["qemu-hmp", "libvirt-qemu"])
def test_signal_ends_a_run_on_workers_and_everything_they_started(name: str, signum: signal.Signals,
                                                                   tmp_path: Path) -> None:
    """--workers 2: the run passes the signal on and waits; each worker cleans up its own QEMU,
    libvirt helper and directories, and the run its own."""
    require(name)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = Check(name, tmpdir, tmp_path / "out", extra=("--workers", "2"))
    run.wait_inside(workers=2)
    assert len(run.pids) == 3, run.pids
    run.proc.send_signal(signum)
    status, out, err = run.finish()
    assert (status, one_line(err)) == (128 + signum, MESSAGES[signum]), out
    assert run.leftovers() == []
    assert list(tmpdir.iterdir()) == []
    assert not (tmp_path / "out").exists(), "a signal is no divergence: no counterexample"


class SignalInsideACallback(ModelDriver):
    """A driver whose component calls back into Python (libvirt's error handler) when a signal
    arrives: the C code turns the handler's ``Terminated`` into a SystemError."""

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.CreateSnapshot):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except lifetime.Terminated as signalled:
                raise SystemError("<built-in function call> returned a result with an exception set") from signalled
        return super().apply(op)


def test_a_signal_disguised_by_a_callback_still_ends_the_run(tmp_path: Path) -> None:
    """Seen once in CI (libvirt test driver, SIGINT): Hypothesis took the SystemError for a
    failing example, replayed it and printed a FlakyFailure traceback."""
    with lifetime.signals_handled(), pytest.raises(lifetime.Terminated) as stopped:
        check(SignalInsideACallback, "esx", examples=5, seed=1, database=None, out=str(tmp_path / "out"),
              progress=None)
    assert stopped.value.signum == signal.SIGTERM
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(CHECKS))
def test_sigkill_leaves_what_the_next_run_sweeps(name: str, tmp_path: Path) -> None:
    """SIGKILL: nothing runs in the killed process.  Its children die with it (QEMU and the
    libvirt helper by PR_SET_PDEATHSIG, and the helper ends libvirt's QEMU); its directories
    are swept by the next run, which kills whatever might still use them first."""
    require(name)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    killed = Check(name, tmpdir, tmp_path / "out")
    killed.wait_inside()
    killed.proc.kill()
    assert killed.finish()[0] == -signal.SIGKILL
    processes = [left for left in killed.leftovers() if left.startswith("process")]
    assert processes == [], "a child outlived the killed run"
    following = Check(name, tmpdir, tmp_path / "out", examples=1, seed=1)
    status, out, err = following.finish()
    assert status == 0, out + err
    assert killed.leftovers(0) == [], "the next run did not sweep the killed run's leftovers"
    assert following.leftovers() == []


# -- a full disk ----------------------------------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at a short path (libvirt's sockets must fit), removed afterwards."""
    mount = Path(tempfile.mkdtemp(prefix="stfull", dir="/tmp"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs to fill ({done.stderr.strip()}): this needs root with CAP_SYS_ADMIN")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def fill(folder: Path) -> None:
    """Take every byte left on the file system of ``folder``."""
    with open(folder / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\xaa" * 65536)


@pytest.mark.parametrize("name", WITH_DISK)
def test_full_disk_is_a_setup_error(name: str, tmp_path: Path) -> None:
    """The disk fills up in the middle of a run: exit 2, one line naming the cause; never
    DIVERGES blaming the driver, never a traceback."""
    require(name)
    with small_tmpfs("64m") as mount:
        run = Check(name, mount, tmp_path / "out")
        run.wait_inside()
        filling = threading.Thread(target=fill, args=(mount,))
        filling.start()
        status, out, err = run.finish()
        filling.join()
        line = one_line(err)
        assert status == 2, out + err
        assert line.startswith("snaptree: ") and "No space left on device" in line and "DIVERGES" not in out, line
        assert run.leftovers() == []
        assert sorted(p.name for p in mount.iterdir()) == ["filler"]
    assert str(mount) not in Path("/proc/mounts").read_text()


# -- disks and blocks qcow2 cannot hold -------------------------------------------------------------

@pytest.mark.parametrize("name", WITH_DISK)
def test_disk_qcow2_cannot_hold_is_a_setup_error(name: str, tmp_path: Path) -> None:
    """check refuses --blocks over 4,096 itself (README, "Limits"); a scenario's disk reaches the driver."""
    require(name)
    scenario = tmp_path / "huge.xml"
    scenario.write_text(f'<scenario profile="{PROFILES[name]}" blocks="{2 ** 50}"><write block="0" value="a"/></scenario>')
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    driver = CHECKS[name][:2] + (("--profile", PROFILES[name]) if name == "libvirt-qemu" else ())
    done = subprocess.run([str(SNAPTREE), "replay", str(scenario), *driver], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, TMPDIR=str(tmpdir)))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot make a qcow2 disk of 1125899906842624 blocks" in one_line(done.stderr)
    assert list(tmpdir.iterdir()) == []


FAR_WRITES = """<?xml version="1.0" encoding="UTF-8"?>
<scenario profile="{profile}" blocks="4">
  <title>Writes past the end of the disk</title>
  <start profile="qemu-hmp qemu-qmp libvirt-qemu"/>
  <write block="4" value="a"/>
  <expect error="invalid-argument"/>
  <write block="9223372036854775808" value="b"/>
  <expect error="invalid-argument"/>
  <shutdown profile="qemu-hmp qemu-qmp libvirt-qemu"/>
  <write block="9223372036854775808" value="c"/>
  <expect error="invalid-argument"/>
  <write block="1" value="d"/>
</scenario>
"""
PROFILES = {"qemu-img": "qemu-img", "qcow2-chain": "esx", "qemu-hmp": "qemu-hmp", "qemu-qmp": "qemu-qmp",
            "libvirt-qemu": "libvirt-qemu"}


@pytest.mark.parametrize("name", WITH_DISK)
def test_writes_outside_the_disk_are_refused_as_the_model_says(name: str, tmp_path: Path) -> None:
    """qemu-io refuses a write past the end ("write failed") or at an offset it cannot parse
    (block 2^63: "Parsing error"), offline and through HMP, where it says so on QEMU's stdout."""
    require(name)
    scenario = tmp_path / "far.xml"
    scenario.write_text(FAR_WRITES.format(profile=PROFILES[name]))
    driver = CHECKS[name][:2] + (("--profile", PROFILES[name]) if name == "libvirt-qemu" else ())
    done = subprocess.run([str(SNAPTREE), "replay", str(scenario), *driver], capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stdout + done.stderr


# -- block values and paths the drivers must cope with ----------------------------------------------

@pytest.mark.parametrize("name", ["qemu-img", "qcow2-chain", "qemu-hmp"])
def test_hundreds_of_distinct_block_values_round_trip(name: str) -> None:
    """Scenario files write values of any length: past the 255 one-byte fills, each gets a
    two-byte token (two half-block fills), read back through the real disk."""
    require(name)
    driver = load(CHECKS[name][1])(PROFILES[name])
    driver.setup(2)
    try:
        if "start" in driver.operations:
            assert driver.apply(ops.Start()).ok
        for i in range(260):
            assert driver.apply(ops.Write(i % 2, f"value {i}")).ok
        assert driver.apply(ops.CreateSnapshot("A")).ok
        assert driver.apply(ops.Write(0, "ÿ")).ok  # the one-byte fill 0xFF, beside two-byte tokens from 0xFF down
        views = driver.observe()["views"]
        assert views["current"] == {"0": "ÿ", "1": "value 259"}
        assert list(views["snapshots"].values()) == [{"0": "value 258", "1": "value 259"}]
    finally:
        driver.teardown()
        driver.close()


def test_libvirt_qemu_under_a_deep_tmpdir(tmp_path: Path) -> None:
    """A unix socket's path has at most 107 bytes: under a deep TMPDIR the embed root goes to
    /tmp (named after the run, swept like any workspace)."""
    require("libvirt-qemu")
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    run = Check("libvirt-qemu", deep, tmp_path / "out", examples=2, seed=1)
    status, out, err = run.finish()
    assert status == 0, out + err
    assert run.leftovers() == []


def test_embed_root_too_deep_for_sockets_is_one_line(tmp_path: Path) -> None:
    require("libvirt-qemu")
    with tempfile.TemporaryDirectory(dir="/tmp") as reachable:  # tmp_path is under a 0700 folder nobody cannot enter
        os.chmod(reachable, 0o755)
        deep = Path(reachable) / ("d" * 80)
        done = subprocess.run([str(SNAPTREE), "check", "--driver", "libvirt", "--uri", f"qemu:///embed?root={deep}",
                               "--examples", "1", "--database", "none"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "too deep for a unix socket's path" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
