"""The situations a history must reach to test what the seed and semantics.md are about, and
a tally of how many histories reached each.

A check that never deletes a snapshot with two children cannot see a driver that merges into
the first child only; the situation report says, next to the operation counts, how often each
situation came up, so a user can tell a conforming driver from an untested one.  Each
situation is judged on the model just before the step (``before``) and on the outcome
(``reached``); it counts once per history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from snaptree.model import Machine, ModelError, ops
from snaptree.model.machine import Snapshot
from snaptree.model.profiles.base import Profile
from snaptree.model.step import Outcome

SUBTREE_FLAGS = frozenset({"children", "children-only", "remove-children", "and-all-children"})


@dataclass(frozen=True)
class Situation:
    key: str
    label: str
    applies: Callable[[Profile, frozenset[str]], bool]  # (profile, the driver's operations)


def _tree(p: Profile, operations: frozenset[str]) -> bool:
    return p.tree and {"snapshot", "delete"} <= operations


def _revert_tree(p: Profile, operations: frozenset[str]) -> bool:
    return _tree(p, operations) and "revert" in operations


SITUATIONS: tuple[Situation, ...] = (
    Situation("snapshot", "took a snapshot", lambda p, o: "snapshot" in o),
    Situation("delete-two-children", "delete of a snapshot with >= 2 children", _revert_tree),
    Situation("delete-one-child", "delete of a snapshot with one child", _tree),
    Situation("delete-current-with-children", "delete of the current snapshot while it has children", _revert_tree),
    Situation("delete-leaf", "delete of a leaf", _tree),
    Situation("delete-overlap", "delete where the snapshot and a child wrote the same block",
              lambda p, o: _tree(p, o) and "write" in o and p.supports("write")),
    Situation("depth-3", "a tree of depth >= 3", lambda p, o: p.tree and "snapshot" in o),
    Situation("branch", "revert to an inner snapshot, then create (a branch)", _revert_tree),
    Situation("duplicate-lookup", "a lookup of a name two snapshots share, after branching",
              lambda p, o: _revert_tree(p, o) and p.duplicates == "allow"),
    Situation("subtree-delete-current", "a children / children-only delete with current inside",
              lambda p, o: p.tree and "delete" in o and bool(p.delete_flags & SUBTREE_FLAGS)),
    Situation("memory-paused", "a memory snapshot taken paused",
              lambda p, o: "pause" in o and "running" in p.transitions.get("pause", {})),
    Situation("failed-non-empty", "a failed operation on a non-empty tree", lambda p, o: "snapshot" in o),
)


def applicable(profile: Profile, operations: frozenset[str]) -> list[Situation]:
    """The general situations and the profile's own rules (each flag it accepts) that a driver
    with these operations can reach under this profile."""
    found = [s for s in SITUATIONS if s.applies(profile, operations)]
    for tag in ("snapshot", "revert", "delete"):
        if tag in operations:
            found.extend(Situation(f"{tag}[{flag}]", f"{tag} with flag {flag}", lambda p, o: True)
                         for flag in sorted(profile.accepted_flags(tag)))
    if "revert" in operations and profile.revert_to_current:
        found.append(Situation("revert-current", "revert to the current snapshot (no name)", lambda p, o: True))
    if "delete-all" in operations and profile.supports("delete-all"):
        found.append(Situation("delete-all", "remove every snapshot", lambda p, o: True))
    if "snapshot" in operations and profile.duplicates != "allow":
        found.append(Situation(f"duplicate-{profile.duplicates}", f"create over an existing name ({profile.duplicates})",
                               lambda p, o: True))
    return found


def target_of(m: Machine, op: ops.Revert | ops.Delete) -> Snapshot | None:
    """The snapshot a revert or delete would act on now, by the profile's lookup (None: none)."""
    purpose = "revert" if isinstance(op, ops.Revert) else "delete"
    try:
        return m.profile.resolve(m, op, purpose)
    except ModelError:
        return None


def _depth(node: Snapshot) -> int:
    return 1 + sum(1 for _ in node.ancestors())


def _branched(m: Machine) -> bool:
    return len(m.roots) >= 2 or any(len(s.children) >= 2 for s in m.snapshots.values())


@dataclass
class Before:
    """What the situations need to know of the model before a step."""

    keys: set[str] = field(default_factory=set)
    paused_create: bool = False
    non_empty: bool = False


def before(m: Machine, op: ops.Operation) -> Before:
    facts = Before(non_empty=bool(m.snapshots))
    keys = facts.keys
    if isinstance(op, (ops.Revert, ops.Delete)):
        target = target_of(m, op)
        if op.ref is None and op.id is None:
            keys.add("revert-current")
        if op.ref is not None and len(m.named(op.ref)) >= 2 and _branched(m):
            keys.add("duplicate-lookup")
        if isinstance(op, ops.Delete) and target is not None:
            children = len(target.children)
            keys.add("delete-two-children" if children >= 2 else "delete-one-child" if children == 1 else "delete-leaf")
            if m.current is target and children:
                keys.add("delete-current-with-children")
            if any(child.delta.keys() & target.delta.keys() for child in target.children) or (
                    m.current is target and m.overlay.keys() & target.delta.keys()):
                keys.add("delete-overlap")
            if set(op.flags) & SUBTREE_FLAGS and m.current is not None and (
                    m.current is target or target in m.current.ancestors()):
                keys.add("subtree-delete-current")
    elif isinstance(op, ops.CreateSnapshot):
        if m.current is not None and m.current.children:
            keys.add("branch")
        if op.name is not None and m.named(m.profile.stored_name(op.name)):
            keys.add(f"duplicate-{m.profile.duplicates}")
        facts.paused_create = m.power == "paused"
    elif isinstance(op, ops.DeleteAll):
        keys.add("delete-all")
    if isinstance(op, (ops.CreateSnapshot, ops.Revert, ops.Delete)):
        keys.update(f"{op.tag}[{flag}]" for flag in op.flags)
    return facts


def reached(facts: Before, outcome: Outcome, m: Machine) -> set[str]:
    """The situations a step reached, given what was true before it and how it ended."""
    keys = set(facts.keys)
    if outcome.ok and outcome.created_id is not None:
        keys.add("snapshot")
        created = m.get_id(outcome.created_id)
        if created is not None:
            if facts.paused_create and created.memory is not None:
                keys.add("memory-paused")
            if _depth(created) >= 3:
                keys.add("depth-3")
    if not outcome.ok and facts.non_empty:
        keys.add("failed-non-empty")
    return keys


@dataclass
class Tally:
    """How many histories reached each situation."""

    histories: int = 0
    reached: Counter[str] = field(default_factory=Counter)
    current: set[str] = field(default_factory=set)

    def add(self, keys: set[str]) -> None:
        self.current |= keys

    def history_done(self) -> None:
        self.histories += 1
        self.reached.update(self.current)
        self.current = set()

    def share(self, key: str) -> float:
        return self.reached[key] / self.histories if self.histories else 0.0

    def report(self, situations: list[Situation]) -> list[dict[str, object]]:
        return [{"situation": s.key, "label": s.label, "histories": self.reached[s.key],
                 "share": round(self.share(s.key), 3)} for s in situations]
