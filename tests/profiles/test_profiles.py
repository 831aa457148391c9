"""Targeted tests of each profile's rules against the rows of scenarios/semantics.md.

Every test's docstring cites the row it checks (section and operation).  Messages are compared
exactly where the sheet quotes the vendor's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from snaptree.model import PROFILES, ErrorKind, Machine, ModelError, Snapshot, get_profile, ops
from snaptree.model.observe import observe
from snaptree.model.profiles.qemu_live import FAILED_LOAD

W, C, R, D = ops.Write, ops.CreateSnapshot, ops.Revert, ops.Delete


def machine(profile: str, steps: Iterable[ops.Operation] = (), blocks: int = 8) -> Machine:
    m = Machine(get_profile(profile), blocks)
    for op in steps:
        m.perform(op)
    return m


def refused(m: Machine, op: ops.Operation, kind: ErrorKind, message: str | None = None) -> ModelError:
    """``op`` fails with this kind (and exact message), and changes nothing."""
    before = m.fingerprint()
    with pytest.raises(ModelError) as caught:
        m.perform(op)
    error = caught.value
    assert error.kind == kind, error
    if message is not None:
        assert error.message == message
    assert error.side_effect is None
    assert m.fingerprint() == before
    return error


def snap(m: Machine, name: str) -> Snapshot:
    found = m.named(name)
    assert len(found) == 1, f"{name!r}: {found}"
    return found[0]


def names(m: Machine) -> list[str]:
    return [s.name for s in m.snapshots.values()]


def parent_name(s: Snapshot) -> str | None:
    return s.parent.name if s.parent is not None else None


# A tree where depth-first pre-order and creation order disagree on the duplicate name "s":
# A(1) -> B(2) -> s(4), and A -> s(3).  Pre-order meets id 4 first, table order id 3.
INVERTED_DUPLICATES = [W(0, "a"), C("A"), W(1, "b"), C("B"), R("A"), W(2, "s3"), C("s"),
                       R("B"), W(3, "s4"), C("s")]


def test_profile_registry_has_every_profile() -> None:
    """semantics.md §2-§8: one profile per system studied."""
    assert list(PROFILES) == ["esx", "vbox", "qemu-img", "qemu-hmp", "qemu-qmp", "libvirt-test", "libvirt-qemu",
                              "libvirt-qemu-11.3", "proposal-2010", "vcsim", "libvirt-esx"]
    for name, cls in PROFILES.items():
        assert cls.name == name and cls.system and cls.summary


def test_get_profile_unknown_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown profile 'hyperv'.*esx"):
        get_profile("hyperv")


# -- ESX [§2] ---------------------------------------------------------------------------------

def test_esx_ids_from_a_counter_never_reused() -> None:
    """§2 CreateSnapshot_Task: ids from a per-VM counter, never reused (numbered from 1); vcsim
    [seen]: ids never reused, even after RemoveAll."""
    m = machine("esx", [C("A"), C("B")])
    assert [s.id for s in m.snapshots.values()] == ["1", "2"]
    m.perform(D("B"))
    assert m.perform(C("C")).id == "3"
    m.perform(ops.DeleteAll())
    assert m.perform(C("D")).id == "4"


def test_esx_duplicate_names_allowed() -> None:
    """§2 CreateSnapshot_Task: names need not be unique; vcsim [seen]: duplicates get ids 2 and 3."""
    m = machine("esx", [C("x"), C("s"), C("s")])
    assert [(s.name, s.id) for s in m.snapshots.values()] == [("x", "1"), ("s", "2"), ("s", "3")]
    assert parent_name(m.snapshots["3"]) == "s" and m.current is m.snapshots["3"]


def test_esx_lookup_by_name_is_preorder_first_match() -> None:
    """§2 Lookup by name (libvirt's ESX driver): depth-first, pre-order, first match."""
    m = machine("esx", INVERTED_DUPLICATES)
    m.perform(R("s"))
    assert m.current.id == "4"
    assert m.view(None) == {0: "a", 1: "b", 3: "s4"}


def test_esx_disk_only_snapshot_of_running_vm_is_powered_off() -> None:
    """§2 Create, power states: with memory=false the snapshot's state is poweredOff, even for a
    running VM; §2 RevertToSnapshot_Task: a snapshot without memory comes back powered off."""
    m = machine("esx", [ops.Start(), C("disk", memory=False), C("mem")])
    assert (snap(m, "disk").state, snap(m, "disk").memory) == ("shutoff", None)
    assert snap(m, "mem").state == "running" and snap(m, "mem").memory is not None
    m.perform(R("disk"))
    assert (m.power, m.ram) == ("shutoff", None)
    assert m.current is snap(m, "disk")


def test_esx_revert_to_memory_snapshot_powers_on_or_stays_off_with_suppress() -> None:
    """§2 RevertToSnapshot_Task: a snapshot with memory of a powered-on VM comes back powered on;
    suppressPowerOn=true keeps it off."""
    m = machine("esx", [ops.Start(), C("mem"), ops.Shutdown()])
    m.perform(R("mem"))
    assert m.power == "running" and m.ram == snap(m, "mem").memory
    m.perform(ops.Shutdown())
    m.perform(R("mem", flags=("suppress-power-on",)))
    assert m.power == "suspended" and m.ram == snap(m, "mem").memory


def test_esx_revert_to_current_snapshot() -> None:
    """§2 RevertToCurrentSnapshot_Task: same as reverting to the current snapshot."""
    m = machine("esx", [W(0, "a"), C("A"), W(0, "lost"), W(1, "lost")])
    m.perform(R())
    assert m.current is snap(m, "A") and m.view(None) == {0: "a"}


def test_esx_remove_current_makes_parent_current_and_keeps_views() -> None:
    """§2 RemoveSnapshot_Task(removeChildren=false): allowed on the current snapshot, whose parent
    then becomes current; every other point in time and the current state read the same."""
    m = machine("esx", [W(0, "a"), C("A"), W(1, "b"), C("B"), W(2, "c")])
    m.perform(D("B"))
    assert m.current is snap(m, "A") and names(m) == ["A"]
    assert m.view(None) == {0: "a", 1: "b", 2: "c"}
    assert m.view(snap(m, "A")) == {0: "a"}


def test_esx_remove_root_leaves_several_roots() -> None:
    """§2 RemoveSnapshot_Task: children re-parented to its parent; removing a root leaves several roots."""
    m = machine("esx", [W(0, "r"), C("R"), W(1, "x"), C("X"), R("R"), W(2, "y"), C("Y")])
    m.perform(D("R"))
    assert [r.name for r in m.roots] == ["X", "Y"]
    assert m.view(snap(m, "X")) == {0: "r", 1: "x"} and m.view(snap(m, "Y")) == {0: "r", 2: "y"}


def test_esx_remove_children_current_inside_subtree() -> None:
    """§2 RemoveSnapshot_Task(removeChildren=true): removes the subtree, preserves the current
    state; the nearest surviving ancestor becomes current."""
    m = machine("esx", [W(0, "a"), C("A"), W(1, "b"), C("B"), W(2, "c"), C("C"), W(3, "d")])
    current_view = m.view(None)
    m.perform(D("B", flags=("remove-children",)))
    assert names(m) == ["A"] and m.current is snap(m, "A")
    assert m.view(None) == current_view


def test_esx_remove_all_keeps_current_state_and_succeeds_empty() -> None:
    """§2 RemoveAllSnapshots_Task: removes every snapshot; the current state is kept as the disk;
    succeeds with no snapshots."""
    m = machine("esx", [W(0, "a"), C("A"), W(1, "b"), C("B"), R("A"), W(2, "c")])
    m.perform(ops.DeleteAll())
    assert not m.snapshots and not m.roots and m.current is None and not m.by_name
    assert m.view(None) == {0: "a", 2: "c"}
    m.perform(ops.DeleteAll())


def test_esx_refuses_unknown_names_and_flags() -> None:
    """§2 libvirt ESX driver: lookup failure (libvirt esx_vi.c's text); flags outside the API."""
    m = machine("esx", [C("A")])
    refused(m, D("nope"), ErrorKind.NOT_FOUND, "Could not find snapshot with name 'nope'")
    refused(m, D("A", flags=("children-only",)), ErrorKind.INVALID_ARGUMENT)


# -- VirtualBox [§3] ----------------------------------------------------------------------------

VM_CANNOT = "Snapshot 'A' of the machine 'vm' cannot be deleted, because it"


def test_vbox_refuses_delete_with_two_children() -> None:
    """§3 deleteSnapshot with more than one child: refused with VirtualBox's message."""
    m = machine("vbox", [C("A"), C("B"), R("A"), C("C")])
    refused(m, D("A"), ErrorKind.HAS_CHILDREN,
            f"{VM_CANNOT} has 2 child snapshots, which is more than the one snapshot allowed for deletion")


def test_vbox_refuses_delete_of_current_with_a_child() -> None:
    """§3 deleteSnapshot of the current snapshot that has a child: the current state counts as its
    second child."""
    m = machine("vbox", [C("A"), C("B"), R("A")])
    refused(m, D("A"), ErrorKind.HAS_CHILDREN, f"{VM_CANNOT} is the current snapshot and has one child snapshot")


def test_vbox_delete_allowed_online_merges_into_the_one_child() -> None:
    """§3 deleteSnapshot, allowed cases: allowed while Running (online delete since 3.2); the one
    child absorbs the differences; children move to the parent."""
    m = machine("vbox", [W(0, "a"), C("A"), W(1, "b"), C("B"), W(2, "c"), C("C"), ops.Start()])
    m.perform(D("B"))
    assert parent_name(snap(m, "C")) == "A" and m.view(snap(m, "C")) == {0: "a", 1: "b", 2: "c"}
    assert m.power == "running"


def test_vbox_delete_current_leaf_makes_parent_current() -> None:
    """§3 deleteSnapshot, allowed cases: a deleted current snapshot makes its parent current."""
    m = machine("vbox", [W(0, "a"), C("A"), W(1, "b"), C("B"), W(2, "c")])
    m.perform(D("B"))
    assert m.current is snap(m, "A") and m.view(None) == {0: "a", 1: "b", 2: "c"}


def test_vbox_delete_and_all_children_not_implemented() -> None:
    """§3 deleteSnapshotAndAllChildren: E_NOTIMPL."""
    m = machine("vbox", [C("A"), C("B")])
    refused(m, D("A", flags=("and-all-children",)), ErrorKind.UNSUPPORTED)


@pytest.mark.parametrize("power_ops, state", [([ops.Start()], "Running"), ([ops.Start(), ops.Pause()], "Paused")])
def test_vbox_restore_refused_while_online(power_ops: list[ops.Operation], state: str) -> None:
    """§3 restoreSnapshot: refused while running (the model refuses Paused too)."""
    m = machine("vbox", [C("A"), *power_ops])
    refused(m, R("A"), ErrorKind.INVALID_STATE,
            f"Cannot delete the current state of the running machine (machine state: {state})")


def test_vbox_restore_of_running_snapshot_leaves_machine_saved() -> None:
    """§3 restoreSnapshot: a snapshot taken while running leaves the machine Saved (not running),
    with its memory; otherwise PoweredOff."""
    m = machine("vbox", [C("off"), ops.Start(), C("on"), ops.Shutdown()])
    m.perform(R("on"))
    assert (m.power, m.ram) == ("saved", snap(m, "on").memory)
    m.perform(R("off"))
    assert (m.power, m.ram) == ("shutoff", None)
    m.perform(R("on"))
    m.perform(ops.Start())  # launchVMProcess restores the Saved state
    assert (m.power, m.ram) == ("running", snap(m, "on").memory)


def test_vbox_duplicate_names_get_fresh_uuids_and_preorder_lookup() -> None:
    """§3 takeSnapshot: no uniqueness check, every snapshot gets a fresh UUID; §3 findSnapshot:
    depth-first, pre-order, first match."""
    m = machine("vbox", INVERTED_DUPLICATES)
    ids = [s.id for s in m.named("s")]
    assert len(set(m.snapshots)) == 4 and all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)
    m.perform(R("s"))
    assert m.current is m.named("s")[1]  # created second, met first in pre-order


