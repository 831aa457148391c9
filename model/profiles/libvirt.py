"""libvirt 9.0's snapshot API over two of its drivers [semantics.md §7]: the test driver
(``test:///default``) and the QEMU driver's internal and external snapshots.  Flag names are
libvirt's without the ``VIR_DOMAIN_SNAPSHOT_{CREATE,DELETE,REVERT}_`` prefix, lower case."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import BASIC_TRANSITIONS, DISK_ONLY, DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, UNSUPPORTED, Profile

# libvirt-domain-snapshot.h [§7 Flags]
CREATE_BITS = {"redefine": 1, "current": 2, "no-metadata": 4, "halt": 8, "disk-only": 16, "reuse-ext": 32,
               "quiesce": 64, "atomic": 128, "live": 256, "validate": 512}
DELETE_BITS = {"children": 1, "metadata-only": 2, "children-only": 4}
REVERT_BITS = {"running": 1, "paused": 2, "force": 4, "reset-nvram": 8}
FLAG_NAME = {"children": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN", "children-only": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY",
             "running": "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING", "paused": "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"}
INVALID = "Requested operation is not valid: "
# libvirt 9.0.0's QEMU driver, seen: a name too long for its metadata file fails after qcow2 took it
UNSAVED_METADATA = "a snapshot whose metadata cannot be saved leaves no current snapshot"
PHANTOM_LOAD = "a revert to a snapshot QEMU never took leaves the domain shut off"
ID_LOAD = "a revert that loads another snapshot's disk and no memory leaves the domain shut off"


@dataclass
class Qcow2Entry:
    """An internal snapshot in the disk's qcow2 table, as QEMU sees it (libvirt may not list it).
    QEMU 7.2 applies a snapshot by id first, then by name (qcow2's find_snapshot_by_id_or_name,
    for `loadvm`/`-loadvm` and `qemu-img snapshot -a` alike), and ids are highest + 1 [§4]: a
    libvirt snapshot named "2" reverts to the disk and memory of qcow2 snapshot id 2 (seen)."""

    id: int
    name: str
    view: dict[int, str]  # the blocks that read other than empty, as it was taken
    image: str | None  # its memory image, if any
    snapshot: str | None  # the id of the listed snapshot it belongs to, if any


@dataclass
class QemuDriverState:
    """What libvirt's QEMU driver keeps beyond the snapshot tree (``Machine.extra``)."""

    qcow2: list[Qcow2Entry] = field(default_factory=list)
    # external (DISK_ONLY) snapshots: overlays, which their recorded state alone does not tell
    external: set[str] = field(default_factory=set)
    # libvirt 9.0.0, seen: HMP `savevm "NAME"` fails for a NAME with '"' ("extraneous
    # characters"), libvirt does not recognise that reply as an error and lists the snapshot anyway
    phantoms: set[str] = field(default_factory=set)
    # the qcow2 files, by number: the file each internal snapshot lives in, each external
    # snapshot's base and new overlay, and the file the domain uses now
    file_of: dict[str, int] = field(default_factory=dict)
    overlay_of: dict[str, tuple[int, int]] = field(default_factory=dict)
    active_file: int = 0
    files: int = 1

    def take_external(self, snapshot: str) -> None:
        """An external snapshot: the active file becomes its base, the domain writes to a new one."""
        self.external.add(snapshot)
        self.overlay_of[snapshot] = (self.active_file, self.files)
        self.active_file, self.files = self.files, self.files + 1

    def take(self, name: str, view: dict[int, str], image: str | None, snapshot: str | None) -> None:
        self.qcow2.append(Qcow2Entry(max((e.id for e in self.qcow2), default=0) + 1, name, view, image, snapshot))


def qemu_state(m: Machine) -> QemuDriverState:
    state = m.extra.setdefault("libvirt-qemu", QemuDriverState())
    assert isinstance(state, QemuDriverState)
    return state


def _rest_on(m: Machine, base: Snapshot | None, view: dict[int, str]) -> None:
    """Make the running state read ``view`` on top of ``base`` (only the differing blocks)."""
    under = m.view(base)
    m.overlay = {b: view.get(b, "") for b in view.keys() | under.keys() if view.get(b, "") != under.get(b, "")}


