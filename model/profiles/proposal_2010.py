"""The API proposed in the 2010 libvirt discussion, the seed [semantics.md §8].

The proposal is ambiguous; this is our reading, stated so it can be argued with:

* ``virDomainCreateFromSnapshot`` is the revert: the guest starts from the snapshot whatever
  its power state was, so a revert always leaves the VM running (from the memory image when
  the snapshot has one, otherwise booting).
* MERGE (the flag value 0, so also "no flag") removes the snapshot and merges its overlay into
  the one thing that depends on it; "other snapshots would be discarded" where more than one
  thing does (two children, or a child plus the running state of a current snapshot), since
  a single merge could keep only one of them.  It then fails with ``has-children``.
* MERGE_FORCE merges into every dependant, as ESX does (and as the seed's "1+2=5, 1+6=7").
* DISCARD removes the snapshot and fails with ``has-children`` if it has child snapshots; on a
  leaf its overlay is discarded (the seed's "delete D").
* DISCARD_FORCE removes the snapshot and its whole subtree.
* The four flags are mutually exclusive; duplicate names are refused ("unsupported").
* Deleting the current snapshot makes its parent current (libvirt's final rule).

Mapping onto libvirt's final flags: MERGE_FORCE = 0 (no flags); DISCARD_FORCE = CHILDREN;
DISCARD = 0 on a leaf; MERGE = 0 on a snapshot with at most one dependant.  libvirt kept no
refusing variants, and added CHILDREN_ONLY and METADATA_ONLY, which the proposal lacks.
"""

from __future__ import annotations

from itertools import combinations

from ..errors import ModelError
from ..machine import Machine, Snapshot
from .base import DUPLICATE, HAS_CHILDREN, Profile

DELETE_FLAGS = ("merge", "merge-force", "discard", "discard-force")


class Proposal2010(Profile):
    name = "proposal-2010"
    system = "libvirt snapshot API as proposed on 2010-03-30 (seed)"
    summary = "MERGE/MERGE_FORCE/DISCARD/DISCARD_FORCE; start-from-snapshot; duplicates refused"
    duplicates = "refuse"  # "declare duplicate names unsupported" [§8.3]
    delete_flags = frozenset(DELETE_FLAGS)
    exclusive = tuple(frozenset(pair) for pair in combinations(DELETE_FLAGS, 2))  # [§8.2]

    def duplicate(self, name: str) -> ModelError:
        return ModelError(DUPLICATE, f"snapshot '{name}' already exists: duplicate names are unsupported")

    def revert_outcome(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> tuple[str, str | None]:
        return "running", target.memory  # virDomainCreateFromSnapshot starts the guest [§8.1]

    def check_delete(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        dependants = len(target.children) + (target is machine.current)
        if ("merge" in flags or not flags) and dependants > 1:
            raise ModelError(HAS_CHILDREN, f"merging '{target.name}' would discard other snapshots: "
                                           "use MERGE_FORCE")
        if "discard" in flags and target.children:
            raise ModelError(HAS_CHILDREN, f"deleting '{target.name}' would discard its children: "
                                           "use DISCARD_FORCE")

    def remove(self, machine: Machine, target: Snapshot, flags: frozenset[str]) -> None:
        for node in machine.subtree(target) if "discard-force" in flags else [target]:
            machine.remove(node)
