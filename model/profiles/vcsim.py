"""govmomi 0.24.2's vSphere simulator (vcsim, ESX model) as the project's own program starts it
(oracle/vcsim/main.go): the esx rules plus every departure from them that the vsphere driver
can see.  Each departure was seen on a real run [seen 2026-12-01: vcsim built from Debian 12's
golang-github-vmware-govmomi-dev 0.24.2 with golang-go 1.19, driven by pyvmomi 9.1.1.0 through
snaptree's vsphere driver] and is shown by a ``scenarios/real-vcsim-*.xml`` file; semantics.md
§2.12-§2.17 has the same findings.

Seen but not modelled, because the driver does not observe them: ``VirtualMachine.rootSnapshot``
is always empty and a parent's ``childSnapshot`` goes stale after a removal (the driver reads the
tree from ``snapshot.rootSnapshotList``, which is right); ``quiesced`` is recorded true even for a
powered-off VM; no memory file or disk delta is made.

A crash (the server's handler panics and drops the connection) is the outcome ``crashed``.  What
the simulator holds afterwards is not observed: the model's power state becomes ``crashed``,
every later operation of the history is ``crashed`` too, and the driver sends nothing more (it
starts a fresh simulator where the crash left the old one unusable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import ops
from ..errors import ErrorKind, ModelError
from ..machine import Machine, ProfileState, Snapshot
from .base import NOT_FOUND
from .esx import Esx

CRASHED = "crashed"  # the power state after a crash, and the side effect's name


@dataclass
class StaleCurrent(ProfileState):
    """``Machine.profile_state`` while vcsim still calls a removed snapshot current (None otherwise)."""

    id: str  # the removed snapshot's id ("" for an empty reference)


def stale_current(machine: Machine) -> str | None:
    """The id of the removed snapshot that vcsim calls current, if any."""
    state = machine.profile_state
    return state.id if isinstance(state, StaleCurrent) else None


class Vcsim(Esx):
    name = "vcsim"
    system = "govmomi 0.24.2 vSphere simulator (vcsim), ESX model"
    versions = {"govmomi": ("0.24", None)}
    summary = "esx, but revert keeps the power state, current can stay on a removed snapshot, some removes crash"
    # powerVMTask refuses only the state the VM is in already: a powered-off VM can be suspended
    # (seen; scenarios/real-vcsim-power.xml)
    transitions: ClassVar[dict[str, dict[str, str]]] = {
        **Esx.transitions, "suspend": {"running": "suspended", "shutoff": "suspended"}}
    failure_side_effects = frozenset({CRASHED})
    disk = False  # no disk deltas are made, so writes are refused and every view is empty [§2.17]

    def check_disks(self, machine: Machine, op: ops.CreateSnapshot, modes: tuple[str, ...], memory: bool,
                    flags: frozenset[str]) -> None:
        """vcsim knows no disk modes: a memory snapshot of a VM with independent disks is taken [§9.11]."""

    def perform(self, machine: Machine, op: ops.Operation) -> Snapshot | None:
        if machine.power == CRASHED:
            raise ModelError(ErrorKind.CRASHED, "the simulator crashed earlier in this history")
        return super().perform(machine, op)

    def crash(self, machine: Machine, what: str) -> ModelError:
        machine.power = CRASHED
        return ModelError(ErrorKind.CRASHED, f"vcsim 0.24.2 crashed on {what}: the connection was reset", CRASHED)

    def observed_current(self, machine: Machine) -> str | None:
        stale = stale_current(machine)
        return stale if stale is not None else super().observed_current(machine)

    def power(self, machine: Machine, operation: str) -> None:
        if operation == "suspend" and machine.power == "shutoff":  # no RAM to keep (seen, real-vcsim-power.xml)
            machine.power = "suspended"
            return
        super().power(machine, operation)

    def memory_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        return super().memory_for(machine, op, flags) and machine.ram is not None  # a VM suspended while off has none

    def create(self, machine: Machine, op: ops.CreateSnapshot) -> Snapshot:
        if stale_current(machine) is not None:
            # the new snapshot's parent is a removed one (seen; real-vcsim-stale-current.xml)
            raise self.crash(machine, "a create while current is a removed snapshot")
        return super().create(machine, op)

    def recorded_state(self, machine: Machine, memory: bool, flags: frozenset[str]) -> str:
        # the VM's power state, memory or not: memory=false on a running VM records poweredOn
        # (seen; real-vcsim-create-state.xml)
        return machine.power

    def revert(self, machine: Machine, op: ops.Revert) -> None:
        if op.ref is None and op.id is None:
            # RevertToCurrentSnapshot_Task succeeds and does nothing; with no snapshot info at
            # all it is an immediate NotFound (seen; real-vcsim-revert-power.xml)
            self.check_flags(op.flags, self.revert_flags, "revert")
            if machine.current is None and stale_current(machine) is None:
                raise ModelError(NOT_FOUND, "snapshot not found")
            return
        target, _ = self.target_and_flags(machine, op, "revert", self.revert_flags)
        # only currentSnapshot changes: the power state stays, suppressPowerOn is ignored
        # (seen; real-vcsim-revert-power.xml)
        machine.restore(target)
        machine.profile_state = None

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        doomed = machine.subtree(target) if "remove-children" in flags else [target]
        left = len(machine.snapshots) - len(doomed)
        if machine.current is target and target.parent is None and left:
            # the current root's parent is a nil reference (seen; real-vcsim-remove-current-root.xml)
            raise self.crash(machine, "removing the current snapshot, a root, while others remain")
        stale = machine.current if machine.current is not target and machine.current in doomed else None
        super().remove(machine, target, flags)
        if not left:
            machine.profile_state = None  # no snapshot left: vcsim drops the whole snapshot info
        elif stale is not None:
            # removeChildren leaves current on the removed descendant (seen; real-vcsim-stale-current.xml)
            machine.current = None
            machine.profile_state = StaleCurrent(stale.id)

    def delete_all(self, machine: Machine) -> None:
        super().delete_all(machine)
        machine.profile_state = None