def test_vbox_take_snapshot_online_includes_memory() -> None:
    """§3 takeSnapshot: a running VM's snapshot includes its saved state; live needs Running."""
    m = machine("vbox", [ops.Start(), C("on")])
    assert snap(m, "on").memory is not None and snap(m, "on").state == "running"
    refused(m, C("disk", memory=False), ErrorKind.UNSUPPORTED)
    m.perform(ops.Pause())
    refused(m, C("live", flags=("live",)), ErrorKind.INVALID_STATE,
            "Cannot take a live snapshot of a virtual machine unless it is running.")


def test_vbox_not_found_messages() -> None:
    """§3 findSnapshot: a missing name, and a machine without snapshots."""
    m = machine("vbox")
    refused(m, D("A"), ErrorKind.NOT_FOUND, "This machine does not have any snapshots")
    m.perform(C("A"))
    refused(m, R("B"), ErrorKind.NOT_FOUND, "Could not find a snapshot named 'B'")


# -- qemu-img [§4] ----------------------------------------------------------------------------

def test_qemu_img_create_same_name_twice() -> None:
    """§4 `qemu-img snapshot -c NAME` twice: two entries, ID 1 and ID 2, both named NAME."""
    m = machine("qemu-img", [C("s"), C("s")])
    assert [(s.id, s.name) for s in m.snapshots.values()] == [("1", "s"), ("2", "s")]


