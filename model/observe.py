"""What can be seen of a machine: the one JSON-shaped observation that the CLI prints, the
scenario checker reads and the oracle compares with a real driver's.

Shape (documented in the README)::

    {"current": id | null, "power": str, "ram": token | null, "roots": [id...],
     "snapshots": [{"name", "id", "parent": id | null, "children": [id...],
                    "memory": bool, "memory_image": token | null, "state", "description"}],
     "views": {"current": {block: value}, "snapshots": {id: {block: value}}}}

Views list only blocks that read other than empty.  ``roots`` and each ``children`` list are
in the system's sibling order (what a depth-first lookup meets first); where a profile leaves
that order undefined (``Profile.sibling_order`` false), it is the model's and not compared.
Under a profile without a tree (the qcow2 table), ``current``, ``parent``, ``children`` and
``roots`` are null / empty: qcow2 records none of them.
"""

from __future__ import annotations

from typing import Any

from .machine import Machine, Snapshot


def snapshot_record(m: Machine, s: Snapshot) -> dict[str, Any]:
    tree = m.profile.tree
    return {
        "name": s.name,
        "id": s.id,
        "parent": s.parent.id if tree and s.parent is not None else None,
        "children": [c.id for c in s.children] if tree else [],
        "memory": s.memory is not None,
        "memory_image": s.memory,
        "state": s.state,
        "description": s.description,
    }


def observe(m: Machine, views: bool = True) -> dict[str, Any]:
    """The whole observable state, snapshots in creation order."""
    result: dict[str, Any] = {
        "current": m.profile.observed_current(m) if m.profile.tree else None,
        "power": m.power,
        "ram": m.ram,
        "roots": [r.id for r in m.roots] if m.profile.tree else [],
        "snapshots": [snapshot_record(m, s) for s in m.snapshots.values()],
    }
    if views:
        result["views"] = {
            "current": _json_view(m.view(None)),
            "snapshots": {sid: _json_view(view) for sid, view in m.views().items()},
        }
    return result


def _json_view(view: dict[int, str]) -> dict[str, str]:
    return {str(block): value for block, value in view.items()}
