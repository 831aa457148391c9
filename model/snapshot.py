"""A snapshot: a node of the tree, with the overlay (``delta``) between its parent's point in
time and its own; and ``ProfileState``, what a profile keeps of a machine beyond the tree."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

EMPTY = ""  # what a block never written reads


@dataclass
class ProfileState:
    """What a profile keeps of a machine beyond the tree (``Machine.profile_state``): each profile
    that needs some subclasses this with a dataclass of plain data (libvirt-qemu's qcow2 tables,
    live QEMU's VM-state areas, vcsim's stale current snapshot)."""

    def copy(self) -> ProfileState:
        """An independent copy, for :meth:`Machine.clone`."""
        return copy.deepcopy(self)

    def key(self) -> tuple:
        """A comparable, order-independent copy, for :meth:`Machine.fingerprint`."""
        return frozen(self)


StateT = TypeVar("StateT", bound=ProfileState)


@dataclass(eq=False)
class Snapshot:
    name: str
    id: str
    parent: Snapshot | None
    delta: dict[int, str]  # addresses written between the parent's point in time and this one
    memory: str | None  # memory image token; None for a disk-only snapshot
    state: str  # power state recorded at creation
    description: str = ""
    order: int = 0  # creation order, for listings and qcow2's table order
    created: int = 0  # logical clock at creation
    children: list[Snapshot] = field(default_factory=list)
    modes: tuple[str, ...] = ("internal",)  # per disk, what the snapshot did with it (disks.SNAPSHOT_MODES)
    memory_file: str | None = None  # where an external memory image went; None: internal, or none

    def __repr__(self) -> str:
        return f"<Snapshot {self.name!r} id={self.id}>"

    def left_out(self) -> tuple[int, ...]:
        """The indexes of the disks this snapshot did not record (mode "no")."""
        return () if "no" not in self.modes else tuple(i for i, mode in enumerate(self.modes) if mode == "no")

    def ancestors(self) -> Iterator[Snapshot]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent



def frozen(value: Any) -> Any:
    """A comparable, order-independent copy of plain data (dicts, sets, lists, dataclasses)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, frozen(dataclasses.asdict(value)))
    if isinstance(value, dict):
        return tuple(sorted((repr(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(repr(frozen(v)) for v in value))
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value
