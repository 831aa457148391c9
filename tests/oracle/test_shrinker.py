"""The shrinker (oracle/shrink.py) on its own: hand-made diverging histories of a driver that
deletes without merging (tests/mutants.py), shrunk by replaying them in lockstep."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pytest

from snaptree.model import Machine, get_profile, ops
from snaptree.model.step import Outcome, step
from snaptree.oracle.differences import Difference
from snaptree.oracle.findings import Guard
from snaptree.oracle.lockstep import Divergence, Lockstep
from snaptree.oracle.shrink import Shrinker, kind_of
from snaptree.oracle.situations import target_of

from ..mutants import DeleteWithoutMerge

# Grows a tree with writes, power changes, a branch and a described disk-only snapshot, and
# diverges only at the last step: the delete of A drops its block 0 from what its children read.
LONG = [ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("A", memory=False, description="before the upgrade"),
        ops.Write(1, "b"), ops.CreateSnapshot("B"), ops.Write(2, "c"), ops.Suspend(), ops.Start(),
        ops.CreateSnapshot("C"), ops.Revert("A"), ops.Write(3, "d"), ops.CreateSnapshot("D"), ops.Write(4, "a"),
        ops.Delete("A")]


@pytest.fixture
def new_mutant_lockstep(model_lockstep: Callable[..., Lockstep]) -> Callable[[str], Callable[[], Lockstep]]:
    """For a profile, what a Shrinker calls for every replay: a fresh lockstep of the mutant."""
    return lambda profile: functools.partial(model_lockstep, profile, DeleteWithoutMerge)


def creates(profile: str, history: Sequence[ops.Operation]) -> list[Outcome]:
    """The outcomes of the creates in ``history`` on the model: the names and ids it gives."""
    machine = Machine(get_profile(profile), 8)
    return [outcome for outcome in (step(machine, op) for op in history) if outcome.created_id is not None]


def removable_steps(divergence: Divergence, new_lockstep: Callable[[], Lockstep]) -> list[int]:
    """The steps (1-based) without which the history still diverges in the same kind."""
    shrinker = Shrinker(divergence, new_lockstep)
    steps = shrinker.steps
    removable = []
    for i in range(len(steps) - 1):
        again = shrinker.replay(steps[:i] + steps[i + 1:])
        if again is not None and kind_of(again) == kind_of(divergence):
            removable.append(i + 1)
    return removable


def test_a_long_history_shrinks_to_a_short_one_that_diverges_alike(
        model_lockstep: Callable[..., Lockstep], new_mutant_lockstep: Callable[[str], Callable[[], Lockstep]],
        diverge: Callable[..., Divergence]) -> None:
    divergence = diverge(model_lockstep("esx", DeleteWithoutMerge), LONG)
    assert len(divergence.history) == len(LONG)
    shrunk, stats = Shrinker(divergence, new_mutant_lockstep("esx")).run()
    assert kind_of(shrunk) == kind_of(divergence) == "view"
    assert len(shrunk.history) < len(LONG) // 2
    assert isinstance(shrunk.history[-1].op, ops.Delete), "the diverging step stays"
    assert (stats.steps_before, stats.steps_after) == (len(LONG), len(shrunk.history))
    assert stats.complete and 0 < stats.replays <= 2000
    # what the divergence does not need is simplified away: A's description and memory choice
    creates = [s.op for s in shrunk.history if isinstance(s.op, ops.CreateSnapshot)]
    assert creates and all(op.description == "" and op.memory is None for op in creates)


def test_the_shrunk_history_is_one_minimal(model_lockstep: Callable[..., Lockstep],
                                           new_mutant_lockstep: Callable[[str], Callable[[], Lockstep]],
                                           diverge: Callable[..., Divergence]) -> None:
    divergence = diverge(model_lockstep("esx", DeleteWithoutMerge), LONG)
    assert removable_steps(divergence, new_mutant_lockstep("esx")), "the long history has steps to spare"
    shrunk, _ = Shrinker(divergence, new_mutant_lockstep("esx")).run()
    assert removable_steps(shrunk, new_mutant_lockstep("esx")) == []


@pytest.mark.parametrize("profile, by_id", [("libvirt-test", False), ("esx", True)],
                         ids=["clock-name", "counter-id"])
def test_a_step_that_names_a_snapshot_follows_it_when_earlier_steps_go(
        profile: str, by_id: bool, model_lockstep: Callable[..., Lockstep],
        new_mutant_lockstep: Callable[[str], Callable[[], Lockstep]], diverge: Callable[..., Divergence]) -> None:
    """Removing an earlier step renames an unnamed snapshot (libvirt: the clock) or renumbers it
    (ESX: a counter); the delete aimed at it must aim at its new name or id."""
    grown = [ops.Start(), ops.Pause(), ops.Resume(), ops.CreateSnapshot("X"), ops.Write(0, "a"),
             ops.CreateSnapshot(None), ops.CreateSnapshot("Y")]
    target = creates(profile, grown)[1]
    delete = ops.Delete(id=target.created_id) if by_id else ops.Delete(target.created_name)
    divergence = diverge(model_lockstep(profile, DeleteWithoutMerge), [*grown, delete])
    shrinker = Shrinker(divergence, new_mutant_lockstep(profile))
    shrunk, _ = shrinker.run()
    assert len(shrunk.history) <= 3
    made = [s.model for s in shrunk.history if s.model.created_id is not None]
    last = shrunk.history[-1].op
    assert isinstance(last, ops.Delete) and made
    assert (last.id, last.ref) == ((made[-1].created_id, None) if by_id else (None, made[-1].created_name))
    assert (last.id, last.ref) != (delete.id, delete.ref), "the snapshot was renamed or renumbered"
    # without the links, no step before the create can go
    unlinked = Shrinker(divergence, new_mutant_lockstep(profile))
    unlinked.links = {}
    assert len(unlinked.run()[0].history) > len(shrunk.history)


def test_an_empty_name_the_profile_treats_as_none_is_followed_too(
        model_lockstep: Callable[..., Lockstep], new_mutant_lockstep: Callable[[str], Callable[[], Lockstep]],
        diverge: Callable[..., Divergence]) -> None:
    grown = [ops.Start(), ops.Pause(), ops.Resume(), ops.Write(0, "a"), ops.CreateSnapshot(""), ops.CreateSnapshot("B")]
    clock_name = creates("libvirt-test", grown)[0].created_name
    divergence = diverge(model_lockstep("libvirt-test", DeleteWithoutMerge), [*grown, ops.Delete(clock_name)])
    shrunk, _ = Shrinker(divergence, new_mutant_lockstep("libvirt-test")).run()
    assert len(shrunk.history) <= 3, [ops.describe(s.op) for s in shrunk.history]


def test_a_shrunk_history_never_walks_into_a_guard(model_lockstep: Callable[..., Lockstep],
                                                   new_mutant_lockstep: Callable[[str], Callable[[], Lockstep]],
                                                   diverge: Callable[..., Divergence]) -> None:
    """Without B, deleting A deletes the current snapshot, which shows the same kind of
    divergence in fewer steps; a guard against deleting the current snapshot keeps B."""
    def deletes_current(m: Machine, op: ops.Operation) -> bool:
        return isinstance(op, ops.Delete) and m.current is not None and target_of(m, op) is m.current

    guard = Guard("delete-current", "deletes of the current snapshot", deletes_current)
    history = [ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.CreateSnapshot("B"), ops.Delete("A")]
    divergence = diverge(model_lockstep("esx", DeleteWithoutMerge), history)
    free, _ = Shrinker(divergence, new_mutant_lockstep("esx")).run()
    assert len(free.history) == 3, "the unguarded shrink takes the shortcut"
    guarded, _ = Shrinker(divergence, new_mutant_lockstep("esx"), guards=[guard]).run()
    assert [s.op for s in guarded.history] == history
    machine = Machine(get_profile("esx"), 8)
    for s in guarded.history:
        assert not guard.excludes(machine, s.op), ops.describe(s.op)
        machine.perform(s.op)


@pytest.mark.parametrize("budget", [0, 1, 3])
def test_the_replay_budget_is_honoured(budget: int, model_lockstep: Callable[..., Lockstep],
                                       new_mutant_lockstep: Callable[[str], Callable[[], Lockstep]],
                                       diverge: Callable[..., Divergence]) -> None:
    divergence = diverge(model_lockstep("esx", DeleteWithoutMerge), LONG)
    shrunk, stats = Shrinker(divergence, new_mutant_lockstep("esx"), max_replays=budget).run()
    assert stats.replays == budget and not stats.complete
    # the best found so far: still the same kind, never longer
    assert kind_of(shrunk) == kind_of(divergence) and stats.steps_after == len(shrunk.history) <= len(LONG)
    _, unbounded = Shrinker(divergence, new_mutant_lockstep("esx")).run()
    assert unbounded.complete and unbounded.replays > budget


@pytest.mark.parametrize("what, kind", [
    ("outcome", "outcome"),
    ("the new snapshot's id", "the new snapshot's id"),
    ("view of B (id 2), block 0", "view"),
    ("view of the current state, block 3", "view"),
    ("snapshot B (id 2): parent", "parent"),
    ("snapshot A: order of its children", "order of its children"),
    ("snapshot B (id 2)", "snapshot listed"),  # listed by one side only
    ("current snapshot", "current snapshot"),
    pytest.param("snapshot semi: colon", "snapshot listed"),
])
def test_kind_of_names_what_differs_without_the_names(what: str, kind: str, model_lockstep: Callable[..., Lockstep],
                                                      diverge: Callable[..., Divergence]) -> None:
    divergence = diverge(model_lockstep("esx", DeleteWithoutMerge), LONG)
    divergence.differences = [Difference(what, "exists", "absent")]
    assert kind_of(divergence) == kind
