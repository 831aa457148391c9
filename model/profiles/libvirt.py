"""libvirt 9.0's snapshot API [semantics.md §7]: the rules its drivers share, and the test driver
(``test:///default``); the QEMU driver is in ``libvirt_qemu``.  Flag names are libvirt's without
the ``VIR_DOMAIN_SNAPSHOT_{CREATE,DELETE,REVERT}_`` prefix, lower case."""

from __future__ import annotations

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, UNSUPPORTED, Profile

# libvirt-domain-snapshot.h [§7.1]
CREATE_BITS = {"redefine": 1, "current": 2, "no-metadata": 4, "halt": 8, "disk-only": 16, "reuse-ext": 32,
               "quiesce": 64, "atomic": 128, "live": 256, "validate": 512}
DELETE_BITS = {"children": 1, "metadata-only": 2, "children-only": 4}
REVERT_BITS = {"running": 1, "paused": 2, "force": 4, "reset-nvram": 8}
FLAG_NAME = {"redefine": "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE", "halt": "VIR_DOMAIN_SNAPSHOT_CREATE_HALT",
             "no-metadata": "VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA", "children": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN",
             "children-only": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY",
             "running": "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING", "paused": "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"}
INVALID = "Requested operation is not valid: "
ONLINE = ("running", "paused")  # a snapshot state with the guest's memory; shutoff and disk-snapshot are offline
SNAPSHOT_STATES = ("running", "paused", "shutoff", "disk-snapshot")
UNKNOWN = "?"  # what a point in time no disk holds reads


