"""The kit (snaptree.oracle.conformance_test) is the CLI's equal: the same check, shrinker and
side-by-side report, under pytest and under unittest, leaving nothing in the working directory.

The kit exactly as a driver author uses it in their own suite, one import and one line:"""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

import pytest

from snaptree.oracle import conformance_test
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.example_driver import TableDriver

from ..example_drivers import BrokenTableDriver

ROOT = Path(__file__).resolve().parents[2]

TestModelAsVirtualBox = conformance_test(ModelDriver, profile="vbox", max_examples=25)
TestModelAsQemuImg = conformance_test(ModelDriver, profile="qemu-img", max_examples=25, blocks=4)


def _run_unittest(case: type[unittest.TestCase]) -> unittest.TestResult:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    return unittest.TextTestRunner(stream=open(os.devnull, "w"), verbosity=0).run(suite)  # noqa: SIM115


def test_under_unittest_a_conforming_driver_passes_and_a_broken_one_fails_with_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = _run_unittest(conformance_test(TableDriver, max_examples=30, seed=1, out=str(tmp_path / "out")))
    assert good.wasSuccessful() and good.testsRun == 1
    bad = _run_unittest(conformance_test(BrokenTableDriver, max_examples=30, seed=1, out=str(tmp_path / "out")))
    assert len(bad.failures) == 1
    message = bad.failures[0][1]
    assert "DIVERGES: driver example-table-broken and profile qemu-img part ways" in message
    assert "first difference after step" in message and "replay:   snaptree replay" in message
    assert "Traceback" not in message.split("DIVERGES")[0] + message.split("DIVERGES")[1]
    assert "tests.example_drivers:BrokenTableDriver" in message
    assert "Draw 1" not in message  # Hypothesis's own printout of its draws is not the report
    # shrunk by the CLI's shrinker: a few steps, not the twenty a history may have
    steps = [line for line in message.splitlines() if line[:6].strip().rstrip(".").isdigit()]
    assert 2 <= len(steps) <= 6


def test_the_kit_writes_nothing_into_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _run_unittest(conformance_test(BrokenTableDriver, max_examples=30, seed=1))
    assert list(tmp_path.iterdir()) == []


def test_under_pytest_the_failure_is_the_side_by_side_report(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        "from snaptree.oracle import conformance_test\n"
        "from tests.example_drivers import BrokenTableDriver\n"
        "TestBroken = conformance_test(BrokenTableDriver, max_examples=30, seed=1)\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DIVERGES: driver example-table-broken" in proc.stdout and "first difference after step" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["test_mine.py"]