def test_qemu_img_new_id_is_highest_plus_one() -> None:
    """§4 New snapshot ID: highest existing numeric ID + 1, so deleted IDs are reused."""
    m = machine("qemu-img", [C("a"), C("b"), C("c")])
    m.perform(D("c"))
    assert m.perform(C("d")).id == "3"  # the deleted id 3 comes back
    m.perform(D("a"))
    assert m.perform(C("e")).id == "4"  # a gap below the highest is not filled
    for name in ("b", "d", "e"):
        m.perform(D(name))
    assert m.perform(C("f")).id == "1"


def test_qemu_img_apply_tries_id_then_name() -> None:
    """§4 -a NAME: tries the ID first, then the name; discards the current state's changes."""
    m = machine("qemu-img", [W(0, "one"), C("2"), W(0, "two"), C("x"), W(0, "lost")])
    m.perform(R("2"))  # id 2 is "x", although a snapshot is named "2"
    assert m.current is snap(m, "x") and m.view(None) == {0: "two"}
    m.perform(R("x"))  # no id "x": by name
    assert m.current is snap(m, "x")
    m.perform(R("1"))  # id 1 is the snapshot named "2"
    assert m.view(None) == {0: "one"}


def test_qemu_img_apply_duplicates_first_in_table_order() -> None:
    """§4 -a NAME: with duplicate names the first in table order (not pre-order, unlike §2)."""
    m = machine("qemu-img", INVERTED_DUPLICATES)
    m.perform(R("s"))
    assert m.current.id == "3" and m.view(None) == {0: "a", 2: "s3"}


