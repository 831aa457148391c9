"""The seed's picture of a snapshot tree, as text and as a graph::

    base <--1-- A <--2-- B <--3-- C <--4-- current
                         + <--5-- D

Arrows point from child to parent; the numbers name the overlays (copy-on-write deltas);
``base`` is the empty disk and ``current`` the running state.  Where names repeat, a name is
followed by ``#id``; an empty name is ``""``.  A VM of several disks (or another layout than one
qcow2 disk) adds one line per disk: the overlays that hold its blocks, and the snapshots that
left it out::

    disk vda: overlays 1 2
    disk vdb (raw): overlays 2; left out of A
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from .disks import DEFAULT_LAYOUT
from .escape import printable, shown, snapshot_labels
from .machine import Machine, Snapshot

# graph keys for the two nodes that are not snapshots (tuples never clash with an id)
BASE, CURRENT = ("base",), ("current",)


def labels(m: Machine, short_ids: bool = False) -> dict[str, str]:
    """Each snapshot's printed name, by id (:func:`~snaptree.model.escape.snapshot_labels`)."""
    return snapshot_labels({s.id: (s.id, s.name) for s in m.snapshots.values()}, short_ids)


def _resting_on(m: Machine, node: Snapshot | tuple[str]) -> list[Snapshot | tuple[str]]:
    """What rests on ``node`` (a snapshot, or BASE), in the seed's order: its children, then
    the running state (CURRENT) if it is based on it.  Overlays are numbered in a pre-order
    walk of this."""
    kids: list[Snapshot | tuple[str]] = list(m.roots if isinstance(node, tuple) else node.children)
    if m.current is (None if isinstance(node, tuple) else node):
        kids.append(CURRENT)
    return kids


def graph(m: Machine) -> nx.DiGraph:
    """Snapshots, ``base`` and ``current`` as nodes; an edge from each child to its parent,
    labelled with its overlay's number and size.  A drawing shortens ids (a UUID to 8 characters)."""
    g = nx.DiGraph()
    name = labels(m, short_ids=True)
    g.add_node(BASE, kind="base", label="base")
    # a stack rather than recursion, for trees 1,000 snapshots deep
    stack: list[tuple[Snapshot | tuple[str], object]] = [(kid, BASE) for kid in reversed(_resting_on(m, BASE))]
    number = 0
    while stack:
        node, parent = stack.pop()
        number += 1
        if isinstance(node, tuple):
            g.add_node(CURRENT, kind="current", label="current")
            g.add_edge(CURRENT, parent, overlay=number, blocks=len(m.overlay), disks=_per_disk(m, m.overlay))
            continue
        g.add_node(node.id, kind="snapshot", label=name[node.id], memory=node.memory is not None, state=node.state,
                   left_out=[m.disks[i].name for i in node.left_out()])
        g.add_edge(node.id, parent, overlay=number, blocks=len(node.delta), disks=_per_disk(m, node.delta))
        stack.extend((kid, node.id) for kid in reversed(_resting_on(m, node)))
    return g


