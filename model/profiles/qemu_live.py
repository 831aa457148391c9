"""A live QEMU's internal snapshots, shared by the HMP and QMP profiles [semantics.md §5],
observed on QEMU 7.2.22.  The table is qcow2's: flat, no current, ids reused, names cut at
255 bytes.  A snapshot with memory="no" is ``blockdev-snapshot-internal-sync``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

from .. import ops
from ..disks import Disk
from ..errors import ModelError
from ..machine import Machine, ProfileState, Snapshot
from .base import DISK_ONLY, DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, UNSUPPORTED, Profile

DISK_NODE = "disk0"  # the qcow2 node's name in the driver's QEMU command line
FAILED_LOAD = "a failed load leaves a running VM stopped in restore-vm"
LOAD_MOVED_DISK = "a load that fails on an empty VM state has already taken the disk back"


@dataclass
class VmStateAreas(ProfileState):
    """What live QEMU keeps beyond its snapshot table (``Machine.profile_state``, made by the first
    snapshot): the qcow2 disk's VM-state areas."""

    # the memory image left in the running disk's VM-state area; ``vmstate_set`` once a savevm or
    # a load has set it (an area never set reads as an emptied one, None, but the two are kept
    # apart so that states compare as they always have)
    vmstate: str | None = None
    vmstate_set: bool = False
    # the memory image each disk-only snapshot's VM-state area holds, by snapshot id
    hidden: dict[str, str] = field(default_factory=dict)