class Libvirt(Profile):
    """Rules shared by libvirt's drivers: the domain snapshot tree of ``virdomainmomentobjlist.c``."""

    ids = "name"  # a snapshot is known by its name
    duplicates = "refuse"  # [§7.2]
    # the API takes a snapshot object: virDomainSnapshotLookupByName fails before any flag
    # check (libvirt 9.0.0, seen on the test driver)
    lookup_before_flags = True
    empty_name_is_unnamed = True  # <name></name> gets the epoch second (seen on 9.0.0's test driver)
    create_flags = frozenset(CREATE_BITS)
    delete_flags = frozenset(DELETE_BITS)
    revert_flags = frozenset(REVERT_BITS)
    # [§7.7]; virDomainSnapshotCreateXML's VIR_EXCLUSIVE_FLAGS for REDEFINE (libvirt 9.0.0, seen)
    exclusive = (frozenset({"children", "children-only"}), frozenset({"running", "paused"}),
                 frozenset({"redefine", "halt"}), frozenset({"redefine", "no-metadata"}))
    driver_function = "libvirt"
    supported_create: frozenset[str] = frozenset()
    redefined_states: tuple[str, ...] = SNAPSHOT_STATES  # the states a check draws for a new redefined snapshot
    supported_delete: frozenset[str] = frozenset({"children", "children-only"})
    supported_revert: frozenset[str] = frozenset({"running", "paused", "force"})
    # a domain's <disk snapshot='no'> leaves the disk out of every snapshot by default
    # (formatdomain.html, "snapshot" attribute of <disk>)
    disk_modes = frozenset({"normal", "no"})
    excluded_as = "no"

    def accepted_flags(self, tag: str) -> frozenset[str]:
        # the rest are virCheckFlags refusals of this driver
        return {"snapshot": self.supported_create, "redefine": self.supported_create, "revert": self.supported_revert,
                "delete": self.supported_delete}[tag]

    def not_found(self, ref: str, purpose: str) -> ModelError:
        return ModelError(NOT_FOUND, f"Domain snapshot not found: no domain snapshot with matching name '{ref}'")

    def duplicate(self, name: str) -> ModelError:
        return ModelError(DUPLICATE, f"operation failed: domain moment {name} already exists")

    def exclusive_flags(self, pair: frozenset[str]) -> ModelError:
        # REDEFINE's own checks name it first (virDomainSnapshotCreateXML)
        first, second = sorted(pair, key=lambda flag: (flag != "redefine", FLAG_NAME[flag]))
        return ModelError(INVALID_ARGUMENT, f"Flags '{FLAG_NAME[first]}' and '{FLAG_NAME[second]}' are mutually exclusive")

    def check_flags(self, given: tuple[str, ...], allowed: frozenset[str], operation: str) -> frozenset[str]:
        if not given:  # the common case, with nothing to check
            return frozenset()
        if operation == "create" and "current" in given and "redefine" not in given:
            # virDomainSnapshotCreateXML's VIR_REQUIRE_FLAG_GOTO, before the driver (libvirt 9.0.0, seen)
            raise ModelError(INVALID_ARGUMENT, "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag "
                                               "'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'")
        flags = super().check_flags(given, allowed, operation)
        supported, bits, function = {
            "create": (self.supported_create, CREATE_BITS, "SnapshotCreateXML"),
            "delete": (self.supported_delete, DELETE_BITS, "SnapshotDelete"),
            "revert": (self.supported_revert, REVERT_BITS, "RevertToSnapshot"),
        }[operation]
        refused = sum(bits[flag] for flag in flags - supported)
        if refused:  # virCheckFlags
            raise ModelError(UNSUPPORTED, f"unsupported flags (0x{refused:x}) in function "
                                          f"{self.driver_function}Domain{function}")
        return flags

    # -- redefine: metadata only (snapshot_conf.c, virDomainSnapshotRedefinePrep) [§7.18] -----

    def create(self, machine: Machine, op: ops.CreateSnapshot) -> Snapshot:
        if "redefine" in op.flags and "redefine" in self.supported_create:
            # a <snapshot> step sends <domainsnapshot><name>...</name></domainsnapshot>: redefine
            # reads creationTime first (libvirt 9.0.0 and 11.3.0, seen); <redefine> sends a whole XML
            self.check_flags(op.flags, self.create_flags, "create")
            raise ModelError(INVALID_ARGUMENT, "internal error: missing creationTime from existing snapshot")
        return super().create(machine, op)

    def redefine(self, machine: Machine, op: ops.Redefine) -> Snapshot | None:
        flags = self.check_flags(("redefine", *op.flags), self.create_flags, "create")
        existing = self.find_named(machine, op.name) if op.name else None
        state, memory, parent, modes = self.redefined_fields(machine, op, existing)
        self.check_redefine(machine, op, existing, state, modes, flags)
        self.before_redefine(machine, op, flags)
        # every check has passed: from here on the state changes
        if existing is None:
            content, image = self.redefined_content(machine, op.name, memory)
            node = machine.define(op.name, self.next_id(machine, op.name), parent, content, image, state, modes)
            self.after_redefine(machine, node)
        else:
            node = existing
            machine.move(node, parent)
            node.state, node.modes = state, modes
            if memory != (node.memory is not None):
                node.memory = self.redefined_content(machine, op.name, memory)[1]
        if "current" in flags:
            machine.rebase(node)
        return node if existing is None else None

    def before_redefine(self, machine: Machine, op: ops.Redefine, flags: frozenset[str]) -> None:
        """The last checks: the driver's own (the QEMU driver's metadata file); the test driver has none."""

    def after_redefine(self, machine: Machine, node: Snapshot) -> None:
        """What the driver keeps of a new snapshot made of metadata; the test driver keeps nothing."""

    def redefined_fields(self, machine: Machine, op: ops.Redefine, existing: Snapshot | None
                         ) -> tuple[str, bool, Snapshot | None, tuple[str, ...]]:
        """What the XML says: state, memory, parent and per-disk modes, parsed in libvirt's order
        (virDomainSnapshotDefParse, then virDomainSnapshotCheckCycles)."""
        if not op.name:
            raise ModelError(INVALID_ARGUMENT, "XML error: a redefined snapshot must have a name")
        state = op.state or (existing.state if existing is not None else "running")
        if state not in SNAPSHOT_STATES:
            raise ModelError(UNSUPPORTED, f"unsupported configuration: Invalid state '{state}' in domain snapshot XML")
        if op.memory is not None:
            memory = op.memory
        else:  # a missing <memory> is internal for an online state, none for an offline one
            memory = existing.memory is not None if existing is not None and op.state is None else state in ONLINE
        if memory and state not in ONLINE:
            raise ModelError(INVALID_ARGUMENT, "XML error: memory state cannot be saved with offline or disk-only "
                                               "snapshot")
        if op.parent is None:
            parent = existing.parent if existing is not None else None
        elif op.parent == "":
            parent = None
        else:
            if op.parent == op.name:
                raise ModelError(INVALID_ARGUMENT, f"invalid argument: cannot set moment {op.name} as its own parent")
            parent = self.find_named(machine, op.parent)
            if parent is None:
                raise ModelError(INVALID_ARGUMENT, f"invalid argument: parent {op.parent} for moment {op.name} "
                                                   "not found")
            if existing is not None and (parent is existing or existing in parent.ancestors()):
                raise ModelError(INVALID_ARGUMENT, f"invalid argument: parent {op.parent} would create cycle to "
                                                   f"{op.name}")
        asked = dict(op.disks)
        if any(disk not in machine.disk_index for disk in asked):
            # the XML lists every disk of the domain (libvirt's dump does), so one more is one
            # too many (virDomainSnapshotAlignDisks; 9.0.0 and 11.3.0, seen)
            raise ModelError(UNSUPPORTED, "unsupported configuration: too many disk snapshot requests for domain")
        before = existing.modes if existing is not None else tuple(self.default_mode(d, frozenset()) for d in machine.disks)
        modes = tuple(asked.get(d.name, mode) for d, mode in zip(machine.disks, before, strict=True))
        return state, memory, parent, modes

    def check_redefine(self, machine: Machine, op: ops.Redefine, existing: Snapshot | None, state: str,
                       modes: tuple[str, ...], flags: frozenset[str]) -> None:
        """virDomainSnapshotRedefineValidate: DISK_ONLY needs that state, an existing snapshot keeps
        its kind; then the driver's rules for the disks."""
        if "disk-only" in flags and state != "disk-snapshot":  # (QEMU driver, 9.0.0 and 11.3.0, seen)
            raise ModelError(INVALID_ARGUMENT, f"invalid argument: disk-only flag for snapshot {op.name} requires "
                                               "disk-snapshot state")
        if existing is not None:
            if (existing.state in ONLINE) != (state in ONLINE):
                raise ModelError(INVALID_ARGUMENT, "invalid argument: cannot change between online and offline "
                                                   f"snapshot state in snapshot {op.name}")
            if (existing.state == "disk-snapshot") != (state == "disk-snapshot"):
                raise ModelError(INVALID_ARGUMENT, "invalid argument: cannot change between disk only and full "
                                                   f"system in snapshot {op.name}")
        self.check_redefined_disks(machine, op, modes)

    def check_redefined_disks(self, machine: Machine, op: ops.Redefine, modes: tuple[str, ...]) -> None:
        """The test driver's snapshots are internal: virDomainSnapshotAlignDisks with uniform
        internal snapshots (libvirt 9.0.0 and 11.3.0, seen)."""
        for disk, mode in zip(machine.disks, modes, strict=True):
            if mode == "external":  # naming an overlay file needs a source that is a regular file
                raise ModelError(UNSUPPORTED, f"unsupported configuration: source for disk '{disk.name}' is not a "
                                              "regular file; refusing to generate external snapshot name")
            if mode != "internal" and not (mode == "no" and disk.mode == "no"):
                raise ModelError(UNSUPPORTED, f"unsupported configuration: disk '{disk.name}' must use snapshot "
                                              "mode 'internal'")

    def redefined_content(self, machine: Machine, name: str, memory: bool) -> tuple[dict[int, str], str | None]:
        """What a redefined snapshot reads on every address, and its memory image: metadata
        brings no data, so the test driver's reads are unknown and its memory an image nobody made."""
        everywhere = {a: UNKNOWN for i in range(len(machine.disks)) for a in machine.addresses(i)}
        return everywhere, machine.new_memory_image() if memory else None

    def after_create(self, machine: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        if "halt" in flags and machine.power != "shutoff":  # the snapshot keeps the state before the halt
            machine.load_memory(None, "shutoff")

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        # [§7.8]: the snapshot's state; RUNNING or PAUSED override it; an offline state (a
        # redefined disk-snapshot too) leaves the domain off (test driver, 9.0.0 and 11.3.0, seen)
        if target.state not in ONLINE:
            return self.inactive_revert(flags)
        if "running" in flags:
            return "running", target.memory
        if "paused" in flags or target.state == "paused":
            return "paused", target.memory
        return "running", target.memory

    def inactive_revert(self, flags: frozenset[str]) -> tuple[str, str | None]:
        return "shutoff", None


class LibvirtTest(Libvirt):
    name = "libvirt-test"
    system = "libvirt 9.0.0 and 11.3.0 test driver (test:///default)"
    versions = {"libvirt": ("9.0", None)}
    summary = "libvirt's tree and current pointer; duplicates refused; every delete flag but metadata-only"
    driver_function = "test"
    supported_create = frozenset({"redefine", "current", "halt", "quiesce", "atomic", "live", "validate"})

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        # the test driver ignores <memory snapshot='no'/> (and 'internal' while shut off): a
        # running or paused domain's snapshot always has memory (libvirt 9.0.0, seen)
        return machine.power != "shutoff"

    def bad_power(self, operation: str, power: str) -> ModelError:
        # test_driver.c: testDomainCreate, testDomainSuspend, testDomainResume, testDomainDestroy
        if operation == "start":
            return ModelError(INVALID_STATE, "internal error: Domain 'snaptree' is already running")
        if operation == "pause":
            return ModelError(INVALID_STATE, "internal error: domain 'snaptree' not running")
        if operation == "resume":
            return ModelError(INVALID_STATE, "internal error: domain 'snaptree' not paused")
        return ModelError(INVALID_STATE, INVALID + "domain is not running")
