"""qcow2 internal snapshots offline, through the qemu-img command line [semantics.md §4].

Every snapshot operation under test is one ``qemu-img snapshot -c/-a/-d`` process on a real
qcow2 image; writes go through qemu-io.  What is observed comes from the image:
``qemu-img info --output=json`` for the table (ids, names, vm-state-size), ``qemu-img convert
-l snapshot.id=ID`` for what a snapshot reads (without applying it), qemu-io for what the
image itself reads.

Fast around the operation: a write and the read-back of the image are one qemu-io process;
a snapshot's content never changes while its table entry stays the same (the entry's id,
name and creation time), so each snapshot is exported once, when it appears in the table;
the table is read after -c and -d, the image's own content after writes and -a; a refused
command is not followed by any read.
"""

from __future__ import annotations

from typing import Any

from snaptree.model import ops

from .. import lifetime
from ..driver import Driver, Result
from ..lifetime import Workspace
from . import qemu_io
from .qemu_common import (
    WRITE_REFUSALS,
    BlockValues,
    OfflineQemu,
    QemuCallFailed,
    call,
    create_image,
    read_view,
    snapshot_table,
)

# qemu-img's messages (QEMU 7.2.22 and 10.0.2) -> the model's error kinds
ERROR_KINDS = (
    ("snapshot not found", "not-found"),  # -d NAME: "Could not delete snapshot 'x': snapshot not found"
    ("Failed to load snapshot", "not-found"),  # -a NAME: "...: Failed to load snapshot: No such file or directory"
    ("Expecting one image file name", "invalid-argument"),  # -c / -a without a name
    ("Operation not supported", "unsupported"),  # a raw image: "-95 (Operation not supported)" before QEMU 10
    ("failed to get \"write\" lock", "invalid-state"),  # another process holds the image
    *WRITE_REFUSALS,  # qemu-io: a write outside the disk
)


def error_kind(message: str) -> str:
    """The model's error kind for one of qemu-img's messages ("unexpected" if unknown,
    which the checker reports as a divergence with the message)."""
    for text, kind in ERROR_KINDS:
        if text in message:
            return kind
    return "unexpected"


def failed(error: QemuCallFailed) -> Result:
    message = error.message
    return Result.error(error_kind(message), message)


