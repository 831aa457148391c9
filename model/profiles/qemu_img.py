"""qcow2 internal snapshots offline: ``qemu-img snapshot -c/-a/-d/-l`` [semantics.md §4],
observed on QEMU 7.2.22.  The snapshot table is a flat list with no current snapshot; there
is no VM, so there is no power state to change."""

from __future__ import annotations

from typing import ClassVar

from .. import ops
from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import INVALID_ARGUMENT, NOT_FOUND, UNSUPPORTED, Profile


class QemuImg(Profile):
    name = "qemu-img"
    system = "QEMU 7.2 and 10.0 qemu-img snapshot (qcow2)"
    versions = {"QEMU": ("7.2", None)}
    summary = "flat snapshot table, no current; duplicate names kept; ids reused; names cut at 255 bytes"
    tree = False  # the snapshot table is a flat list [§4.1]
    transitions: ClassVar[dict[str, dict[str, str]]] = {}
    ids = "reuse"  # highest existing id + 1 [§4.3]
    lookup = "table"  # first in table order [§4.4, §4.5]
    duplicates = "allow"  # [§4.2]
    name_limit = 255  # [§4.6]
    single_disk = True  # qemu-img snapshot works on one image file

    def unsupported(self, what: str) -> ModelError:
        return ModelError(UNSUPPORTED, f"qemu-img works on an image offline: there is no {what}")

    def not_found(self, ref: str, purpose: str) -> ModelError:
        if purpose == "revert":  # seen on 7.2.22; the sheet gives no text
            return ModelError(NOT_FOUND, f"Could not apply snapshot '{ref}': Failed to load snapshot: No such file or directory")
        return ModelError(NOT_FOUND, f"Could not delete snapshot '{ref}': snapshot not found")  # [§4.5]

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        if op.memory:
            raise self.unsupported("memory to save (qemu-img snapshots are disk-only)")
        return False

    def auto_name(self, machine: Machine) -> str:
        raise ModelError(INVALID_ARGUMENT, "Expecting one image file name")  # -c needs a name

    def lookup_ref(self, machine: Machine, ref: str, purpose: str) -> Snapshot | None:
        # -a tries the id first, then the name; -d matches the name only [§4.4, §4.5]
        if purpose == "revert":
            by_id = machine.get_id(ref)
            if by_id is not None:
                return by_id
        return self.find_named(machine, ref)

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        return "shutoff", None
