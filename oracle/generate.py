"""Histories that grow a tree and then work on it.

Uniformly random operations mostly hit an empty table: a delete with nothing to delete, a
revert to a name nobody took.  This generator draws each step from the model's state instead:

- early steps take snapshots (with writes in between), later ones spend most of their time on
  existing snapshots, and reverts favour inner snapshots, so that the next create branches;
- deletes aim at the shapes the seed argues about: a snapshot with two children, the current
  snapshot with children, a snapshot whose child wrote the same block, a subtree holding current;
- every candidate is tried on a copy of the model first.  An operation the model refuses is
  drawn again, except on the few steps (``REFUSAL_SHARE``) that mean to be refused: unknown
  names, flags the system rejects, the wrong power state.  Operations the driver or the
  profile cannot perform at all are never drawn.

Each history also draws a *mix* (swarm testing: Groce et al., "Swarm Testing", ISSTA 2012):
how often it writes, powers, passes flags, addresses by id, uses awkward names.  The mix
varies histories; it never switches off snapshots, reverts or deletes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import reject
from hypothesis import strategies as st

from snaptree.model import Machine, ModelError, ops
from snaptree.model.machine import Snapshot

from .driver import Driver
from .findings import Guard
from .situations import SUBTREE_FLAGS

T = TypeVar("T")

POWER_TAGS = ("start", "pause", "resume", "shutdown", "suspend")
POWER_OPS = {cls.tag: cls for cls in ops.POWER_OPS}
# Mostly a few plain names, so that duplicates and lookups happen; then the awkward ones.
PLAIN_NAMES = ("A", "B", "C", "D")
FRESH_NAMES = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P")  # for profiles refusing duplicates
AWKWARD_NAMES = ("with space", "quo'te\"s", "semi;colon", "ünïcødé ✓", "-dash", "bad/name", "", "1", "2",
                 "x" * 300, "é" * 150)  # 300 bytes: cut at 255, inside a UTF-8 character
DESCRIPTIONS = ("before the upgrade", "ünïcødé <&> \"quoted\"", "two\nlines")
REFUSAL_SHARE = 0.08  # of steps meant to be refused (the model decides whether they are)
TRIES = 4  # candidates per step before one that misses its aim is taken anyway

# One strategy for every weighted choice (no per-step strategy building).  Hypothesis draws
# wide integer ranges mostly small; over 0..255 its draws are near uniform (0 comes up a few
# per cent more often, so an option list starts with its most common choice).
_CHOICE = st.integers(0, 255)


def pick(data: st.DataObject, options: Sequence[tuple[T, float]], label: str) -> T:
    """One of ``options`` with probability proportional to its weight (weights <= 0: never)."""
    live = [(value, weight) for value, weight in options if weight > 0]
    assert live, f"nothing to choose for {label}"
    x = data.draw(_CHOICE, label=label) / 256 * sum(weight for _, weight in live)
    for value, weight in live:
        if x < weight:
            return value
        x -= weight
    return live[-1][0]


def chance(data: st.DataObject, p: float, label: str) -> bool:
    return p > 0 and pick(data, [(False, 1 - p), (True, p)], label)


def one_of(data: st.DataObject, values: Sequence[T], label: str) -> T:
    """``pick`` with equal weights, without a list of them: a range of a huge disk's blocks
    costs nothing.  The same draw gives the same value as ``pick`` (x / 256 * n is exact)."""
    assert values, f"nothing to choose for {label}"
    return values[min(data.draw(_CHOICE, label=label) * len(values) // 256, len(values) - 1)]


@dataclass(frozen=True)
class Mix:
    writes: float  # weight of a write among the step kinds
    power: float  # weight of a power operation
    flags: float  # chance that a snapshot operation passes a flag
    by_id: float  # chance that a target is addressed by its id, where the driver can
    awkward: float  # chance that a create uses an awkward name
    unnamed: float  # chance that a create gives no name
    descriptions: float  # chance that a create has a description, where the driver observes it
    names: int  # how many plain names creates choose from: two make duplicates everywhere


class HistoryGenerator:
    """Draws the operations of one history for ``driver``, looking at ``model`` (the
    lockstep's model of the same history) before every step."""

    def __init__(self, driver: Driver, model: Machine, guards: Sequence[Guard] = (),
                 excluded: Counter[str] | None = None):
        self.capabilities = driver.capabilities()
        self.model = model
        self.guards = guards  # known findings' guards: what they match is never drawn
        self.excluded = Counter() if excluded is None else excluded  # candidates each guard left out
        self.profile = model.profile
        self.power_tags = [t for t in POWER_TAGS if self.can(t)]
        self.mix = Mix(1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, len(PLAIN_NAMES))
        self.given: set[str] = set()  # names this history's creates asked for
        self.write_disk: str | None = None  # the disk the last write went to (None: the first)
        self.wrote = False
        self.memory_files = 0

    def can(self, tag: str) -> bool:
        """Operations the driver or the profile cannot perform at all are never drawn."""
        return self.capabilities.performs(tag) and self.profile.supports(tag)

    def draw_mix(self, data: st.DataObject) -> None:
        self.mix = Mix(
            writes=one_of(data, (2.0, 1.0, 3.5), "mix: writes") if self.can("write") else 0.0,
            power=one_of(data, (0.7, 0.0, 1.5), "mix: power") if self.power_tags else 0.0,
            flags=one_of(data, (0.0, 0.3, 0.6), "mix: flags") if self.capabilities.has_flags() else 0.0,
            by_id=one_of(data, (0.0, 0.3), "mix: by id") if self.capabilities.addresses_by_id() else 0.0,
            awkward=one_of(data, (0.0, 0.0, 0.0, 0.3), "mix: awkward names"),
            unnamed=one_of(data, (0.0, 0.1), "mix: unnamed"),
            descriptions=one_of(data, (0.0, 0.5), "mix: descriptions") if "description" in self.capabilities.observes
            else 0.0,
            names=one_of(data, (len(PLAIN_NAMES), 2), "mix: names"),
        )

    # -- one step ----------------------------------------------------------------------------

    def next_op(self, data: st.DataObject) -> ops.Operation:
        refusal = chance(data, REFUSAL_SHARE, "meant to be refused")
        for attempt in range(TRIES):
            # a step meant to be refused first tries ordinary operations, which meet the
            # profile's own refusals (VirtualBox and a snapshot with two children), then wild ones
            op = self.unguarded(data, wild=refusal and attempt >= TRIES // 2)
            if self.refused(op) == refusal:
                break
        return op

    def unguarded(self, data: st.DataObject, wild: bool) -> ops.Operation:
        """A candidate that no known finding's guard matches."""
        for _ in range(10):
            op = self.candidate(data, wild)
            matched = [g.name for g in self.guards if g.excludes(self.model, op)]
            if not matched:
                return op
            self.excluded.update(matched)
        # ten guarded candidates in a row: a plain create or write, if the driver can and no guard
        # matches it, else this history ends here (Hypothesis discards it)
        fallbacks = [(tag, op) for tag, op in (("snapshot", ops.CreateSnapshot(name=PLAIN_NAMES[0])),
                                               ("write", ops.Write(0, (self.capabilities.values[1:] or ("a",))[0])))
                     if self.can(tag) and not any(g.excludes(self.model, op) for g in self.guards)]
        if not fallbacks:
            reject()
        return fallbacks[0][1]

    def refused(self, op: ops.Operation) -> bool:
        """Whether the model refuses ``op`` now (tried on a copy; the model itself is untouched)."""
        try:
            self.model.clone().perform(op)
        except ModelError:
            return True
        return False

    def candidate(self, data: st.DataObject, wild: bool) -> ops.Operation:
        m = self.model
        n = len(m.snapshots)
        # grow the tree first, then work on it; write before a snapshot so that it has an
        # overlay of its own; right after a revert to an inner snapshot, take one (a branch) or
        # delete the current snapshot, which has children; take one while paused
        branching = m.current is not None and bool(m.current.children) and not m.overlay
        # a disk that snapshots treat otherwise (left out, independent) was written since: a
        # revert now is what tells whether it keeps that write
        special = [i for i, d in enumerate(m.disks) if d.mode != "normal"]
        kept_back = bool(special) and any(a // m.blocks in special for a in m.overlay)
        kinds = [
            ("snapshot", ((5.0 if n < 2 else 3.5 if n < 5 else 2.0) + (4.0 if branching else 0.0)
                          + (3.0 if m.power == "paused" else 0.0)) if self.can("snapshot") else 0.0),
            ("write", self.mix.writes + (3.0 if self.mix.writes and not m.overlay else 0.0)),
            ("revert", (3.0 + (4.0 if kept_back else 0.0) if n else 0.3 if wild else 0.0) if self.can("revert") else 0.0),
            ("delete", ((5.0 if n >= 3 else 1.5 if n else 0.3 if wild else 0.0) + (3.0 if branching else 0.0))
             if self.can("delete") else 0.0),
            ("power", self.mix.power + (0.5 if wild and self.power_tags else 0.0)),
            ("delete-all", 0.3 if n >= 3 and self.can("delete-all") else 0.0),
            ("redefine", (1.0 if n else 0.3) if self.can("redefine") else 0.0),
        ]
        kind = pick(data, kinds, "step")
        if kind == "write":
            return self.write(data)
        if kind == "snapshot":
            return self.snapshot(data, wild)
        if kind == "revert":
            return self.revert(data, wild)
        if kind == "delete":
            return self.delete(data, wild)
        if kind == "power":
            return self.power(data, wild)
        if kind == "redefine":
            return self.redefine(data, wild)
        return ops.DeleteAll()

    def write(self, data: st.DataObject) -> ops.Write:
        # a few hot blocks, so that a snapshot and its child often write the same block
        hot = min(2, self.model.blocks)
        block = (one_of(data, range(hot), "hot block") if chance(data, 0.8, "hot")
                 else one_of(data, range(self.model.blocks), "block"))
        values = self.capabilities.values[1:] or self.capabilities.values
        disks = self.model.disks
        disk = None
        if len(disks) > 1:  # mostly the disk written last, so that writes still overlap on one disk
            writable = [d.name for d in disks[1:]
                        if not d.readonly and not self.capabilities.cannot_now(self.model, ops.Write(0, "", d.name))]
            if writable and (not self.wrote or not chance(data, 0.75, "same disk")):
                # a disk snapshots treat otherwise (left out, independent) twice as often: its rules
                # are what such a VM is for
                special = {d.name for d in disks if d.mode != "normal"}
                self.write_disk = pick(data, [(None, 1.0), *((d, 2.0 if d in special else 1.0) for d in writable)],
                                       "disk")
            self.wrote = True
            disk = self.write_disk if self.write_disk in (None, *writable) else None
        return ops.Write(block, one_of(data, values, "value"), disk)

    def power(self, data: st.DataObject, wild: bool) -> ops.Operation:
        power = self.model.power
        valid = [t for t in self.power_tags if power in self.profile.transitions[t]]
        tags = self.power_tags if wild or not valid else valid
        return POWER_OPS[one_of(data, tags, "power")]()

    def flags(self, data: st.DataObject, tag: str, wild: bool, wanted: frozenset[str] = frozenset()) -> tuple[str, ...]:
        available = sorted(self.capabilities.flags_for(tag))
        if not available:
            return ()
        preferred = sorted(wanted & set(available))
        if preferred:
            return (one_of(data, preferred, f"{tag} flag"),)
        if wild:
            count = pick(data, [(0, 1.0), (1, 2.0), (2, 1.0)], f"{tag} flag count")
        else:  # flags the system refuses outright are for the steps meant to be refused
            available = sorted(set(available) & self.profile.accepted_flags(tag)) or available
            count = 1 if chance(data, self.mix.flags, f"{tag} flags?") else 0
        chosen: list[str] = []
        for _ in range(count):
            rest = [f for f in available if f not in chosen]
            if rest:
                chosen.append(one_of(data, rest, f"{tag} flag"))
        return tuple(chosen)

    def snapshot(self, data: st.DataObject, wild: bool) -> ops.CreateSnapshot:
        # names this history gave (an unnamed snapshot's clock name is the model's, not the system's)
        taken = self.given & set(self.model.by_name)
        if chance(data, self.mix.unnamed, "unnamed"):
            name: str | None = None
        elif chance(data, self.mix.awkward, "awkward"):
            name = one_of(data, AWKWARD_NAMES, "awkward name")
        elif self.profile.duplicates == "refuse" and not wild:
            fresh = [n for n in FRESH_NAMES if n not in taken]
            name = one_of(data, fresh or FRESH_NAMES, "fresh name")
        elif (later := self.names_after_current()) and chance(data, 0.7, "name a later branch has"):
            # the new snapshot comes first in pre-order but last in creation order: a lookup by
            # this name tells a depth-first lookup from a table's
            name = one_of(data, later, "later name")
        elif taken and chance(data, 0.35, "reuse a name"):  # same names on other branches: lookups must choose
            name = one_of(data, sorted(taken), "taken name")
        else:
            name = one_of(data, PLAIN_NAMES[:self.mix.names], "name")
        memory = (pick(data, [(None, 3.0), (True, 1.0), (False, 1.0)], "memory")
                  if self.capabilities.memory_choice else None)
        description = (one_of(data, DESCRIPTIONS, "description")
                       if chance(data, self.mix.descriptions, "described") else "")
        if name is not None:
            self.given.add(self.profile.stored_name(name))
        modes: tuple[tuple[str, str], ...] = ()
        allowed = sorted(self.capabilities.disk_modes & self.profile.create_disk_modes)
        if allowed and len(self.model.disks) > 1 and chance(data, 0.4, "per-disk modes"):
            # never the NVRAM: it is no disk of the domain's to name (libvirt refuses it)
            chosen = [(disk.name, one_of(data, allowed, "disk mode")) for disk in self.model.disks
                      if disk.role == "disk" and chance(data, 0.5, f"mode for {disk.name}")]
            first = self.model.disks[0].name
            modes = tuple((disk, mode) for disk, mode in chosen
                          if not (self.profile.keeps_first_disk and disk == first and mode == "no"))
        memory_file = None
        if (self.capabilities.memory_files and self.profile.external_memory and self.model.power != "shutoff"
                and chance(data, 0.12, "memory file")):
            self.memory_files += 1  # a fresh, short file name: it is the system's file, not the snapshot's name
            memory_file, memory = f"memory-{self.memory_files}", True
        return ops.CreateSnapshot(name=name, memory=memory, description=description,
                                  flags=self.flags(data, "snapshot", wild), disks=modes, memory_file=memory_file)

    def redefine(self, data: st.DataObject, wild: bool) -> ops.Redefine:
        """libvirt's metadata operations: ``snapshot-current NAME`` (its own XML back, CURRENT), a
        move to another parent, a new snapshot made of metadata (a name a METADATA_ONLY delete
        left in the disks first); wild: a missing parent, a cycle, another kind of state."""
        m = self.model
        snaps = list(m.snapshots.values())
        current = ("current",) if "current" in self.capabilities.flags_for("redefine") and \
            chance(data, 0.5, "redefine current") else ()
        gone = sorted(self.given - set(m.by_name))  # names deleted, perhaps by metadata only
        # an external snapshot's place in the tree is its overlay's in the chain of files: moves stay internal
        movable = len(snaps) > 1 and not any("external" in s.modes for s in snaps)
        kind = pick(data, [("as dumped", 3.0 if snaps else 0.0), ("move", 2.0 if movable else 0.0),
                           ("new", 2.0), ("wild", 8.0 if wild else 0.0)], "redefine kind")
        parent = one_of(data, ["", *(s.name for s in snaps)], "redefine parent") if snaps else None
        if kind == "as dumped":
            return ops.Redefine(one_of(data, snaps, "redefined").name, flags=current)
        if kind == "move":
            return ops.Redefine(one_of(data, snaps, "moved").name, parent=parent, flags=current)
        if kind == "new":
            name = one_of(data, gone, "name back") if gone and chance(data, 0.6, "a deleted name") else \
                one_of(data, [n for n in FRESH_NAMES if n not in m.by_name] or FRESH_NAMES, "new name")
            self.given.add(name)
            state = one_of(data, getattr(self.profile, "redefined_states", ("running",)), "redefined state")
            return ops.Redefine(name, parent=parent, state=state, flags=current)
        target = one_of(data, [*(s.name for s in snaps), "Z"], "wild redefine")
        return pick(data, [(ops.Redefine(target, parent="Y"), 1.0),
                           (ops.Redefine(target, state="shutoff" if m.get_id(target) is None or
                                         m.snapshots[target].state in ("running", "paused") else "running"), 1.0),
                           (ops.Redefine(target, parent=target), 0.5),
                           (ops.Redefine(target, disks=(("vdz", "internal"),)), 0.5),
                           (ops.Redefine(target, flags=self.flags(data, "redefine", True)), 1.0)], "wild kind")

    def revert(self, data: st.DataObject, wild: bool) -> ops.Revert:
        if wild or not self.model.snapshots:
            return ops.Revert(**self.any_name(data), flags=self.flags(data, "revert", wild))
        if self.profile.revert_to_current and chance(data, 0.1, "revert to current"):
            return ops.Revert(flags=self.flags(data, "revert", wild))
        snaps = list(self.model.snapshots.values())
        _, target = self.choose_shape(data, [
            ("inner", [s for s in snaps if s.children], 4.0),  # the next create branches
            ("leaf", [s for s in snaps if not s.children], 1.5),
            ("shared name", self.shared_names(), 3.0),
            ("order-dependent name", self.order_dependent_names(), 4.0),
            ("any", snaps, 1.0),
        ])
        return ops.Revert(**self.address(data, target, "revert"), flags=self.flags(data, "revert", wild))

    def delete(self, data: st.DataObject, wild: bool) -> ops.Delete:
        if wild or not self.model.snapshots:
            return ops.Delete(**self.any_name(data), flags=self.flags(data, "delete", wild))
        m = self.model
        snaps = list(m.snapshots.values())
        current = m.current
        holding_current = [] if current is None else [current, *current.ancestors()]
        shapes = [
            ("two children", [s for s in snaps if len(s.children) >= 2], 5.0),
            ("current with children", [current] if current is not None and current.children else [], 10.0),
            ("one child", [s for s in snaps if len(s.children) == 1], 1.0),
            ("overlapping child", [s for s in snaps if any(c.delta.keys() & s.delta.keys() for c in s.children)], 5.0),
            ("leaf", [s for s in snaps if not s.children], 0.5),
            ("shared name", self.shared_names(), 2.0),
            ("order-dependent name", self.order_dependent_names(), 3.0),
            ("any", snaps, 0.5),
        ]
        subtree_flags = self.capabilities.flags_for("delete") & SUBTREE_FLAGS
        if subtree_flags:
            shapes.append(("subtree holding current", holding_current, 1.5))
            shapes.append(("deep subtree", [s for s in snaps if any(c.children for c in s.children)], 1.5))
        shape, target = self.choose_shape(data, shapes)
        if shape in ("subtree holding current", "deep subtree"):
            flags = self.flags(data, "delete", wild, subtree_flags)
        elif shape == "two children" and not wild:
            flags = ()  # the seed's question: the merge into every child
        else:
            flags = self.flags(data, "delete", wild)
        return ops.Delete(**self.address(data, target, "delete"), flags=flags)

    # -- targets -----------------------------------------------------------------------------

    def choose_shape(self, data: st.DataObject, shapes: list[tuple[str, list[Snapshot], float]]
                     ) -> tuple[str, Snapshot]:
        shape, members = pick(data, [((label, group), w) for label, group, w in shapes if group], "target shape")
        return shape, one_of(data, members, "target")

    def names_after_current(self) -> list[str]:
        """Names that a pre-order walk meets only after the current snapshot's subtree: a new
        snapshot of that name comes first in pre-order, though it is the newest."""
        m = self.model
        if m.current is None or self.profile.duplicates != "allow":
            return []
        walk = list(m.preorder())
        end = walk.index(m.current) + len(m.subtree(m.current))
        return sorted(({s.name for s in walk[end:]} - {s.name for s in walk[:end]}) & self.given)

    def shared_names(self) -> list[Snapshot]:
        """Snapshots whose name another one has too: addressed by name, the profile's lookup decides."""
        return [s for same in self.model.by_name.values() if len(same) >= 2 for s in same]

    def order_dependent_names(self) -> list[Snapshot]:
        """Snapshots with a name that a depth-first lookup and a table lookup resolve differently."""
        m = self.model
        return [same[0] for same in m.by_name.values() if len(same) >= 2 and m.first_in_preorder(same) is not same[0]]

    def address(self, data: st.DataObject, target: Snapshot, tag: str) -> dict[str, str | None]:
        """By name, as a user types it (the profile's lookup decides which same-named one it
        finds); sometimes by id, where the driver can address snapshots so."""
        if self.capabilities.addresses_by_id(tag) and chance(data, self.mix.by_id, "by id"):
            return {"ref": None, "id": target.id}
        return {"ref": target.name, "id": None}

    def any_name(self, data: st.DataObject) -> dict[str, str | None]:
        """A name that may or may not exist: the unknown-name refusals."""
        return {"ref": one_of(data, (*PLAIN_NAMES, "nope", *AWKWARD_NAMES), "any name"), "id": None}
