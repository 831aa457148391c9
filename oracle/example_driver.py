"""A complete driver, to copy: ``snaptree check --driver snaptree.oracle.example_driver:TableDriver``.

Its "system" is a fake: a qcow2-style snapshot table kept in this process, following the
``qemu-img`` profile (a flat table, duplicate names kept, ids reused, names cut at 255 bytes).
A real driver has the same shape, with its system's client in place of the list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snaptree.model import ops

from .driver import Driver, Result

NAME_LIMIT = 255  # bytes qcow2 keeps of a name


@dataclass
class Entry:
    id: str
    name: str
    blocks: dict[int, str]  # what the disk read when the snapshot was taken


class TableDriver(Driver):
    name = "example-table"
    description = "the example driver: an in-memory qcow2-style snapshot table (oracle/example_driver.py)"
    profiles = ("qemu-img",)
    observes = frozenset({"names", "ids", "views"})
    operations = frozenset({"write", "snapshot", "revert", "delete"})
    memory_choice = False  # qemu-img snapshots are disk-only: never asked for memory

    def setup(self, blocks: int) -> None:
        self.disk: dict[int, str] = {}
        self.table: list[Entry] = []

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.Write):
            self.disk[op.block] = op.value
        elif isinstance(op, ops.CreateSnapshot):
            if op.name is None:
                return Result.error("invalid-argument", "qemu-img snapshot -c needs a name")
            new = Entry(str(max((int(e.id) for e in self.table), default=0) + 1),
                        op.name.encode()[:NAME_LIMIT].decode("utf-8", errors="replace"), dict(self.disk))
            self.table.append(new)
            return Result(True, created_id=new.id, created_name=new.name)
        elif isinstance(op, ops.Revert):
            target = self.find(op.ref, by_id=True)
            if target is None:
                return Result.error("not-found", f"no snapshot {op.ref!r}")
            self.disk = dict(target.blocks)
        elif isinstance(op, ops.Delete):
            target = self.find(op.ref, by_id=False)
            if target is None:
                return Result.error("not-found", f"no snapshot {op.ref!r}")
            self.table.remove(target)
        else:
            return Result.error("unsupported", f"no {op.tag} offline")
        return Result(True)

    def find(self, ref: str | None, by_id: bool) -> Entry | None:
        """-a tries the id first, then the name; -d the name only; the first in table order wins."""
        if ref is None:
            return None
        if by_id and (match := next((e for e in self.table if e.id == ref), None)):
            return match
        return next((e for e in self.table if e.name == ref and len(e.name.encode()) <= NAME_LIMIT), None)

    def observe(self) -> dict[str, Any]:
        def view(blocks: dict[int, str]) -> dict[str, str]:  # only blocks that read other than empty
            return {str(b): v for b, v in sorted(blocks.items()) if v}
        return {"snapshots": [{"id": e.id, "name": e.name} for e in self.table],
                "views": {"current": view(self.disk), "snapshots": {e.id: view(e.blocks) for e in self.table}}}
