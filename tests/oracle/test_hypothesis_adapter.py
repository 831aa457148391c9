"""The Hypothesis internals a check relies on (oracle/checker/hypothesis_adapter.py): the
installed version is one they were tested on, pyproject.toml pins that range, each internal is
still there, and each does what the adapter uses it for."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

import hypothesis
import pytest
from hypothesis import Phase, Verbosity, settings
from hypothesis.database import InMemoryExampleDatabase
from hypothesis.internal.conjecture import providers
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from snaptree.oracle.checker import hypothesis_adapter

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_installed_hypothesis_is_in_the_tested_range() -> None:
    low, high = hypothesis_adapter.TESTED
    assert low <= hypothesis.__version_info__[:2] < high, hypothesis.__version__
    assert hypothesis_adapter.installed_in_tested_range()


def test_pyproject_pins_the_tested_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pinned = [Requirement(d) for d in dependencies if Requirement(d).name == "hypothesis"]
    assert len(pinned) == 1, dependencies
    (low_major, low_minor), (high_major, high_minor) = hypothesis_adapter.TESTED
    assert pinned[0].specifier == SpecifierSet(f">={low_major}.{low_minor},<{high_major}.{high_minor}")
    assert Version(hypothesis.__version__) in pinned[0].specifier


def test_the_internals_are_there() -> None:
    assert callable(providers._get_local_constants)
    assert isinstance(providers._get_local_constants(), providers.Constants)
    assert len(providers.Constants()) == 0, "an empty Constants is what switches them off"
    assert callable(providers.CONSTANTS_CACHE.cache.clear)
    assert "_min_steps" in inspect.signature(run_state_machine_as_test).parameters


# -- each internal does what the adapter relies on ---------------------------------------------

class Counting(RuleBasedStateMachine):
    """Records how many steps each example took."""

    runs: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__()
        self.runs.append(0)

    @rule()
    def one_step(self) -> None:
        self.runs[-1] += 1


class Failing(RuleBasedStateMachine):
    @rule()
    def fail(self) -> None:
        raise AssertionError("always")


def saved_under(digest: bytes | None) -> set[bytes]:
    """The example database keys a failing state machine's examples are saved under."""
    database = InMemoryExampleDatabase()

    def factory() -> Failing:
        return Failing()

    if digest is not None:
        hypothesis_adapter.tag_examples(factory, digest)
    with pytest.raises(AssertionError, match="always"):
        hypothesis_adapter.run_machine(factory, settings(database=database, max_examples=5, verbosity=Verbosity.quiet,
                                                         phases=[Phase.generate]), min_steps=0)
    return set(database.data)


def test_tagged_examples_are_saved_under_their_own_key() -> None:
    """One driver's saved failure must not be replayed first against another."""
    esx, vbox = saved_under(b"model:esx:8"), saved_under(b"model:vbox:8")
    assert esx and vbox and esx.isdisjoint(vbox)
    assert saved_under(b"model:esx:8") == esx, "the same tag finds the same examples again"
    assert saved_under(None).isdisjoint(esx)


def test_every_history_takes_the_minimum_steps() -> None:
    Counting.runs = []
    hypothesis_adapter.run_machine(Counting, settings(max_examples=30, stateful_step_count=10, database=None,
                                                      derandomize=True), min_steps=6)
    assert len(Counting.runs) >= 30 and min(Counting.runs) >= 6, Counting.runs


def local_constants_now() -> int:
    """How many local constants a draw would mix in (what HypothesisProvider reads)."""
    return len(providers.HypothesisProvider(None)._local_constants)


def test_no_local_constants_switches_them_off_inside_and_back_after() -> None:
    original = providers._get_local_constants
    assert local_constants_now() > 0, "this test's own module has literals: Hypothesis finds some"
    cached: tuple[Literal["string"], tuple[Any, ...]] = ("string", ("a key the adapter never made",))
    providers.CONSTANTS_CACHE[cached] = ((), ("a local literal",))
    with hypothesis_adapter.no_local_constants():
        assert local_constants_now() == 0
        assert cached not in providers.CONSTANTS_CACHE, "constants cached before are dropped"
        providers.CONSTANTS_CACHE[cached] = ((), ())
    assert providers._get_local_constants is original
    assert cached not in providers.CONSTANTS_CACHE, "nothing cached inside outlives it"
    assert local_constants_now() > 0


def test_no_local_constants_restores_them_after_an_exception() -> None:
    original = providers._get_local_constants
    with pytest.raises(RuntimeError, match="inside"), hypothesis_adapter.no_local_constants():
        raise RuntimeError("inside")
    assert providers._get_local_constants is original
    assert local_constants_now() > 0
