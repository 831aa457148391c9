"""A driver's own failure -- an exception from setup, apply, observe, teardown or close, an
observation of the wrong shape, a result that is no Result -- is a verdict ("driver error"),
never a crash of snaptree: the history side by side up to it, the driver's own frame, exit 3,
and a shrunk scenario that replays the same error."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from snaptree.model import ops
from snaptree.oracle import CheckConfig, DriverError, junit_xml, run_check, summary_json
from snaptree.oracle.cli import main
from snaptree.oracle.drivers.model import ModelDriver

from ..checks import check

ROOT = Path(__file__).resolve().parents[2]


class RaisesOnSecondDelete(ModelDriver):
    name = "raises-on-second-delete"
    profiles = ("esx",)

    def setup(self, blocks: int, *disks: Any) -> None:
        super().setup(blocks, *disks)
        self.deletes = 0

    def apply(self, op: ops.Operation) -> Any:
        if isinstance(op, ops.Delete):
            self.deletes += 1
            if self.deletes == 2:
                return {}[op.ref]  # the bug: a KeyError on the second delete
        return super().apply(op)


class NoViews(ModelDriver):
    name = "no-views"
    profiles = ("esx",)

    def observe(self) -> dict[str, Any]:
        state = super().observe()
        del state["views"]
        return state


class ReturnsNone(ModelDriver):
    name = "returns-none"
    profiles = ("esx",)

    def apply(self, op: ops.Operation) -> Any:
        super().apply(op)
        return None


class SetupFails(ModelDriver):
    name = "setup-fails"
    profiles = ("esx",)

    def setup(self, blocks: int, *disks: Any) -> None:
        raise RuntimeError("no disk")


class TeardownFails(ModelDriver):
    name = "teardown-fails"
    profiles = ("esx",)

    def teardown(self) -> None:
        raise OSError("cannot remove the VM")


class CloseFails(ModelDriver):
    name = "close-fails"
    profiles = ("esx",)

    def close(self) -> None:
        raise ValueError("connection already closed")


class ObservesTheWeather(ModelDriver):
    name = "observes-the-weather"
    profiles = ("esx",)
    observes = ModelDriver.observes | {"weather"}


@pytest.mark.parametrize(("driver", "phase", "error"), [
    (RaisesOnSecondDelete, "apply", "KeyError"),
    (NoViews, "observe", "wrong shape: observe() returned no 'views'"),
    (ReturnsNone, "apply", "apply() returned NoneType, not a snaptree Result"),
    (SetupFails, "setup", "RuntimeError: no disk"),
    (TeardownFails, "teardown", "OSError: cannot remove the VM"),
    (CloseFails, "close", "ValueError: connection already closed"),
])
def test_a_drivers_own_failure_is_a_verdict(driver: type[ModelDriver], phase: str, error: str, tmp_path: Path) -> None:
    result = check(driver, "esx", examples=30, seed=1, database=None, out=str(tmp_path))
    failure = result.driver_error
    assert failure is not None and not result.conforms and result.verdict == "driver-error"
    assert failure.phase == phase and failure.error.startswith(error)
    assert summary_json(result)["driver_error"]["phase"] == phase
    junit = etree.fromstring(junit_xml([result]).encode())
    assert junit.get("errors") == "1" and junit.get("failures") == "0" and junit.find("testcase/error") is not None


def test_the_drivers_own_frame_is_named(tmp_path: Path) -> None:
    failure = check(RaisesOnSecondDelete, "esx", examples=30, seed=1, database=None, out=str(tmp_path)).driver_error
    assert failure is not None
    assert failure.frame.startswith("test_driver_errors.py:") and "in apply: return {}[op.ref]" in failure.frame


def test_a_driver_error_shrinks_and_its_scenario_replays_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = check(RaisesOnSecondDelete, "esx", examples=30, seed=1, database=None, out=str(tmp_path))
    assert result.driver_error is not None and result.scenario_path is not None
    assert len(result.driver_error.history) == 2  # two deletes, nothing else
    assert [s.op.tag for s in result.driver_error.history] == ["delete", "delete"]
    assert result.driver_error.history[-1].driver.kind == "driver-error"
    spec = f"{__name__}:RaisesOnSecondDelete"
    code = main(["replay", str(result.scenario_path), "--driver", spec])
    out = capsys.readouterr().out
    assert code == 3
    assert "DRIVER ERROR" in out and "KeyError" in out and "<-- differs" in out


def test_the_command_line_says_driver_error_and_exits_3(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "snaptree.oracle.cli", "check", "--driver",
                           "tests.oracle.test_driver_errors:RaisesOnSecondDelete", "--seed", "1", "--database", "none",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "DRIVER ERROR: driver raises-on-second-delete failed in its own code" in proc.stdout
    assert "  step " in proc.stdout and "driver-error  <-- differs" in proc.stdout


def test_a_driver_error_comes_back_from_a_worker(tmp_path: Path) -> None:
    """Shards on workers pickle their result: the DriverError crosses the process boundary."""
    failure = DriverError([], "apply", "KeyError: 'A'", "x.py:1 in apply")
    again = pickle.loads(pickle.dumps(failure))
    assert (again.phase, again.error, again.frame) == ("apply", "KeyError: 'A'", "x.py:1 in apply")
    result = run_check(CheckConfig(driver=RaisesOnSecondDelete, profile="esx", examples=20, seed=1, database=None,
                                   out=str(tmp_path), shards=2, workers=2), progress=None)
    assert result.driver_error is not None and result.driver_error.phase == "apply"


def test_observations_a_driver_declares_must_be_known(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--driver", f"{__name__}:ObservesTheWeather", "--examples", "1", "--database", "none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "observes weather" in err


def test_a_module_in_the_current_directory_is_found(tmp_path: Path) -> None:
    """`--driver mymod:Class` from the module's own directory, as `python -m` would find it."""
    (tmp_path / "mydriver.py").write_text("from snaptree.oracle.example_driver import TableDriver as Mine\n")
    snaptree = Path(sys.executable).with_name("snaptree")
    proc = subprocess.run([str(snaptree), "check", "--driver", "mydriver:Mine", "--examples", "5", "--seed", "1",
                           "--database", "none"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CONFORMS: driver example-table" in proc.stdout


def test_the_pytest_plugin_and_the_kit_say_driver_error(tmp_path: Path) -> None:
    (tmp_path / "plugin").mkdir()
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "plugin"), "-q", "-p", "no:cacheprovider",
                           "--snaptree-driver", "tests.oracle.test_driver_errors:RaisesOnSecondDelete",
                           "--snaptree-seed", "1", "--snaptree-database", "none", "--snaptree-out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DRIVER ERROR: driver raises-on-second-delete failed in its own code in shard 1/1" in proc.stdout
    (tmp_path / "test_kit_run.py").write_text(
        "from snaptree.oracle import conformance_test\n"
        "from tests.oracle.test_driver_errors import RaisesOnSecondDelete\n"
        "TestIt = conformance_test(RaisesOnSecondDelete, profile='esx', max_examples=30, seed=1)\n")
    kit = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_kit_run.py"), "-q", "-p",
                          "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert kit.returncode == 1 and "DRIVER ERROR: driver raises-on-second-delete" in kit.stdout