def test_qemu_img_delete_matches_name_only() -> None:
    """§4 -d NAME: by name only, `-d 1` deletes the snapshot named "1", not ID 1; missing:
    "Could not delete snapshot 'x': snapshot not found"."""
    m = machine("qemu-img", [C("first"), C("1")])
    m.perform(D("1"))
    assert names(m) == ["first"] and "1" in m.snapshots
    refused(m, D("1"), ErrorKind.NOT_FOUND, "Could not delete snapshot '1': snapshot not found")
    refused(m, D("x"), ErrorKind.NOT_FOUND, "Could not delete snapshot 'x': snapshot not found")


def test_qemu_img_names_cut_at_255_bytes() -> None:
    """§4 Names: names over 255 bytes are silently cut to 255 bytes; the full name then no longer
    finds it."""
    m = machine("qemu-img", [C("n" * 300)])
    stored = m.snapshots["1"]
    assert stored.name == "n" * 255
    refused(m, D("n" * 300), ErrorKind.NOT_FOUND)
    m.perform(D("n" * 255))
    assert not m.snapshots


def test_qemu_img_name_cut_inside_a_utf8_character() -> None:
    """§4 Names: the cut falls at 255 bytes even inside a UTF-8 character."""
    m = machine("qemu-img", [C("é" * 200)])  # 400 bytes; byte 255 is the first half of an é
    stored = m.snapshots["1"].name
    assert stored.startswith("é" * 127) and stored != "é" * 128
    assert not stored.startswith("é" * 128)
    refused(m, D("é" * 200), ErrorKind.NOT_FOUND)


@pytest.mark.parametrize("name", ["two words", "ünï名", "", "-dash"])
def test_qemu_img_accepts_odd_names(name: str) -> None:
    """§4 Names: spaces, unicode, empty name, names starting with `-` accepted."""
    m = machine("qemu-img", [C(name)])
    assert names(m) == [name]


def test_qemu_img_has_no_vm() -> None:
    """§4: qemu-img works on an image offline: no power operations, disk-only snapshots."""
    m = machine("qemu-img")
    refused(m, ops.Start(), ErrorKind.UNSUPPORTED)
    refused(m, C("s", memory=True), ErrorKind.UNSUPPORTED)
    m.perform(C("s"))
    assert snap(m, "s").memory is None
    assert observe(m)["current"] is None and observe(m)["snapshots"][0]["parent"] is None


# -- QEMU live: HMP and QMP [§5] --------------------------------------------------------------

def test_qemu_hmp_savevm_overwrites() -> None:
    """§5 HMP savevm NAME: overwrites: deletes the first snapshot named NAME, then creates a new one."""
    m = machine("qemu-hmp", [ops.Start(), W(0, "old"), C("s"), C("t"), W(0, "new")])
    m.perform(C("s"))
    assert names(m) == ["t", "s"]
    assert m.view(snap(m, "s")) == {0: "new"} and m.view(snap(m, "t")) == {0: "old"}
    assert snap(m, "s").id == "3"  # highest existing id + 1 [§4 New snapshot ID]


def test_qemu_hmp_savevm_without_name_is_auto_named() -> None:
    """§5 savevm: no name: auto-named vm-YYYYMMDDhhmmss."""
    m = machine("qemu-hmp", [ops.Start(), C()])
    assert re.fullmatch(r"vm-2010033020\d{4}", names(m)[0])


