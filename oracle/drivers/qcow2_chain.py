"""The seed's picture on real qcow2 files: every snapshot is an external overlay, and deleting
one merges its overlay into its dependants [semantics.md §1, §6]::

    A <--1-- B <--2-- C <--3-- current        snap-1.qcow2 <- snap-2.qcow2 <- snap-3.qcow2 <- active.qcow2
             + <--4-- D                                      <- snap-4.qcow2

What is REAL (bytes written and read by qemu-img / qemu-io on the files):
  - writes land in ``active.qcow2`` (qemu-io); a snapshot freezes it (renamed to
    ``snap-ID.qcow2``) and a new ``active.qcow2`` starts on top (``qemu-img create -b``);
  - revert discards ``active.qcow2`` and starts a new one on the snapshot's file;
  - delete merges the snapshot's overlay into each dependant (its child overlays, and the
    active one when it is current): ``qemu-img rebase -b PARENT`` (safe mode) of every
    dependant, or, with exactly one dependant whose overlay is the smaller, ``qemu-img commit``
    of the dependant into the deleted file, which then takes the dependant's place;
  - every view is read from the files through their backing chains; each snapshot's parent and
    the current snapshot are read from the files' backing-file headers.
What is BOOKKEEPING (the driver's own, since a chain of files has no such thing): snapshot
names and ids, the order of siblings (which of two same-named snapshots a name finds), and
the profile's refusals (VirtualBox's "more than one child" and "current with a child").
There is no VM: no power state and no memory, so every snapshot is disk-only.

Why not ``qemu-img commit`` everywhere: commit writes the dependant's data *into* the deleted
snapshot's file (a backward merge).  That file is then the dependant's point in time, which is
right only when nothing else reads through it, i.e. when the deleted snapshot has exactly one
dependant (§6: commit is wrong when the parent has another child).  Rebase in safe mode copies
the deleted overlay's data *forward* into each dependant and is right for any number of them;
the merge direction changes storage use, never what anyone reads (§1).
"""

from __future__ import annotations

import os
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snaptree.model import ops

from .. import lifetime
from ..driver import Driver, Result
from ..lifetime import Workspace
from . import qemu_io
from .qemu_common import (
    BlockValues,
    OfflineQemu,
    QemuCallFailed,
    call,
    create_image,
    read_view,
    write_refusal,
)

ACTIVE = "active.qcow2"
SNAP_FILE = re.compile(r"^snap-(\d+)\.qcow2$")


@dataclass(frozen=True)
class Rules:
    """The profile's rules for what the files cannot tell [semantics.md §2, §3]."""

    not_found: str
    children_last: bool = False  # a deleted snapshot's children go after its siblings (vbox)
    needs_name: bool = False
    empty_name_finds_first: bool = False  # vbox findSnapshot("") is the first root
    refuse_two_children: bool = False  # vbox deleteSnapshot
    delete_flags: frozenset[str] = frozenset()


RULES = {
    "esx": Rules(not_found="Could not find snapshot with name '{}'", delete_flags=frozenset({"remove-children"})),
    "vbox": Rules(not_found="Could not find a snapshot named '{}'", children_last=True, needs_name=True,
                  empty_name_finds_first=True, refuse_two_children=True),
}


def backing_file(path: Path) -> str | None:
    """The backing file name in a qcow2 header (qcow2 spec: big-endian offset at byte 8,
    length at byte 16), or None."""
    with open(path, "rb") as f:
        header = f.read(20)
        if header[:4] != b"QFI\xfb":
            raise ValueError(f"{path} is not a qcow2 image")
        offset, size = struct.unpack(">QI", header[8:20])
        if offset == 0:
            return None
        f.seek(offset)
        return f.read(size).decode()


@dataclass
class Entry:
    name: str
    key: tuple[int, ...]  # sibling order: creation tick, or where a deleted parent stood


