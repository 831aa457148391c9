"""libvirt 9.0.0's ESX driver (``esx://``, inside libvirt0), over the system underneath it.

A layer such as libvirt's ESX driver is a set of rules (``LibvirtEsxRules``) that translate its
API into the one underneath and add its own checks; a profile is those rules composed over the
profile of the system below (``underneath``), by class order: ``class P(LayerRules, Below)``.
Here that is vcsim, the only vSphere that runs here.  A third party adds another combination
with one small class and one registry entry, e.g. libvirt's ESX driver over a real host::

    class LibvirtOnEsx(LibvirtEsxRules, Esx):  # from snaptree.model.profiles.esx
        name, underneath, system = "libvirt-on-esx", "esx", "libvirt 9.0.0 ESX driver over vSphere API 7.0"

Every rule was seen on 2026-12-01 with libvirt-python 9.0.0 (libvirt0 9.0.0-4+deb12u2) against the
bundled simulator (oracle/vcsim/main.go, with its two mends), and is shown by
``scenarios/real-libvirt-esx-*.xml``; semantics.md §2.8-§2.10 describe the same rules.
"""

from __future__ import annotations

from typing import ClassVar

from .. import ops
from ..errors import ErrorKind, ModelError
from ..machine import Machine, Snapshot
from .base import DUPLICATE, INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND, Profile
from .esx import remove_snapshots
from .libvirt import Libvirt
from .vcsim import StaleCurrent, Vcsim, stale_current

UNNAMED_CURRENT = "(unnamed)"  # a current snapshot libvirt cannot look up ("Could not find domain snapshot ...")
NOT_ON, NOT_OFF = "Domain is not powered on", "Domain is not powered off"


class LibvirtEsxRules(Libvirt):
    """What libvirt's ESX driver adds to (and hides of) the vSphere API below it."""

    underneath: ClassVar[str]
    driver_function = "esx"
    # libvirt checks the VM's power state itself: suspend (libvirt's pause) needs poweredOn,
    # resume needs suspended, create poweredOff, destroy poweredOn (a suspended VM can only resume)
    transitions: ClassVar[dict[str, dict[str, str]]] = {
        "start": {"shutoff": "running"}, "pause": {"running": "paused"}, "resume": {"paused": "running"},
        "shutdown": {"running": "shutoff"}}
    revert_to_current = False  # virDomainRevertToSnapshot takes a snapshot object
    supported_create = frozenset({"disk-only", "quiesce", "no-metadata", "validate"})  # live, atomic, halt: refused
    supported_delete = frozenset({"children", "metadata-only"})  # children-only: refused
    supported_revert = frozenset()  # running, paused, force: refused

    def auto_name(self, machine: Machine) -> str:
        return Profile.auto_name(self, machine)  # libvirt's epoch second, not vSphere's required name

    def not_found(self, ref: str, purpose: str) -> ModelError:
        return ModelError(NOT_FOUND, f"Domain snapshot not found: Could not find snapshot with name '{ref}'")

    def duplicate(self, name: str) -> ModelError:
        return ModelError(DUPLICATE, f"Requested operation is not valid: Snapshot '{name}' already exists")

    def bad_power(self, operation: str, power: str) -> ModelError:
        why = {"start": NOT_OFF, "resume": "Domain is not suspended"}.get(operation, NOT_ON)
        return ModelError(INVALID_STATE, f"Requested operation is not valid: {why}")

    def crash(self, machine: Machine, what: str) -> ModelError:
        # libcurl re-sends the dropped request, which crashes again: an error, and nothing changed
        return ModelError(ErrorKind.CRASHED, f"internal error: curl_easy_perform() returned an error: Server "
                                             f"returned nothing (no headers, no data) ({what})")

    def observed_current(self, machine: Machine) -> str | None:
        # hasCurrentSnapshot is 1, snapshotCurrent fails: the driver reports the marker
        return UNNAMED_CURRENT if stale_current(machine) is not None else super().observed_current(machine)

    def create(self, machine: Machine, op: ops.CreateSnapshot) -> Snapshot:
        # libvirt refuses a name the tree has before it calls CreateSnapshot_Task
        self.check_flags(op.flags, self.create_flags, "create")
        if op.name and self.find_named(machine, op.name) is not None:
            raise self.duplicate(op.name)
        return super().create(machine, op)

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        if op.ref is None and op.id is None:
            raise ModelError(INVALID_ARGUMENT, "revert needs a snapshot name")
        super().revert(machine, op)  # RevertToSnapshot_Task without suppressPowerOn

    def delete(self, machine: Machine, op: ops.Delete) -> None:
        target, flags = self.target_and_flags(machine, op, "delete", self.delete_flags)
        if "metadata-only" in flags:
            return  # reports success and removes nothing
        self.remove(machine, target, frozenset({"remove-children"}) if "children" in flags else frozenset())

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        left = len(machine.snapshots) - len(machine.subtree(target) if "remove-children" in flags else [target])
        if machine.current is target and target.parent is None and left:
            # vcsim crashes on the first request, libcurl re-sends it and the second removes the
            # snapshot, leaving current an empty reference
            remove_snapshots(machine, target, "remove-children" in flags)
            machine.current = None
            machine.profile_state = StaleCurrent("")
            return
        super().remove(machine, target, flags)


class LibvirtEsx(LibvirtEsxRules, Vcsim):
    name = "libvirt-esx"
    underneath = "vcsim"
    system = "libvirt 9.0.0 ESX driver (esx://) over govmomi 0.24.2's vcsim"
    versions = {"libvirt": ("9.0", None), "govmomi": ("0.24", None)}
    summary = "libvirt's flag checks and unique names over vcsim; a create while current is removed fails"