def test_qemu_qmp_snapshot_save_refuses_existing_tag() -> None:
    """§5 QMP snapshot-save: refuses an existing tag: "Snapshot 'x' already exists in one or more devices"."""
    m = machine("qemu-qmp", [ops.Start(), C("x")])
    refused(m, C("x"), ErrorKind.DUPLICATE_NAME, "Snapshot 'x' already exists in one or more devices")


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
def test_qemu_internal_sync_duplicate_and_empty(profile: str) -> None:
    """§5 blockdev-snapshot-internal-sync: duplicate: "Snapshot with name 'x' already exists on
    device 'd'"; empty: "Name is empty"."""
    m = machine(profile, [ops.Start(), C("x", memory=False)])
    assert snap(m, "x").memory is None
    refused(m, C("x", memory=False), ErrorKind.DUPLICATE_NAME,
            "Snapshot with name 'x' already exists on device 'disk0'")
    refused(m, C("", memory=False), ErrorKind.INVALID_ARGUMENT, "Name is empty")


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
@pytest.mark.parametrize("paused", [False, True])
def test_qemu_loadvm_keeps_run_state_and_restores_ram(profile: str, paused: bool) -> None:
    """§5 loadvm: the run state after a load is the run state before it; RAM is restored (loadvm
    while paused read back exactly the value saved)."""
    m = machine(profile, [ops.Start(), W(0, "a"), C("s"), W(0, "b")])
    token = snap(m, "s").memory
    assert token is not None
    if paused:
        m.perform(ops.Pause())
    m.perform(R("s"))
    assert m.power == ("paused" if paused else "running")
    assert m.ram == token and m.view(None) == {0: "a"}


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
def test_qemu_loadvm_of_disk_only_snapshot(profile: str) -> None:
    """§5 loadvm of a disk-only snapshot: "This is a disk-only snapshot. Revert to it  offline
    using qemu-img" (two spaces, sic); a failed load of a running VM leaves it stopped."""
    m = machine(profile, [ops.Start(), C("d", memory=False), ops.Pause()])
    refused(m, R("d"), ErrorKind.DISK_ONLY, "This is a disk-only snapshot. Revert to it  offline using qemu-img")


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
def test_qemu_failed_loadvm_of_running_vm_stops_it(profile: str) -> None:
    """§5 loadvm: missing: "Snapshot 'x' does not exist in one or more devices"; a failed load of a
    running VM leaves it stopped in restore-vm (the only change: the declared side effect)."""
    m = machine(profile, [ops.Start(), W(0, "a"), C("s"), W(1, "b")])
    before = m.fingerprint()
    with pytest.raises(ModelError) as caught:
        m.perform(R("x"))
    error = caught.value
    assert (error.kind, error.message) == (ErrorKind.NOT_FOUND, "Snapshot 'x' does not exist in one or more devices")
    assert error.side_effect == FAILED_LOAD and FAILED_LOAD in m.profile.failure_side_effects
    assert m.power == "paused" and m.view(None) == {0: "a", 1: "b"}
    m.power = "running"
    m.clock -= 1
    assert m.fingerprint() == before  # nothing else changed


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
def test_qemu_delvm_of_missing_name_is_silent(profile: str) -> None:
    """§5 HMP delvm / QMP snapshot-delete of a missing name: silent success."""
    m = machine(profile, [ops.Start(), C("s")])
    m.perform(D("missing"))
    assert names(m) == ["s"]


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
def test_qemu_live_revert_without_name_is_refused(profile: str) -> None:
    """§5 loadvm / snapshot-load take a name (HMP `loadvm name:s`, QMP `tag` is mandatory); there is
    no current snapshot to default to (§4: no "current" in qcow2).  An operation without a name
    must be refused, as every other profile without RevertToCurrentSnapshot does (base.resolve:
    "revert needs a snapshot name"), not find the snapshot named ""."""
    m = machine(profile, [ops.Start(), W(0, "a"), C(""), W(0, "b"), C("x")])
    refused(m, R(), ErrorKind.INVALID_ARGUMENT)
    refused(m, D(), ErrorKind.INVALID_ARGUMENT)


@pytest.mark.parametrize("profile", ["qemu-hmp", "qemu-qmp"])
def test_qemu_live_loadvm_by_name_only(profile: str) -> None:
    """§5 loadvm: name only (not ID), first match."""
    m = machine(profile, [ops.Start(), W(0, "a"), C("x"), W(0, "b"), C("y")])
    refused_power = m.power
    with pytest.raises(ModelError) as caught:
        m.perform(R("1"))  # id 1 exists (named x), but loadvm does not look at ids
    assert caught.value.kind == ErrorKind.NOT_FOUND and refused_power == "running"


# -- libvirt [§7] -----------------------------------------------------------------------------

LIBVIRT = ["libvirt-test", "libvirt-qemu"]


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_duplicate_refused(profile: str) -> None:
    """§7 Create: Duplicate: "operation failed: domain moment s1 already exists"."""
    m = machine(profile, [C("s1")])
    refused(m, C("s1"), ErrorKind.DUPLICATE_NAME, "operation failed: domain moment s1 already exists")


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_unnamed_gets_epoch_second(profile: str) -> None:
    """§7 Create: no name: the epoch second."""
    m = machine(profile)
    created = m.perform(C())
    assert created.name == str(m.clock) and created.name.isdigit()


