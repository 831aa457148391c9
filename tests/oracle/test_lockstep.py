"""The lockstep (oracle/lockstep.py) and what it compares (oracle/differences.py), on their own:
outcomes, every kind of observation, the correspondence of names and ids, and Divergence."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from collections.abc import Callable
from typing import Any

import pytest

from snaptree.model import PROFILES, Machine, get_profile, observe, ops
from snaptree.model.step import step
from snaptree.oracle import CheckResult
from snaptree.oracle.differences import Correspondence, Difference, outcome_difference, state_differences
from snaptree.oracle.driver import OBSERVATIONS, Result
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.lockstep import Divergence, Lockstep

from ..mutants import DeleteWithoutMerge, FailureChangesState, IdsReused, NamesLowerCased


@pytest.mark.parametrize("model, driver, expected", [
    ((True, None), (True, None), None),
    ((False, "not-found"), (False, "not-found"), None),
    ((True, None), (True, "not-found"), None),  # an ok outcome carries no kind worth comparing
    ((True, None), (False, "has-children"), Difference("outcome", "ok", "has-children")),
    ((False, "has-children"), (True, None), Difference("outcome", "has-children", "ok")),
    ((False, "not-found"), (False, "invalid-state"), Difference("outcome", "not-found", "invalid-state")),
])
def test_outcome_difference(model: tuple[bool, str | None], driver: tuple[bool, str | None],
                            expected: Difference | None) -> None:
    assert outcome_difference(*model, *driver) == expected


# -- state_differences, one observation kind at a time --------------------------------------

# Two roots (B, C) after A's delete; B has two children, D (described) and E (disk-only, current);
# memory images, a running VM and a written current state.
RICH = [ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Write(1, "b"), ops.CreateSnapshot("B"),
        ops.Revert("A"), ops.CreateSnapshot("C"), ops.Delete("A"), ops.Revert("B"),
        ops.CreateSnapshot("D", description="before the upgrade"), ops.Revert("B"),
        ops.CreateSnapshot("E", memory=False), ops.Write(2, "c")]


@pytest.fixture(scope="module")
def rich_state() -> dict[str, Any]:
    machine = Machine(get_profile("esx"), 8)
    assert all(step(machine, op).ok for op in RICH)
    return observe(machine)


def snapshot(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in state["snapshots"] if s["name"] == name)


def _set(record: dict[str, Any], key: str, value: Any) -> None:
    record[key] = value


# Labels are text output's business (a name, ``#id`` where names repeat): a difference is
# matched by what it is about, and of which snapshot.
PLANTED: list[tuple[str, str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("names", "a name", lambda s: _set(snapshot(s, "B"), "name", "b"), [r"snapshot B\b.*: name"]),
    ("tree", "a parent", lambda s: _set(snapshot(s, "D"), "parent", snapshot(s, "C")["id"]), [r"snapshot D\b.*: parent"]),
    ("order", "children", lambda s: snapshot(s, "B")["children"].reverse(), [r"snapshot B\b.*: order of its children"]),
    ("order", "roots", lambda s: s["roots"].reverse(), ["order of the root snapshots"]),
    ("current", "current", lambda s: _set(s, "current", snapshot(s, "D")["id"]), ["current snapshot"]),
    ("power", "power", lambda s: _set(s, "power", "paused"), ["power"]),
    ("state", "recorded state", lambda s: _set(snapshot(s, "C"), "state", "paused"), [r"snapshot C\b.*: recorded state"]),
    ("memory", "memory", lambda s: snapshot(s, "C").update(memory=False, memory_image=None), [r"snapshot C\b.*: has memory"]),
    ("ram", "the RAM's image", lambda s: _set(s, "ram", None), ["memory image the RAM came from"]),
    # images are the system's tokens, matched one to one: C's may not be the one B's matched
    ("ram", "a snapshot's image", lambda s: _set(snapshot(s, "C"), "memory_image", snapshot(s, "B")["memory_image"]),
     [r"snapshot C\b.*: memory image"]),
    ("views", "a snapshot's view", lambda s: _set(s["views"]["snapshots"][snapshot(s, "C")["id"]], "0", "b"),
     [r"view of C\b.*, block 0"]),
    ("views", "the current view", lambda s: s["views"]["current"].pop("2"), ["view of the current state, block 2"]),
    ("description", "a description", lambda s: _set(snapshot(s, "D"), "description", ""), [r"snapshot D\b.*: description"]),
]


def about(differences: list[Difference]) -> list[str]:
    return [d.what for d in differences]


def matches(whats: list[str], patterns: list[str]) -> bool:
    return len(whats) == len(patterns) and all(re.fullmatch(p, w) for p, w in zip(patterns, whats, strict=True))


def test_equal_states_have_no_difference(rich_state: dict[str, Any]) -> None:
    assert state_differences(rich_state, copy.deepcopy(rich_state), OBSERVATIONS, Correspondence(), True) == []


@pytest.mark.parametrize("kind, plant, expected", [(kind, plant, expected) for kind, _, plant, expected in PLANTED],
                         ids=[f"{kind}: {label}" for kind, label, _, _ in PLANTED])
def test_a_planted_difference_is_found_through_its_observation_only(
        kind: str, plant: Callable[[dict[str, Any]], None], expected: list[str], rich_state: dict[str, Any]) -> None:
    driver = copy.deepcopy(rich_state)
    plant(driver)
    found = about(state_differences(rich_state, driver, OBSERVATIONS, Correspondence(), sibling_order=True))
    assert matches(found, expected), found
    assert state_differences(rich_state, driver, OBSERVATIONS - {kind}, Correspondence(), sibling_order=True) == []


@pytest.mark.parametrize("plant", [plant for kind, _, plant, _ in PLANTED if kind == "order"])
def test_sibling_order_is_compared_only_where_the_profile_defines_it(plant: Callable[[dict[str, Any]], None],
                                                                     rich_state: dict[str, Any]) -> None:
    driver = copy.deepcopy(rich_state)
    plant(driver)
    assert state_differences(rich_state, driver, OBSERVATIONS, Correspondence(), sibling_order=False) == []


def test_ids_are_matched_through_the_correspondence(rich_state: dict[str, Any]) -> None:
    driver = copy.deepcopy(rich_state)
    d = snapshot(driver, "D")
    d["id"] = "x4"
    parent = snapshot(driver, "B")
    parent["children"] = ["x4" if c == "4" else c for c in parent["children"]]
    driver["views"]["snapshots"]["x4"] = driver["views"]["snapshots"].pop("4")
    unmatched = state_differences(rich_state, driver, OBSERVATIONS, Correspondence(), True)
    # listed by one side only, each way (then B's children differ too)
    assert matches(about(unmatched[:2]), [r"snapshot D\b.*"] * 2), about(unmatched)
    assert [(d.model, d.driver) for d in unmatched[:2]] == [("exists", "absent"), ("absent", "exists")]
    assert state_differences(rich_state, driver, OBSERVATIONS, Correspondence(ids={"4": "x4"}), True) == []


def test_the_correspondence_learns_names_only_of_auto_named_snapshots() -> None:
    match = Correspondence()
    match.created("1", "1269980042", "snap-7", "vm-20100326", auto_named=True)
    match.created("2", "B", "snap-8", "b", auto_named=False)  # a name the user gave must come back as given
    match.created("3", "C", None, "C", auto_named=False)
    assert match.ids == {"1": "snap-7", "2": "snap-8"}
    assert match.driver_name("1269980042") == "vm-20100326"
    assert (match.driver_name("B"), match.driver_id("3")) == ("B", "3")


class NamesItsUnnamedSnapshots(ModelDriver):
    """An ESX-like system that names each unnamed snapshot itself (unnamed-1, unnamed-2, ...),
    where the esx profile's are all named "": the names are the system's choice, matched up."""

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.CreateSnapshot) and op.name is None:
            assert self.machine is not None
            op = dataclasses.replace(op, name=f"unnamed-{len(self.machine.snapshots) + 1}")
        return super().apply(op)


def test_unnamed_snapshots_sharing_the_models_name_keep_their_own_driver_names() -> None:
    """Two unnamed ESX snapshots are both "" in the model; "" finds the first in pre-order, so
    the driver must get the first one's name (not the name chosen last), and each snapshot is
    compared with the name chosen for it."""
    driver = NamesItsUnnamedSnapshots("esx")
    with Lockstep(driver, 4) as lockstep:
        for op in (ops.Write(0, "a"), ops.CreateSnapshot(), ops.Write(0, "b"), ops.CreateSnapshot(),
                   ops.Revert(""), ops.Write(1, "c")):
            lockstep.step(op)
        assert driver.observe()["current"] == lockstep.match.driver_id("1")
        assert lockstep.history[4].sent == ops.Revert("unnamed-1")
        lockstep.step(ops.Delete(""))
        assert [s["name"] for s in driver.observe()["snapshots"]] == ["unnamed-2"]


# -- the lockstep ------------------------------------------------------------------------------

# every kind of operation, some refused under every profile (an unknown name), some under a few
FIXED = [ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Write(1, "b"), ops.CreateSnapshot("B"),
         ops.Revert("A"), ops.CreateSnapshot("C", memory=False), ops.Delete("A"), ops.Delete("nope"), ops.Pause(),
         ops.CreateSnapshot(None), ops.Resume(), ops.Suspend(), ops.Start(), ops.Shutdown(), ops.Revert("B"),
         ops.DeleteAll()]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_model_driver_never_diverges(profile: str, model_lockstep: Callable[..., Lockstep]) -> None:
    lockstep = model_lockstep(profile)
    with lockstep:
        for op in FIXED:
            lockstep.step(op)
        assert lockstep.driver.observe() == lockstep.history[-1].model_state
    assert len(lockstep.history) == len(FIXED)
    assert [s.model.ok for s in lockstep.history] == [s.driver.ok for s in lockstep.history]
    assert any(s.model.ok for s in lockstep.history) and not all(s.model.ok for s in lockstep.history)


@pytest.mark.parametrize("mutant, profile, history, expected", [
    (IdsReused, "esx", [ops.CreateSnapshot("A"), ops.CreateSnapshot("B"), ops.Delete("B"), ops.CreateSnapshot("C")],
     ("the new snapshot's id", "3", "2")),
    (NamesLowerCased, "esx", [ops.Write(0, "a"), ops.CreateSnapshot("Base")], ("the new snapshot's name", "Base", "base")),
    (DeleteWithoutMerge, "esx", [ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.CreateSnapshot("B"), ops.Delete("A")],
     (r"view of B\b.*, block 0", "a", "")),
    # a refused delete that moved current anyway: the outcomes agree, the states do not
    (FailureChangesState, "vbox", [ops.CreateSnapshot("A"), ops.CreateSnapshot("B"), ops.Revert("A"),
                                   ops.CreateSnapshot("C"), ops.Delete("A")],
     ("current snapshot", "C", None)),
])
def test_a_mutant_diverges_at_the_step_that_shows_it(
        mutant: type[ModelDriver], profile: str, history: list[ops.Operation], expected: tuple[str, str, str | None],
        model_lockstep: Callable[..., Lockstep], diverge: Callable[..., Divergence]) -> None:
    divergence = diverge(model_lockstep(profile, mutant), history)
    assert [s.op for s in divergence.history] == history, "at the last step, not before"
    first = divergence.differences[0]
    assert re.fullmatch(expected[0], first.what) and (first.model, first.driver) == expected[1:], first
    assert f"after step {len(history)} ({ops.describe(history[-1])})" in str(divergence)
    # a difference in what a create returned is found before the driver is observed
    assert (divergence.driver_state is None) == first.what.startswith("the new snapshot's")


def test_an_outcome_divergence_is_found_before_the_driver_is_observed(outcome_divergence: Divergence) -> None:
    assert len(outcome_divergence.history) == 3
    assert outcome_divergence.differences == [Difference("outcome", "ok", "unsupported")]
    assert outcome_divergence.driver_state is None


class OwnClockNames(ModelDriver):
    """Names an unnamed snapshot after a clock of its own, as a real system does: libvirt-test's
    ids are its names, so both differ from the model's."""

    def make_machine(self, blocks: int, *disks: Any) -> Machine:
        profile = get_profile(self.profile)
        profile.auto_name = lambda machine: f"auto-{machine.clock}"  # type: ignore[method-assign]
        return Machine(profile, blocks, *disks)


