"""libvirt 9.0's QEMU driver [semantics.md §7]: internal snapshots in the disks' qcow2 tables and
external overlays (the state the driver keeps of them: ``libvirt_qemu_state.py``; its rules for
several disks, firmware NVRAM and memory files: ``libvirt_qemu_disks.py``; 11.3's differences:
``libvirt_qemu_113.py``; its metadata operations: ``libvirt_qemu_metadata.py``)."""

from __future__ import annotations

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import BASIC_TRANSITIONS, DISK_ONLY, INVALID_ARGUMENT, INVALID_STATE, UNSUPPORTED
from .libvirt import INVALID, Libvirt
from .libvirt_qemu_disks import QemuDriverDisks
from .libvirt_qemu_metadata import PHANTOM_LOAD, UNSAVED_METADATA, QemuDriverMetadata
from .libvirt_qemu_state import Qcow2Entry, QemuDriverState, qemu_state

ID_LOAD = "a revert that loads another snapshot's disk and no memory leaves the domain shut off"


def _rest_on(machine: Machine, base: Snapshot | None, view: dict[int, str], left_out: tuple[int, ...]) -> None:
    """Make the running state read ``view`` on top of ``base`` (only the differing blocks), but
    for the disks ``left_out`` of the snapshot QEMU loaded: they keep what they read."""
    kept = machine.running_content(left_out) if left_out else {}
    under = machine.view(base)
    machine.overlay = {b: view.get(b, "") for b in view.keys() | under.keys() if view.get(b, "") != under.get(b, "")}
    if left_out:
        machine.put_back(kept, left_out)


