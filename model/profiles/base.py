"""What every profile shares: the order in which an operation's rules are checked, and the
defaults that most hypervisors agree on.  A profile module sets class attributes (its data)
and overrides the few hooks where its system differs; each override cites its source."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from .. import ops
from ..disks import Disk
from ..errors import ErrorKind, ModelError
from ..machine import Machine, Snapshot

NOT_FOUND, DUPLICATE, HAS_CHILDREN = ErrorKind.NOT_FOUND, ErrorKind.DUPLICATE_NAME, ErrorKind.HAS_CHILDREN
INVALID_STATE, UNSUPPORTED, INVALID_ARGUMENT = ErrorKind.INVALID_STATE, ErrorKind.UNSUPPORTED, ErrorKind.INVALID_ARGUMENT
DISK_ONLY = ErrorKind.DISK_ONLY

# Power states the VM may be in when a profile's power operation is applied, and where it goes.
BASIC_TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {"shutoff": "running"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "shutdown": {"running": "shutoff", "paused": "shutoff"},
}
SAVED_STATES = ("suspended", "saved")  # off, with the RAM kept on disk


class Profile:
    name: ClassVar[str]
    system: ClassVar[str]  # the system, API and version the profile follows
    summary: ClassVar[str]  # one line for `snaptree profiles`
    # The versions of the real components it follows: {"libvirt": ("9.0", "11.3")} is from 9.0
    # up to, not including, 11.3; None: no upper bound known.  Profiles of one system at other
    # versions share a family (by default the profile is a family of its own).
    versions: ClassVar[dict[str, tuple[str, str | None]]] = {}
    family: ClassVar[str] = ""
    tree: ClassVar[bool] = True  # parents, children and a current snapshot are part of the API
    # the order of a snapshot's children (and of the roots) is part of the API: listings and
    # lookups of duplicate names follow it
    sibling_order: ClassVar[bool] = False
    disk: ClassVar[bool] = True  # the system keeps disk content: writes land, points in time read them
    transitions: ClassVar[dict[str, dict[str, str]]] = BASIC_TRANSITIONS
    ids: ClassVar[str] = "name"  # "counter" (never reused), "reuse" (highest + 1), "uuid", "name"
    lookup: ClassVar[str] = "preorder"  # which of several same-named snapshots a name finds
    duplicates: ClassVar[str] = "allow"  # or "refuse", or "overwrite"
    name_limit: ClassVar[int | None] = None  # bytes kept of a name; the rest is cut silently
    create_flags: ClassVar[frozenset[str]] = frozenset()
    revert_flags: ClassVar[frozenset[str]] = frozenset()
    delete_flags: ClassVar[frozenset[str]] = frozenset()
    exclusive: ClassVar[tuple[frozenset[str], ...]] = ()  # flag pairs that cannot be combined
    revert_to_current: ClassVar[bool] = False  # a revert without a name targets the current snapshot
    empty_name_is_unnamed: ClassVar[bool] = False  # an empty name is treated as no name
    lookup_before_flags: ClassVar[bool] = False  # a missing snapshot is reported before bad flags
    # Side effects a failed operation of this profile may have (the real system's behaviour).
    failure_side_effects: ClassVar[frozenset[str]] = frozenset()
    # -- disks (model/disks.py) --
    single_disk: ClassVar[bool] = False  # the API works on one image file
    disk_modes: ClassVar[frozenset[str]] = frozenset({"normal"})  # the layout modes the system knows
    excluded_as: ClassVar[str | None] = None  # its mode for a disk left out of every snapshot, if any
    nvram: ClassVar[bool] = False  # the system knows firmware with a writable variable store
    snapshot_kind: ClassVar[str] = "internal"  # what a snapshot does with a disk it includes
    create_disk_modes: ClassVar[frozenset[str]] = frozenset()  # per-disk modes a create may name
    external_memory: ClassVar[bool] = False  # a create may put the memory image in a file of its own
    keeps_first_disk: ClassVar[bool] = False  # checks draw no per-disk mode "no" for the first disk

    # -- dispatch --------------------------------------------------------------------------

    def supports(self, tag: str) -> bool:
        """Whether the system has this operation at all (a refusal of every use is no test)."""
        if tag in ("start", "pause", "resume", "shutdown", "suspend"):
            return bool(self.transitions.get(tag))
        if tag == "delete-all":
            return type(self).delete_all is not Profile.delete_all
        if tag == "write":
            return self.disk
        if tag == "redefine":
            return type(self).redefine is not Profile.redefine
        return True

    def own_layout(self, disks: tuple[Disk, ...]) -> tuple[Disk, ...]:
        """The layout in the system's own words: the portable mode "excluded" (a disk left out of
        every snapshot) becomes the system's mode for that."""
        if self.excluded_as is None or not any(disk.mode == "excluded" for disk in disks):
            return disks
        return tuple(dataclasses.replace(disk, mode=self.excluded_as) if disk.mode == "excluded" else disk
                     for disk in disks)

    def layout_problem(self, disks: tuple[Disk, ...]) -> str | None:
        """Why the system cannot have a VM of this layout (None: it can)."""
        if self.single_disk and len(disks) > 1:
            return f"{self.name} works on one image: a VM of {len(disks)} disks is not one"
        for disk in self.own_layout(disks):
            if disk.mode == "excluded":
                return f"{self.name} cannot leave a disk out of every snapshot"
            if disk.mode not in self.disk_modes:
                return f"{self.name} knows no disk mode '{disk.mode}' (it knows: {', '.join(sorted(self.disk_modes))})"
            if disk.role == "nvram" and not self.nvram:
                return f"{self.name} has no firmware variable store (nvram disk {disk.name})"
        return None

    def accepted_flags(self, tag: str) -> frozenset[str]:
        """The flags of an operation ("snapshot", "revert", "delete") that the system does not
        refuse outright (libvirt knows flags that a driver then rejects)."""
        return {"snapshot": self.create_flags, "redefine": self.create_flags, "revert": self.revert_flags,
                "delete": self.delete_flags}[tag]

    def perform(self, machine: Machine, op: ops.Operation) -> Snapshot | None:
        if isinstance(op, ops.Write):
            self.write(machine, op)
        elif isinstance(op, ops.POWER_OPS):
            self.power(machine, op.tag)
        elif isinstance(op, ops.CreateSnapshot):
            return self.create(machine, op)
        elif isinstance(op, ops.Revert):
            self.revert(machine, op)
        elif isinstance(op, ops.Delete):
            self.delete(machine, op)
        elif isinstance(op, ops.DeleteAll):
            self.delete_all(machine)
        elif isinstance(op, ops.Redefine):
            return self.redefine(machine, op)
        else:
            raise TypeError(f"not an operation: {op!r}")
        return None

    # -- messages (overridden with the vendor's words) --------------------------------------

    def not_found(self, ref: str, purpose: str) -> ModelError:
        return ModelError(NOT_FOUND, f"no snapshot named '{ref}'")

    def duplicate(self, name: str) -> ModelError:
        return ModelError(DUPLICATE, f"snapshot '{name}' already exists")

    def unknown_flag(self, flag: str, operation: str) -> ModelError:
        return ModelError(INVALID_ARGUMENT, f"{self.name}: unknown {operation} flag '{flag}'")

    def exclusive_flags(self, pair: frozenset[str]) -> ModelError:
        first, second = sorted(pair)
        return ModelError(INVALID_ARGUMENT, f"flags '{first}' and '{second}' are mutually exclusive")

    def unsupported(self, what: str) -> ModelError:
        return ModelError(UNSUPPORTED, f"{self.system} has no {what}")

    def bad_power(self, operation: str, power: str) -> ModelError:
        return ModelError(INVALID_STATE, f"cannot {operation}: the VM is {power}")

    def observed_current(self, machine: Machine) -> str | None:
        """The id the system reports as its current snapshot."""
        return machine.current.id if machine.current is not None else None

    # -- writes and power ------------------------------------------------------------------

    def write(self, machine: Machine, op: ops.Write) -> None:
        if not self.disk:
            raise self.unsupported("disk content")
        if op.disk is not None and op.disk not in machine.disk_index:
            raise ModelError(INVALID_ARGUMENT, f"the VM has no disk '{op.disk}'")
        if not 0 <= op.block < machine.blocks:
            raise ModelError(INVALID_ARGUMENT, f"block {op.block} is outside the disk (0..{machine.blocks - 1})")
        if machine.disks[machine.disk_index[op.disk] if op.disk is not None else 0].readonly:
            raise ModelError(INVALID_ARGUMENT, f"disk {op.disk or machine.disks[0].name} is read-only")
        machine.write(machine.address(op.disk, op.block), op.value)

    def power(self, machine: Machine, operation: str) -> None:
        moves = self.transitions.get(operation)
        if not moves:
            raise self.unsupported(f"'{operation}' operation")
        target = moves.get(machine.power)
        if target is None:
            raise self.bad_power(operation, machine.power)
        if operation == "start":
            # from a saved state the RAM on disk comes back; from shutoff the guest boots
            machine.load_memory(machine.ram if machine.power in SAVED_STATES else None, target)
        elif target in SAVED_STATES:
            machine.capture_memory()
            machine.power, machine.ram_ran = target, False
        elif target == "shutoff":
            machine.load_memory(None, "shutoff")
        else:
            machine.power = target
            machine.ram_ran = machine.ram_ran or target == "running"

    # -- create ----------------------------------------------------------------------------

    def create(self, machine: Machine, op: ops.CreateSnapshot) -> Snapshot:
        flags = self.check_flags(op.flags, self.create_flags, "create")
        if op.memory_file is not None:  # a memory file is a request for memory
            if not self.external_memory:
                raise self.unsupported("memory image in a file of its own")
            if op.memory is False:
                raise ModelError(INVALID_ARGUMENT, "a memory file for a snapshot without memory")
            op = dataclasses.replace(op, memory=True)
        memory = self.memory_for(machine, op, flags)
        modes = self.modes_for(machine, op, flags)
        unnamed = op.name is None or (op.name == "" and self.empty_name_is_unnamed)
        name = self.auto_name(machine) if unnamed or op.name is None else op.name
        self.check_name(machine, op, name, memory, flags)
        self.check_disks(machine, op, modes, memory, flags)
        replaced = None
        clash = self.find_clash(machine, name, modes) if self.lists(flags) else None
        if clash is not None:
            policy = self.duplicate_policy(memory)
            if policy == "refuse":
                raise self.duplicate_refusal(name, memory)
            if policy == "overwrite":
                replaced = clash
        self.before_take(machine, op, name, memory, flags)
        # every check has passed: from here on the state changes
        if replaced is not None:
            machine.remove(replaced)
        stored = self.stored_name(name)
        snap = machine.take(stored, self.next_id(machine, stored), memory, self.recorded_state(machine, memory, flags),
                            op.description, modes, op.memory_file if memory else None)
        self.after_create(machine, snap, flags)
        return snap

    def modes_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> tuple[str, ...]:
        """Per disk, what the snapshot does with it: what the create names, else the disk's
        default (a disk the layout keeps out of snapshots: "no")."""
        asked = dict(op.disks)
        for disk, mode in op.disks:
            if disk not in machine.disk_index:
                raise ModelError(INVALID_ARGUMENT, f"the VM has no disk '{disk}'")
            if mode not in self.create_disk_modes:
                raise ModelError(INVALID_ARGUMENT, f"{self.name} cannot snapshot a disk as '{mode}'"
                                 if self.create_disk_modes else f"{self.name} takes no per-disk snapshot modes")
        return tuple(asked.get(disk.name) or self.default_mode(disk, flags) for disk in machine.disks)

    def before_take(self, machine: Machine, op: ops.CreateSnapshot, name: str, memory: bool,
                    flags: frozenset[str]) -> None:
        """The last checks, once the system's own have passed (the hypervisor underneath); the
        default makes none."""

    def lists(self, flags: frozenset[str]) -> bool:
        """Whether a snapshot taken with these flags joins the tree (libvirt's NO_METADATA: no), and
        so may clash with its names."""
        return True

    def find_clash(self, machine: Machine, name: str, modes: tuple[str, ...]) -> Snapshot | None:
        """The existing snapshot a new one of this name (and these disk modes) clashes with."""
        return self.find_named(machine, name)

    def default_mode(self, disk: Disk, flags: frozenset[str]) -> str:
        return self.snapshot_kind if disk.mode == "normal" else "no"

    def check_disks(self, machine: Machine, op: ops.CreateSnapshot, modes: tuple[str, ...], memory: bool,
                    flags: frozenset[str]) -> None:
        """Refuse a snapshot of these disks in these modes (raise); the default takes any."""

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        """Whether the snapshot gets a memory image.  Default: yes whenever the VM has RAM; a
        request for memory of a VM that is off is a disk snapshot."""
        has_ram = machine.power != "shutoff"
        return has_ram if op.memory is None else op.memory and has_ram

    def auto_name(self, machine: Machine) -> str:
        """libvirt names an unnamed snapshot after the epoch second [semantics.md §7.2]."""
        return str(machine.clock)

    def check_name(self, machine: Machine, op: ops.CreateSnapshot, name: str, memory: bool,
                   flags: frozenset[str]) -> None:
        """Refuse a name or flag combination (raise); the default accepts every name."""

    def stored_name(self, name: str) -> str:
        if self.name_limit is None:
            return name
        raw = name.encode()
        if len(raw) <= self.name_limit:
            return name
        # cut at a byte count, even inside a UTF-8 character [semantics.md §4.6]
        return raw[: self.name_limit].decode("utf-8", errors="replace")

    def duplicate_policy(self, memory: bool) -> str:
        return self.duplicates

    def duplicate_refusal(self, name: str, memory: bool) -> ModelError:
        return self.duplicate(name)

    def next_id(self, machine: Machine, name: str) -> str:
        if self.ids == "counter":
            machine.id_counter += 1
            return str(machine.id_counter)
        if self.ids == "reuse":
            return str(max((int(i) for i in machine.snapshots), default=0) + 1)
        if self.ids == "uuid":
            machine.id_counter += 1
            return f"00000000-0000-4000-8000-{machine.id_counter:012x}"
        return name  # "name": names are unique, and a snapshot's name is its identity

    def recorded_state(self, machine: Machine, memory: bool, flags: frozenset[str]) -> str:
        return machine.power

    def after_create(self, machine: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        pass

    # -- revert ----------------------------------------------------------------------------

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        target, flags = self.target_and_flags(machine, op, "revert", self.revert_flags)
        power, image = self.revert_outcome(machine, target, flags)
        machine.restore(target)
        machine.load_memory(image, power)

    def restored_by_revert(self, machine: Machine, target: Snapshot) -> dict[int, dict[int, str]]:
        """Disks ``target`` left out that the revert to it nevertheless sets, and what they read
        after it (ESX empties a nonpersistent disk; QEMU writes back the NVRAM a memory state
        carries); the other disks it left out read as they did."""
        return {}

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        """The power state after reverting and the memory image the RAM comes from (None: a
        fresh boot, when the VM ends up on).  Default: the snapshot's own recorded state."""
        return target.state, target.memory

    # -- delete ----------------------------------------------------------------------------

    def delete(self, machine: Machine, op: ops.Delete) -> None:
        target, flags = self.target_and_flags(machine, op, "delete", self.delete_flags)
        self.check_delete(machine, target, flags)
        self.remove(machine, target, flags)

    def check_delete(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        pass

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        """libvirt's delete flags, which most profiles map onto [semantics.md §7.4-§7.6]."""
        if "children" in flags:
            for node in machine.subtree(target):
                machine.remove(node)
        elif "children-only" in flags:
            for node in machine.subtree(target)[:-1]:
                machine.remove(node)
        else:
            machine.remove(target)

    def delete_all(self, machine: Machine) -> None:
        raise self.unsupported("'delete every snapshot' operation")

    def redefine(self, machine: Machine, op: ops.Redefine) -> Snapshot | None:
        """Re-create a snapshot's metadata (libvirt); the new snapshot, if it made one."""
        raise self.unsupported("metadata of its own to redefine")

    # -- shared helpers --------------------------------------------------------------------

    def target_and_flags(self, machine: Machine, op: ops.Revert | ops.Delete, purpose: str,
                         allowed: frozenset[str]) -> tuple[Snapshot, frozenset[str]]:
        """The snapshot an operation names and its checked flags, checked in the system's order."""
        if self.lookup_before_flags:
            target = self.resolve(machine, op, purpose)
            return target, self.check_flags(op.flags, allowed, purpose)
        flags = self.check_flags(op.flags, allowed, purpose)
        return self.resolve(machine, op, purpose), flags

    def check_flags(self, given: tuple[str, ...], allowed: frozenset[str], operation: str) -> frozenset[str]:
        for flag in given:
            if flag not in allowed:
                raise self.unknown_flag(flag, operation)
        flags = frozenset(given)
        for pair in self.exclusive:
            if pair <= flags:
                raise self.exclusive_flags(pair)
        return flags

    def find_named(self, machine: Machine, name: str) -> Snapshot | None:
        """The snapshot a name finds, in the profile's order."""
        candidates = machine.named(name)
        if self.name_limit is not None:
            # A name cut inside a UTF-8 character is shown with U+FFFD (so over the limit once
            # encoded), and that shown name finds nothing: QEMU compares bytes (7.2.22, seen;
            # scenarios/real-qcow2-cut-name-lookup.xml)
            candidates = [c for c in candidates if len(c.name.encode()) <= self.name_limit]
        if self.lookup == "table":
            return candidates[0] if candidates else None
        return machine.first_in_preorder(candidates)

    def lookup_ref(self, machine: Machine, ref: str, purpose: str) -> Snapshot | None:
        """What a user's argument finds; profiles that accept ids as well override this."""
        return self.find_named(machine, ref)

    def resolve(self, machine: Machine, op: ops.Revert | ops.Delete, purpose: str) -> Snapshot:
        if op.id is not None:
            found = machine.get_id(op.id)
            ref = op.id
        elif op.ref is None:
            if not (self.revert_to_current and purpose == "revert"):
                raise ModelError(INVALID_ARGUMENT, f"{purpose} needs a snapshot name")
            if machine.current is None:
                raise ModelError(NOT_FOUND, "the VM has no current snapshot")
            return machine.current
        else:
            ref = op.ref
            found = self.lookup_ref(machine, op.ref, purpose)
        if found is None:
            raise self.not_found(ref, purpose)
        return found
