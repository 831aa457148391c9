"""The live QEMU drivers (qemu-hmp, qemu-qmp) against a real qemu-system-x86_64 7.2.

These tests need QEMU and the qemu.qmp client; where either is missing they FAIL, naming
the install command (CI installs them with `bash .ci/setup --real`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.oracle.drivers.qemu_hmp_qmp import QemuHmpDriver, QemuQmpDriver
from snaptree.oracle.drivers.qemu_live import LiveQemuDriver
from snaptree.oracle.drivers.qemu_process import error_kind, failure, hmp_quote
from snaptree.oracle.lockstep import Divergence, Lockstep

from ..checks import check

DRIVERS = (QemuHmpDriver, QemuQmpDriver)


@pytest.fixture(autouse=True)
def real_qemu() -> None:
    problem = QemuHmpDriver.availability()
    if problem:
        pytest.fail(f"{problem} (CI: `bash .ci/setup --real`; or `apt-get install qemu-system-x86 qemu-utils` "
                    "and `.venv/bin/pip install qemu.qmp`)")


# -- parsing ----------------------------------------------------------------------------------------

def test_hmp_quoting_and_error_mapping() -> None:
    assert hmp_quote('quo\'te"s') == '"quo\'te\\"s"'
    assert hmp_quote("back\\slash; x") == '"back\\\\slash; x"'
    two_lines = failure("Not a migration stream\r\nError: Error -22 while loading VM state\r\n")
    assert (two_lines.kind, two_lines.message) == ("disk-only", "Error -22 while loading VM state")
    assert failure("Error: Snapshot 'x' does not exist in one or more devices\r\n").kind == "not-found"
    assert error_kind("Snapshot 'x' already exists in one or more devices") == "duplicate-name"
    assert error_kind("Parameter 'tag' is missing") == "invalid-argument"
    no_name = failure('loadvm: string expected\r\nTry "help loadvm" for more information\r\n')
    assert (no_name.kind, no_name.message) == ("invalid-argument", "loadvm: string expected")
    assert error_kind('Failed to get "write" lock') == "invalid-state"
    assert error_kind("something new") == "unexpected"


# -- conformance ---------------------------------------------------------------------------------

@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)
def test_check_conforms(driver: type[LiveQemuDriver], tmp_path: Path) -> None:
    started = time.monotonic()
    result = check(driver, driver.profiles[0], examples=20, steps=20, seed=2, database=None, out=str(tmp_path),
                   progress=None)
    seconds = time.monotonic() - started
    print(f"{driver.name}: {result.stats.examples} examples, {result.stats.steps} steps in {seconds:.1f} s")
    assert result.conforms, str(result.divergence)
    assert result.stats.examples >= 20
    assert {"snapshot", "revert", "delete", "start", "shutdown"} <= set(result.stats.operations)


AWKWARD = ("with space", "quo'te\"s", "semi;colon", "ünïcødé ✓", "back\\slash", "", "-dash", "x" * 300, "é" * 150)


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)
def test_awkward_names_in_lockstep(driver: type[LiveQemuDriver]) -> None:
    """Every awkward name is saved, found, loaded and deleted as the model says, including the
    names cut at 255 bytes (the "é" one inside a character, so the cut name is out of reach)."""
    lockstep = Lockstep(driver(), 4)
    with lockstep:
        lockstep.step(ops.Start())
        for i, name in enumerate(AWKWARD):
            lockstep.step(ops.Write(i % 4, "abcd"[i % 4]))
            lockstep.step(ops.CreateSnapshot(name))
        for name in sorted(lockstep.model.by_name) + list(AWKWARD):
            lockstep.step(ops.Revert(name))
            lockstep.step(ops.Resume())
            lockstep.step(ops.Delete(name))
        names = {s.name for s in lockstep.model.snapshots.values()}
    assert "é" * 127 + "\ufffd" in names  # the cut name no delete could reach
    assert len(lockstep.history) > 3 * len(AWKWARD)


# -- memory is checked for real ---------------------------------------------------------------------

def test_load_while_paused_restores_the_saved_counter() -> None:
    driver = QemuHmpDriver()
    driver.setup(4)
    try:
        driver.apply(ops.Start())
        assert driver.apply(ops.CreateSnapshot("A")).ok
        saved = next(s["memory_image"] for s in driver.observe()["snapshots"] if s["name"] == "A")
        time.sleep(0.05)  # the guest counts on
        driver.apply(ops.Pause())
        assert driver.qemu is not None
        assert driver.qemu.counter() != int(saved, 16)
        assert driver.apply(ops.Revert("A")).ok
        assert driver.qemu.counter() == int(saved, 16)  # read straight from guest RAM
        assert driver.observe()["ram"] == saved
    finally:
        driver.close()


class ForgetfulHmp(QemuHmpDriver):
    """A load that reports success and restores nothing."""

    def load(self, name: str | None) -> str | None:
        return None


class ForgetfulWhileRunningHmp(QemuHmpDriver):
    """A load of a running VM that reports success and restores nothing; paused loads work."""

    def load(self, name: str | None) -> str | None:
        assert self.qemu is not None
        return None if self.qemu.status() == "running" else super().load(name)


@pytest.mark.parametrize("paused", [True, False], ids=["paused", "running"])
def test_a_load_that_restores_no_memory_is_caught(paused: bool) -> None:
    # no writes: the disk reads the same either way, so only the RAM can tell
    history = [ops.Start(), ops.CreateSnapshot("A"), ops.CreateSnapshot("B"), ops.Pause(), ops.Revert("A")]
    if not paused:  # the RAM is A's, older than B's: a running load of B that restores nothing counts on below it
        history += [ops.Resume(), ops.Revert("B")]
    mutant = ForgetfulHmp() if paused else ForgetfulWhileRunningHmp()
    for driver, should_diverge in ((QemuHmpDriver(), False), (mutant, True)):
        try:
            with Lockstep(driver, 4) as lockstep:
                for op in history:
                    lockstep.step(op)
                    if op == ops.CreateSnapshot("A"):
                        time.sleep(0.3)  # the guest counts on: B's image lies far above A's
        except Divergence as divergence:
            assert should_diverge, str(divergence)
            assert "memory image the RAM came from" in str(divergence.differences[0])
            assert len(divergence.history) == len(history)  # at the last load, not before
        else:
            assert not should_diverge, "a load that restored no memory went unnoticed"
        finally:
            driver.close()
