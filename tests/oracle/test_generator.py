"""The history generator (oracle/generate.py) on its own: what it draws for drivers of different
abilities, what guards keep out, and the shape of the histories it grows.

The generator draws every choice as one integer in 0..255 (``pick``); a seeded stand-in for
Hypothesis' ``st.data()`` gives repeatable histories in a fraction of the time a Hypothesis run takes."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pytest
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

from snaptree.model import Machine, get_profile, ops
from snaptree.model.step import Outcome, step
from snaptree.oracle import generate
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.findings import Guard
from snaptree.oracle.generate import HistoryGenerator
from snaptree.oracle.situations import target_of

HISTORIES = 40
STEPS = 20


class SeededDraws:
    """Stands in for ``st.data()``: uniform integers from a seeded generator."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def draw(self, strategy: st.SearchStrategy[Any], label: str | None = None) -> int:
        # anything else and these tests would no longer see what the check draws
        assert repr(strategy) == "integers(min_value=0, max_value=255)", f"the generator now draws {strategy!r}"
        return self.random.randrange(256)


@dataclass
class Drawn:
    op: ops.Operation
    outcome: Outcome
    guarded_by: list[str]  # the guards that match the op on the model just before it
    snapshots: int  # after the step
    depth: int  # of the deepest snapshot after the step (1: a root)


def draw_histories(driver: ModelDriver, guards: Sequence[Guard] = (), excluded: Counter[str] | None = None,
                   histories: int = HISTORIES, watched: Sequence[Guard] = ()) -> list[list[Drawn]]:
    """Histories drawn for ``driver`` as a check draws them, each step applied to the model;
    ``watched`` guards are only asked, not given to the generator."""
    drawn = []
    for seed in range(histories):
        data = cast(st.DataObject, SeededDraws(seed))
        model = Machine(get_profile(driver.profile), 8)
        generator = HistoryGenerator(driver, model, guards, excluded)
        generator.draw_mix(data)
        history = []
        for _ in range(STEPS):
            try:
                op = generator.next_op(data)
            except UnsatisfiedAssumption:  # the generator gave up on this history: Hypothesis discards it
                break
            guarded_by = [g.name for g in (*guards, *watched) if g.excludes(model, op)]
            outcome = step(model, op)
            depth = max((1 + sum(1 for _ in s.ancestors()) for s in model.snapshots.values()), default=0)
            history.append(Drawn(op, outcome, guarded_by, len(model.snapshots), depth))
        drawn.append(history)
    return drawn


def all_ops(histories: list[list[Drawn]]) -> list[ops.Operation]:
    return [d.op for history in histories for d in history]


# -- drivers that declare less than the model can do, shaped after the real ones -------------

class DiskOnlyTable(ModelDriver):
    """Like qemu-img: no VM, no memory choice, revert by id but delete by name, no flags, two values."""

    operations = frozenset({"write", "snapshot", "revert", "delete"})
    by_id = frozenset({"revert"})
    memory_choice = False
    values = ("", "x", "y")

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        self.flags = dict[str, frozenset[str]]()  # no flags at all


class NoDiskByName(ModelDriver):
    """Like libvirt's: no writes, names only, one delete flag of the several the profile has."""

    operations = frozenset({"start", "pause", "resume", "shutdown", "snapshot", "revert", "delete"})
    by_id = False

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        self.flags = {"delete": frozenset({"children"})}


class SnapshotsOnly(ModelDriver):
    """Nothing but snapshots, reverts and deletes."""

    operations = frozenset({"snapshot", "revert", "delete"})
    by_id = False
    memory_choice = False

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        self.flags = dict[str, frozenset[str]]()  # no flags at all


@pytest.mark.parametrize("driver_class, profile", [(DiskOnlyTable, "esx"), (DiskOnlyTable, "qemu-img"),
                                                   (NoDiskByName, "libvirt-test"), (NoDiskByName, "esx"),
                                                   (SnapshotsOnly, "vbox")])
def test_never_draws_what_the_driver_cannot_do(driver_class: type[ModelDriver], profile: str) -> None:
    driver = driver_class(profile)
    capabilities = driver.capabilities()
    drawn = all_ops(draw_histories(driver))
    cannot = [(ops.describe(op), capabilities.cannot_perform(op) or "a value it does not store")
              for op in drawn if not capabilities.draws(op)]
    assert cannot == []
    assert {op.tag for op in drawn} >= {"snapshot", "revert", "delete"}