class QemuImgDriver(OfflineQemu, Driver):
    name = "qemu-img"
    description = "qcow2 internal snapshots with qemu-img snapshot -c/-a/-d (offline, no VM)"
    profiles = ("qemu-img",)
    observes = frozenset({"names", "ids", "memory", "views"})
    operations = frozenset({"write", "snapshot", "revert", "delete"})  # no VM: no power operations
    # -a accepts an id, but -d matches names only [§4], so a Delete(id=...) has no command line
    by_id = frozenset({"revert"})
    memory_choice = False  # qemu-img snapshots are disk-only

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        self.space: Workspace | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def setup(self, blocks: int) -> None:
        self.blocks = blocks
        self.space = lifetime.workspace(self.name)
        self.values_on_disk = BlockValues(self.values)
        self.image = self.space.file("disk.qcow2")
        create_image(self.image, blocks)
        # the image as options, to turn off fsync (a scratch image need not survive a crash)
        self.image_opts = f"driver=qcow2,file.filename={str(self.image).replace(',', ',,')},cache.no-flush=on"
        self.table: list[dict[str, Any]] = []
        self.snapshot_views: dict[tuple[Any, ...], dict[str, str]] = {}
        self.current_view: dict[str, str] = {}

    def teardown(self) -> None:
        lifetime.release(self.space)
        self.space = None

    # -- operations ------------------------------------------------------------------------------

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.Write):
            try:
                self.current_view = qemu_io.write_and_read_values(self.image, [(op.block, op.value)], self.blocks,
                                                                  self.values_on_disk)
            except QemuCallFailed as error:
                return failed(error)
            return Result(True)
        if isinstance(op, (ops.CreateSnapshot, ops.Revert, ops.Delete)) and op.flags:
            return Result.error("invalid-argument", "qemu-img snapshot -c/-a/-d take no flags")
        if isinstance(op, ops.CreateSnapshot):
            if op.memory:
                return Result.error("unsupported", "qemu-img has no VM: its snapshots are disk-only")
            # no name: qemu-img takes the image path for the name and misses the image
            return self.snapshot_command(["-c"] + ([] if op.name is None else [op.name]), created=True)
        if isinstance(op, ops.Revert):
            ref = op.id if op.id is not None else op.ref  # -a tries the id first, then the name [§4]
            return self.snapshot_command(["-a"] + ([] if ref is None else [ref]))
        if isinstance(op, ops.Delete):
            ref = op.ref if op.id is None else self.name_of_id(op.id)
            if isinstance(ref, Result):
                return ref
            return self.snapshot_command(["-d"] + ([] if ref is None else [ref]))
        return Result.error("unsupported", f"qemu-img works on an image offline: there is no '{op.tag}' operation")

    def snapshot_command(self, words: list[str], created: bool = False) -> Result:
        before = {s["id"] for s in self.table}
        try:
            call(["qemu-img", "snapshot", "--image-opts"] + words + [self.image_opts])
        except QemuCallFailed as error:
            return failed(error)  # refused before anything is written: nothing to read again
        # -c and -d change the table, not what the image reads; -a changes only what it reads.
        # What is not read again now is read at the next write or -a (qemu-io reads every block).
        self.refresh(table=words[0] != "-a", current=words[0] == "-a")
        if not created:
            return Result(True)
        new = [s for s in self.table if s["id"] not in before]
        if len(new) != 1:
            return Result.error("unexpected", f"qemu-img snapshot -c added {len(new)} table entries")
        return Result(True, created_id=new[0]["id"], created_name=new[0]["name"])

    def name_of_id(self, snapshot_id: str) -> str | Result:
        """-d takes a name: an id translates to its name only where that name finds it."""
        for entry in self.table:
            if entry["id"] == snapshot_id:
                first = next(s for s in self.table if s["name"] == entry["name"])
                if first is not entry:
                    return Result.error("unsupported", f"qemu-img snapshot -d matches names only: "
                                                       f"'{entry['name']}' finds id {first['id']}, not {snapshot_id}")
                return str(entry["name"])
        return Result.error("not-found", f"no snapshot with id {snapshot_id} in the image's table")

    # -- observation -------------------------------------------------------------------------------

    def refresh(self, table: bool, current: bool) -> None:
        if table:
            self.table = snapshot_table(self.image)
            views = {}
            for entry in self.table:
                key = self.entry_key(entry)
                if key not in self.snapshot_views:
                    self.snapshot_views[key] = self.values_on_disk.read(
                        read_view(self.image, self.blocks, self.image.with_name("export"), snapshot_id=entry["id"]))
                views[key] = self.snapshot_views[key]
            self.snapshot_views = views
        if current:
            self.current_view = qemu_io.write_and_read_values(self.image, [], self.blocks, self.values_on_disk)

    @staticmethod
    def entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
        """A table entry's identity: a reused id comes with a new creation time."""
        return entry["id"], entry["name"], entry["date-sec"], entry["date-nsec"]

    def observe(self) -> dict[str, Any]:
        snapshots = [{"name": s["name"], "id": s["id"], "parent": None, "children": [],
                      "memory": s["vm-state-size"] > 0, "memory_image": None, "state": "shutoff",
                      "description": ""} for s in self.table]
        return {
            "current": None, "power": "shutoff", "ram": None, "snapshots": snapshots,
            "views": {"current": dict(self.current_view),
                      "snapshots": {s["id"]: dict(self.snapshot_views[self.entry_key(s)]) for s in self.table}},
        }