class Qcow2ChainDriver(OfflineQemu, Driver):
    name = "qcow2-chain"
    description = "the seed's merge semantics on real qcow2 overlay files (qemu-img create -b / rebase / commit)"
    profiles = ("esx", "vbox")
    observes = frozenset({"tree", "current", "views"})  # read from the files; names/ids are bookkeeping
    operations = frozenset({"write", "snapshot", "revert", "delete"})
    by_id = True
    memory_choice = False

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        self.rules = RULES[self.profile]
        self.flags = {"delete": self.rules.delete_flags}
        self.space: Workspace | None = None
        self.merges: Counter[str] = Counter()  # how deletes merged: "commit", "rebase", "discard"

    # -- life cycle ----------------------------------------------------------------------------

    def setup(self, blocks: int) -> None:
        self.blocks = blocks
        self.space = lifetime.workspace(self.name)
        self.values_on_disk = BlockValues(self.values)
        self.dir = self.space.path
        self.snaps: dict[str, Entry] = {}  # by id, in creation order
        self.tick = 0
        create_image(self.file(None), blocks)
        self.views: dict[str | None, dict[str, str]] = {None: {}}  # None: the current state
        self.stale = False

    def teardown(self) -> None:
        lifetime.release(self.space)
        self.space = None

    def file(self, snapshot_id: str | None) -> Path:
        return self.dir / (ACTIVE if snapshot_id is None else f"snap-{snapshot_id}.qcow2")

    # -- the tree, from the files ------------------------------------------------------------

    def parent(self, snapshot_id: str | None) -> str | None:
        """The snapshot whose file backs this one's (None: the active overlay's)."""
        backing = backing_file(self.file(snapshot_id))
        if backing is None:
            return None
        match = SNAP_FILE.match(Path(backing).name)
        if match is None or match.group(1) not in self.snaps:
            raise ValueError(f"{self.file(snapshot_id).name} is backed by an unknown file {backing!r}")
        return match.group(1)

    def tree(self) -> tuple[dict[str | None, list[str]], str | None]:
        """Children of each snapshot (None: the roots) in sibling order, and the current one."""
        children: dict[str | None, list[str]] = {None: [], **{i: [] for i in self.snaps}}
        for sid in self.snaps:
            children[self.parent(sid)].append(sid)
        for kids in children.values():
            kids.sort(key=lambda i: self.snaps[i].key)
        return children, self.parent(None)

    def preorder(self, children: dict[str | None, list[str]]) -> list[str]:
        order, stack = [], list(reversed(children[None]))
        while stack:
            top = stack.pop()
            order.append(top)
            stack.extend(reversed(children[top]))
        return order

    def subtree(self, children: dict[str | None, list[str]], top: str) -> list[str]:
        """``top`` and its descendants, children before parents."""
        order, stack = [], [top]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(children[node])
        return order[::-1]

    # -- operations ------------------------------------------------------------------------------

    def apply(self, op: ops.Operation) -> Result:
        try:
            if isinstance(op, ops.Write):
                self.views[None] = qemu_io.write_and_read_values(self.file(None), [(op.block, op.value)], self.blocks,
                                                                 self.values_on_disk)
                return Result(True)
            if isinstance(op, ops.CreateSnapshot):
                return self.create(op)
            if isinstance(op, ops.Revert):
                return self.revert(op)
            if isinstance(op, ops.Delete):
                return self.delete(op)
        except QemuCallFailed as error:
            self.stale = True
            return Result.error(write_refusal(error.message, "unexpected"), error.message)
        return Result.error("unsupported", f"a chain of qcow2 files has no VM: no '{op.tag}' operation")

    def create(self, op: ops.CreateSnapshot) -> Result:
        if op.flags:
            return Result.error("invalid-argument", f"unknown create flags {op.flags}")
        if op.name is None and self.rules.needs_name:
            return Result.error("invalid-argument", "takeSnapshot needs a name")
        self.tick += 1
        sid = str(self.tick)
        # vSphere's CreateSnapshot_Task needs a name and has no default: a client with none sends
        # "" (the vsphere driver does), so unnamed snapshots share the name "" and a lookup of ""
        # finds the first in pre-order [semantics.md §2.1, §2.8]
        name = "" if op.name is None else op.name
        os.rename(self.file(None), self.file(sid))  # the active overlay, frozen
        self.snaps[sid] = Entry(name, (self.tick,))
        create_image(self.file(None), self.blocks, backing=self.file(sid))
        # the frozen file's bytes are those just read as the current state, and the new overlay
        # is empty: nothing to read again (the tree is still read from the headers)
        if not self.stale:
            self.views[sid] = self.views[None]
        return Result(True, created_id=sid, created_name=name)

    def revert(self, op: ops.Revert) -> Result:
        if op.flags:
            return Result.error("invalid-argument", f"unknown revert flags {op.flags}")
        children, current = self.tree()
        target = self.resolve(op, children, current, allow_current=self.profile == "esx")
        if isinstance(target, Result):
            return target
        os.unlink(self.file(None))  # the unsaved changes are lost for good [§1]
        create_image(self.file(None), self.blocks, backing=self.file(target))
        if not self.stale:  # no snapshot file changed: read only the new current state
            self.views[None] = qemu_io.write_and_read_values(self.file(None), [], self.blocks, self.values_on_disk)
        return Result(True)

    def delete(self, op: ops.Delete) -> Result:
        unknown = set(op.flags) - self.rules.delete_flags
        if unknown:
            return Result.error("invalid-argument", f"unknown delete flags {sorted(unknown)}")
        children, current = self.tree()
        target = self.resolve(op, children, current, allow_current=False)
        if isinstance(target, Result):
            return target
        if self.rules.refuse_two_children:  # SessionMachine::i_deleteSnapshot [§3]
            what = f"Snapshot '{self.snaps[target].name}' of the machine 'vm' cannot be deleted, because it"
            if len(children[target]) > 1:
                return Result.error("has-children", f"{what} has {len(children[target])} child snapshots, "
                                                    "which is more than the one snapshot allowed for deletion")
            if target == current and children[target]:
                return Result.error("has-children", f"{what} is the current snapshot and has one child snapshot")
        doomed = self.subtree(children, target) if "remove-children" in op.flags else [target]
        for sid in doomed:
            self.remove(sid)
        self.stale = True
        return Result(True)

    def remove(self, sid: str) -> None:
        """Merge the snapshot's overlay into its dependants, then drop its file.  (-t unsafe:
        no fsync, a scratch file need not survive a crash of the machine.)"""
        children, current = self.tree()
        parent = self.parent(sid)
        dependants: list[str | None] = list(children[sid]) + ([None] if current == sid else [])
        gone = self.file(sid)
        if len(dependants) == 1 and self.file(dependants[0]).stat().st_size < gone.stat().st_size:
            # backward: the one dependant's data into this file, which then takes its place
            only = self.file(dependants[0])
            call(["qemu-img", "commit", "-q", "-t", "unsafe", "-f", "qcow2", "-d", str(only)])
            os.replace(gone, only)
            self.merges["commit"] += 1
        else:
            base = [] if parent is None else ["-F", "qcow2"]
            new_backing = "" if parent is None else str(self.file(parent))
            for dependant in dependants:
                call(["qemu-img", "rebase", "-q", "-t", "unsafe", "-f", "qcow2", "-b", new_backing] + base
                     + [str(self.file(dependant))])
            os.unlink(gone)
            self.merges["rebase" if dependants else "discard"] += len(dependants) or 1
        entry = self.snaps.pop(sid)
        for child in children[sid]:  # the children take its place among its siblings, or go last
            self.tick += 1
            self.snaps[child].key = (self.tick,) if self.rules.children_last else entry.key + self.snaps[child].key

    def resolve(self, op: ops.Revert | ops.Delete, children: dict[str | None, list[str]], current: str | None,
                allow_current: bool) -> str | Result:
        """The snapshot an operation names: by id, or by name depth-first pre-order [§2, §3]."""
        if op.id is not None:
            return op.id if op.id in self.snaps else Result.error("not-found", self.rules.not_found.format(op.id))
        if op.ref is None:
            if not allow_current:
                return Result.error("invalid-argument", f"{op.tag} needs a snapshot name")
            return current if current is not None else Result.error("not-found", "the VM has no current snapshot")
        if self.rules.empty_name_finds_first:  # Machine::findSnapshot [§3]
            if not children[None]:
                return Result.error("not-found", "This machine does not have any snapshots")
            if op.ref == "":
                return children[None][0]
        for sid in self.preorder(children):
            if self.snaps[sid].name == op.ref:
                return sid
        return Result.error("not-found", self.rules.not_found.format(op.ref))

    # -- observation -------------------------------------------------------------------------------

    def read_views(self) -> None:
        """Every point in time, read in this process (``read_view``; qemu-img where it cannot)."""
        scratch = self.dir / "view"
        self.views = {sid: self.values_on_disk.read(read_view(self.file(sid), self.blocks, scratch))
                      for sid in [*self.snaps, None]}
        self.stale = False

    def observe(self) -> dict[str, Any]:
        if self.stale:
            self.read_views()
        children, current = self.tree()
        parents = {child: parent for parent, kids in children.items() for child in kids}
        snapshots = [{"name": e.name, "id": sid, "parent": parents[sid], "children": list(children[sid]),
                      "memory": False, "memory_image": None, "state": "shutoff", "description": ""}
                     for sid, e in self.snaps.items()]
        return {"current": current, "power": "shutoff", "ram": None, "snapshots": snapshots,
                "views": {"current": dict(self.views[None]),
                          "snapshots": {sid: dict(self.views[sid]) for sid in self.snaps}}}