@pytest.mark.parametrize("flags, bits", [(("disk-only",), "0x10"), (("no-metadata",), "0x4"),
                                         (("reuse-ext",), "0x20"), (("disk-only", "no-metadata"), "0x14")])
def test_libvirt_test_driver_unsupported_create_flags(flags: tuple[str, ...], bits: str) -> None:
    """§7 Create, test driver only: DISK_ONLY, NO_METADATA, REUSE_EXT: "unsupported flags (0x10) in
    function testDomainSnapshotCreateXML"."""
    m = machine("libvirt-test")
    refused(m, C("s", flags=flags), ErrorKind.UNSUPPORTED,
            f"unsupported flags ({bits}) in function testDomainSnapshotCreateXML")


def test_libvirt_test_driver_metadata_only_delete_unsupported() -> None:
    """§7 Delete flags: METADATA_ONLY on the test driver: "unsupported flags (0x2) in function
    testDomainSnapshotDelete"."""
    m = machine("libvirt-test", [C("s")])
    refused(m, D("s", flags=("metadata-only",)), ErrorKind.UNSUPPORTED,
            "unsupported flags (0x2) in function testDomainSnapshotDelete")


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_children_and_children_only_exclusive(profile: str) -> None:
    """§7 Delete flags: CHILDREN with CHILDREN_ONLY: mutually exclusive (libvirt's message)."""
    m = machine(profile, [C("s")])
    refused(m, D("s", flags=("children", "children-only")), ErrorKind.INVALID_ARGUMENT,
            "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' "
            "are mutually exclusive")


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_delete_reparents_and_moves_current(profile: str) -> None:
    """§7 Delete, no flags: children re-parented to the deleted snapshot's parent; a deleted
    current snapshot makes its parent current; a deleted current root leaves no current."""
    m = machine(profile, [W(0, "a"), C("A"), W(1, "b"), C("B"), W(2, "c"), C("C"), R("A"), W(3, "d"), C("D")])
    m.perform(D("B"))
    assert parent_name(snap(m, "C")) == "A" and [c.name for c in snap(m, "A").children] == ["C", "D"]
    assert m.view(snap(m, "C")) == {0: "a", 1: "b", 2: "c"}
    m.perform(D("D"))
    assert m.current is snap(m, "A")
    m.perform(D("C"))
    m.perform(D("A"))
    assert m.current is None and not m.snapshots and m.view(None) == {0: "a", 3: "d"}


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_deleted_root_makes_children_roots(profile: str) -> None:
    """§7 Delete, no flags: a deleted root makes its children roots."""
    m = machine(profile, [C("R"), C("X"), R("R"), C("Y")])
    m.perform(D("R"))
    assert [r.name for r in m.roots] == ["X", "Y"] and m.current is snap(m, "Y")


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_delete_children_current_inside(profile: str) -> None:
    """§7 Delete CHILDREN: removes the whole subtree; if current was inside it, the target's
    parent becomes current."""
    m = machine(profile, [C("A"), C("B"), C("C"), W(0, "x")])
    m.perform(D("B", flags=("children",)))
    assert names(m) == ["A"] and m.current is snap(m, "A") and m.view(None) == {0: "x"}


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_delete_children_only(profile: str) -> None:
    """§7 Delete CHILDREN_ONLY: removes the descendants and keeps the target; if current was among
    them, the target becomes current."""
    m = machine(profile, [C("A"), C("B"), C("C"), R("A"), C("D"), R("C")])
    m.perform(D("A", flags=("children-only",)))
    assert names(m) == ["A"] and m.current is snap(m, "A") and snap(m, "A").children == []


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_delete_children_only_on_leaf_changes_nothing(profile: str) -> None:
    """§7 Delete CHILDREN_ONLY: on a leaf: success, nothing changes."""
    m = machine(profile, [W(0, "a"), C("A"), W(1, "b"), C("B"), W(2, "c")])
    before = observe(m)
    m.perform(D("B", flags=("children-only",)))
    assert observe(m) == before


@pytest.mark.parametrize("profile", LIBVIRT)
@pytest.mark.parametrize("state_ops, flags, power", [
    ([ops.Start()], (), "running"),
    ([ops.Start(), ops.Pause()], (), "paused"),
    ([], (), "shutoff"),
    ([ops.Start()], ("paused",), "paused"),
    ([ops.Start(), ops.Pause()], ("running",), "running"),
])
def test_libvirt_revert_takes_snapshot_state(profile: str, state_ops: list[ops.Operation],
                                             flags: tuple[str, ...], power: str) -> None:
    """§7 Revert: the target becomes current; the domain takes the snapshot's state (running →
    running, paused → paused, shutoff → shutoff); RUNNING or PAUSED override it."""
    m = machine(profile, [*state_ops, C("s"), C("other")])
    if m.power != "shutoff":
        m.perform(ops.Shutdown())
    m.perform(R("s", flags=flags))
    assert m.current is snap(m, "s") and m.power == power
    if power != "shutoff":
        assert m.ram == snap(m, "s").memory


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_revert_running_and_paused_exclusive(profile: str) -> None:
    """§7 Revert: RUNNING with PAUSED are mutually exclusive."""
    m = machine(profile, [C("s")])
    refused(m, R("s", flags=("running", "paused")), ErrorKind.INVALID_ARGUMENT,
            "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' and 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' are mutually exclusive")


