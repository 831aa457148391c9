"""Hypothesis properties of the model, for every profile in ``PROFILES`` (semantics.md §1).

Four properties, each a plain function that raises ``AssertionError`` (message prefixed with
the property's name) when its rule is broken; the checks live in ``model/analysis/properties.py``,
shared with ``snaptree explore``:

* ``invariant``   deleting snapshots (any delete flag, subtree deletes, delete-all, and the
                  delete inside HMP's overwriting savevm) never changes what any *other*
                  surviving snapshot or the current state reads [§1].
* ``revert``      a successful revert discards the running state's unsaved writes: the current
                  view equals the target's view; and no operation other than a delete changes
                  what an existing snapshot reads (later writes go to a fresh overlay) [§1].
* ``failed-op``   a refused operation leaves ``Machine.fingerprint()`` exactly as it was, except
                  where ``ModelError.side_effect`` is set: then the side effect must be one the
                  profile lists in ``failure_side_effects``, and nothing but the power state may
                  differ (the RAM only as a shut-off entails; the logical clock keeps its tick:
                  ``Machine.perform`` counts an operation that had an effect as applied).  One
                  side effect that changes more is checked exactly and reported as a conflict:
                  see ``REPORTED_DEVIATIONS``.
* ``well-formed`` the tree is a forest after every step: no cycles, parents exist and agree
                  with the children lists, roots have no parent, ``current`` is a snapshot or
                  None, ``by_name`` is exact, ids are unique.

The ``test_mutant_*`` tests break one rule at a time (monkeypatching the model) and assert that
the corresponding property finds a counterexample: each property fails if its rule is broken.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from snaptree.model import PROFILES, Machine, ModelError, get_profile, ops
from snaptree.model.analysis.properties import PROPERTIES, capture, check_failed_op, check_well_formed, perform_checked
from snaptree.model.disks import DEFAULT_LAYOUT, FORMATS, Disk
from snaptree.model.profiles.base import Profile
from snaptree.model.profiles.libvirt_qemu import UNSAVED_METADATA
from snaptree.model.profiles.qemu_live import FAILED_LOAD, LiveQemu, QemuHmp
from snaptree.model.profiles.vbox import VBox

PROFILE_NAMES = list(PROFILES)
DISK_PROFILES = [name for name in PROFILE_NAMES if PROFILES[name].disk]  # where a lost or kept write can show
BLOCKS = 4  # a small disk, so that writes collide and overlays overlap

LONG_ASCII = "n" * 300  # over qcow2's 255-byte limit [§4 Names]
LONG_UTF8 = "é" * 200  # 400 bytes: the 255-byte cut falls inside a character
NAME_POOL = (
    "A", "B", "C", "A", "B",  # a small pool, so that duplicate names happen often
    "1", "2",  # qemu-img -a tries these as ids first [§4]
    "", "two words", "ünï名", LONG_ASCII, LONG_UTF8,
    "bad/name", ".hidden",  # refused by libvirt's QEMU driver [§7]
    'say "hi"',  # HMP savevm cannot take it; libvirt-qemu lists it anyway (a phantom)
    "00000000-0000-4000-8000-000000000001",  # a UUID: vbox looks it up as an id [§3]
)
UNKNOWN_FLAG = "no-such-flag"
MISSING_ID = "999"

FAST = settings(max_examples=45, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# mutants: we only need a counterexample, not a minimal one
HUNT = settings(max_examples=2000, deadline=None, database=None, report_multiple_bugs=False,
                phases=[Phase.generate], suppress_health_check=list(HealthCheck))


# -- generating operations ------------------------------------------------------------------
# Strategies are built once (building them on every step costs more than the model itself).

# Hypothesis favours the first and last elements of a choice: rare choices go in the middle.
KIND = st.sampled_from(["write"] * 2 + ["grow"] * 3 + ["power"] * 2 + ["revert"] * 2 + ["delete-all"] + ["delete"] * 4
                       + ["branch"] * 3 + ["create"] * 2 + ["redefine"])
TARGET = st.sampled_from(["existing-name"] * 3 + ["pool", "busiest", "none", "busiest"] + ["existing-id"] * 3)
POOL_NAME = st.sampled_from(NAME_POOL)
CREATE_NAME = st.sampled_from(NAME_POOL[:5] + (None,) + NAME_POOL[5:])  # None: the profile's automatic name
BLOCK = st.sampled_from(list(range(BLOCKS)) * 3 + [-1, BLOCKS])  # now and then outside the disk
VALUE = st.sampled_from(["p", "q", "r", "s", "t", ""])
POWER = st.sampled_from(ops.POWER_OPS)
MEMORY = st.sampled_from([None, True, None, False, None])  # None: the profile's default


@cache
def _index(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


@cache
def _flag_strategy(allowed: frozenset[str]) -> st.SearchStrategy[tuple[str, ...]]:
    """No flag, one of the profile's flags, a combination of them, now and then an unknown one."""
    choices = sorted(allowed)
    singles = [(flag,) for flag in choices]
    combos = [combo for size in (2, 3) for combo in combinations(choices, size)][:3]
    entries = [()] * 4 + singles * max(2, 6 // max(1, len(singles))) + [(UNKNOWN_FLAG,)] + combos + [()]
    return st.sampled_from(entries)


@cache
def _mode_strategy(modes: frozenset[str]) -> st.SearchStrategy[str]:
    """Mostly the disk's default (""), else one of the profile's per-disk modes."""
    return st.sampled_from(["", "", *sorted(modes), ""])


@cache
def two_disk_layouts(profile: Profile) -> st.SearchStrategy[tuple[Disk, ...]]:
    """vda and a vdb of any format and of any mode the profile knows, where the profile can have it."""
    second = st.builds(Disk, st.just("vdb"), st.sampled_from(FORMATS), st.just("disk"),
                       st.sampled_from(sorted(profile.disk_modes)))
    return second.map(lambda disk: (Disk("vda"), disk)).filter(lambda layout: profile.layout_problem(layout) is None)


def _pick(data: st.DataObject, items: list[str], label: str) -> str:
    return items[data.draw(_index(len(items)), label=label)]


def draw_ops(data: st.DataObject, m: Machine) -> list[ops.Operation]:
    """The next operation, drawn with the machine's current snapshots in view; or a short run
    of them that grows the tree: ``grow`` (write, snapshot) and ``branch`` (revert to an
    existing snapshot, write, snapshot), so that snapshots with several dependants are common."""
    profile = m.profile
    kind = data.draw(KIND, label="kind")

    def target() -> dict[str, Any]:
        how = data.draw(TARGET, label="target")
        if how == "existing-name" and m.snapshots:
            return {"ref": _pick(data, [s.name for s in m.snapshots.values()], "existing name")}
        if how == "existing-id":
            ids = list(m.snapshots)
            return {"id": _pick(data, ids[: len(ids) // 2] + [MISSING_ID] + ids[len(ids) // 2:], "id")}
        if how == "none":
            return {}
        if how == "busiest" and m.snapshots:  # the snapshot with the most dependants (children, running state)
            busiest = max(m.snapshots.values(), key=lambda s: len(s.children) + (s is m.current))
            return {"id": busiest.id}
        return {"ref": data.draw(POOL_NAME, label="pool name")}

    def write() -> ops.Write:
        disk = None if len(m.disks) == 1 else _pick(data, [d.name for d in m.disks], "disk")
        return ops.Write(data.draw(BLOCK, label="block"), data.draw(VALUE, label="value"), disk)

    def create() -> ops.CreateSnapshot:
        modes: tuple[tuple[str, str], ...] = ()
        if len(m.disks) > 1 and profile.create_disk_modes:
            modes = tuple((disk.name, mode) for disk in m.disks
                          if (mode := data.draw(_mode_strategy(profile.create_disk_modes), label="mode")))
        return ops.CreateSnapshot(name=data.draw(CREATE_NAME, label="name"), memory=data.draw(MEMORY, label="memory"),
                                  flags=data.draw(_flag_strategy(profile.create_flags), label="create flags"),
                                  disks=modes)

    if kind == "write":
        return [write()]
    if kind == "power":
        return [data.draw(POWER, label="power")()]
    if kind == "create":
        return [create()]
    if kind == "branch" and m.snapshots:
        return [ops.Revert(id=_pick(data, list(m.snapshots), "branch from")), write(), create()]
    if kind in ("grow", "branch"):
        return [write(), create()]
    if kind == "revert":
        return [ops.Revert(**target(), flags=data.draw(_flag_strategy(profile.revert_flags), label="revert flags"))]
    if kind == "delete":
        return [ops.Delete(**target(), flags=data.draw(_flag_strategy(profile.delete_flags), label="delete flags"))]
    if kind == "redefine":  # libvirt's metadata operations; every other profile refuses them
        names = [s.name for s in m.snapshots.values()]
        return [ops.Redefine(name=_pick(data, [*names, *NAME_POOL[:3]], "redefined"),
                             parent=_pick(data, [None, "", *names, "missing"], "parent"),
                             state=_pick(data, [None, "running", "paused", "shutoff", "disk-snapshot"], "state"),
                             memory=_pick(data, [None, True, False], "memory"),
                             flags=_pick(data, [(), ("current",), ("halt",)], "redefine flags"))]
    return [ops.DeleteAll()]


def exercise(profile_name: str, data: st.DataObject, props: frozenset[str] | set[str], max_steps: int = 30,
             disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> None:
    m = Machine(get_profile(profile_name), BLOCKS, disks)
    for _ in range(data.draw(st.integers(0, max_steps), label="length")):
        for op in draw_ops(data, m):
            perform_checked(m, op, props)


def hunt(profile_name: str, prop: str) -> None:
    """Run the property under HUNT settings (for the mutant tests)."""

    @HUNT
    @given(data=st.data())
    def inner(data: st.DataObject) -> None:
        exercise(profile_name, data, {prop})

    inner()


# -- the properties, every profile ------------------------------------------------------------

@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
@FAST
@given(data=st.data())
def test_delete_never_changes_other_points_in_time(profile_name: str, data: st.DataObject) -> None:
    """semantics.md §1: deleting X never changes what any other snapshot or the current state reads."""
    exercise(profile_name, data, {"invariant"})


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
@FAST
@given(data=st.data())
def test_revert_discards_unsaved_writes_and_later_writes_touch_no_snapshot(profile_name: str,
                                                                            data: st.DataObject) -> None:
    """semantics.md §1: reverting throws away overlay 3; later writes go to a fresh overlay."""
    exercise(profile_name, data, {"revert"})


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
@FAST
@given(data=st.data())
def test_failed_operation_changes_nothing_but_a_declared_side_effect(profile_name: str,
                                                                     data: st.DataObject) -> None:
    """ModelError: without side_effect a failed operation leaves the state exactly as it was."""
    exercise(profile_name, data, {"failed-op"})


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
@FAST
@given(data=st.data())
def test_tree_stays_well_formed(profile_name: str, data: st.DataObject) -> None:
    exercise(profile_name, data, {"well-formed"})


TWO_DISK_PROFILES = [name for name in PROFILE_NAMES if not PROFILES[name].single_disk]


@pytest.mark.parametrize("profile_name", TWO_DISK_PROFILES)
@FAST
@given(data=st.data())
def test_every_property_holds_per_disk_on_a_vm_of_two_disks(profile_name: str, data: st.DataObject) -> None:
    """semantics.md §1 on every disk: a delete changes no other point in time on either disk, a
    revert restores what its target recorded and leaves a disk it left out as it reads, a
    refused operation leaves both disks as they were."""
    layout = data.draw(two_disk_layouts(get_profile(profile_name)), label="layout")
    exercise(profile_name, data, set(PROPERTIES), disks=layout)


def test_a_revert_that_skips_the_second_disk_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutant: the revert restores only the first disk; the revert property finds it."""
    def first_disk_only(m: Machine, node: Any, keep: Any = None) -> None:
        kept = m.on_disks(m.view(None), tuple(range(1, len(m.disks))))
        m.current, m.overlay = node, {}
        for address in m.on_disks(m.view_unfiltered(node), tuple(range(1, len(m.disks)))):
            m.overlay[address] = ""
        m.overlay.update(kept)
    monkeypatch.setattr(Machine, "restore", first_disk_only)
    with pytest.raises(AssertionError, match="revert"):
        hunt_two_disks("esx", "revert")


def test_a_delete_that_merges_only_the_first_disk_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutant: a delete merges only the first disk's blocks into the children."""
    original = Machine.remove

    def first_disk_only(m: Machine, node: Any, children_last: bool = False) -> None:
        node.delta = {a: v for a, v in node.delta.items() if a < m.blocks}
        original(m, node, children_last)
    monkeypatch.setattr(Machine, "remove", first_disk_only)
    with pytest.raises(AssertionError, match="invariant"):
        hunt_two_disks("esx", "invariant")


def test_an_excluded_disk_that_gets_reverted_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutant: a revert also rolls back a disk the snapshot left out."""
    original = Machine.restore
    monkeypatch.setattr(Machine, "restore", lambda m, node, keep=None: original(m, node, ()))
    with pytest.raises(AssertionError, match="revert"):
        hunt_two_disks("libvirt-test", "revert", Disk("vdb", mode="no"))


PLAIN_SECOND = Disk("vdb")


def hunt_two_disks(profile_name: str, prop: str, second: Disk = PLAIN_SECOND) -> None:
    @HUNT
    @given(data=st.data())
    def inner(data: st.DataObject) -> None:
        exercise(profile_name, data, {prop}, disks=(Disk("vda"), second))

    inner()


def _preorder_path(m: Machine, node: Any) -> list[int]:
    """The definition of pre-order position: the sibling index at every level from the root."""
    path = []
    while node.parent is not None:
        path.append(node.parent.children.index(node))
        node = node.parent
    return [m.roots.index(node), *reversed(path)]


@pytest.mark.parametrize("profile_name", PROFILE_NAMES)
@FAST
@given(data=st.data())
def test_shortcuts_agree_with_their_definitions(profile_name: str, data: st.DataObject) -> None:
    """Machine.views() (each view from its parent's) is view() per snapshot, and
    first_in_preorder (one walk to the first candidate) is the candidate of least pre-order
    path: the linear forms for deep trees change nothing."""
    m = Machine(get_profile(profile_name), blocks=BLOCKS)
    for _ in range(data.draw(st.integers(0, 30), label="length")):
        for op in draw_ops(data, m):
            perform_checked(m, op, frozenset())
        assert m.views() == {s.id: m.view(s) for s in m.snapshots.values()}
        if m.snapshots:
            candidates = data.draw(st.lists(st.sampled_from(list(m.snapshots.values())), min_size=1, unique_by=id),
                                   label="candidates")
            assert m.first_in_preorder(candidates) is min(candidates, key=lambda s: _preorder_path(m, s))


# -- the checks themselves, on fixed examples -------------------------------------------------

def test_side_effect_exemption_accepts_qemu_failed_loadvm() -> None:
    """semantics.md §5 loadvm: a failed load of a running VM leaves it stopped; the failed-op
    check accepts exactly that (power running -> paused, nothing else)."""
    m = Machine(get_profile("qemu-hmp"), blocks=BLOCKS)
    for op in (ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("s"), ops.Write(1, "b")):
        perform_checked(m, op, set(PROPERTIES))
    before = capture(m)
    with pytest.raises(ModelError) as caught:
        m.perform(ops.Revert("missing"))
    assert caught.value.side_effect == FAILED_LOAD
    assert (before.power, m.power) == ("running", "paused")
    check_failed_op(m, ops.Revert("missing"), before, caught.value)
    check_well_formed(m)


def test_side_effect_exemption_is_precise() -> None:
    """The exemption covers the power state only: the same failure with any other change, or with
    a side effect the profile does not list, is caught."""
    m = Machine(get_profile("qemu-hmp"), blocks=BLOCKS)
    for op in (ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("s"), ops.Write(1, "b")):
        m.perform(op)
    before = capture(m)
    error = pytest.raises(ModelError, m.perform, ops.Revert("missing")).value
    m.overlay[2] = "sneaked in"
    with pytest.raises(AssertionError, match="more than the power state"):
        check_failed_op(m, ops.Revert("missing"), before, error)
    del m.overlay[2]
    check_failed_op(m, ops.Revert("missing"), before, error)
    ram = m.ram
    m.ram = "another image"  # paused, not shut off: the RAM must be untouched
    with pytest.raises(AssertionError, match="more than the power state"):
        check_failed_op(m, ops.Revert("missing"), before, error)
    m.ram = ram
    m.clock += 1
    with pytest.raises(AssertionError, match="clock"):
        check_failed_op(m, ops.Revert("missing"), before, error)
    m.clock -= 1
    error.side_effect = "something else"
    with pytest.raises(AssertionError, match="does not list"):
        check_failed_op(m, ops.Revert("missing"), before, error)
    error.side_effect = None
    with pytest.raises(AssertionError, match="changed the state"):
        check_failed_op(m, ops.Revert("missing"), before, error)


def test_side_effect_exemption_accepts_a_failed_load_that_shuts_off() -> None:
    """A failed revert whose declared side effect shuts the VM off (libvirt-qemu, a snapshot HMP never
    took: see model/profiles/libvirt_qemu.py) may drop the RAM with the power, and nothing else."""
    m = Machine(get_profile("libvirt-qemu"), blocks=BLOCKS)
    for op in (ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot('say "hi"'), ops.Write(1, "b")):
        assert perform_checked(m, op, set(PROPERTIES))
    before = capture(m)
    try:
        m.perform(ops.Revert('say "hi"'))
    except ModelError as error:
        assert error.side_effect in m.profile.failure_side_effects
        assert (m.power, m.ram) == ("shutoff", None)
        check_failed_op(m, ops.Revert('say "hi"'), before, error)
        check_well_formed(m)
    else:
        pytest.skip("libvirt-qemu no longer models a failed load of this snapshot")


UNSAVED_METADATA_REPRO = [ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Write(1, "b"),
                          ops.CreateSnapshot("n" * 300)]


def test_unsaved_metadata_deviation_is_checked_exactly() -> None:
    """The reported deviation is accepted only as it is: current dropped, same reads, nothing else."""
    m = Machine(get_profile("libvirt-qemu"), blocks=BLOCKS)
    for op in UNSAVED_METADATA_REPRO[:-1]:
        m.perform(op)
    before = capture(m)
    error = pytest.raises(ModelError, m.perform, UNSAVED_METADATA_REPRO[-1]).value
    assert error.side_effect == UNSAVED_METADATA
    check_failed_op(m, UNSAVED_METADATA_REPRO[-1], before, error)
    m.snapshots["A"].delta[3] = "sneaked in"
    with pytest.raises(AssertionError, match="more than the current pointer"):
        check_failed_op(m, UNSAVED_METADATA_REPRO[-1], before, error)
    del m.snapshots["A"].delta[3]
    m.power = "paused"
    with pytest.raises(AssertionError, match="more than the current pointer"):
        check_failed_op(m, UNSAVED_METADATA_REPRO[-1], before, error)


def test_declared_side_effects() -> None:
    """Both live QEMU profiles declare the failed load (§5 loadvm); a declaration is a sentence."""
    assert FAILED_LOAD in PROFILES["qemu-hmp"].failure_side_effects
    assert FAILED_LOAD in PROFILES["qemu-qmp"].failure_side_effects
    for cls in PROFILES.values():
        assert all(isinstance(effect, str) and effect for effect in cls.failure_side_effects)
    assert not PROFILES["esx"].failure_side_effects and not PROFILES["qemu-img"].failure_side_effects


def test_seed_delete_b_keeps_every_other_view() -> None:
    """The seed's picture (§1): delete B with children C and D and current on C."""
    m = Machine(get_profile("esx"), blocks=8)
    for op in (ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Write(1, "b"), ops.CreateSnapshot("B"),
               ops.Write(4, "d"), ops.CreateSnapshot("D"), ops.Revert("B"), ops.Write(2, "c"),
               ops.CreateSnapshot("C"), ops.Write(3, "x"), ops.Delete("B")):
        assert perform_checked(m, op, set(PROPERTIES))
    assert sorted(s.name for s in m.snapshots.values()) == ["A", "C", "D"]


# -- mutants: each property must fail if its rule is broken -----------------------------------

_original_remove = Machine.remove


def _unlink(m: Machine, node: Any, children_last: bool, reparent: bool = True, index_names: bool = True) -> None:
    """Machine.remove's bookkeeping without the merge (re-parenting optional)."""
    siblings = node.parent.children if node.parent is not None else m.roots
    at = siblings.index(node)
    siblings[at: at + 1] = [] if children_last else node.children
    if children_last:
        siblings.extend(node.children)
    if reparent:
        for child in node.children:
            child.parent = node.parent
    if m.current is node:
        m.current = node.parent
    del m.snapshots[node.id]
    if index_names:
        same = m.by_name[node.name]
        same.remove(node)
        if not same:
            del m.by_name[node.name]


def remove_discarding_delta(self: Machine, node: Any, children_last: bool = False) -> None:
    """Broken: the removed snapshot's overlay is thrown away instead of merged."""
    _unlink(self, node, children_last)


def remove_merging_into_first_child_only(self: Machine, node: Any, children_last: bool = False) -> None:
    """Broken: `qemu-img commit` of a layer with several dependants (§6: wrong)."""
    if node.children:
        for block, value in node.delta.items():
            node.children[0].delta.setdefault(block, value)
    elif self.current is node:
        for block, value in node.delta.items():
            self.overlay.setdefault(block, value)
    _unlink(self, node, children_last)


def remove_without_reparenting(self: Machine, node: Any, children_last: bool = False) -> None:
    """Broken: the children move into the grandparent's list but keep pointing at the removed node."""
    for child in node.children:
        for block, value in node.delta.items():
            child.delta.setdefault(block, value)
    if self.current is node:
        for block, value in node.delta.items():
            self.overlay.setdefault(block, value)
    _unlink(self, node, children_last, reparent=False)


def remove_forgetting_name_index(self: Machine, node: Any, children_last: bool = False) -> None:
    """Broken: by_name keeps the removed snapshot."""
    for child in node.children:
        for block, value in node.delta.items():
            child.delta.setdefault(block, value)
    if self.current is node:
        for block, value in node.delta.items():
            self.overlay.setdefault(block, value)
    _unlink(self, node, children_last, index_names=False)


def restore_keeping_overlay(self: Machine, node: Any) -> None:
    """Broken: the revert keeps the running state's unsaved writes."""
    self.current = node


def write_into_current_snapshot(self: Machine, block: int, value: str) -> None:
    """Broken: a write lands in the current snapshot's own overlay."""
    (self.current.delta if self.current is not None else self.overlay)[block] = value


_original_take = Machine.take


def take_sharing_overlay(self: Machine, *args: Any, **kwargs: Any) -> Any:
    """Broken: after a snapshot the running state keeps writing into the snapshot's overlay."""
    node = _original_take(self, *args, **kwargs)
    self.overlay = node.delta
    return node


@pytest.mark.parametrize("profile_name", DISK_PROFILES)
def test_mutant_remove_discarding_delta_breaks_invariant(profile_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Machine, "remove", remove_discarding_delta)
    with pytest.raises(AssertionError, match="^invariant"):
        hunt(profile_name, "invariant")


@pytest.mark.parametrize("profile_name", ["esx", "libvirt-test", "libvirt-qemu", "qemu-img", "proposal-2010"])
def test_mutant_merge_into_one_child_breaks_invariant(profile_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """§6: committing a layer into one of several dependants changes what the others read."""
    monkeypatch.setattr(Machine, "remove", remove_merging_into_first_child_only)
    with pytest.raises(AssertionError, match="^invariant"):
        hunt(profile_name, "invariant")


@pytest.mark.parametrize("profile_name", DISK_PROFILES)
def test_mutant_restore_keeping_overlay_breaks_revert(profile_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Machine, "restore", restore_keeping_overlay)
    with pytest.raises(AssertionError, match="^revert"):
        hunt(profile_name, "revert")


@pytest.mark.parametrize("profile_name", ["esx", "vbox", "qemu-hmp", "libvirt-test"])
@pytest.mark.parametrize("mutant", [("write", write_into_current_snapshot), ("take", take_sharing_overlay)],
                         ids=["write-into-snapshot", "take-sharing-overlay"])
def test_mutant_later_writes_change_a_snapshot_break_revert(profile_name: str, mutant: tuple[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Machine, *mutant)
    with pytest.raises(AssertionError, match="^revert"):
        hunt(profile_name, "revert")


_original_vbox_check_delete = VBox.check_delete
_original_live_revert = LiveQemu.revert


def vbox_check_delete_moving_current(self: VBox, m: Machine, target: Any, flags: frozenset[str]) -> None:
    """Broken: VirtualBox's refusal (§3: two children, or current with a child) comes after
    the check moved ``current``."""
    m.current = target.parent
    _original_vbox_check_delete(self, m, target, flags)


def live_revert_dropping_ram(self: LiveQemu, m: Machine, op: ops.Revert) -> None:
    """Broken: a failed loadvm with its declared side effect also drops the RAM."""
    try:
        _original_live_revert(self, m, op)
    except ModelError as error:
        if error.side_effect:
            m.ram = None
        raise


def take_forgetting_children(self: Machine, *args: Any, **kwargs: Any) -> Any:
    """Broken: a new snapshot is not listed among its parent's children."""
    node = _original_take(self, *args, **kwargs)
    siblings = node.parent.children if node.parent is not None else self.roots
    siblings.remove(node)
    return node


def test_mutant_vbox_check_that_moves_current_breaks_failed_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VBox, "check_delete", vbox_check_delete_moving_current)
    with pytest.raises(AssertionError, match="^failed-op"):
        hunt("vbox", "failed-op")


@pytest.mark.parametrize("profile_name", ["esx", "qemu-img", "libvirt-test", "libvirt-qemu", "proposal-2010"])
def test_mutant_lookup_that_drops_current_breaks_failed_op(profile_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Profile.resolve clears the current pointer before it looks: a not-found then changed state."""
    original = Profile.resolve

    def resolve(self: Profile, m: Machine, op: Any, purpose: str) -> Any:
        m.current = None
        return original(self, m, op, purpose)

    monkeypatch.setattr(Profile, "resolve", resolve)
    with pytest.raises(AssertionError, match="^failed-op"):
        hunt(profile_name, "failed-op")


def test_mutant_undeclared_side_effect_breaks_failed_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exemption holds only for side effects the profile lists."""
    monkeypatch.setattr(QemuHmp, "failure_side_effects", frozenset())
    with pytest.raises(AssertionError, match="^failed-op.*does not list"):
        hunt("qemu-hmp", "failed-op")


def test_mutant_side_effect_beyond_power_breaks_failed_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveQemu, "revert", live_revert_dropping_ram)
    with pytest.raises(AssertionError, match="^failed-op.*more than the power state"):
        hunt("qemu-hmp", "failed-op")


@pytest.mark.parametrize("profile_name", ["esx", "vbox", "qemu-img", "libvirt-test"])
@pytest.mark.parametrize("mutant", [remove_without_reparenting, remove_forgetting_name_index],
                         ids=["no-reparent", "stale-by-name"])
def test_mutant_remove_bookkeeping_breaks_well_formed(profile_name: str, mutant: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Machine, "remove", mutant)
    with pytest.raises(AssertionError, match="^well-formed"):
        hunt(profile_name, "well-formed")


def test_mutant_take_forgetting_children_breaks_well_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Machine, "take", take_forgetting_children)
    with pytest.raises(AssertionError, match="^well-formed"):
        hunt("esx", "well-formed")
