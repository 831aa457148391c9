"""govmomi 0.24.2's vSphere simulator (vcsim, ESX model) as the project's own program starts it
(oracle/vcsim/main.go): the esx rules plus every departure from them that the vsphere driver
can see.  Each departure was seen on a real run [seen 2026-12-01: vcsim built from Debian 12's
golang-github-vmware-govmomi-dev 0.24.2 with golang-go 1.19, driven by pyvmomi 9.1.1.0 through
snaptree's vsphere driver] and is shown by a ``scenarios/real-vcsim-*.xml`` file; semantics.md
§2 "vcsim 0.24.2 in detail" has the same findings.

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

from typing import ClassVar

from .. import ops
from ..errors import ErrorKind, ModelError
from ..machine import Machine, Snapshot
from .base import NOT_FOUND
from .esx import Esx

CRASHED = "crashed"  # the power state after a crash, and the side effect's name
STALE = "stale-current"  # m.extra: the id of a removed snapshot that vcsim still calls current


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
    disk = False  # no disk deltas are made, so writes are refused and every view is empty [§2]

    def apply(self, m: Machine, op: ops.Operation) -> Snapshot | None:
        if m.power == CRASHED:
            raise ModelError(ErrorKind.CRASHED, "the simulator crashed earlier in this history")
        return super().apply(m, op)

    def crash(self, m: Machine, what: str) -> ModelError:
        m.power = CRASHED
        return ModelError(ErrorKind.CRASHED, f"vcsim 0.24.2 crashed on {what}: the connection was reset", CRASHED)

    def observed_current(self, m: Machine) -> str | None:
        stale = m.extra.get(STALE)
        return stale if stale is not None else super().observed_current(m)

    def power(self, m: Machine, operation: str) -> None:
        if operation == "suspend" and m.power == "shutoff":  # no RAM to keep (seen, real-vcsim-power.xml)
            m.power = "suspended"
            return
        super().power(m, operation)

    def memory_for(self, m: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> bool:
        return super().memory_for(m, op, flags) and m.ram is not None  # a VM suspended while off has none

    def create(self, m: Machine, op: ops.CreateSnapshot) -> Snapshot:
        if m.extra.get(STALE) is not None:
            # the new snapshot's parent is a removed one (seen; real-vcsim-stale-current.xml)
            raise self.crash(m, "a create while current is a removed snapshot")
        return super().create(m, op)

    def recorded_state(self, m: Machine, memory: bool, flags: frozenset[str]) -> str:
        # the VM's power state, memory or not: memory=false on a running VM records poweredOn
        # (seen; real-vcsim-create-state.xml)
        return m.power

    def revert(self, m: Machine, op: ops.Revert) -> None:
        if op.ref is None and op.id is None:
            # RevertToCurrentSnapshot_Task succeeds and does nothing; with no snapshot info at
            # all it is an immediate NotFound (seen; real-vcsim-revert-power.xml)
            self.check_flags(op.flags, self.revert_flags, "revert")
            if m.current is None and m.extra.get(STALE) is None:
                raise ModelError(NOT_FOUND, "snapshot not found")
            return
        target, _ = self.target_and_flags(m, op, "revert", self.revert_flags)
        # only currentSnapshot changes: the power state stays, suppressPowerOn is ignored
        # (seen; real-vcsim-revert-power.xml)
        m.restore(target)
        m.extra.pop(STALE, None)

    def remove(self, m: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        doomed = m.subtree(target) if "remove-children" in flags else [target]
        left = len(m.snapshots) - len(doomed)
        if m.current is target and target.parent is None and left:
            # the current root's parent is a nil reference (seen; real-vcsim-remove-current-root.xml)
            raise self.crash(m, "removing the current snapshot, a root, while others remain")
        stale = m.current if m.current is not target and m.current in doomed else None
        super().remove(m, target, flags)
        if not left:
            m.extra.pop(STALE, None)  # no snapshot left: vcsim drops the whole snapshot info
        elif stale is not None:
            # removeChildren leaves current on the removed descendant (seen; real-vcsim-stale-current.xml)
            m.current = None
            m.extra[STALE] = stale.id

    def delete_all(self, m: Machine) -> None:
        super().delete_all(m)
        m.extra.pop(STALE, None)
