"""libvirt 11.3.0's QEMU driver: the rules seen to differ from 9.0's (``libvirt_qemu.py``)."""

from __future__ import annotations

from .. import ops
from ..disks import Disk
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import DISK_ONLY, DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, UNSUPPORTED
from .libvirt import ONLINE, Libvirt
from .libvirt_qemu import ID_LOAD, PHANTOM_LOAD, UNSAVED_METADATA, LibvirtQemu
from .libvirt_qemu_disks import MIXING
from .libvirt_qemu_state import QemuDriverState, qemu_state

# QEMU's id_wellformed (util/id.c): a job id is a letter, then letters, digits, '-', '.', '_'
JOB_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


class LibvirtQemu113(LibvirtQemu):
    """libvirt 11.3.0's QEMU driver (bookworm-backports, with QEMU 10.0.2): each rule below
    is one seen to differ from 9.0's by replaying the 9.0 scenarios and by probes on 11.3.0
    (qemu_snapshot.c names the functions).  Internal snapshots of a running domain go through
    QMP jobs (snapshot-save, -load, -delete) instead of HMP; external snapshots can be reverted
    to, and deleting them follows qemuSnapshotDeleteValidate's rules."""

    name = "libvirt-qemu-11.3"
    system = "libvirt 11.3.0 QEMU driver (qemu:///embed), QEMU 10.0"
    versions = {"libvirt": ("11.3", None), "QEMU": ("10.0", None)}
    family = "libvirt-qemu"
    summary = "libvirt 11.3's QEMU driver: QMP snapshot jobs, revert to external snapshots, 11.3's delete rules"
    # phantoms only by redefine: QMP reports a failed savevm
    failure_side_effects = frozenset({UNSAVED_METADATA, ID_LOAD, PHANTOM_LOAD})

    def phantom_failure(self, machine: Machine, target: Snapshot) -> ModelError:
        # 11.3.0, seen: a QMP snapshot-load job for an online one; for an offline one, qemu-img's
        # error is lost on the way [§7.19]
        if target.state in ONLINE:
            return ModelError(NOT_FOUND, f"operation failed: image of disk 'vda' does not have internal snapshot "
                                         f"'{target.name}'", side_effect=PHANTOM_LOAD)
        return ModelError(NOT_FOUND, "An error occurred, but the cause is unknown", side_effect=PHANTOM_LOAD)

    external_without_memory = True  # (seen) [§9.16]

    def nvram_named(self, name: str) -> ModelError:
        return ModelError(UNSUPPORTED, "unsupported configuration: too many disk snapshot requests for domain")

    def defaults_follow_external(self, asked: dict[str, str]) -> bool:
        # a disk not named goes external with the one named so (11.3.0, seen: a qcow2 overlay
        # even over a raw disk) [§9.16]
        return "external" in asked.values()

    def nvram_mode(self, nvram: Disk, external: bool) -> str:
        # a qcow2 NVRAM takes the internal snapshot's tag; a raw one is left out, as an
        # external snapshot leaves it [§9.18]
        return "internal" if nvram.format == "qcow2" and not external else "no"

    def check_pflash(self, machine: Machine, running: bool) -> None:
        if running and any(d.role == "nvram" and d.format != "qcow2" for d in machine.disks):  # [§9.18]
            raise ModelError(UNSUPPORTED, "Operation not supported: internal snapshots of a VM with pflash based "
                                          "firmware require QCOW2 nvram format")

    def mixed_refusal(self, external: Disk) -> ModelError:
        return ModelError(UNSUPPORTED, MIXING)  # of a shut-off domain [§9.16]

    def before_taking(self, machine: Machine, name: str, memory: bool, flags: frozenset[str]) -> None:
        if memory and "disk-only" not in flags and machine.power != "shutoff":  # QMP snapshot-save
            self.check_job_id(name, "snapshot-save", "save")
            if self.migration_paused(machine):  # its nodes are inactive (11.3.0, seen) [§9.22]
                raise ModelError(UNSUPPORTED, "operation failed: snapshot-save job failed: Device "
                                              "'libvirt-1-format' is writable but does not support snapshots")
            state = machine.profile_state  # looked at, not made: a refusal leaves the machine as it was
            if isinstance(state, QemuDriverState) and state.found(name) is not None:
                # snapshot-save refuses a tag the image already has (left by a failed create, or
                # by a METADATA_ONLY delete): seen on 11.3.0, where 9.0's savevm overwrote it
                raise ModelError(DUPLICATE, f"operation failed: snapshot-save job failed: Snapshot '{name}' "
                                            "already exists in one or more devices")

    @staticmethod
    def check_job_id(name: str, command: str, job: str) -> None:
        """qemuSnapshotCreateActiveInternal and friends name the QMP job internal-snapshot-JOB-NAME:
        QEMU refuses a name with other characters than JOB_ID_CHARS (seen on 11.3.0 for ' ', '+',
        ',', "'", '"', 'é')."""
        if not set(name) <= JOB_ID_CHARS:
            raise ModelError(INVALID_ARGUMENT, f"internal error: unable to execute QEMU command '{command}': "
                                               f"Invalid job ID 'internal-snapshot-{job}-{name}'")

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        target = self.resolve(machine, op, "revert")
        state = qemu_state(machine)
        if target.id not in state.external:
            super().revert(machine, op)
            return
        # 11.3.0, seen: a revert to an external snapshot succeeds (qemuSnapshotRevertExternal); a
        # new overlay <image>.<epoch second> on the snapshot's file takes the writes and the
        # discarded one is deleted; the domain boots afresh: shut off unless RUNNING or PAUSED,
        # from whatever power state and whatever state the snapshot recorded
        Libvirt.revert(self, machine, op)
        state.live = state.overlay_of[target.id] = f"revert-{target.id}-{machine.clock}"
        state.migration_paused, state.pending_flash = False, None
        for index, content in self.restored_by_revert(machine, target).items():
            machine.put_back(content, (index,))
        if target.memory is not None and machine.power == "paused":
            # back from the memory file and paused: its nodes stay inactive, and the flash it
            # carries is written to the NVRAM when the domain runs (pflash's run-state hook) [§9.18, §9.22]
            state.migration_paused = True
            state.pending_flash = state.flash.get(target.id)

    def restored_by_revert(self, machine: Machine, target: Snapshot) -> dict[int, dict[int, str]]:
        # loading the memory file writes the flash it carries back to the NVRAM [§9.18]
        flash = qemu_state(machine).flash.get(target.id)
        if flash is None or machine.current is not target or machine.power != "running":
            return {}
        return {i: flash for i, d in enumerate(machine.disks) if d.role == "nvram"}

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        if target.id in qemu_state(machine).external:
            # its memory file brings the domain back as it ran [§9.19]; without one it boots afresh
            return Libvirt.revert_outcome(self, machine, target, flags) if target.memory is not None \
                else self.inactive_revert(flags)
        try:
            return super().revert_outcome(machine, target, flags)
        except ModelError as error:
            if error.side_effect != ID_LOAD:
                raise
            # the same outcome as 9.0's, reported by the QMP snapshot-load job (11.3.0, seen)
            raise ModelError(DISK_ONLY, f"operation failed: load of internal snapshot '{target.name}' job "
                                        "failed: Error -22 while loading VM state", side_effect=ID_LOAD) from None

    def check_delete(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        state = qemu_state(machine)
        if "metadata-only" in flags or flags & {"children", "children-only"} or target.id not in state.external:
            super().check_delete(machine, target, flags)  # CHILDREN, CHILDREN_ONLY: 9.0's rules and words (seen)
            if "children-only" in flags and target.id in state.external and target.children and machine.current is target:
                # the current external snapshot keeps its children: 11.3.0, seen (9.0 deletes them)
                raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of active external snapshot "
                                              "that is not a leaf snapshot is not supported")
            if machine.power != "shutoff" and "metadata-only" not in flags:
                for node in self.deleted(machine, target, flags):  # QMP snapshot-delete: the same job id rule (seen on 11.3.0)
                    if node.id not in state.external:
                        self.check_job_id(node.name, "snapshot-delete", "delete")
            return
        # an external snapshot, without flags: qemuSnapshotDeleteValidate and
        # qemuSnapshotDeleteExternalPrepareData, in the order seen on 11.3.0
        if len(target.children) > 1:
            raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of external disk snapshot with "
                                          "multiple children snapshots not supported")
        outside_leaf = not target.children and not self.in_active_chain(machine, target)
        if target.parent is not None and target.parent.id not in state.external and not outside_leaf:
            # a leaf outside the domain's chain (after a revert to its internal parent) goes: only its
            # metadata, its overlay file stays behind (11.3.0, seen: virt-manager #811) [§9.21]
            raise ModelError(UNSUPPORTED, "Operation not supported: deleting external snapshot that has internal "
                                          "snapshot as parent not supported")
        if target.children and machine.current is target:
            raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of active external snapshot that "
                                          "is not a leaf snapshot is not supported")
        if target.children and not self.in_active_chain(machine, target):
            raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of non-leaf external snapshot that "
                                          "is not in active chain is not supported")
        if machine.current is target and state.live != state.overlay_of[target.id]:
            # current by its metadata (a redefine with CURRENT) while the domain runs on another
            # overlay: the commit finds other files than the snapshot names (11.3.0, seen) [§7.19]
            raise ModelError(INVALID_STATE, "operation failed: snapshot VM disk source and parent disk source are "
                                            "not the same")
