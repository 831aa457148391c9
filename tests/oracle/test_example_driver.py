"""The example driver (oracle/example_driver.py, shown in the README) conforms, and a broken
copy of it diverges, with the same verdict through the CLI, the kit and the pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

import pytest

from snaptree.oracle import conformance_test

from ..example_drivers import BrokenTableDriver, TableDriver

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "oracle" / "example_driver.py"
SPECS = {TableDriver: "snaptree.oracle.example_driver:TableDriver",
         BrokenTableDriver: "tests.example_drivers:BrokenTableDriver"}


def test_the_example_is_short_enough_to_read() -> None:
    assert len(EXAMPLE.read_text().splitlines()) < 80


def _cli(spec: str, tmp_path: Path) -> bool:
    proc = subprocess.run([sys.executable, "-m", "snaptree.oracle.cli", "check", "--driver", spec, "--examples", "100",
                           "--seed", "1", "--database", "none", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


def _kit(driver: type[TableDriver], tmp_path: Path) -> bool:
    case = conformance_test(driver, max_examples=100, seed=1, out=str(tmp_path))
    result = unittest.TextTestRunner(stream=open(os.devnull, "w")).run(  # noqa: SIM115
        unittest.defaultTestLoader.loadTestsFromTestCase(case))
    return result.wasSuccessful()


def _plugin(spec: str, tmp_path: Path) -> bool:
    (tmp_path / "plugin").mkdir()
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "plugin"), "-q", "-p", "no:cacheprovider",
                           "--snaptree-driver", spec, "--snaptree-examples", "100", "--snaptree-seed", "1",
                           "--snaptree-database", "none", "--snaptree-out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode == 0


@pytest.mark.parametrize("driver", [TableDriver, BrokenTableDriver], ids=lambda d: d.name)
def test_the_same_verdict_through_the_cli_the_kit_and_the_plugin(driver: type[TableDriver], tmp_path: Path) -> None:
    verdicts = {"cli": _cli(SPECS[driver], tmp_path), "kit": _kit(driver, tmp_path),
                "plugin": _plugin(SPECS[driver], tmp_path)}
    expected = driver is TableDriver
    assert verdicts == {"cli": expected, "kit": expected, "plugin": expected}
