"""The shared core: a snapshot tree over copy-on-write sparse overlays, a memory image per
snapshot, the running state and the VM's power state.

The picture is the seed's::

    A <--1-- B <--2-- C <--3-- current
             + <--4-- D

Every snapshot owns the overlay (``delta``) between its parent's point in time and its own; the
running state owns ``overlay`` on top of the snapshot it is based on (``current``).  Reading a
point in time walks the chain to the root.  Overlays are sparse dicts, so taking a snapshot or
reverting costs O(1) and deleting one costs O(size of its delta), whatever the disk size.

The methods here are mechanics without rules: a profile checks its rules first (raising
:class:`~snaptree.model.errors.ModelError` before anything changes) and then calls them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .disks import DEFAULT_LAYOUT, Disk
from .errors import ModelError
from .snapshot import EMPTY, ProfileState, Snapshot, StateT, frozen

__all__ = ["CLOCK_START", "EMPTY", "Machine", "ProfileState", "Snapshot", "frozen"]  # the last four: model/snapshot.py

if TYPE_CHECKING:
    from .profiles.base import Profile

CLOCK_START = 1269980040  # 2010-03-30 20:14:00 UTC, the day of the seed's discussion


class Machine:
    """One VM and its disks, under one profile's rules.  ``perform`` is the only entry point
    that enforces rules; everything else is mechanics or observation.  Overlays map addresses
    (block ``b`` of disk ``i`` is ``i * blocks + b``, :mod:`~snaptree.model.disks`) to values."""

    def __init__(self, profile: Profile, blocks: int = 16, disks: tuple[Disk, ...] = DEFAULT_LAYOUT):
        if blocks < 1:
            raise ValueError("a disk has at least one block")
        self.profile = profile
        self.blocks = blocks  # per disk
        self.disks = disks
        self.disk_index = {disk.name: index for index, disk in enumerate(disks)}
        self.roots: list[Snapshot] = []
        self.snapshots: dict[str, Snapshot] = {}  # by id, in creation order
        self.by_name: dict[str, list[Snapshot]] = {}  # in creation order
        self.current: Snapshot | None = None  # the snapshot the running state is based on
        self.overlay: dict[int, str] = {}  # the running state's own writes
        self.power = "shutoff"
        self.ram: str | None = None  # the memory image the RAM was last loaded from (or booted)
        self.ram_ran = False  # the guest ran since, so its RAM no longer equals that image
        self.clock = CLOCK_START  # logical seconds: one per applied operation
        self.serial = 0  # snapshots ever created
        self.images = 0  # memory images ever made
        self.id_counter = 0  # for profiles whose ids are never reused
        # what the profile keeps beyond the tree: None until the profile first needs some
        self.profile_state: ProfileState | None = None

    # -- the entry point -------------------------------------------------------------------

    def perform(self, op: Any) -> Snapshot | None:
        """Apply one operation under the profile's rules.  Returns the snapshot it created,
        if any; raises ModelError, leaving the state as it was, when the profile refuses."""
        self.clock += 1
        try:
            return self.profile.perform(self, op)
        except ModelError as error:
            if error.side_effect is None:
                self.clock -= 1
            raise

    # -- the profile's own state -------------------------------------------------------------

    def state(self, kind: type[StateT]) -> StateT:
        """The profile's state, of the profile's own ``kind``, made (empty) on first use."""
        if self.profile_state is None:
            self.profile_state = kind()
        assert isinstance(self.profile_state, kind), f"{self.profile_state!r} is not a {kind.__name__}"
        return self.profile_state

    def profile_state_key(self) -> tuple:
        """The profile's state as comparable values; () when it keeps none."""
        return () if self.profile_state is None else self.profile_state.key()

    # -- lookup ------------------------------------------------------------------------------

    def get_id(self, snapshot_id: str) -> Snapshot | None:
        return self.snapshots.get(snapshot_id)

    def named(self, name: str) -> list[Snapshot]:
        """Snapshots with this name, in creation order (qcow2's table order)."""
        return self.by_name.get(name, [])

    def first_in_preorder(self, candidates: list[Snapshot]) -> Snapshot | None:
        """The candidate a depth-first, pre-order walk of the tree meets first."""
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        # the walk itself, up to the first hit: at most the tree's size, where a key per
        # candidate (its path of sibling indexes) costs candidates x depth, quadratic in a chain
        wanted = set(candidates)
        return next(node for node in self.preorder() if node in wanted)

    def preorder(self) -> Iterator[Snapshot]:
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def subtree(self, node: Snapshot) -> list[Snapshot]:
        """``node`` and its descendants, children before parents."""
        order, stack = [], [node]
        while stack:
            top = stack.pop()
            order.append(top)
            stack.extend(top.children)
        order.reverse()
        return order

    # -- disks -----------------------------------------------------------------------------

    def address(self, disk: str | None, block: int) -> int:
        """Where block ``block`` of disk ``disk`` (None: the first) lives in the overlays."""
        return block if disk is None else self.disk_index[disk] * self.blocks + block

    def addresses(self, index: int) -> range:
        """Every address of the disk at ``index``."""
        return range(index * self.blocks, (index + 1) * self.blocks)

    def disks_in_mode(self, *modes: str) -> tuple[int, ...]:
        """The indexes of the disks whose layout mode is one of these."""
        return tuple(i for i, disk in enumerate(self.disks) if disk.mode in modes)

    def on_disks(self, layer: dict[int, str], indexes: tuple[int, ...]) -> dict[int, str]:
        """The part of an overlay that lies on these disks."""
        blocks = self.blocks
        return {a: v for a, v in layer.items() if a // blocks in indexes}

    # -- reading points in time ----------------------------------------------------------

    def read(self, snapshot: Snapshot | None, block: int) -> str:
        node = snapshot
        while node is not None:
            value = node.delta.get(block)
            if value is not None:
                return value
            node = node.parent
        return EMPTY

    def read_current(self, block: int) -> str:
        value = self.overlay.get(block)
        return value if value is not None else self.read(self.current, block)

    def view(self, snapshot: Snapshot | None) -> dict[int, str]:
        """Every block that reads other than empty at this point in time (None: the running
        state)."""
        layers = [self.overlay] if snapshot is None else []
        node = self.current if snapshot is None else snapshot
        while node is not None:
            layers.append(node.delta)
            node = node.parent
        seen: dict[int, str] = {}
        for layer in layers:
            for block, value in layer.items():
                seen.setdefault(block, value)
        left_out = () if snapshot is None else snapshot.left_out()
        blocks = self.blocks
        return {block: value for block, value in sorted(seen.items())
                if value != EMPTY and not (left_out and block // blocks in left_out)}

    def views(self) -> dict[str, dict[int, str]]:
        """Every snapshot's :meth:`view`, by id in creation order.  Each is built from its
        parent's, so all of them cost the size of the result, not depth x snapshots."""
        reads: dict[str, dict[int, str]] = {}  # every block written up to a point, empty ones too
        for node in self.preorder():
            inherited = reads[node.parent.id] if node.parent is not None else {}
            reads[node.id] = {**inherited, **node.delta}
        blocks = self.blocks
        return {sid: {block: value for block, value in sorted(reads[sid].items())
                      if value != EMPTY and not (left_out and block // blocks in left_out)}
                for sid, left_out in ((sid, s.left_out()) for sid, s in self.snapshots.items())}

    # -- mechanics -------------------------------------------------------------------------

    def write(self, address: int, value: str) -> None:
        self.overlay[address] = value

    def new_memory_image(self) -> str:
        self.images += 1
        return f"ram{self.images}"

    def boot(self, power: str = "running") -> None:
        """Start the guest with fresh RAM."""
        self.power = power
        self.ram = self.new_memory_image()
        self.ram_ran = power == "running"

    def capture_memory(self) -> str:
        """The memory image of the RAM as it is now.  RAM that has not run since it was
        loaded is the very image it was loaded from."""
        assert self.ram is not None, "no RAM to capture"
        if self.ram_ran:
            self.ram = self.new_memory_image()
            self.ram_ran = self.power == "running"
        return self.ram

    def load_memory(self, image: str | None, power: str) -> None:
        """Put the VM in ``power`` with RAM from ``image`` (None and on: a fresh boot)."""
        if power == "shutoff":
            self.power, self.ram, self.ram_ran = "shutoff", None, False
        elif image is None:
            self.boot(power)
        else:
            self.power, self.ram, self.ram_ran = power, image, power == "running"

    def take(self, name: str, snapshot_id: str, memory: bool, state: str, description: str = "",
             modes: tuple[str, ...] | None = None, memory_file: str | None = None) -> Snapshot:
        """Freeze the running state's overlay as a new snapshot, child of ``current``, and
        make it current; the running state continues in a fresh overlay on top of it.  The
        writes to disks the snapshot leaves out (``modes``, per disk) stay in the running state."""
        image = self.capture_memory() if memory else None
        self.serial += 1
        modes = modes or ("internal",) * len(self.disks)
        delta, self.overlay = self.overlay, {}
        if "no" in modes:
            left_out = tuple(i for i, mode in enumerate(modes) if mode == "no")
            self.overlay = self.on_disks(delta, left_out)
            for address in self.overlay:
                del delta[address]
        node = Snapshot(
            name=name, id=snapshot_id, parent=self.current, delta=delta, memory=image,
            state=state, description=description, order=self.serial, created=self.clock,
            modes=modes, memory_file=memory_file,
        )
        self.current = self._attach(node)
        return node

    def define(self, name: str, snapshot_id: str, parent: Snapshot | None, content: dict[int, str], memory: str | None,
               state: str, modes: tuple[str, ...]) -> Snapshot:
        """A snapshot of metadata (libvirt's redefine) under ``parent``, reading ``content``."""
        self.serial += 1
        delta = _difference(content, self.view_unfiltered(parent))
        node = Snapshot(name=name, id=snapshot_id, parent=parent, delta=delta, memory=memory, state=state,
                        order=self.serial, created=self.clock, modes=modes)
        return self._attach(node)

    def _attach(self, node: Snapshot) -> Snapshot:
        """Put a new snapshot in the tree, last of its parent's children, and in the indexes."""
        (node.parent.children if node.parent is not None else self.roots).append(node)
        self.snapshots[node.id] = node
        self.by_name.setdefault(node.name, []).append(node)
        return node

    def move(self, node: Snapshot, parent: Snapshot | None) -> None:
        """Make ``parent`` (outside ``node``'s subtree) its parent; everything reads as before."""
        node.delta = _difference(self.view_unfiltered(node), self.view_unfiltered(parent))
        (node.parent.children if node.parent is not None else self.roots).remove(node)
        (parent.children if parent is not None else self.roots).append(node)
        node.parent = parent

    def rebase(self, node: Snapshot | None) -> None:
        """Make ``node`` current without changing what the running state reads."""
        self.overlay = _difference(self.view(None), self.view_unfiltered(node))
        self.current = node

    def restore(self, node: Snapshot, keep: tuple[int, ...] | None = None) -> None:
        """Throw away the running state's unsaved writes and base it on ``node``.  The disks
        ``node`` left out (or those in ``keep``) keep what they read: a revert does not touch them."""
        keep = node.left_out() if keep is None else keep
        kept = self.running_content(keep) if keep else {}
        self.current = node
        self.overlay = {}
        if keep:
            self.put_back(kept, keep)

    def put_back(self, kept: dict[int, str], disks: tuple[int, ...]) -> None:
        """Make the running state read ``kept`` (and nothing else) on these disks again, on
        whatever base it has now."""
        if not disks:
            return
        for address in self.on_disks(self.overlay, disks):
            del self.overlay[address]
        base = self.view_unfiltered(self.current)
        for address in self.on_disks(base, disks):
            self.overlay[address] = EMPTY  # read through to nothing: the kept disk never held it
        self.overlay.update(kept)

    def running_content(self, indexes: tuple[int, ...]) -> dict[int, str]:
        """What the running state reads on these disks, every non-empty address."""
        return self.on_disks(self.view(None), indexes)

    def view_unfiltered(self, snapshot: Snapshot | None) -> dict[int, str]:
        """What a snapshot's chain reads on every disk, also on those it left out (None: nothing)."""
        seen: dict[int, str] = {}
        node: Snapshot | None = snapshot
        while node is not None:
            for address, value in node.delta.items():
                seen.setdefault(address, value)
            node = node.parent
        return {address: value for address, value in seen.items() if value != EMPTY}

    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        """Remove one snapshot, merging its delta into each child (and into the running state
        when it is based on ``node``), so that no other point in time reads differently.
        The children take its place under its parent (or go after its other children, with
        ``children_last``); if it was current, its parent is."""
        if len(node.children) + (self.current is node) == 1:
            # One dependant: merge in whichever direction moves fewer blocks (the seed: the
            # direction changes storage use, never what anyone reads).
            if node.children:
                child = node.children[0]
                child.delta = _absorb(node.delta, child.delta)
            else:
                self.overlay = _absorb(node.delta, self.overlay)
        else:
            for child in node.children:
                _copy_missing(node.delta, child.delta)
            if self.current is node:
                _copy_missing(node.delta, self.overlay)
        siblings = node.parent.children if node.parent is not None else self.roots
        at = siblings.index(node)
        siblings[at : at + 1] = [] if children_last else node.children
        if children_last:
            siblings.extend(node.children)
        for child in node.children:
            child.parent = node.parent
        if self.current is node:
            self.current = node.parent
        del self.snapshots[node.id]
        same_name = self.by_name[node.name]
        same_name.remove(node)
        if not same_name:
            del self.by_name[node.name]

    # -- observation helpers -------------------------------------------------------------

    def clone(self) -> Machine:
        """An independent copy (same profile object), to try an operation without committing
        to it: the oracle's generator asks it what an operation would do."""
        twin = Machine.__new__(Machine)
        twin.__dict__.update(self.__dict__)
        copies: dict[int, Snapshot] = {}
        # overlays are copied once each: a copy shares what the original shares (as deepcopy
        # would), so a model that wrongly aliases two overlays stays wrong in its copies
        overlays: dict[int, dict[int, str]] = {}
        for s in self.snapshots.values():
            # a field-by-field copy: dataclasses.replace re-runs __init__, a third of a clone's cost
            twin_s = copies[id(s)] = Snapshot.__new__(Snapshot)
            twin_s.__dict__.update(s.__dict__)
            delta = overlays.get(id(s.delta))
            twin_s.delta = overlays[id(s.delta)] = dict(s.delta) if delta is None else delta
        for s in self.snapshots.values():
            twin_s = copies[id(s)]
            twin_s.parent = None if s.parent is None else copies[id(s.parent)]
            twin_s.children = [copies[id(c)] for c in s.children]
        twin.roots = [copies[id(r)] for r in self.roots]
        twin.snapshots = {sid: copies[id(s)] for sid, s in self.snapshots.items()}
        twin.by_name = {name: [copies[id(s)] for s in same] for name, same in self.by_name.items()}
        twin.current = None if self.current is None else copies[id(self.current)]
        shared = overlays.get(id(self.overlay))
        twin.overlay = dict(self.overlay) if shared is None else shared
        # most profiles keep nothing beyond the tree
        twin.profile_state = None if self.profile_state is None else self.profile_state.copy()
        return twin

    def fingerprint(self) -> tuple:
        """Everything that makes up the state, as comparable values (for tests)."""
        nodes = tuple(
            (s.id, s.name, s.parent.id if s.parent else None, tuple(c.id for c in s.children),
             tuple(sorted(s.delta.items())), s.memory, s.state, s.description, s.order, s.created,
             s.modes, s.memory_file)
            for s in self.snapshots.values()
        )
        return (
            nodes, tuple(r.id for r in self.roots), self.current.id if self.current else None,
            tuple(sorted(self.overlay.items())), self.power, self.ram, self.ram_ran, self.clock,
            self.serial, self.images, self.id_counter, self.profile_state_key(), self.disks,
        )


def _difference(content: dict[int, str], base: dict[int, str]) -> dict[int, str]:
    """The overlay that makes ``base`` read ``content`` (both: every non-empty address)."""
    return {a: v for a, v in content.items() if base.get(a, EMPTY) != v} | {a: EMPTY for a in base if a not in content}


def _copy_missing(older: dict[int, str], newer: dict[int, str]) -> None:
    for block, value in older.items():
        newer.setdefault(block, value)


def _absorb(older: dict[int, str], newer: dict[int, str]) -> dict[int, str]:
    """``older`` overlaid by ``newer``, built in place in the larger of the two."""
    if len(older) > len(newer):
        older.update(newer)
        return older
    _copy_missing(older, newer)
    return newer
