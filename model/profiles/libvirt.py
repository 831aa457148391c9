"""libvirt 9.0's snapshot API over two of its drivers [semantics.md §7]: the test driver
(``test:///default``) and the QEMU driver's internal and external snapshots.  Flag names are
libvirt's without the ``VIR_DOMAIN_SNAPSHOT_{CREATE,DELETE,REVERT}_`` prefix, lower case."""

from __future__ import annotations

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, UNSUPPORTED, Profile

# libvirt-domain-snapshot.h [§7 Flags]
CREATE_BITS = {"redefine": 1, "current": 2, "no-metadata": 4, "halt": 8, "disk-only": 16, "reuse-ext": 32,
               "quiesce": 64, "atomic": 128, "live": 256, "validate": 512}
DELETE_BITS = {"children": 1, "metadata-only": 2, "children-only": 4}
REVERT_BITS = {"running": 1, "paused": 2, "force": 4, "reset-nvram": 8}
FLAG_NAME = {"children": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN", "children-only": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY",
             "running": "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING", "paused": "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"}
INVALID = "Requested operation is not valid: "


class Libvirt(Profile):
    """Rules shared by libvirt's drivers: the domain snapshot tree of ``virdomainmomentobjlist.c``."""

    ids = "name"  # a snapshot is known by its name
    duplicates = "refuse"  # [§7 Create]
    empty_name_is_unnamed = True  # <name></name> gets the epoch second (seen on 9.0.0's test driver)
    create_flags = frozenset(CREATE_BITS)
    delete_flags = frozenset(DELETE_BITS)
    revert_flags = frozenset(REVERT_BITS)
    exclusive = (frozenset({"children", "children-only"}), frozenset({"running", "paused"}))  # [§7]
    driver_function = "libvirt"
    supported_create: frozenset[str] = frozenset()
    supported_delete: frozenset[str] = frozenset({"children", "children-only"})
    supported_revert: frozenset[str] = frozenset({"running", "paused", "force"})

    def not_found(self, ref: str, purpose: str) -> ModelError:
        return ModelError(NOT_FOUND, f"Domain snapshot not found: no domain snapshot with matching name '{ref}'")

    def duplicate(self, name: str) -> ModelError:
        return ModelError(DUPLICATE, f"operation failed: domain moment {name} already exists")

    def exclusive_flags(self, pair: frozenset[str]) -> ModelError:
        first, second = sorted(pair, key=lambda flag: FLAG_NAME[flag])
        return ModelError(INVALID_ARGUMENT, f"Flags '{FLAG_NAME[first]}' and '{FLAG_NAME[second]}' are mutually exclusive")

    def check_flags(self, given: tuple[str, ...], allowed: frozenset[str], operation: str) -> frozenset[str]:
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
    summary = "libvirt's tree and current pointer; duplicates refused; every delete flag but metadata-only"
    driver_function = "test"
    supported_create = frozenset({"redefine", "current", "halt", "quiesce", "atomic", "live", "validate"})

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
    summary = "libvirt's tree over qcow2 internal snapshots, and external disk-only overlays"
    driver_function = "qemu"
    supported_create = frozenset({"halt", "disk-only", "quiesce", "atomic", "live", "validate"})
    supported_delete = frozenset({"children", "children-only", "metadata-only"})

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
        if "disk-only" in flags:
            return False
        if op.memory is False and m.power != "shutoff":
            raise ModelError(UNSUPPORTED, "Operation not supported: internal snapshot of a running VM must "
                                          "include the memory state")
        return m.power != "shutoff"

    def check_name(self, m: Machine, name: str, memory: bool, flags: frozenset[str]) -> None:
        if "/" in name:  # qemuSnapshotCreateXML [§7 QEMU driver, internal]
            raise ModelError(INVALID_ARGUMENT, f"invalid snapshot name '{name}': name can't contain '/'")
        if name.startswith("."):
            raise ModelError(INVALID_ARGUMENT, f"invalid snapshot name '{name}': name can't start with '.'")

    def recorded_state(self, m: Machine, memory: bool, flags: frozenset[str]) -> str:
        # a disk-only snapshot records the domain's state but holds no memory
        return "disk-snapshot" if "disk-only" in flags else m.power

    def revert_outcome(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        if target.state == "disk-snapshot":
            raise ModelError(UNSUPPORTED, "unsupported configuration: revert to external snapshot not supported yet")
        return super().revert_outcome(m, target, flags)

    def inactive_revert(self, flags: frozenset[str]) -> tuple[str, str | None]:
        # the QEMU driver starts (or pauses) the domain for RUNNING or PAUSED [§7 Revert]
        if "running" in flags:
            return "running", None
        if "paused" in flags:
            return "paused", None
        return "shutoff", None

    def check_delete(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        # libvirt 9.0's rules for external snapshots [§7 QEMU driver, external]
        if target.state != "disk-snapshot" or "metadata-only" in flags:
            return
        if flags & {"children", "children-only"}:
            raise ModelError(UNSUPPORTED, "unsupported configuration: deletion of external children disk "
                                          "snapshots not supported")
        if target.parent is not None and target.parent.state != "disk-snapshot":
            raise ModelError(UNSUPPORTED, "unsupported configuration: deleting external snapshot that has "
                                          "internal snapshot as parent not supported")
