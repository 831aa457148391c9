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
FLAG_NAME = {"children": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN", "children-only": "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY",
             "running": "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING", "paused": "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"}
INVALID = "Requested operation is not valid: "


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
    exclusive = (frozenset({"children", "children-only"}), frozenset({"running", "paused"}))  # [§7.7]
    driver_function = "libvirt"
    supported_create: frozenset[str] = frozenset()
    supported_delete: frozenset[str] = frozenset({"children", "children-only"})
    supported_revert: frozenset[str] = frozenset({"running", "paused", "force"})
    # a domain's <disk snapshot='no'> leaves the disk out of every snapshot by default
    # (formatdomain.html, "snapshot" attribute of <disk>)
    disk_modes = frozenset({"normal", "no"})
    excluded_as = "no"

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

    def after_create(self, machine: Machine, snap: Snapshot, flags: frozenset[str]) -> None:
        if "halt" in flags and machine.power != "shutoff":  # the snapshot keeps the state before the halt
            machine.load_memory(None, "shutoff")

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        # [§7.8]: the snapshot's state; RUNNING or PAUSED override it
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
