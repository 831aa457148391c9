"""What can be seen of a machine: the one JSON-shaped observation that the CLI prints, the
scenario checker reads and the oracle compares with a real driver's.

Shape (documented in the README)::

    {"current": id | null, "power": str, "ram": token | null, "roots": [id...],
     "snapshots": [{"name", "id", "parent": id | null, "children": [id...],
                    "memory": bool, "memory_image": token | null, "state", "description"}],
     "views": {"current": {block: value}, "snapshots": {id: {block: value}}}}

Views list only blocks that read other than empty; a block of the first disk is its number
(``"3"``), one of another disk ``"vdb:3"``, and a snapshot's view leaves out the disks it did not
record.  A VM of any other layout than one plain qcow2 disk adds ``"disks"`` (the layout: name,
format, role, mode, readonly) and, per snapshot, ``"disks"`` ({disk: internal | external | no})
and ``"memory_file"`` (where an external memory image went, or null).  ``roots`` and each ``children`` list are
in the system's sibling order (what a depth-first lookup meets first); where a profile leaves
that order undefined (``Profile.sibling_order`` false), it is the model's and not compared.
Under a profile without a tree (the qcow2 table), ``current``, ``parent``, ``children`` and
``roots`` are null / empty: qcow2 records none of them.
"""

from __future__ import annotations

from typing import Any

from .disks import DEFAULT_LAYOUT, view_key
from .machine import Machine, Snapshot


def snapshot_record(m: Machine, s: Snapshot) -> dict[str, Any]:
    tree = m.profile.tree
    record: dict[str, Any] = {
        "name": s.name,
        "id": s.id,
        "parent": s.parent.id if tree and s.parent is not None else None,
        "children": [c.id for c in s.children] if tree else [],
        "memory": s.memory is not None,
        "memory_image": s.memory,
        "state": s.state,
        "description": s.description,
    }
    if m.disks != DEFAULT_LAYOUT:
        record["disks"] = {disk.name: mode for disk, mode in zip(m.disks, s.modes, strict=True)}
        record["memory_file"] = s.memory_file
    return record


def observe(m: Machine, views: bool = True) -> dict[str, Any]:
    """The whole observable state, snapshots in creation order."""
    result: dict[str, Any] = {
        "current": m.profile.observed_current(m) if m.profile.tree else None,
        "power": m.power,
        "ram": m.ram,
        "roots": [r.id for r in m.roots] if m.profile.tree else [],
        "snapshots": [snapshot_record(m, s) for s in m.snapshots.values()],
    }
    if m.disks != DEFAULT_LAYOUT:
        result["disks"] = [{"name": d.name, "format": d.format, "role": d.role, "mode": d.mode, "readonly": d.readonly}
                           for d in m.disks]
    if views:
        key = (lambda address: str(address)) if len(m.disks) == 1 else \
            (lambda address: view_key(m.disks, m.blocks, address))
        result["views"] = {
            "current": {key(a): value for a, value in m.view(None).items()},
            "snapshots": {sid: {key(a): value for a, value in view.items()} for sid, view in m.views().items()},
        }
    return result