@pytest.mark.parametrize("profile, power", [("libvirt-test", "shutoff"), ("libvirt-qemu", "running")])
def test_libvirt_revert_shutoff_snapshot_with_running(profile: str, power: str) -> None:
    """§7 Revert: for a shutoff snapshot with RUNNING, the test driver stays shut off, the QEMU
    driver starts the domain."""
    m = machine(profile, [C("s")])
    m.perform(R("s", flags=("running",)))
    assert m.power == power


@pytest.mark.parametrize("profile", LIBVIRT)
def test_libvirt_halt_shuts_domain_off(profile: str) -> None:
    """§7 Create: HALT: the domain is shut off afterwards (the snapshot keeps the running state)."""
    m = machine(profile, [ops.Start(), C("s", flags=("halt",))])
    assert m.power == "shutoff" and snap(m, "s").state == "running" and snap(m, "s").memory is not None


def test_libvirt_qemu_refuses_slash_in_name() -> None:
    """§7 QEMU driver, internal: "invalid snapshot name 'bad/name': name can't contain '/'"."""
    m = machine("libvirt-qemu")
    refused(m, C("bad/name"), ErrorKind.INVALID_ARGUMENT, "invalid snapshot name 'bad/name': name can't contain '/'")


def test_libvirt_qemu_quiesce_needs_disk_only() -> None:
    """§7 QEMU driver, internal: QUIESCE needs DISK_ONLY."""
    m = machine("libvirt-qemu")
    refused(m, C("q", flags=("quiesce",)), ErrorKind.INVALID_ARGUMENT,
            "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE'")
    m.perform(C("q", flags=("quiesce", "disk-only")))
    assert snap(m, "q").memory is None


def test_libvirt_qemu_external_snapshot_rules() -> None:
    """§7 QEMU driver, external (DISK_ONLY): revert: "unsupported configuration: revert to external
    snapshot not supported yet"; CHILDREN on external: "deletion of external children disk
    snapshots not supported"; external whose parent is internal: "deleting external snapshot that
    has internal snapshot as parent not supported"; delete of a middle or current external works."""
    m = machine("libvirt-qemu", [C("int"), C("e1", flags=("disk-only",)), W(0, "x"), C("e2", flags=("disk-only",)),
                                 W(1, "y")])
    assert snap(m, "e1").memory is None and snap(m, "e2").memory is None
    refused(m, R("e2"), ErrorKind.UNSUPPORTED, "unsupported configuration: revert to external snapshot not supported yet")
    refused(m, D("e1", flags=("children",)), ErrorKind.UNSUPPORTED,
            "unsupported configuration: deletion of external children disk snapshots not supported")
    # shut off, only the top overlay is found in the domain's chain (9.0.0, seen) [semantics.md §7.13]
    refused(m, D("e1"), ErrorKind.INVALID_ARGUMENT, "invalid argument: could not find base disk source in disk source chain")
    top = machine("libvirt-qemu", [C("int"), C("e1", flags=("disk-only",))])
    refused(top, D("e1"), ErrorKind.UNSUPPORTED,
            "unsupported configuration: deleting external snapshot that has internal snapshot as parent not supported")
    m.perform(D("e2"))  # the current external snapshot, whose parent is external
    assert m.current is snap(m, "e1") and m.view(None) == {0: "x", 1: "y"}


def test_libvirt_test_unsupported_revert_flag() -> None:
    """§7 Flags: RESET_NVRAM (8) is not supported by the test driver's revert."""
    m = machine("libvirt-test", [C("s")])
    refused(m, R("s", flags=("reset-nvram",)), ErrorKind.UNSUPPORTED,
            "unsupported flags (0x8) in function testDomainRevertToSnapshot")


# -- the 2010 proposal [§8] -------------------------------------------------------------------

def test_proposal_duplicates_refused() -> None:
    """§8: the proposal declares duplicate names unsupported."""
    m = machine("proposal-2010", [C("s")])
    refused(m, C("s"), ErrorKind.DUPLICATE_NAME)


