"""VirtualBox Main API: IMachine takeSnapshot / deleteSnapshot / restoreSnapshot / findSnapshot
[semantics.md §3], read in VirtualBox's ``SnapshotImpl.cpp`` and ``MachineImpl.cpp``.  No
VirtualBox can be installed here (it is not in Debian 12), so no real driver checks this."""

from __future__ import annotations

import re
from typing import ClassVar

from .. import ops
from ..disks import Disk
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import HAS_CHILDREN, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, UNSUPPORTED, Profile

MACHINE = "vm"  # the machine's name in VirtualBox's messages
VBOX_STATE = {"running": "Running", "paused": "Paused", "shutoff": "PoweredOff", "saved": "Saved"}
UUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")

# Console::i_pause / resume / powerDown, SessionMachine::i_saveStateWithReason
POWER_REFUSALS = {
    "start": "The virtual machine is already running or busy (machine state: {state})",
    "pause": "Invalid machine state: {state}",
    "resume": "Cannot resume the machine as it is not paused (machine state: {state})",
    "shutdown": "Invalid machine state: {state} (must be Running, Paused or Stuck)",
    "suspend": "Cannot save the execution state as the machine is not running or paused (machine state: {state})",
}


class VBox(Profile):
    name = "vbox"
    system = "VirtualBox 7 Main API (IMachine)"
    summary = "merge into the one child; refuses two children or a current snapshot with a child"
    transitions: ClassVar[dict[str, dict[str, str]]] = {
        "start": {"shutoff": "running", "saved": "running"},  # launchVMProcess restores a Saved state
        "pause": {"running": "paused"},
        "resume": {"paused": "running"},
        "shutdown": {"running": "shutoff", "paused": "shutoff"},  # powerDown
        "suspend": {"running": "saved", "paused": "saved"},  # saveState
    }
    ids = "uuid"  # every snapshot gets a fresh UUID [§3.1]
    lookup = "preorder"  # findSnapshot: depth-first, pre-order, first match [§3.7]
    sibling_order = True  # ISnapshot::children is an ordered array; findSnapshot follows it
    duplicates = "allow"  # no uniqueness check [§3.1]
    create_flags = frozenset({"live"})  # takeSnapshot(pause=false), VBoxManage's --live
    # medium types [§9.12]: writethrough and shareable media are left out of snapshots;
    # immutable ones are in them (through a differencing image) and reset at power-on
    disk_modes = frozenset({"normal", "writethrough", "shareable", "immutable"})
    excluded_as = "writethrough"
    snapshot_kind = "external"  # a snapshot starts a differencing image per disk

    def default_mode(self, disk: Disk, flags: frozenset[str]) -> str:
        return "no" if disk.mode in ("writethrough", "shareable") else self.snapshot_kind

    def power(self, machine: Machine, operation: str) -> None:
        from_saved = machine.power == "saved"
        super().power(machine, operation)
        current = machine.current
        if operation == "start" and not from_saved and (current is None or current.memory is None):
            # Console::i_powerUp resets an immutable disk's differencing image to the current
            # snapshot's point in time (the base without one), unless the VM had a saved state
            # or the current snapshot was taken online [§9.13]
            immutable = machine.disks_in_mode("immutable")
            if immutable:
                machine.put_back({} if current is None else machine.on_disks(machine.view(current), immutable),
                                 immutable)
    delete_flags = frozenset({"and-all-children"})  # deleteSnapshotAndAllChildren

    def bad_power(self, operation: str, power: str) -> ModelError:
        if operation == "pause" and power == "paused":
            return ModelError(INVALID_STATE, "Already paused")
        if operation == "shutdown" and power == "saved":
            return ModelError(INVALID_STATE, "Cannot power down a saved virtual machine")
        return ModelError(INVALID_STATE, POWER_REFUSALS[operation].format(state=VBOX_STATE[power]))

    def not_found(self, ref: str, purpose: str) -> ModelError:
        if UUID.match(ref):  # Machine::findSnapshot
            return ModelError(NOT_FOUND, f"Could not find a snapshot with UUID {{{ref.strip('{}')}}}")
        return ModelError(NOT_FOUND, f"Could not find a snapshot named '{ref}'")

    def lookup_ref(self, machine: Machine, ref: str, purpose: str) -> Snapshot | None:
        if not machine.roots:
            raise ModelError(NOT_FOUND, "This machine does not have any snapshots")
        if ref == "":  # an empty nameOrId finds the first snapshot (Machine::findSnapshot)
            return machine.roots[0]
        if UUID.match(ref):
            return machine.get_id(ref.strip("{}").lower())
        return self.find_named(machine, ref)

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        # SessionMachine::takeSnapshot [§3.1]
        if "live" in flags and machine.power != "running":
            raise ModelError(INVALID_STATE, "Cannot take a live snapshot of a virtual machine unless it is running.")
        online_or_saved = machine.power != "shutoff"
        if op.memory is False and online_or_saved:
            # an online snapshot always saves the state (unless a debugging extradata key is set)
            raise ModelError(UNSUPPORTED, "VirtualBox saves the machine state with every snapshot of a running, "
                                          "paused or saved machine")
        return online_or_saved

    def check_name(self, machine: Machine, op: ops.CreateSnapshot, name: str, memory: bool,
                   flags: frozenset[str]) -> None:
        if UUID.match(name):
            raise ModelError(INVALID_ARGUMENT, "A machine cannot have a UUID as its name")  # Snapshot::setName

    def auto_name(self, machine: Machine) -> str:
        raise ModelError(INVALID_ARGUMENT, "takeSnapshot needs a name")

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        # SessionMachine::restoreSnapshot refuses an online machine, Paused included [§3.6]
        if machine.power in ("running", "paused"):
            raise ModelError(INVALID_STATE, "Cannot delete the current state of the running machine "
                                            f"(machine state: {VBOX_STATE[machine.power]})")
        # a snapshot with a saved state leaves the machine Saved, otherwise PoweredOff
        return ("saved", target.memory) if target.memory is not None else ("shutoff", None)

    def check_delete(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        if "and-all-children" in flags:  # IMachine::deleteSnapshotAndAllChildren [§3.5]
            raise ModelError(UNSUPPORTED, "Not implemented (E_NOTIMPL): deleteSnapshotAndAllChildren")
        what = f"Snapshot '{target.name}' of the machine '{MACHINE}' cannot be deleted, because it"
        if len(target.children) > 1:  # SessionMachine::i_deleteSnapshot [§3.2, §3.3]
            raise ModelError(HAS_CHILDREN, f"{what} has {len(target.children)} child snapshots, "
                                           "which is more than the one snapshot allowed for deletion")
        if target is machine.current and target.children:  # the current state counts as a second child
            raise ModelError(HAS_CHILDREN, f"{what} is the current snapshot and has one child snapshot")

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        # Snapshot::i_beginSnapshotDelete appends the child to the grandparent's list
        machine.remove(target, children_last=True)
