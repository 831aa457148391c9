"""VMware vSphere API: CreateSnapshot_Task, RevertToSnapshot_Task, RemoveSnapshot_Task,
RemoveAllSnapshots_Task [semantics.md §2].  No ESX runs here; vcsim's departures from ESX
(§2.12-§2.17) are not followed."""

from __future__ import annotations

from typing import ClassVar

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import INVALID_STATE, NOT_FOUND, UNSUPPORTED, Profile

INDEPENDENT = ("independent-persistent", "independent-nonpersistent")

VSPHERE_STATE = {"running": "Powered on", "shutoff": "Powered off", "suspended": "Suspended"}


def remove_snapshots(machine: Machine, target: Snapshot, children: bool) -> None:
    for node in machine.subtree(target) if children else [target]:
        machine.remove(node)


class Esx(Profile):
    name = "esx"
    system = "VMware vSphere API 7.0"
    summary = "merge into every child; duplicate names allowed; ids from a per-VM counter"
    transitions: ClassVar[dict[str, dict[str, str]]] = {
        # PowerOnVM_Task also resumes a suspended VM; PowerOffVM_Task discards its suspend state
        "start": {"shutoff": "running", "suspended": "running"},
        "shutdown": {"running": "shutoff", "suspended": "shutoff"},
        "suspend": {"running": "suspended"},
    }
    ids = "counter"  # never reused [§2.1]
    lookup = "preorder"  # libvirt's ESX driver: depth-first, pre-order, first match [§2.8]
    sibling_order = True  # childSnapshotList is an ordered array; the pre-order lookup follows it
    duplicates = "allow"  # names need not be unique [§2.1]
    create_flags = frozenset({"quiesce"})  # quiesce only flushes the guest's caches [§2.2]
    revert_flags = frozenset({"suppress-power-on"})
    delete_flags = frozenset({"remove-children"})
    revert_to_current = True  # RevertToCurrentSnapshot_Task [§2.4]
    # VirtualDiskMode: independent disks are "not affected by snapshots" [§9.9]
    disk_modes = frozenset({"normal", *INDEPENDENT})
    excluded_as = "independent-persistent"
    snapshot_kind = "external"  # a snapshot starts a delta disk (redo log) per disk

    def check_disks(self, machine: Machine, op: ops.CreateSnapshot, modes: tuple[str, ...], memory: bool,
                    flags: frozenset[str]) -> None:
        if memory and any(disk.mode in INDEPENDENT for disk in machine.disks):  # [§9.10]
            raise ModelError(UNSUPPORTED, "Cannot take a memory snapshot, since the virtual machine is configured "
                                          "with independent disks.")

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        super().revert(machine, op)  # an independent disk keeps what it reads [§9.9]
        machine.put_back({}, machine.disks_in_mode("independent-nonpersistent"))

    def restored_by_revert(self, machine: Machine, target: Snapshot) -> dict[int, dict[int, str]]:
        return dict.fromkeys(machine.disks_in_mode("independent-nonpersistent"), {})  # discarded [§9.9]

    def power(self, machine: Machine, operation: str) -> None:
        super().power(machine, operation)
        if operation == "shutdown":  # a nonpersistent disk's changes are discarded at power off [§9.9]
            machine.put_back({}, machine.disks_in_mode("independent-nonpersistent"))

    def not_found(self, ref: str, purpose: str) -> ModelError:
        return ModelError(NOT_FOUND, f"Could not find snapshot with name '{ref}'")  # libvirt esx_vi.c

    def bad_power(self, operation: str, power: str) -> ModelError:
        # the InvalidPowerState fault's localized message
        return ModelError(INVALID_STATE,
                          f"The attempted operation cannot be performed in the current state ({VSPHERE_STATE[power]}).")

    def auto_name(self, machine: Machine) -> str:
        # CreateSnapshot_Task's name is required and has no default (no epoch-second name as in
        # libvirt): a client with no name sends the empty string, as the vsphere driver does [§2.1]
        return ""

    def recorded_state(self, machine: Machine, memory: bool, flags: frozenset[str]) -> str:
        # memory=false sets the snapshot's power state to powered off [§2.2]
        return machine.power if memory else "shutoff"

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        # the VM takes the snapshot's execution state; suppressPowerOn keeps it from running,
        # which leaves a powered-on snapshot's memory as a suspend state [§2.3]
        if target.memory is None:
            return "shutoff", None
        if "suppress-power-on" in flags or target.state == "suspended":
            return "suspended", target.memory
        return "running", target.memory

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        # removeChildren removes the subtree; the nearest surviving ancestor becomes current
        # [§2.6]
        remove_snapshots(machine, target, "remove-children" in flags)

    def delete_all(self, machine: Machine) -> None:
        # every snapshot goes, the current state stays as the disk [§2.7]
        for root in list(machine.roots):
            for node in machine.subtree(root):
                machine.remove(node)