class Libvirt(Profile):
    """Rules shared by libvirt's drivers: the domain snapshot tree of ``virdomainmomentobjlist.c``."""

    ids = "name"  # a snapshot is known by its name
    duplicates = "refuse"  # [§7 Create]
    # the API takes a snapshot object: virDomainSnapshotLookupByName fails before any flag
    # check (libvirt 9.0.0, seen on the test driver)
    lookup_before_flags = True
    empty_name_is_unnamed = True  # <name></name> gets the epoch second (seen on 9.0.0's test driver)
    create_flags = frozenset(CREATE_BITS)
    delete_flags = frozenset(DELETE_BITS)
    revert_flags = frozenset(REVERT_BITS)
    exclusive = (frozenset({"children", "children-only"}), frozenset({"running", "paused"}))  # [§7]
    driver_function = "libvirt"
    supported_create: frozenset[str] = frozenset()
    supported_delete: frozenset[str] = frozenset({"children", "children-only"})
    supported_revert: frozenset[str] = frozenset({"running", "paused", "force"})

    def accepted_flags(self, tag: str) -> frozenset[str]:
        # the rest are virCheckFlags refusals of this driver
        return {"snapshot": self.supported_create, "revert": self.supported_revert, "delete": self.supported_delete}[tag]

    def not_found(self, ref: str, purpose: str) -> ModelError:
        return ModelError(NOT_FOUND, f"Domain snapshot not found: no domain snapshot with matching name '{ref}'")

    def duplicate(self, name: str) -> ModelError:
        return ModelError(DUPLICATE, f"operation failed: domain moment {name} already exists")

    def exclusive_flags(self, pair: frozenset[str]) -> ModelError:
        first, second = sorted(pair, key=lambda flag: FLAG_NAME[flag])
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

    def after_create(self, m: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        if "halt" in flags and m.power != "shutoff":  # the snapshot keeps the state before the halt
            m.load_memory(None, "shutoff")

    def revert_outcome(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        # [§7 Revert]: the snapshot's state; RUNNING or PAUSED override it
        if target.state == "shutoff":
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
    system = "libvirt 9.0.0 test driver (test:///default)"
    versions = {"libvirt": ("9.0", None)}
    summary = "libvirt's tree and current pointer; duplicates refused; every delete flag but metadata-only"
    driver_function = "test"
    supported_create = frozenset({"redefine", "current", "halt", "quiesce", "atomic", "live", "validate"})

    def memory_for(self, m: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        # the test driver ignores <memory snapshot='no'/> (and 'internal' while shut off): a
        # running or paused domain's snapshot always has memory (libvirt 9.0.0, seen)
        return m.power != "shutoff"

    def bad_power(self, operation: str, power: str) -> ModelError:
        # test_driver.c: testDomainCreate, testDomainSuspend, testDomainResume, testDomainDestroy
        if operation == "start":
            return ModelError(INVALID_STATE, "internal error: Domain 'snaptree' is already running")
        if operation == "pause":
            return ModelError(INVALID_STATE, "internal error: domain 'snaptree' not running")
        if operation == "resume":
            return ModelError(INVALID_STATE, "internal error: domain 'snaptree' not paused")
        return ModelError(INVALID_STATE, INVALID + "domain is not running")


class LibvirtQemu(Libvirt):
    """Internal snapshots (with memory when the domain runs), and external disk-only ones."""

    name = "libvirt-qemu"
    system = "libvirt 9.0.0 QEMU driver (qemu:///embed), QEMU 7.2"
    versions = {"libvirt": ("9.0", "11.3"), "QEMU": ("7.2", None)}
    family = "libvirt-qemu"
    summary = "libvirt's tree over qcow2 internal snapshots, and external disk-only overlays"
    driver_function = "qemu"
    supported_create = frozenset({"halt", "disk-only", "quiesce", "atomic", "live", "validate"})
    supported_delete = frozenset({"children", "children-only", "metadata-only"})
    failure_side_effects = frozenset({UNSAVED_METADATA, PHANTOM_LOAD, ID_LOAD})
    # qemuDomainSuspend succeeds on a paused domain (libvirt 9.0.0, seen)
    transitions = {**BASIC_TRANSITIONS, "pause": {"running": "paused", "paused": "paused"}}

    def bad_power(self, operation: str, power: str) -> ModelError:
        if operation == "start":
            return ModelError(INVALID_STATE, INVALID + "domain is already running")
        if operation == "resume" and power == "running":
            return ModelError(INVALID_STATE, INVALID + "domain is already running")
        return ModelError(INVALID_STATE, INVALID + "domain is not running")

    def memory_for(self, m: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        if "quiesce" in flags and "disk-only" not in flags:
            raise ModelError(INVALID_ARGUMENT, "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY' is required by flag "
                                               "'VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE'")
        if op.memory and ("disk-only" in flags or m.power == "shutoff"):  # parsing the XML (libvirt 9.0.0, seen)
            raise ModelError(INVALID_ARGUMENT, "XML error: memory state cannot be saved with offline or disk-only "
                                               "snapshot")
        if "disk-only" in flags or op.memory is False:
            return False  # check_name refuses a running domain's internal snapshot without memory
        return m.power != "shutoff"

    def check_name(self, m: Machine, name: str, memory: bool, flags: frozenset[str]) -> None:
        if "/" in name:  # qemuSnapshotCreateXML [§7 QEMU driver, internal]
            raise ModelError(INVALID_ARGUMENT, f"invalid snapshot name '{name}': name can't contain '/'")
        if name.startswith("."):
            raise ModelError(INVALID_ARGUMENT, f"invalid snapshot name '{name}': name can't start with '.'")
        # the checks below come after the name's, in this order (libvirt 9.0.0, seen)
        if "live" in flags:  # LIVE needs an external memory snapshot, which no operation asks for
            raise ModelError(UNSUPPORTED, "Operation not supported: live snapshot creation is supported only "
                                          "during full system snapshots")
        if not memory and "disk-only" not in flags and m.power != "shutoff":
            raise ModelError(UNSUPPORTED, "Operation not supported: internal snapshot of a running VM must "
                                          "include the memory state")
        if "quiesce" in flags and m.power != "shutoff":  # the domain has no guest agent
            raise ModelError(UNSUPPORTED, "argument unsupported: QEMU guest agent is not configured")
        if len(name.encode()) + len(".xml.new") > 255 and "disk-only" not in flags:
            # qcow2 takes the snapshot, then libvirt cannot write DIR/NAME.xml.new (NAME_MAX 255):
            # it is not listed and there is no current snapshot afterwards (libvirt 9.0.0, seen).
            # The running state keeps reading the same: it no longer rests on a snapshot.
            view = m.view(None)
            m.overlay, m.current = dict(view), None
            qemu_state(m).take(name, view, m.ram if m.power != "shutoff" else None, None)  # left unlisted
            if "halt" in flags:  # the snapshot was taken and the domain halted before the failure (seen)
                m.load_memory(None, "shutoff")
            raise ModelError(INVALID_ARGUMENT, f"internal error: unable to save metadata for snapshot {name}",
                             side_effect=UNSAVED_METADATA)

    def recorded_state(self, m: Machine, memory: bool, flags: frozenset[str]) -> str:
        # a disk-only snapshot records the domain's state but holds no memory
        # seen on 9.0.0: an external snapshot of a shut-off domain records "shutoff"
        return "disk-snapshot" if "disk-only" in flags and m.power != "shutoff" else m.power

    def after_create(self, m: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        state = qemu_state(m)
        if '"' in snap.name and snap.memory is not None:  # taken by HMP savevm: see QemuDriverState.phantoms
            # no point in time was saved: the snapshot reads '?' everywhere, and the running
            # state (and so every later snapshot) holds the whole disk itself
            full = {block: m.read(snap, block) for block in range(m.blocks)}
            snap.delta = {block: "?" for block in range(m.blocks)}
            m.overlay = full
            state.phantoms.add(snap.id)
        elif "disk-only" in flags:
            state.take_external(snap.id)
        else:
            state.take(snap.name, m.view(snap), snap.memory, snap.id)
            state.file_of[snap.id] = state.active_file
        super().after_create(m, snap, flags)

    def qcow2_source(self, m: Machine, target: Snapshot) -> Qcow2Entry | None:
        """The qcow2 snapshot QEMU applies for ``target``: by id first, then by name."""
        table = qemu_state(m).qcow2
        by_id = next((e for e in table if str(e.id) == target.name), None)
        return by_id or next((e for e in table if e.name == target.name), None)

    def revert(self, m: Machine, op: ops.Revert) -> None:
        super().revert(m, op)
        target = m.current
        state = qemu_state(m)
        if target is not None and target.id in state.file_of:  # the domain goes back to that file
            state.active_file = state.file_of[target.id]
        source = self.qcow2_source(m, target) if target is not None else None
        if target is not None and source is not None and source.snapshot != target.id:
            _rest_on(m, target, source.view)  # the disk of the qcow2 snapshot with that id

    def revert_outcome(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        state = qemu_state(m)
        if target.id in state.phantoms:  # QEMU's -loadvm fails and QEMU exits; current stays (9.0.0, seen)
            m.load_memory(None, "shutoff")
            raise ModelError(NOT_FOUND, "internal error: qemu unexpectedly closed the monitor: Snapshot "
                                        f"'{target.name}' does not exist in one or more devices",
                             side_effect=PHANTOM_LOAD)
        if target.id in state.external:
            raise ModelError(UNSUPPORTED, "unsupported configuration: revert to external snapshot not supported yet")
        power, image = super().revert_outcome(m, target, flags)
        source = self.qcow2_source(m, target)
        if source is None or source.snapshot == target.id or image is None:
            return power, image
        if source.image is None:  # QEMU applied the other disk, then found no memory to load
            _rest_on(m, m.current, source.view)
            m.load_memory(None, "shutoff")
            raise ModelError(DISK_ONLY, "internal error: qemu unexpectedly closed the monitor: Not a migration "
                                        "stream", side_effect=ID_LOAD)
        return power, source.image

    def inactive_revert(self, flags: frozenset[str]) -> tuple[str, str | None]:
        # the QEMU driver starts (or pauses) the domain for RUNNING or PAUSED [§7 Revert]
        if "running" in flags:
            return "running", None
        if "paused" in flags:
            return "paused", None
        return "shutoff", None

    def remove(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        state = qemu_state(m)
        if not flags and target.id in state.external:  # a block commit of its overlay into its base
            base, overlay = state.overlay_of[target.id]
            if state.active_file == overlay:
                state.active_file = base
        if "metadata-only" not in flags:  # the qcow2 snapshots go too, found by name (delvm, qemu-img -d)
            nodes = m.subtree(target)
            nodes = nodes if "children" in flags else nodes[:-1] if "children-only" in flags else [target]
            table = qemu_state(m).qcow2
            for node in nodes:
                if '"' in node.name and m.power != "shutoff":
                    continue  # HMP delvm cannot parse the name either
                entry = next((e for e in table if e.name == node.name), None)
                if entry is not None:
                    table.remove(entry)
        super().remove(m, target, flags)

    def check_delete(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        # libvirt 9.0's rules for external snapshots [§7 QEMU driver, external]; which of them
        # CHILDREN and CHILDREN_ONLY meet was seen on 9.0.0: an external descendant refuses both,
        # an external target refuses CHILDREN (even as a leaf) and lets CHILDREN_ONLY through
        if "metadata-only" in flags:
            return
        state = qemu_state(m)
        external = state.external
        if m.power != "shutoff" and state.file_of.get(target.id, state.active_file) != state.active_file:
            # a running domain deletes an internal snapshot in the image it uses (delvm), which
            # after an external snapshot is not the one that holds it (libvirt 9.0.0, seen)
            raise ModelError(UNSUPPORTED, f"Operation not supported: disk image 'vda' for internal snapshot "
                                          f"'{target.name}' is not the same as disk image currently used by VM")
        if flags & {"children", "children-only"}:
            if any(node.id in external for node in m.subtree(target)[:-1]):
                raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of external children disk "
                                              "snapshots not supported")
            if "children" in flags and target.id in external:
                raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of external disk snapshots "
                                              "with children not supported")
            return
        if target.id not in external:
            return
        if target.parent is not None and target.parent.id not in external:
            raise ModelError(UNSUPPORTED, "unsupported configuration: deleting external snapshot that has "
                                          "internal snapshot as parent not supported")
