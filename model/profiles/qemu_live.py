"""A live QEMU's internal snapshots, shared by the HMP and QMP profiles [semantics.md §5],
observed on QEMU 7.2.22.  The table is qcow2's: flat, no current, ids reused, names cut at
255 bytes.  A snapshot with memory="no" is ``blockdev-snapshot-internal-sync``."""

from __future__ import annotations

import time
from typing import ClassVar

from .. import ops
from ..errors import ModelError
from ..machine import Machine
from .base import DISK_ONLY, DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, Profile

DISK_NODE = "disk0"  # the qcow2 node's name in the driver's QEMU command line
FAILED_LOAD = "a failed load leaves a running VM stopped in restore-vm"


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
    lookup = "table"  # name only, first match [§5 loadvm]
    name_limit = 255  # QEMUSnapshotInfo.name is char[256] (pstrcpy) [§4 Names]
    failure_side_effects = frozenset({FAILED_LOAD})

    def bad_power(self, operation: str, power: str) -> ModelError:
        if power == "shutoff":
            return ModelError(INVALID_STATE, f"cannot {operation}: no QEMU process is running")
        return ModelError(INVALID_STATE, f"cannot {operation}: QEMU is already running")

    def require_qemu(self, m: Machine, command: str) -> None:
        if m.power == "shutoff":
            raise self.bad_power(command, "shutoff")

    def memory_for(self, m: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        self.require_qemu(m, "snapshot")
        return op.memory is not False

    def check_name(self, m: Machine, name: str, memory: bool, flags: frozenset[str]) -> None:
        if not memory and name == "":
            raise ModelError(INVALID_ARGUMENT, "Name is empty")  # [§5 blockdev-snapshot-internal-sync]

    def duplicate_policy(self, memory: bool) -> str:
        return self.duplicates if memory else "refuse"

    def duplicate_refusal(self, name: str, memory: bool) -> ModelError:
        if not memory:  # [§5 blockdev-snapshot-internal-sync]
            return ModelError(DUPLICATE, f"Snapshot with name '{name}' already exists on device '{DISK_NODE}'")
        return ModelError(DUPLICATE, f"Snapshot '{name}' already exists in one or more devices")  # [§5 snapshot-save]

    def revert(self, m: Machine, op: ops.Revert) -> None:
        self.require_qemu(m, "load a snapshot")
        self.check_flags(op.flags, self.revert_flags, "revert")
        target = m.get_id(op.id) if op.id is not None else self.find_named(m, op.ref or "")
        if target is None or target.memory is None:
            if target is None:
                name = op.ref if op.id is None else op.id
                error = ModelError(NOT_FOUND, f"Snapshot '{name}' does not exist in one or more devices")
            else:
                error = ModelError(DISK_ONLY, "This is a disk-only snapshot. Revert to it  offline using qemu-img")
            if m.power == "running":  # hmp_loadvm stops the VM before it looks [§5 loadvm]
                m.power = "paused"
                error.side_effect = FAILED_LOAD
            raise error
        # the run state after a load is the run state before it; RAM is restored [§5 loadvm]
        m.restore(target)
        m.load_memory(target.memory, m.power)

    def delete(self, m: Machine, op: ops.Delete) -> None:
        self.require_qemu(m, "delete a snapshot")
        flags = self.check_flags(op.flags, self.delete_flags, "delete")
        target = m.get_id(op.id) if op.id is not None else self.find_named(m, op.ref or "")
        if target is not None:  # deleting a missing name is a silent success [§5 delvm]
            self.remove(m, target, flags)


class QemuHmp(LiveQemu):
    name = "qemu-hmp"
    system = "QEMU 7.2 HMP savevm/loadvm/delvm"
    summary = "savevm overwrites the first same-named snapshot; flat table; ids reused"
    duplicates = "overwrite"  # save_snapshot(..., overwrite=true) [§5 savevm]

    def auto_name(self, m: Machine) -> str:
        return time.strftime("vm-%Y%m%d%H%M%S", time.gmtime(m.clock))  # [§5 savevm: no name]


class QemuQmp(LiveQemu):
    name = "qemu-qmp"
    system = "QEMU 7.2 QMP snapshot-save/snapshot-load/snapshot-delete"
    summary = "snapshot-save refuses an existing tag; flat table; ids reused"
    duplicates = "refuse"  # overwrite=false [§5 snapshot-save]

    def auto_name(self, m: Machine) -> str:
        raise ModelError(INVALID_ARGUMENT, "Parameter 'tag' is missing")