class LiveQemu(Profile):
    tree = False
    transitions: ClassVar[dict[str, dict[str, str]]] = {
        "start": {"shutoff": "running"},  # launch QEMU, which boots the guest
        # QMP stop and cont succeed on a VM that is already stopped or running
        "pause": {"running": "paused", "paused": "paused"},
        "resume": {"paused": "running", "running": "running"},
        "shutdown": {"running": "shutoff", "paused": "shutoff"},  # quit QEMU
    }
    ids = "reuse"
    lookup = "table"  # by name, first in table order; a load then goes by id first [§5.4]
    name_limit = 255  # QEMUSnapshotInfo.name is char[256] (pstrcpy) [§4.6]
    failure_side_effects = frozenset({FAILED_LOAD, LOAD_MOVED_DISK})
    nvram = True  # OVMF's variable store is a pflash block node like any other [§9.5]
    # QEMU numbers snapshots per node; the model has one id space, the first disk's, which
    # holds the VM state: checks never leave the first disk out of a snapshot [§9.23]
    keeps_first_disk = True
    loads_every_node = False  # HMP loadvm: every writable node; QMP snapshot-load: the snapshot's devices

    def default_mode(self, disk: Disk, flags: frozenset[str]) -> str:
        # bdrv_all_can_snapshot and savevm skip a read-only node [§9.4]
        return "no" if disk.readonly else "internal"

    def modes_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> tuple[str, ...]:
        modes = super().modes_for(machine, op, flags)
        if op.memory is False:  # blockdev-snapshot-internal-sync takes the first disk's node, whatever
            # else the create says: it names one device (QEMU 7.2.22, seen) [§9.6]
            return (self.default_mode(machine.disks[0], flags),) + ("no",) * (len(modes) - 1)
        return modes

    def check_disks(self, machine: Machine, op: ops.CreateSnapshot, modes: tuple[str, ...], memory: bool,
                    flags: frozenset[str]) -> None:
        for disk, mode in zip(machine.disks, modes, strict=True):
            if mode == "internal" and disk.format == "raw":  # [§9.4]
                raise writable_raw(disk.name)

    def require_name(self, op: ops.Revert | ops.Delete) -> None:
        # HMP "loadvm: string expected", QMP "Parameter 'tag' is missing", before anything
        # happens: the VM keeps running (seen on QEMU 7.2.22); there is no current snapshot
        if op.ref is None and op.id is None:
            raise ModelError(INVALID_ARGUMENT, "a snapshot name is required (HMP: string expected; QMP: "
                                               "Parameter 'tag' is missing)")

    def bad_power(self, operation: str, power: str) -> ModelError:
        if power == "shutoff":
            return ModelError(INVALID_STATE, f"cannot {operation}: no QEMU process is running")
        return ModelError(INVALID_STATE, f"cannot {operation}: QEMU is already running")

    def require_qemu(self, machine: Machine, command: str) -> None:
        if machine.power == "shutoff":
            raise self.bad_power(command, "shutoff")

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        self.require_qemu(machine, "snapshot")
        if op.memory is False and op.name is None:  # blockdev-snapshot-internal-sync needs one (seen on 7.2.22)
            raise ModelError(INVALID_ARGUMENT, "Parameter 'name' is missing")
        return op.memory is not False

    def check_name(self, machine: Machine, op: ops.CreateSnapshot, name: str, memory: bool,
                   flags: frozenset[str]) -> None:
        if not memory and name == "":
            raise ModelError(INVALID_ARGUMENT, "Name is empty")  # [§5.7]

    def duplicate_policy(self, memory: bool) -> str:
        return self.duplicates if memory else "refuse"

    def duplicate_refusal(self, name: str, memory: bool) -> ModelError:
        if not memory:  # [§5.7]
            return ModelError(DUPLICATE, f"Snapshot with name '{name}' already exists on device '{DISK_NODE}'")
        return ModelError(DUPLICATE, f"Snapshot '{name}' already exists in one or more devices")  # [§5.3]

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        self.require_qemu(machine, "load a snapshot")
        self.check_flags(op.flags, self.revert_flags, "revert")
        self.require_name(op)
        target = machine.get_id(op.id) if op.id is not None else self.find_named(machine, op.ref or "")
        if target is not None and self.loads_every_node and any(
                mode == "no" and not disk.readonly for disk, mode in zip(machine.disks, target.modes, strict=True)):
            target = None  # loadvm needs the tag on every writable node (QEMU 7.2.22, 10.0.2, seen) [§9.6]
        if target is None or target.memory is None:
            if target is None:
                name = op.ref if op.id is None else op.id
                error = ModelError(NOT_FOUND, f"Snapshot '{name}' does not exist in one or more devices")
            else:
                error = ModelError(DISK_ONLY, "This is a disk-only snapshot. Revert to it  offline using qemu-img")
            if machine.power == "running":  # hmp_loadvm stops the VM before it looks [§5.4]
                machine.power = "paused"
                error.side_effect = FAILED_LOAD
            raise error
        if op.id is None:
            # Seen on QEMU 7.2.22 (HMP and QMP): only the checks above look the name up; the load
            # itself goes to the snapshot whose *id* is that name, if any (qcow2_snapshot_goto's
            # find_snapshot_by_id_or_name), disk and RAM; a disk-only one then loads the VM state
            # its disk holds (see after_create), and without one fails with the disk gone back.
            target = machine.get_id(op.ref or "") or target
        areas = machine.state(VmStateAreas)
        image = target.memory or areas.hidden.get(target.id)
        machine.restore(target)
        areas.vmstate, areas.vmstate_set = image, True
        if image is None:
            error = ModelError(DISK_ONLY, "Error -22 while loading VM state", side_effect=LOAD_MOVED_DISK)
            if machine.power == "running":
                machine.power = "paused"
            raise error
        # the run state after a load is the run state before it; RAM is restored [§5.4]
        machine.load_memory(image, machine.power)

    def after_create(self, machine: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        # Seen on QEMU 7.2.22: the VM state lives in the qcow2 disk's VM-state area, which a
        # load brings back with the disk and savevm discards once its snapshot holds it; so a
        # disk-only snapshot taken after a load (and no savevm since) holds that load's VM
        # state, hidden (VM SIZE 0), and loading it by id brings that RAM back
        areas = machine.state(VmStateAreas)
        hidden = areas.hidden
        for gone in [sid for sid in hidden if sid not in machine.snapshots]:  # before a reused id inherits it
            del hidden[gone]
        if snap.memory is None:
            if areas.vmstate is not None:
                hidden[snap.id] = areas.vmstate
        else:
            areas.vmstate, areas.vmstate_set = None, True

    def delete(self, machine: Machine, op: ops.Delete) -> None:
        self.require_qemu(machine, "delete a snapshot")
        flags = self.check_flags(op.flags, self.delete_flags, "delete")
        self.require_name(op)
        target = machine.get_id(op.id) if op.id is not None else self.find_named(machine, op.ref or "")
        if target is not None:  # deleting a missing name is a silent success [§5.6]
            self.remove(machine, target, flags)


def writable_raw(node: str) -> ModelError:
    return ModelError(UNSUPPORTED, f"Device '{node}' is writable but does not support snapshots")


class QemuHmp(LiveQemu):
    name = "qemu-hmp"
    system = "QEMU 7.2 and 10.0 HMP savevm/loadvm/delvm"
    versions = {"QEMU": ("7.2", None)}
    summary = "savevm overwrites the first same-named snapshot; flat table; ids reused"
    duplicates = "overwrite"  # save_snapshot(..., overwrite=true) [§5.1]
    loads_every_node = True

    def writable_raw_disk(self, machine: Machine) -> str | None:
        """HMP's loadvm and delvm check every writable node first (bdrv_all_can_snapshot) [§9.4]."""
        return next((d.name for d in machine.disks if d.format == "raw" and not d.readonly), None)

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        raw = self.writable_raw_disk(machine)
        if raw is not None and machine.power != "shutoff" and (op.ref is not None or op.id is not None):
            error = writable_raw(raw)
            if machine.power == "running":  # hmp_loadvm stopped the VM first [§5.4, §9.4]
                machine.power, error.side_effect = "paused", FAILED_LOAD
            raise error
        super().revert(machine, op)

    def delete(self, machine: Machine, op: ops.Delete) -> None:
        raw = self.writable_raw_disk(machine)
        if raw is not None and machine.power != "shutoff" and (op.ref is not None or op.id is not None):
            raise writable_raw(raw)
        super().delete(machine, op)

    def auto_name(self, machine: Machine) -> str:
        return time.strftime("vm-%Y%m%d%H%M%S", time.gmtime(machine.clock))  # [§5.2]


class QemuQmp(LiveQemu):
    name = "qemu-qmp"
    system = "QEMU 7.2 and 10.0 QMP snapshot-save/snapshot-load/snapshot-delete"
    versions = {"QEMU": ("7.2", None)}
    summary = "snapshot-save refuses an existing tag; flat table; ids reused"
    duplicates = "refuse"  # overwrite=false [§5.3]
    create_disk_modes = frozenset({"internal", "no"})  # snapshot-save's devices: the nodes it covers [§9.6]
    disk_modes = frozenset({"normal", "no"})  # "no": the driver never names the node in devices
    excluded_as = "no"

    def default_mode(self, disk: Disk, flags: frozenset[str]) -> str:
        return "no" if disk.mode == "no" else super().default_mode(disk, flags)

    def find_clash(self, machine: Machine, name: str, modes: tuple[str, ...]) -> Snapshot | None:
        # "already exists in one or more devices" only when every device asked for has the tag;
        # otherwise each gets one more snapshot of that name (QEMU 7.2.22, 10.0.2, seen) [§9.7]
        asked = {i for i, mode in enumerate(modes) if mode != "no"}
        held: set[int] = set()
        for snap in machine.named(name):
            held |= {i for i, mode in enumerate(snap.modes) if mode != "no"}
        return self.find_named(machine, name) if asked <= held else None

    def auto_name(self, machine: Machine) -> str:
        raise ModelError(INVALID_ARGUMENT, "Parameter 'tag' is missing")
