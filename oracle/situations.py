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
# libvirt's metadata operations (CREATE_REDEFINE), where the driver performs them
REDEFINE_SITUATIONS: tuple[Situation, ...] = tuple(
    Situation(f"redefine-{kind}", label, lambda p, o: "redefine" in o and p.supports("redefine")) for kind, label in (
        ("current", "a snapshot's own XML back with CURRENT (virsh snapshot-current NAME)"),
        ("move", "a redefine that gives a snapshot another parent"),
        ("new", "a redefine of a snapshot the tree lacks"),
        ("refused", "a redefine refused (a missing parent, a cycle, another kind of state)"),
    ))


# Reached only by a driver that builds VMs of several disks (``Driver.layouts``).
DISK_SITUATIONS: tuple[Situation, ...] = (
    Situation("disks-several", "a snapshot over several disks", lambda p, o: "snapshot" in o),
    Situation("disk-left-out", "a snapshot that leaves a disk out",
              lambda p, o: "snapshot" in o and (p.excluded_as is not None or bool(p.create_disk_modes))),
    Situation("revert-left-out", "a revert to a snapshot that left a disk out",
              lambda p, o: "revert" in o and (p.excluded_as is not None or bool(p.create_disk_modes))),
    Situation("disk-raw-refused", "an operation refused for a writable raw disk",
              lambda p, o: "snapshot" in o and p.nvram),
    Situation("disk-nvram", "a snapshot of a VM with a firmware variable store", lambda p, o: "snapshot" in o and p.nvram),
)
# Reached only by a driver that puts memory in files of their own (``Driver.memory_files``).
MEMORY_FILE_SITUATIONS: tuple[Situation, ...] = (
    Situation("memory-file", "a snapshot with its memory in a file of its own", lambda p, o: p.external_memory),
    Situation("memory-file-revert", "a revert to a snapshot with a memory file",
              lambda p, o: p.external_memory and "revert" in o),
    Situation("memory-file-delete", "a delete of a snapshot with a memory file",
              lambda p, o: p.external_memory and "delete" in o),
)


def applicable(profile: Profile, operations: frozenset[str], layouts: bool = False,
               memory_files: bool = False) -> list[Situation]:
    """The general situations and the profile's own rules (each flag it accepts) that a driver
    with these operations (and several disks, and memory files) can reach under this profile."""
    found = [s for s in SITUATIONS + REDEFINE_SITUATIONS if s.applies(profile, operations)]
    if layouts:
        found += [s for s in DISK_SITUATIONS if s.applies(profile, operations)]
    if memory_files:
        found += [s for s in MEMORY_FILE_SITUATIONS if s.applies(profile, operations)]
    for tag in ("snapshot", "revert", "delete"):
        if tag in operations:
            found.extend(Situation(f"{tag}[{flag}]", f"{tag} with flag {flag}", lambda p, o: True)
                         for flag in sorted(profile.accepted_flags(tag) - {"redefine"}))  # an operation of its own
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
    raw_disk: bool = False  # the VM has a writable raw disk
    redefine: str | None = None  # what a redefine would do: "current", "move" or "new"


def before(m: Machine, op: ops.Operation) -> Before:
    facts = Before(non_empty=bool(m.snapshots))
    keys = facts.keys
    if isinstance(op, (ops.Revert, ops.Delete)):
        target = target_of(m, op)
        if target is not None and target.memory_file is not None:
            keys.add(f"memory-file-{op.tag}")
        if isinstance(op, ops.Revert) and target is not None and target.left_out():
            keys.add("revert-left-out")
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
        facts.raw_disk = any(d.format == "raw" and not d.readonly for d in m.disks)
    elif isinstance(op, ops.DeleteAll):
        keys.add("delete-all")
    elif isinstance(op, ops.Redefine):
        existing = m.profile.find_named(m, op.name)
        moved = existing is not None and op.parent is not None and \
            op.parent != (existing.parent.name if existing.parent is not None else "")
        facts.redefine = "new" if existing is None else "move" if moved else "current" if "current" in op.flags else ""
    if isinstance(op, (ops.CreateSnapshot, ops.Revert, ops.Delete)):
        keys.update(f"{op.tag}[{flag}]" for flag in op.flags)
    return facts


def reached(facts: Before, outcome: Outcome, m: Machine) -> set[str]:
    """The situations a step reached, given what was true before it and how it ended."""
    keys = set(facts.keys)
    if facts.redefine is not None:
        keys.add("redefine-refused" if not outcome.ok else f"redefine-{facts.redefine}" if facts.redefine else "")
        keys.discard("")
    elif outcome.ok and outcome.created_id is not None:
        keys.add("snapshot")
        created = m.get_id(outcome.created_id)
        if created is not None:
            if facts.paused_create and created.memory is not None:
                keys.add("memory-paused")
            if _depth(created) >= 3:
                keys.add("depth-3")
            if sum(mode != "no" for mode in created.modes) >= 2:
                keys.add("disks-several")
            if created.left_out():
                keys.add("disk-left-out")
            if any(d.role == "nvram" for d in m.disks):
                keys.add("disk-nvram")
            if created.memory_file is not None:
                keys.add("memory-file")
    elif facts.raw_disk and not outcome.ok and outcome.message and "does not support snapshots" in outcome.message:
        keys.add("disk-raw-refused")
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