def test_an_auto_named_snapshot_is_matched_and_addressed_by_the_drivers_name(
        model_lockstep: Callable[..., Lockstep]) -> None:
    lockstep = model_lockstep("libvirt-test", OwnClockNames)
    with lockstep:
        made = lockstep.step(ops.CreateSnapshot(None))
        model_name, driver_name = made.model.created_name, made.driver.created_name
        assert model_name is not None and driver_name == f"auto-{model_name}"
        lockstep.step(ops.Write(0, "a"))
        lockstep.step(ops.CreateSnapshot("B"))
        reverted = lockstep.step(ops.Revert(model_name))
        deleted = lockstep.step(ops.Delete(model_name, flags=("children",)))
    assert reverted.driver.ok and deleted.driver.ok, "the driver got its own name for the model's"
    assert lockstep.match.names == {model_name: driver_name}
    assert lockstep.match.ids == {model_name: driver_name, "B": "B"}


class PrefixedIds(ModelDriver):
    """Lists every snapshot under an id of its own ('vm-N'), which it does not claim to observe."""

    observes = OBSERVATIONS - {"ids"}

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, (ops.Revert, ops.Delete)) and op.id is not None:
            op = dataclasses.replace(op, id=op.id.removeprefix("vm-"))
        result = super().apply(op)
        result.created_id = None if result.created_id is None else f"vm-{result.created_id}"
        return result

    def observe(self) -> dict[str, Any]:
        def vm(sid: str | None) -> str | None:
            return None if sid is None else f"vm-{sid}"

        state = super().observe()
        state["current"], state["roots"] = vm(state["current"]), [vm(r) for r in state["roots"]]
        for s in state["snapshots"]:
            s["id"], s["parent"], s["children"] = vm(s["id"]), vm(s["parent"]), [vm(c) for c in s["children"]]
        state["views"]["snapshots"] = {vm(sid): view for sid, view in state["views"]["snapshots"].items()}
        return state


