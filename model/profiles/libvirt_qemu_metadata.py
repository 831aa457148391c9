"""libvirt's QEMU driver, its metadata operations [semantics.md §7.18, §7.19]: NO_METADATA
(QEMU takes the snapshot, libvirt keeps no record) and REDEFINE over the qcow2 tags that stay."""

from __future__ import annotations

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import INVALID_ARGUMENT, NOT_FOUND, UNSUPPORTED
from .libvirt import ONLINE, Libvirt
from .libvirt_qemu_state import QemuDriverState, qemu_state

# libvirt 9.0.0's QEMU driver, seen: a name too long for its metadata file fails after qcow2 took it
UNSAVED_METADATA = "a snapshot whose metadata cannot be saved leaves no current snapshot"
PHANTOM_LOAD = "a revert to a snapshot QEMU never took leaves the domain shut off"


class QemuDriverMetadata(Libvirt):
    """The QEMU driver's NO_METADATA and REDEFINE (a mixin of ``LibvirtQemu``)."""

    def lists(self, flags: frozenset[str]) -> bool:
        return "no-metadata" not in flags  # QEMU takes it; libvirt keeps no record, so no name clashes

    def next_id(self, machine: Machine, name: str) -> str:
        # a NO_METADATA snapshot of a listed name is taken beside it, then unlisted (create)
        return name if name not in machine.snapshots else f"{name}\0unlisted"

    def create(self, machine: Machine, op: ops.CreateSnapshot) -> Snapshot | None:  # type: ignore[override]
        snap = super().create(machine, op)
        if "no-metadata" not in op.flags:
            return snap
        # not listed, not current, the running state reads the same: only the qcow2 tag (or the
        # overlay an external one made) stays (9.0.0 and 11.3.0, seen)
        state = qemu_state(machine)
        for entry in state.qcow2:
            entry.snapshot = None if entry.snapshot == snap.id else entry.snapshot
        self.unlist_files(state, snap.id)
        state.flash.pop(snap.id, None)
        state.phantoms.discard(snap.id)
        machine.remove(snap)
        return None

    @staticmethod
    def unlist_files(state: QemuDriverState, snapshot_id: str) -> None:
        """A snapshot's metadata is gone, its files stay: an overlay it made stays in the chain of
        files (under a key of its own, so that a later snapshot of the name starts afresh)."""
        state.file_of.pop(snapshot_id, None)
        state.named_files.pop(snapshot_id, None)
        if snapshot_id in state.overlay_of:
            overlay = state.overlay_of.pop(snapshot_id)
            state.overlay_of[f"{snapshot_id}\0{overlay}"] = overlay
            state.base_of[f"{snapshot_id}\0{overlay}"] = state.base_of.pop(snapshot_id)
        state.external.discard(snapshot_id)

    def before_redefine(self, machine: Machine, op: ops.Redefine, flags: frozenset[str]) -> None:
        if len(op.name.encode()) + len(".xml.new") > 255:  # NAME_MAX, as for a create [§7.12]
            # nothing is added; with CURRENT the current pointer is gone (9.0.0, seen)
            if "current" in flags:
                machine.rebase(None)
            raise ModelError(INVALID_ARGUMENT, f"internal error: unable to save metadata for snapshot {op.name}",
                             side_effect=UNSAVED_METADATA if "current" in flags else None)

    def check_redefined_disks(self, machine: Machine, op: ops.Redefine, modes: tuple[str, ...]) -> None:
        # virDomainSnapshotAlignDisks wants every disk internal unless one is external (9.0.0, 11.3.0, seen)
        if "external" in modes:
            return
        for disk, mode in zip(machine.disks, modes, strict=True):
            if disk.role == "disk" and mode == "no" and disk.mode != "no":
                raise ModelError(UNSUPPORTED, f"unsupported configuration: disk '{disk.name}' must use snapshot "
                                              "mode 'internal'")

    def redefined_content(self, machine: Machine, name: str, memory: bool) -> tuple[dict[int, str], str | None]:
        """A redefined snapshot is the qcow2 tag of its name in the domain's disk, if QEMU has one
        (left by a METADATA_ONLY delete or a NO_METADATA create): a revert loads it (seen)."""
        state = qemu_state(machine)
        entry = state.tag(name)
        if entry is None:
            return super().redefined_content(machine, name, memory)
        return dict(entry.view), (entry.image or machine.new_memory_image()) if memory else None

    def after_redefine(self, machine: Machine, node: Snapshot) -> None:
        state = qemu_state(machine)
        state.file_of[node.id] = state.live
        tag = state.tag(node.name)
        if tag is None:
            state.phantoms.add(node.id)  # QEMU has no tag of it: a revert fails and stops the domain
            state.named_files[node.id] = self.disk_files(machine)
        else:  # the tag is no record of this snapshot's: a revert loads what it holds, VM state or none
            tag.snapshot = None
        # the NVRAM is no <disk> of the XML: it is in the snapshot where the tag is in its file
        held = () if tag is None else tuple(i for i in range(len(machine.disks)) if i not in tag.left_out)
        node.modes = tuple(("internal" if i in held else "no") if d.role == "nvram" else mode
                           for i, (d, mode) in enumerate(zip(machine.disks, node.modes, strict=True)))

    @staticmethod
    def disk_files(machine: Machine) -> dict[int, str]:
        """The file each disk of the domain is now: the overlay of the latest external snapshot
        under the domain's disk that took that disk (one that left the disk out made it none)."""
        state = qemu_state(machine)
        owners = {overlay: key for key, overlay in state.overlay_of.items()}
        files = {}
        for i, disk in enumerate(machine.disks):
            file = state.live
            while disk.role == "disk" and file in owners:
                taker = machine.snapshots.get(owners[file])  # None: unlisted, took every disk it could
                if taker is None or taker.modes[i] == "external":
                    break
                file = state.base_of[owners[file]]
            files[i] = file
        return files

    def revert_failure(self, machine: Machine, target: Snapshot) -> ModelError:
        """A revert to a snapshot QEMU never took: before QEMU starts, libvirt finds a file the
        definition names gone, if a commit removed it (9.0.0, 11.3.0, seen); else QEMU's failure."""
        removed = qemu_state(machine).removed_file(target.id)
        if removed is None:
            return self.phantom_failure(machine, target)
        disk, file = removed
        return ModelError(NOT_FOUND, f"Cannot access storage file of disk '{machine.disks[disk].name}' "
                                     f"({file.rsplit('-', 1)[0]}): No such file or directory", side_effect=PHANTOM_LOAD)

    def phantom_failure(self, machine: Machine, target: Snapshot) -> ModelError:
        """A revert to a snapshot QEMU does not have: 9.0 starts QEMU with -loadvm for an online
        one (which first finds a writable raw disk), runs qemu-img snapshot -a for an offline one (seen)."""
        if target.state in ONLINE and any(d.format == "raw" and d.role == "disk" and not d.readonly
                                          for d in machine.disks):
            return ModelError(UNSUPPORTED, "internal error: qemu unexpectedly closed the monitor: Device "
                                           "'libvirt-1-format' is writable but does not support snapshots",
                              side_effect=PHANTOM_LOAD)
        if target.state in ONLINE:
            return ModelError(NOT_FOUND, "internal error: qemu unexpectedly closed the monitor: Snapshot "
                                         f"'{target.name}' does not exist in one or more devices", side_effect=PHANTOM_LOAD)
        return ModelError(NOT_FOUND, f"internal error: Child process (/usr/bin/qemu-img snapshot -a {target.name} DISK) "
                                     f"unexpected exit status 1: qemu-img: Could not apply snapshot '{target.name}': "
                                     "Failed to load snapshot: No such file or directory", side_effect=PHANTOM_LOAD)