def test_the_model_driver_draws_everything_the_restricted_ones_are_spared() -> None:
    """The control for the test above: with every ability declared, each restricted kind of
    operation does come up, so its absence there is the capabilities' doing."""
    drawn = all_ops(draw_histories(ModelDriver("libvirt-test")))
    assert any(isinstance(op, (ops.Revert, ops.Delete)) and op.id is not None for op in drawn), "by id"
    assert any(isinstance(op, ops.CreateSnapshot) and op.memory is not None for op in drawn), "memory choice"
    assert any(isinstance(op, ops.Delete) and set(op.flags) - {"children"} for op in drawn), "other delete flags"
    assert any(op.tag in generate.POWER_TAGS for op in drawn), "power"
    assert {op.value for op in drawn if isinstance(op, ops.Write)} - {"x", "y"}, "other values"


def test_a_guard_keeps_what_it_matches_from_being_drawn_and_counts_it() -> None:
    no_b = Guard("no-B", "creates named B", lambda m, op: isinstance(op, ops.CreateSnapshot) and op.name == "B")
    driver = ModelDriver("esx")
    excluded: Counter[str] = Counter()
    guarded = all_ops(draw_histories(driver, [no_b], excluded))
    assert not [op for op in guarded if isinstance(op, ops.CreateSnapshot) and op.name == "B"]
    assert excluded["no-B"] > 0
    assert any(isinstance(op, ops.CreateSnapshot) and op.name == "B" for op in all_ops(draw_histories(driver))), (
        "without the guard, creates named B are drawn")


def test_a_guard_is_asked_about_the_model_as_it_is_before_the_step() -> None:
    def deletes_a_parent(m: Machine, op: ops.Operation) -> bool:
        if not isinstance(op, ops.Delete):
            return False
        target = target_of(m, op)
        return target is not None and bool(target.children)

    guard = Guard("no-parent-deletes", "deletes of a snapshot with children", deletes_a_parent)
    excluded: Counter[str] = Counter()
    guarded = [d for history in draw_histories(ModelDriver("esx"), [guard], excluded) for d in history]
    assert [ops.describe(d.op) for d in guarded if d.guarded_by] == []
    assert excluded[guard.name] > 0
    unguarded = [d.op for history in draw_histories(ModelDriver("esx"), watched=[guard]) for d in history if d.guarded_by]
    assert unguarded, "without the guard, deletes of a snapshot with children are drawn"


@pytest.mark.filterwarnings("ignore:Using `reject` outside a property-based test")
def test_a_guard_is_honoured_even_when_it_matches_every_candidate_for_a_while() -> None:
    # on an empty tree a driver that cannot write or power on can only create: every candidate is guarded
    no_creates = Guard("no-creates", "every create", lambda m, op: isinstance(op, ops.CreateSnapshot))
    drawn = [d for history in draw_histories(SnapshotsOnly("esx"), [no_creates], histories=5) for d in history]
    assert [ops.describe(d.op) for d in drawn if d.guarded_by] == []
    assert drawn == []  # nothing but creates could be drawn: every history is given up


@pytest.mark.parametrize("profile", ["esx", "vbox", "libvirt-test", "qemu-img"])
def test_histories_grow_a_tree(profile: str) -> None:
    histories = draw_histories(ModelDriver(profile))
    took_one = [h for h in histories if any(isinstance(d.op, ops.CreateSnapshot) and d.outcome.ok for d in h)]
    assert len(took_one) >= 0.9 * len(histories), "a history that takes no snapshot tests nothing"
    assert sum(max(d.snapshots for d in h) >= 3 for h in histories) >= 0.75 * len(histories)
    if get_profile(profile).tree:
        assert sum(max(d.depth for d in h) >= 2 for h in histories) >= 0.75 * len(histories), "chains, not only roots"
    # the mix varies histories, never switching reverts or deletes off
    for tag in ("revert", "delete"):
        assert sum(any(d.op.tag == tag for d in h) for h in histories) >= 0.6 * len(histories), tag


def refused_share(histories: list[list[Drawn]]) -> float:
    steps = [d for history in histories for d in history]
    return sum(not d.outcome.ok for d in steps) / len(steps)


def test_steps_meant_to_be_refused_exist_but_are_a_minority(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = ModelDriver("esx")
    share = refused_share(draw_histories(driver))
    assert 0.02 <= share <= 0.2, share
    # esx refuses little of what an ordinary step draws: the refusals are the generator's aim
    monkeypatch.setattr(generate, "REFUSAL_SHARE", 0.0)
    assert refused_share(draw_histories(driver)) < share / 3


def test_the_same_seed_draws_the_same_history() -> None:
    first, again = draw_histories(ModelDriver("vbox"), histories=3), draw_histories(ModelDriver("vbox"), histories=3)
    assert all_ops(first) == all_ops(again)
    assert all_ops(first[:1]) != all_ops(first[1:2])