BY_ID = [ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Write(1, "b"), ops.CreateSnapshot("B"),
         ops.Revert(id="1"), ops.CreateSnapshot("C"), ops.Delete(id="1"), ops.Revert(id="3")]


def test_the_drivers_own_ids_are_translated_both_ways(model_lockstep: Callable[..., Lockstep]) -> None:
    lockstep = model_lockstep("esx", PrefixedIds)
    with lockstep:
        for op in BY_ID:
            assert lockstep.step(op).driver.ok, ops.describe(op)
    assert lockstep.match.ids == {"1": "vm-1", "2": "vm-2", "3": "vm-3"}


def test_a_driver_that_observes_ids_must_give_the_models(model_lockstep: Callable[..., Lockstep],
                                                        diverge: Callable[..., Divergence]) -> None:
    class ObservedPrefixedIds(PrefixedIds):
        observes = OBSERVATIONS

    divergence = diverge(model_lockstep("esx", ObservedPrefixedIds), BY_ID)
    assert len(divergence.history) == 3
    assert divergence.differences == [Difference("the new snapshot's id", "1", "vm-1")]


def assert_same_after_pickling(divergence: Divergence) -> None:
    again = pickle.loads(pickle.dumps(divergence))
    assert type(again) is Divergence and str(again) == str(divergence)
    assert again.history == divergence.history  # operations, both outcomes, the model's state at each step
    assert (again.differences, again.driver_state) == (divergence.differences, divergence.driver_state)


def test_a_divergence_pickles_with_its_history(outcome_divergence: Divergence, mutant_check: CheckResult) -> None:
    """Workers send a divergence back pickled: a plain exception would keep only its message."""
    assert_same_after_pickling(outcome_divergence)
    assert mutant_check.divergence is not None and mutant_check.divergence.driver_state is not None
    assert_same_after_pickling(mutant_check.divergence)


def test_a_reused_id_does_not_inherit_the_name_the_system_chose_for_a_deleted_snapshot() -> None:
    """qemu reuses ids: an unnamed snapshot (named by HMP after the clock) deleted, then C takes
    its id; C must be expected under its own name (seen on qemu-hmp, seed 1)."""
    match = Correspondence()
    match.created("1", "vm-20100330201402", "1", "vm-20261207155051", auto_named=True)
    assert match.driver_name("vm-20100330201402", "1") == "vm-20261207155051"
    match.created("1", "C", "1", "C", auto_named=False)
    assert match.driver_name("C", "1") == "C"