def _per_disk(m: Machine, layer: dict[int, str]) -> tuple[int, ...]:
    """How many blocks of each disk an overlay holds."""
    counts = [0] * len(m.disks)
    for address in layer:
        counts[address // m.blocks] += 1
    return tuple(counts)


def disk_lines(m: Machine, short_ids: bool = False) -> list[str]:
    """One line per disk (none for one plain qcow2 disk): the overlays holding its blocks, in
    the numbering of :func:`text`, and the snapshots that left it out."""
    if m.disks == DEFAULT_LAYOUT:
        return []
    g = graph(m)
    lines = []
    for index, disk in enumerate(m.disks):
        overlays = sorted(data["overlay"] for _, _, data in g.edges(data=True) if data["disks"][index])
        left_out = [g.nodes[n]["label"] for n in g.nodes if g.nodes[n].get("left_out") and disk.name in g.nodes[n]["left_out"]]
        line = f"disk {disk.describe()}: " + ("overlays " + " ".join(map(str, overlays)) if overlays else "empty")
        if left_out:
            line += "; left out of " + ", ".join(left_out)
        lines.append(printable(line))
    return lines


def text(m: Machine, short_ids: bool = False) -> str:
    """The seed's notation, and a line per disk; a profile without a tree shows its flat
    table instead (``short_ids``: as a drawing shows them)."""
    drawn = _tree_text(m, short_ids)
    return "\n".join([drawn, *disk_lines(m, short_ids)])


def _tree_text(m: Machine, short_ids: bool) -> str:
    if not m.profile.tree:
        table = "  ".join(printable(f"{s.id}:{shown(s.name)}") for s in m.snapshots.values()) or "(no snapshots)"
        return f"table: {table}\nbase ... <-- current"
    name = labels(m, short_ids)
    lines: list[str] = []
    number = 0  # the same pre-order walk as graph()'s, so the same overlay numbers

    def below(node: Snapshot | tuple[str], line: list[str], column: int, end: int) -> list[tuple[Any, list[str], int]]:
        # the first kid continues the line (which is ``end`` long), the others start a line
        # with "+" under the label at ``column``
        return [(kid, line, end) if i == 0 else (kid, [" " * column + "+"], column + 1)
                for i, kid in reversed(list(enumerate(_resting_on(m, node))))]

    # (what to draw, the pieces of the line it continues, that line's length); pieces are
    # joined once per line, so a chain costs its length (no recursion, no string rebuilt per node)
    stack = below(BASE, ["base"], 0, len("base"))
    while stack:
        node, line, start = stack.pop()
        number += 1
        label = "current" if isinstance(node, tuple) else printable(name[node.id])
        line.append(f" <--{number}-- {label}")
        end = start + len(line[-1])
        kids = [] if isinstance(node, tuple) else below(node, line, end - len(label), end)
        if kids:
            stack.extend(kids)
        else:
            lines.append("".join(line))
    return "\n".join(lines)


def view_text(view: dict[Any, str]) -> str:
    """What a point in time reads, as text: ``0=a 1=b``, or ``(empty)`` (escaped)."""
    return printable(" ".join(f"{block}={shown(value)}" for block, value in view.items())) or "(empty)"


def power_and_current(m: Machine, short_ids: bool = False) -> str:
    """What a tree drawing does not show: ``power running, current snapshot A`` (a profile
    without a tree records no current; vcsim's current on a removed snapshot is none)."""
    current = "(not recorded)" if not m.profile.tree else "none" if m.current is None else \
        labels(m, short_ids).get(m.current.id, "none")
    return printable(f"power {m.power}, current snapshot {current}")


def state_text(m: Machine) -> str:
    """A whole state in a few lines (a node of the explored state graph): the tree as
    :func:`text` draws it, the power state, and what the running state and each snapshot read."""
    name = labels(m, short_ids=True)
    reads = [f"current {view_text(m.view(None))}", *(f"{printable(name[sid])} {view_text(view)}"
                                                     for sid, view in m.views().items())]
    return f"{text(m, short_ids=True)}\npower {m.power}\nreads " + "; ".join(reads)


def _label(g: nx.DiGraph, node: object) -> str:
    return str(g.nodes[node]["label"])


def dot(m: Machine) -> str:
    """Graphviz DOT of :func:`graph`, arrows from child to parent as in the seed."""
    g = graph(m)
    out = ["digraph snapshots {", "  rankdir=RL;", '  node [shape=box, style=rounded, fontname="monospace"];']
    key = {node: f"n{i}" for i, node in enumerate(g.nodes)}
    several = len(m.disks) > 1
    for node, data in g.nodes(data=True):
        attrs = {"label": _label(g, node)}
        if data.get("left_out"):  # the disks this snapshot did not record
            attrs["label"] += " (without " + ", ".join(data["left_out"]) + ")"
        if data["kind"] != "snapshot":
            attrs["shape"] = "plaintext"
        elif data["memory"]:
            attrs["peripheries"] = "2"  # a double frame: the snapshot owns a memory image
        out.append(f"  {key[node]} [{_attrs(attrs)}];")
    for child, parent, data in g.edges(data=True):
        label = str(data["overlay"])
        if several:  # which disks the overlay holds blocks of
            label += " " + " ".join(disk.name for disk, count in zip(m.disks, data["disks"], strict=True) if count)
        out.append(f"  {key[child]} -> {key[parent]} [{_attrs({'label': label.strip()})}];")
    out.append("}")
    return "\n".join(out) + "\n"


def dot_quote(value: str, lines: bool = False) -> str:
    """A DOT string: backslashes and quotes escaped; with ``lines``, each line of ``value``
    left-aligned (``\\l``), as the seed's notation needs."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + ("".join(line + "\\l" for line in escaped.split("\n")) if lines else escaped) + '"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={dot_quote(value)}" for key, value in attrs.items())
