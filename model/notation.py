"""The seed's picture of a snapshot tree, as text and as a graph::

    base <--1-- A <--2-- B <--3-- C <--4-- current
                         + <--5-- D

Arrows point from child to parent; the numbers name the overlays (copy-on-write deltas);
``base`` is the empty disk and ``current`` the running state.  Where names repeat, a name is
followed by ``#id``.
"""

from __future__ import annotations

from collections import Counter

import networkx as nx

from .machine import Machine, Snapshot

# graph keys for the two nodes that are not snapshots (tuples never clash with an id)
BASE, CURRENT = ("base",), ("current",)


def labels(m: Machine) -> dict[str, str]:
    """Each snapshot's printed name, by id: the name, with ``#id`` where names repeat."""
    counts = Counter(s.name for s in m.snapshots.values())
    return {s.id: s.name if counts[s.name] == 1 and s.name not in ("base", "current") else f"{s.name}#{s.id}"
            for s in m.snapshots.values()}


def graph(m: Machine) -> nx.DiGraph:
    """Snapshots, ``base`` and ``current`` as nodes; an edge from each child to its parent,
    labelled with its overlay's number and size."""
    g = nx.DiGraph()
    name = labels(m)
    g.add_node(BASE, kind="base", label="base")
    number = 0

    def add(node: Snapshot | None, parent: object) -> None:
        nonlocal number
        number += 1
        if node is None:
            g.add_node(CURRENT, kind="current", label="current")
            g.add_edge(CURRENT, parent, overlay=number, blocks=len(m.overlay))
            return
        g.add_node(node.id, kind="snapshot", label=name[node.id], memory=node.memory is not None, state=node.state)
        g.add_edge(node.id, parent, overlay=number, blocks=len(node.delta))
        for child in node.children:
            add(child, node.id)
        if m.current is node:
            add(None, node.id)

    for root in m.roots:
        add(root, BASE)
    if m.current is None:
        add(None, BASE)
    return g


def text(m: Machine) -> str:
    """The seed's notation; a profile without a tree shows its flat table instead."""
    if not m.profile.tree:
        table = "  ".join(f"{s.id}:{s.name!r}" for s in m.snapshots.values()) or "(no snapshots)"
        return f"table: {table}\nbase ... <-- current"
    g = graph(m)
    lines: list[str] = []

    def draw(node: object, line: str) -> None:
        # ``line`` already ends with this node's name; children continue to the right
        kids = sorted(g.predecessors(node), key=lambda k: g.edges[k, node]["overlay"])
        column = len(line) - len(_label(g, node))
        for i, kid in enumerate(kids):
            arrow = f" <--{g.edges[kid, node]['overlay']}-- {_label(g, kid)}"
            if i == 0:
                draw(kid, line + arrow)
            else:
                draw(kid, " " * column + "+" + arrow)
        if not kids:
            lines.append(line)

    draw(BASE, "base")
    return "\n".join(lines)


def _label(g: nx.DiGraph, node: object) -> str:
    return str(g.nodes[node]["label"])


def dot(m: Machine) -> str:
    """Graphviz DOT of :func:`graph`, arrows from child to parent as in the seed."""
    g = graph(m)
    out = ["digraph snapshots {", "  rankdir=RL;", '  node [shape=box, style=rounded, fontname="monospace"];']
    key = {node: f"n{i}" for i, node in enumerate(g.nodes)}
    for node, data in g.nodes(data=True):
        attrs = {"label": _label(g, node)}
        if data["kind"] != "snapshot":
            attrs["shape"] = "plaintext"
        elif data["memory"]:
            attrs["peripheries"] = "2"  # a double frame: the snapshot owns a memory image
        out.append(f"  {key[node]} [{_attrs(attrs)}];")
    for child, parent, data in g.edges(data=True):
        out.append(f"  {key[child]} -> {key[parent]} [{_attrs({'label': str(data['overlay'])})}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items())
