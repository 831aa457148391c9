"""Shared by every layer of the tests: a marker per layer (its folder), so that
`pytest -m "model or profiles or oracle"` runs the layers that need no real component."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixtures import the oracle when first used: the model's tests need no Hypothesis
    from snaptree.model import ops
    from snaptree.oracle import CheckResult
    from snaptree.oracle.drivers.model import ModelDriver
    from snaptree.oracle.lockstep import Divergence, Lockstep

LAYERS = ("model", "profiles", "oracle", "drivers", "cli", "faults")


def pytest_configure(config: pytest.Config) -> None:
    for layer in LAYERS:
        config.addinivalue_line("markers", f"{layer}: a test of the {layer} layer (tests/{layer}/)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        parts = Path(item.path).relative_to(here).parts if Path(item.path).is_relative_to(here) else ()
        if parts and parts[0] in LAYERS:
            item.add_marker(parts[0])


# -- the oracle's parts, tested one by one (tests/oracle/test_lockstep.py, test_shrinker.py, test_reports.py) --

@pytest.fixture
def model_lockstep() -> Callable[..., Lockstep]:
    """A fresh Lockstep (not yet entered) of the model driver, or of a mutant of it, under a profile."""
    from snaptree.oracle.drivers.model import ModelDriver
    from snaptree.oracle.lockstep import Lockstep

    def make(profile: str, driver: type[ModelDriver] = ModelDriver, blocks: int = 8) -> Lockstep:
        return Lockstep(driver(profile), blocks)

    return make


@pytest.fixture
def diverge() -> Callable[[Lockstep, Sequence[ops.Operation]], Divergence]:
    """Steps a history through a lockstep and hands back the Divergence it must end in."""
    from snaptree.oracle.lockstep import Divergence

    def run(lockstep: Lockstep, history: Sequence[ops.Operation]) -> Divergence:
        with lockstep:
            try:
                for op in history:
                    lockstep.step(op)
            except Divergence as divergence:
                return divergence
        pytest.fail(f"{lockstep.driver.name} did not diverge in {len(history)} steps")

    return run


@pytest.fixture
def outcome_divergence(model_lockstep: Callable[..., Lockstep], diverge: Callable[..., Divergence]) -> Divergence:
    """A driver that refuses every delete, caught at step 3 of 3: the delete the model performs."""
    from snaptree.model import ops
    from snaptree.oracle.driver import Result
    from snaptree.oracle.drivers.model import ModelDriver

    class RefusesDeletes(ModelDriver):
        def apply(self, op: ops.Operation) -> Result:
            return Result.error("unsupported", "this system deletes nothing") if op.tag == "delete" else super().apply(op)

    return diverge(model_lockstep("esx", RefusesDeletes), [ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Delete("A")])


@pytest.fixture(scope="session")
def mutant_check(tmp_path_factory: pytest.TempPathFactory) -> CheckResult:
    """A small check of a driver that deletes without merging: it diverges, shrinks and writes
    its counterexample (read it, do not change it: the session shares it)."""
    from snaptree.oracle import CheckConfig, run_check

    from .mutants import DeleteWithoutMerge

    out = tmp_path_factory.mktemp("mutant-check")
    return run_check(CheckConfig(driver=DeleteWithoutMerge, profile="esx", examples=30, seed=2, database=None,
                                 out=str(out)), progress=None)