def test_proposal_merge_refuses_two_dependants_merge_force_does_it() -> None:
    """§8: MERGE fails if other snapshots would be discarded, MERGE_FORCE does it anyway (default
    delete ≈ MERGE)."""
    m = machine("proposal-2010", [W(0, "a"), C("A"), W(1, "b"), C("B"), R("A"), W(2, "c"), C("C")])
    refused(m, D("A"), ErrorKind.HAS_CHILDREN)
    refused(m, D("A", flags=("merge",)), ErrorKind.HAS_CHILDREN)
    m.perform(D("A", flags=("merge-force",)))
    assert m.view(snap(m, "B")) == {0: "a", 1: "b"} and m.view(snap(m, "C")) == {0: "a", 2: "c"}


def test_proposal_discard_and_discard_force() -> None:
    """§8: DISCARD fails if children would be discarded; on a leaf it deletes; DISCARD_FORCE
    removes the subtree (≈ libvirt's CHILDREN)."""
    m = machine("proposal-2010", [C("A"), C("B"), C("C"), R("A"), C("D")])
    refused(m, D("B", flags=("discard",)), ErrorKind.HAS_CHILDREN)
    m.perform(D("C", flags=("discard",)))
    m.perform(D("A", flags=("discard-force",)))
    assert not m.snapshots and m.current is None


def test_proposal_flags_mutually_exclusive() -> None:
    """§8: MERGE, MERGE_FORCE, DISCARD, DISCARD_FORCE are mutually exclusive."""
    m = machine("proposal-2010", [C("A")])
    refused(m, D("A", flags=("merge", "discard-force")), ErrorKind.INVALID_ARGUMENT)


def test_proposal_revert_starts_the_guest() -> None:
    """§8: virDomainCreateFromSnapshot: start from a snapshot (our reading: always running, from the
    memory image when there is one, otherwise booting)."""
    m = machine("proposal-2010", [C("off")])
    m.perform(R("off"))
    assert m.power == "running" and m.ram is not None


# -- memory images, across profiles [§2, §3, §5, §7, §8] ----------------------------------------

MEMORY_RESTORE = {
    "esx": "running",  # §2 RevertToSnapshot_Task: a memory snapshot of a powered-on VM comes back on
    "vbox": "saved",  # §3 restoreSnapshot: a snapshot taken while running leaves the machine Saved
    "qemu-hmp": "running",  # §5 loadvm: RAM is restored, run state kept
    "qemu-qmp": "running",
    "libvirt-test": "running",  # §7 Revert: running → running
    "libvirt-qemu": "running",
    "proposal-2010": "running",  # §8 start from the snapshot
}


@pytest.mark.parametrize("profile, power", sorted(MEMORY_RESTORE.items()))
def test_memory_image_restored_on_revert(profile: str, power: str) -> None:
    """Snapshot with memory, let the guest run, revert: the RAM is the snapshot's memory image
    (§5 Observing memory: loadvm read back exactly the value saved)."""
    m = machine(profile, [ops.Start(), W(0, "a"), C("s"), W(0, "b")])
    token = snap(m, "s").memory
    assert token is not None
    m.perform(C("later"))  # the guest ran: its RAM is now another image
    assert snap(m, "later").memory != token
    if profile == "vbox":
        m.perform(ops.Shutdown())  # §3 restoreSnapshot is refused while running
    m.perform(R("s"))
    assert (m.power, m.ram) == (power, token)
    assert m.view(None) == {0: "a"}


def test_paused_snapshots_share_one_memory_image() -> None:
    """RAM that has not run since it was captured is the same image (Machine.capture_memory)."""
    m = machine("libvirt-test", [ops.Start(), ops.Pause(), C("p1"), C("p2")])
    assert snap(m, "p1").memory == snap(m, "p2").memory is not None


def test_versions_pick_the_profile_of_a_family() -> None:
    from snaptree.model.profiles import follows, profile_for, version_key, versions_text

    assert version_key("1:10.0.2+ds-2+deb13u1~bpo12+1") == (10, 0, 2)
    assert version_key("11.3.0") > version_key("9.0.0")
    qemu = PROFILES["libvirt-qemu"]
    assert follows(qemu, {"libvirt": "9.0.0", "QEMU": "7.2.0"}) and follows(qemu, {})
    assert not follows(qemu, {"libvirt": "11.3.0"}) and not follows(qemu, {"libvirt": "8.0.0"})
    assert versions_text(qemu) == "libvirt >= 9.0, < 11.3; QEMU >= 7.2"
    assert profile_for("libvirt-qemu", {"libvirt": "9.0.0"}) == "libvirt-qemu"
    assert profile_for("esx", {"libvirt": "11.3.0"}) == "esx"  # no versions: follows any
    assert profile_for("libvirt-qemu", {"libvirt": "11.3.0", "QEMU": "10.0.2"}) == "libvirt-qemu-11.3"
    assert profile_for("libvirt-qemu-11.3", {"libvirt": "9.0.0"}) == "libvirt-qemu"