class LibvirtQemu(QemuDriverMetadata, QemuDriverDisks, Libvirt):
    """Internal snapshots (with memory when the domain runs), and external disk-only ones."""

    name = "libvirt-qemu"
    system = "libvirt 9.0.0 QEMU driver (qemu:///embed), QEMU 7.2"
    versions = {"libvirt": ("9.0", "11.3"), "QEMU": ("7.2", None)}
    family = "libvirt-qemu"
    summary = "libvirt's tree over qcow2 internal snapshots, and external disk-only overlays"
    driver_function = "qemu"
    supported_create = frozenset({"redefine", "current", "no-metadata", "halt", "disk-only", "quiesce", "atomic", "live",
                                  "validate"})
    # the states a check draws for a new redefined snapshot: a revert to an internal one of
    # state disk-snapshot was never seen
    redefined_states = ("running", "paused", "shutoff")
    supported_delete = frozenset({"children", "children-only", "metadata-only"})
    failure_side_effects = frozenset({UNSAVED_METADATA, PHANTOM_LOAD, ID_LOAD})
    nvram = True  # UEFI firmware: <loader type='pflash'>, <nvram> [§9.17]
    create_disk_modes = frozenset({"internal", "external", "no"})  # <disks><disk snapshot=...> [§9.1]
    external_memory = True  # <memory snapshot='external' file=...> [§9.19]
    # qemuDomainSuspend succeeds on a paused domain (libvirt 9.0.0, seen)
    transitions = {**BASIC_TRANSITIONS, "pause": {"running": "paused", "paused": "paused"}}

    def bad_power(self, operation: str, power: str) -> ModelError:
        if operation == "start":
            return ModelError(INVALID_STATE, INVALID + "domain is already running")
        if operation == "resume" and power == "running":
            return ModelError(INVALID_STATE, INVALID + "domain is already running")
        return ModelError(INVALID_STATE, INVALID + "domain is not running")

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        if "quiesce" in flags and "disk-only" not in flags:
            raise ModelError(INVALID_ARGUMENT, "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY' is required by flag "
                                               "'VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE'")
        if op.memory and ("disk-only" in flags or machine.power == "shutoff"):  # parsing the XML (libvirt 9.0.0, seen)
            raise ModelError(INVALID_ARGUMENT, "XML error: memory state cannot be saved with offline or disk-only "
                                               "snapshot")
        if "disk-only" in flags or op.memory is False:
            return False  # check_name refuses a running domain's internal snapshot without memory
        return machine.power != "shutoff"

    def check_name(self, machine: Machine, op: ops.CreateSnapshot, name: str, memory: bool,
                   flags: frozenset[str]) -> None:
        if "/" in name:  # qemuSnapshotCreateXML [§7.9]
            raise ModelError(INVALID_ARGUMENT, f"invalid snapshot name '{name}': name can't contain '/'")
        if name.startswith("."):
            raise ModelError(INVALID_ARGUMENT, f"invalid snapshot name '{name}': name can't start with '.'")
        # the checks below come after the name's, in this order (libvirt 9.0.0, seen)
        if "live" in flags and op.memory_file is None:  # LIVE needs an external memory snapshot [§9.19]
            raise ModelError(UNSUPPORTED, "Operation not supported: live snapshot creation is supported only "
                                          "during full system snapshots")
        if not memory and "disk-only" not in flags and machine.power != "shutoff":
            raise ModelError(UNSUPPORTED, "Operation not supported: internal snapshot of a running VM must "
                                          "include the memory state")
        if "quiesce" in flags and machine.power != "shutoff":
            if machine.named(name):  # the name is found taken before the guest agent is asked for
                raise self.duplicate(name)  # (9.0.0 and 11.3.0, seen)
            raise self.quiesce_refusal(machine)

    def before_take(self, machine: Machine, op: ops.CreateSnapshot, name: str, memory: bool,
                    flags: frozenset[str]) -> None:
        """QEMU's checks once libvirt's (the disks', a taken name) have passed; then the metadata
        file, written last."""
        if op.memory_file is None:  # an external memory snapshot goes through a migration, not a savevm
            self.before_taking(machine, name, memory, flags)
        if "no-metadata" not in flags and len(name.encode()) + len(".xml.new") > 255:
            # (NO_METADATA writes no metadata file: 11.3.0, seen, and qemuSnapshotCreate)
            # qcow2 takes the snapshot, then libvirt cannot write DIR/NAME.xml.new (NAME_MAX 255):
            # it is not listed and there is no current snapshot afterwards (libvirt 9.0.0, seen).
            # The running state keeps reading the same: it no longer rests on a snapshot.
            view = machine.view(None)
            machine.overlay, machine.current = dict(view), None
            qemu_state(machine).take(name, view, machine.ram if machine.power != "shutoff" else None, None)  # left unlisted
            if "halt" in flags:  # the snapshot was taken and the domain halted before the failure (seen)
                machine.load_memory(None, "shutoff")
            raise ModelError(INVALID_ARGUMENT, f"internal error: unable to save metadata for snapshot {name}",
                             side_effect=UNSAVED_METADATA)

    def quiesce_refusal(self, machine: Machine) -> ModelError:
        if machine.power == "paused":  # the guest agent needs a running guest, asked first (9.0.0 and 11.3.0, seen)
            return ModelError(INVALID_STATE, "Requested operation is not valid: domain is not running")
        return ModelError(UNSUPPORTED, "argument unsupported: QEMU guest agent is not configured")  # it has none

    def before_taking(self, machine: Machine, name: str, memory: bool, flags: frozenset[str]) -> None:
        """The checks of QEMU itself, once libvirt's have passed: 9.0's HMP savevm, in a domain
        paused by an external memory snapshot that left a disk out, finds that disk's node
        (libvirt-N-format, numbered from the last disk) writable and refuses (seen) [§9.22]."""
        state = machine.profile_state
        if not (isinstance(state, QemuDriverState) and state.migration_paused):
            return
        disks = [(i, d) for i, d in enumerate(machine.disks) if d.role == "disk"]
        left = [n for n, (i, d) in enumerate(disks) if i in state.migration_left_out and not d.readonly]
        if left:
            raise ModelError(UNSUPPORTED, "operation failed: Failed to take snapshot: Error: Device "
                                          f"'libvirt-{len(disks) - left[0]}-format' is writable but does not support "
                                          "snapshots")

    # -- several disks [§9.14-§9.20] --------------------------------------------------------

    def recorded_state(self, machine: Machine, memory: bool, flags: frozenset[str]) -> str:
        # a disk-only snapshot records the domain's state but holds no memory
        # seen on 9.0.0: an external snapshot of a shut-off domain records "shutoff"
        return "disk-snapshot" if "disk-only" in flags and machine.power != "shutoff" else machine.power

    def after_create(self, machine: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        state = qemu_state(machine)
        if '"' in snap.name and snap.memory is not None and "external" not in snap.modes:
            # taken by HMP savevm: see QemuDriverState.phantoms
            # no point in time was saved: the snapshot reads '?' everywhere, and the running
            # state (and so every later snapshot) holds the whole disk itself
            recorded = [a for i in range(len(machine.disks)) if i not in snap.left_out() for a in machine.addresses(i)]
            full = {address: machine.read(snap, address) for address in recorded}
            snap.delta = {address: "?" for address in recorded}
            machine.overlay.update(full)  # beside the writes to the disks it left out
            state.phantoms.add(snap.id)
            state.file_of[snap.id] = state.live
        elif "external" in snap.modes:  # the domain's disks move to new overlays on top of the old files
            state.external.add(snap.id)
            nvram = tuple(i for i, d in enumerate(machine.disks) if d.role == "nvram")
            if snap.memory is not None and nvram:
                state.flash[snap.id] = machine.running_content(nvram)
            if snap.memory_file is not None and machine.power == "paused" and self.pauses_for_migration:
                state.migration_paused, state.migration_left_out = True, snap.left_out()
            state.base_of[snap.id] = state.live
            state.live = state.overlay_of[snap.id] = f"overlay-{snap.id}-{machine.clock}"
        else:
            if machine.power != "shutoff":  # HMP savevm overwrites the first tag of that name (9.0.0, seen)
                first = state.found(snap.name)
                if first is not None:
                    state.qcow2.remove(first)
            state.take(snap.name, machine.view(snap), snap.memory, snap.id, snap.left_out())
            state.file_of[snap.id] = state.live
        super().after_create(machine, snap, flags)
        if machine.power == "shutoff":  # HALT stopped QEMU, and whatever a migration left paused with it
            state.migration_paused = False

    def qcow2_source(self, machine: Machine, target: Snapshot) -> Qcow2Entry | None:
        """The qcow2 snapshot QEMU applies for ``target``: by id first, then by name, in the table
        of the image file that holds it (seen on 9.0.0: "2", the first snapshot of an external
        overlay, reverts to the overlay's id 2)."""
        state = qemu_state(machine)
        file = state.file_of.get(target.id, state.live)
        table = [e for e in state.qcow2 if e.file == file]
        by_id = next((e for e in table if str(e.id) == target.name), None)
        return by_id or next((e for e in table if e.name == target.name), None)

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        super().revert(machine, op)
        target = machine.current
        state = qemu_state(machine)
        state.migration_paused, state.pending_flash = False, None
        if target is not None and target.id in state.file_of:  # the domain's disk is the snapshot's file again
            state.live = state.file_of[target.id]
        source = self.qcow2_source(machine, target) if target is not None else None
        if target is not None and source is not None and source.snapshot != target.id:
            _rest_on(machine, target, source.view, source.left_out)  # the disk of the qcow2 snapshot with that id

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        state = qemu_state(machine)
        if target.id in state.phantoms:  # QEMU's -loadvm fails and QEMU exits; current stays (9.0.0, seen)
            machine.load_memory(None, "shutoff")
            raise self.revert_failure(machine, target)
        if target.id in state.external:
            raise ModelError(UNSUPPORTED, "unsupported configuration: revert to external snapshot not supported yet")
        power, image = super().revert_outcome(machine, target, flags)
        source = self.qcow2_source(machine, target)
        if source is None or source.snapshot == target.id or image is None:
            return power, image
        if source.image is None:  # QEMU applied the other disk, then found no memory to load
            _rest_on(machine, machine.current, source.view, source.left_out)
            machine.load_memory(None, "shutoff")
            raise ModelError(DISK_ONLY, "internal error: qemu unexpectedly closed the monitor: Not a migration "
                                        "stream", side_effect=ID_LOAD)
        return power, source.image

    def inactive_revert(self, flags: frozenset[str]) -> tuple[str, str | None]:
        # the QEMU driver starts (or pauses) the domain for RUNNING or PAUSED [§7.8]
        if "running" in flags:
            return "running", None
        if "paused" in flags:
            return "paused", None
        return "shutoff", None

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        state = qemu_state(machine)
        if "metadata-only" not in flags and state.migration_paused and any(
                node.id in state.external and self.in_active_chain(machine, node)
                for node in self.deleted(machine, target, flags)):  # its nodes are inactive (9.0.0, seen) [§9.22]
            raise ModelError(INVALID_STATE, "internal error: unable to execute QEMU command 'block-commit': Block "
                                            "node is read-only")
        if "metadata-only" not in flags:  # the qcow2 snapshots go too, found by name (delvm, qemu-img -d)
            for node in self.deleted(machine, target, flags):
                self.commit_external(machine, node)
                entry = self.qcow2_entry_deleted(machine, node)
                if entry is not None:
                    state.qcow2.remove(entry)
        self.forget(machine, target, flags)
        super().remove(machine, target, flags)

    def qcow2_entry_deleted(self, machine: Machine, node: Snapshot) -> Qcow2Entry | None:
        """The qcow2 snapshot a delete removes: by name, in the snapshot's own file."""
        state = qemu_state(machine)
        if node.id in state.external or ('"' in node.name and machine.power != "shutoff"):
            return None  # an overlay has no entry; HMP delvm cannot parse a name with '"' either
        file = state.file_of.get(node.id, state.live)
        return next((e for e in state.qcow2 if e.name == node.name and e.file == file), None)

    @staticmethod
    def deleted(machine: Machine, target: Snapshot, flags: frozenset[str]) -> list[Snapshot]:
        nodes = machine.subtree(target)
        return nodes if "children" in flags else nodes[:-1] if "children-only" in flags else [target]

    @staticmethod
    def in_active_chain(machine: Machine, target: Snapshot) -> bool:
        """Whether the domain's disk runs on ``target``: an external snapshot's overlay is in the
        chain of files under the domain's disk (the tree's current pointer can move without the
        files: a redefine with CURRENT); an internal one is an ancestor of current."""
        state = qemu_state(machine)
        if target.id in state.external:
            file: str | None = state.live
            seen: set[str] = set()
            while file is not None and file not in seen:
                if file == state.overlay_of[target.id]:
                    return True
                seen.add(file)
                owner = next((sid for sid, overlay in state.overlay_of.items() if overlay == file), None)
                file = None if owner is None else state.base_of.get(owner)
            return False
        node = machine.current
        while node is not None and node is not target:
            node = node.parent
        return node is target

    def commit_external(self, machine: Machine, node: Snapshot) -> None:
        """Deleting an external snapshot on the current chain commits its overlay into its base
        (qemuSnapshotDeleteExternal): whatever rested on the overlay rests on the base."""
        state = qemu_state(machine)
        if node.id in state.external and self.in_active_chain(machine, node):
            # the snapshot's descendants follow; one made of metadata elsewhere in the tree keeps
            # naming the overlay (9.0.0, 11.3.0, seen: its delete is then refused as off the VM's disk)
            state.merged(state.overlay_of[node.id], state.base_of[node.id], {s.id for s in machine.subtree(node)})

    def forget(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        """A name is an id: a later snapshot of a deleted one's name starts afresh."""
        state = qemu_state(machine)
        for node in self.deleted(machine, target, flags):
            if "metadata-only" in flags:
                self.unlist_files(state, node.id)
                continue
            for table in (state.file_of, state.overlay_of, state.base_of, state.named_files):
                table.pop(node.id, None)
            state.external.discard(node.id)

    def check_delete(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        # libvirt 9.0's rules for external snapshots [§7.13]; which of them
        # CHILDREN and CHILDREN_ONLY meet was seen on 9.0.0: an external descendant refuses both,
        # an external target refuses CHILDREN (even as a leaf) and lets CHILDREN_ONLY through
        if "metadata-only" in flags:
            return
        state = qemu_state(machine)
        external = state.external
        if target.id not in external and machine.power != "shutoff" and state.file_of.get(target.id, state.live) != state.live:
            # qemuSnapshotDeleteValidate: a running domain deletes an internal snapshot through
            # its own disk only (seen on 9.0.0 and 11.3.0)
            raise ModelError(UNSUPPORTED, "Operation not supported: disk image 'vda' for internal snapshot "
                                          f"'{target.name}' is not the same as disk image currently used by VM")
        if flags & {"children", "children-only"}:
            if any(node.id in external for node in machine.subtree(target)[:-1]):
                raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of external children disk "
                                              "snapshots not supported")
            if "children" in flags and target.id in external:
                raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of external disk snapshots "
                                              "with children not supported")
            return
        if target.id not in external:
            return
        if not self.in_active_chain(machine, target):
            # after a revert to its internal parent the domain's disk is the parent's file, whose
            # chain has no overlay of the target (9.0.0, seen: virt-manager #811) [§9.21]
            raise ModelError(INVALID_ARGUMENT, "invalid argument: could not find base disk source in disk source chain")
        if machine.power == "shutoff" and state.overlay_of[target.id] != state.live:
            # a shut-off domain's chain is not looked into: only the top overlay is found (9.0.0, seen)
            raise ModelError(INVALID_ARGUMENT, "invalid argument: could not find base disk source in disk source chain")
        if target.parent is not None and target.parent.id not in external:
            raise ModelError(UNSUPPORTED, "unsupported configuration: deleting external snapshot that has "
                                          "internal snapshot as parent not supported")
        if target.parent is not None and any(mode == "external" and parent_mode != "external" for mode, parent_mode
                                             in zip(target.modes, target.parent.modes, strict=True)):
            # an external parent that left one of the target's disks out is internal there, per disk
            # (qemuSnapshotDeleteExternalPrepareData; 9.0.0, seen)
            raise ModelError(UNSUPPORTED, "Operation not supported: deleting external snapshot that has internal "
                                          "snapshot as parent not supported")
