"""Where two profiles part ways: both explored on the same histories, every first disagreement
kept, grouped by what differs and the operation that reveals it (``snaptree diff``).

The histories are drawn from one alphabet both profiles can express: writes, creates of each
name, reverts and deletes of each name, the power operations and delete-all where both have
them.  **No flags**: flags are native to each API and map by meaning only in a few cases, so
flag-free operations are the common ground (a revert without a name, ESX's revert to current,
is left out for the same reason).

What is compared after each step, in this order (the first that differs names the group):

* ``outcome``  ok, or the error kind;
* ``tree``     names in creation order, each one's parent, the roots; children in sibling order
               only where both profiles define it; only where both profiles have a tree;
* ``current``  which snapshot is current (where both have a tree);
* ``power``    the power state, with VirtualBox's "saved" read as ESX's "suspended" (both:
               off, the RAM kept on disk);
* ``state``    each snapshot's recorded power state (same reading);
* ``memory``   which snapshots hold a memory image;
* ``ram``      which snapshot's image the RAM was loaded from (or a fresh boot, or off);
* ``reads``    what the running state and every snapshot read.

Ids are not compared: each profile has its own scheme (a counter, UUIDs, names, reused
numbers).  A pair of states is identified by the pair of their canonical keys
(``oracle/explore.py``): each machine's future depends only on its own key.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from snaptree.model import Machine, ModelError, get_profile, observe, ops
from snaptree.model.scenario import Outcome, Scenario, Step, expect_element, to_xml

from .explore import Bounds, alphabet, canonical_key

ASPECTS = ("outcome", "tree", "current", "power", "state", "memory", "ram", "reads")
SAME_STATE = {"saved": "suspended"}  # VirtualBox's word for ESX's suspended: off, RAM on disk


@dataclass
class Disagreement:
    aspect: str
    op: ops.Operation
    history: list[ops.Operation]
    first: str  # what the first profile did and saw, briefly
    second: str

    @property
    def group(self) -> str:
        # outcomes are few: each pair of them is its own group (a refusal is not another one)
        pair = f" ({self.first} / {self.second})" if self.aspect == "outcome" else ""
        return f"{self.aspect} after {self.op.tag}{pair}"


@dataclass
class Diff:
    profiles: tuple[str, str]
    depth: int
    bounds: Bounds
    alphabet: list[ops.Operation]
    pairs: int = 0
    transitions: int = 0
    groups: dict[str, Disagreement] = field(default_factory=dict)  # the shortest witness per group
    seconds: float = 0.0


def common_alphabet(first: str, second: str, bounds: Bounds) -> list[ops.Operation]:
    flag_free = Bounds(bounds.names, bounds.blocks, bounds.values, bounds.operations, "none", bounds.unnamed)
    theirs = set(alphabet(second, flag_free))
    return [op for op in alphabet(first, flag_free) if op in theirs and not (isinstance(op, ops.Revert) and op.ref is None)]


def _apply(m: Machine, op: ops.Operation) -> Outcome:
    try:
        created = m.apply(op)
    except ModelError as error:
        return Outcome(False, error.kind.value, error.message, error.side_effect)
    return Outcome(True, created_id=created.id if created else None)


def aspects(m: Machine, outcome: Outcome, tree: bool, sibling_order: bool) -> dict[str, Any]:
    """What is compared, with snapshots named by their position in creation order."""
    snaps = list(m.snapshots.values())
    index = {id(s): i for i, s in enumerate(snaps)}
    owner: dict[str, int] = {}
    for i, s in enumerate(snaps):
        if s.memory is not None:
            owner.setdefault(s.memory, i)

    def kids(s: Any) -> tuple[int, ...]:
        order = [index[id(c)] for c in s.children]
        return tuple(order if sibling_order else sorted(order))

    return {
        "outcome": outcome.brief(),
        "tree": (tuple(s.name for s in snaps),
                 tuple((index[id(s.parent)] if s.parent else None, kids(s)) for s in snaps) if tree else None,
                 tuple(index[id(r)] for r in m.roots) if tree and sibling_order else None),
        "current": index[id(m.current)] if tree and m.current is not None else None,
        "power": SAME_STATE.get(m.power, m.power),
        "state": tuple(SAME_STATE.get(s.state, s.state) for s in snaps),
        "memory": tuple(s.memory is not None for s in snaps),
        "ram": None if m.ram is None else owner.get(m.ram, "fresh"),
        "reads": (m.view(None), tuple(m.view(s) for s in snaps)),
    }


def brief(aspect: str, value: Any, m: Machine) -> str:
    """One profile's side of a disagreement, for the table."""
    names = [s.name for s in m.snapshots.values()]

    def name(i: Any) -> str:
        return "none" if i is None else "fresh boot" if i == "fresh" else names[i]

    if aspect == "outcome":
        return str(value)
    if aspect == "tree":
        _, shape, roots = value
        if shape is None:
            return " ".join(names) or "(empty)"
        # snapshots numbered in creation order: "2.A<1" is the second, a child of the first
        nodes = [f"{i + 1}.{names[i]}<{'-' if parent is None else parent + 1}" for i, (parent, _) in enumerate(shape)]
        if roots is not None:  # sibling order is compared: show it
            nodes += [f"roots {','.join(str(r + 1) for r in roots)}"]
            nodes += [f"kids of {i + 1}: {','.join(str(c + 1) for c in kids)}"
                      for i, (_, kids) in enumerate(shape) if len(kids) > 1]
        return " ".join(nodes) or "(empty)"
    if aspect in ("current", "ram"):
        return f"{aspect} {name(value)}"
    if aspect == "power":
        return f"power {m.power}"
    if aspect == "state":
        return " ".join(f"{n}:{s.state}" for n, s in zip(names, m.snapshots.values(), strict=True))
    if aspect == "memory":
        return " ".join(f"{n}:{'mem' if has else 'disk'}" for n, has in zip(names, value, strict=True))
    current, views = value
    return "current " + _view(current) + "".join(f", {n} {_view(v)}" for n, v in zip(names, views, strict=True))


def _view(view: dict[int, str]) -> str:
    return "{" + ",".join(f"{b}={v}" for b, v in view.items()) + "}"


def diff(first: str, second: str, depth: int, bounds: Bounds | None = None) -> Diff:
    """Breadth-first over the pairs of states the same histories reach under both profiles;
    a pair that disagrees is a witness and is not explored further."""
    bounds = bounds or Bounds()
    bounds.check()
    started = time.perf_counter()
    letters = common_alphabet(first, second, bounds)
    result = Diff((first, second), depth, bounds, letters)
    p1, p2 = get_profile(first), get_profile(second)
    tree, sibling_order = p1.tree and p2.tree, p1.sibling_order and p2.sibling_order
    clock = bounds.unnamed
    start = (Machine(p1, bounds.blocks), Machine(p2, bounds.blocks))
    seen = {(canonical_key(start[0], clock), canonical_key(start[1], clock))}
    frontier: list[tuple[list[ops.Operation], Machine, Machine]] = [([], *start)]
    for _ in range(depth):
        next_frontier = []
        for history, m1, m2 in frontier:
            for op in letters:
                a, b = m1.clone(), m2.clone()
                o1, o2 = _apply(a, op), _apply(b, op)
                result.transitions += 1
                s1, s2 = aspects(a, o1, tree, sibling_order), aspects(b, o2, tree, sibling_order)
                differs = next((k for k in ASPECTS if s1[k] != s2[k]), None)
                if differs is not None:
                    d = Disagreement(differs, op, [*history, op], brief(differs, s1[differs], a),
                                     brief(differs, s2[differs], b))
                    result.groups.setdefault(d.group, d)
                    continue
                key = (canonical_key(a, clock), canonical_key(b, clock))
                if key not in seen:
                    seen.add(key)
                    next_frontier.append(([*history, op], a, b))
        frontier = next_frontier
    result.pairs = len(seen)
    result.seconds = time.perf_counter() - started
    return result


def table_text(result: Diff) -> str:
    first, second = result.profiles
    rows = [("group", "steps", first, second)]
    for group, d in sorted(result.groups.items(), key=lambda item: (len(item[1].history), item[0])):
        rows.append((group, str(len(d.history)), d.first, d.second))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{first} vs {second} to depth {result.depth}: {len(result.alphabet)} common flag-free operations, "
             f"{result.pairs:,} pairs of states, {result.transitions:,} transitions, {len(result.groups)} groups, "
             f"{result.seconds:.2f} s"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
              for r in rows]
    return "\n".join(lines)


def markdown_table(result: Diff) -> str:
    first, second = result.profiles
    lines = [f"| what differs, after | steps | `{first}` | `{second}` |", "|---|---|---|---|"]
    for group, d in sorted(result.groups.items(), key=lambda item: (len(item[1].history), item[0])):
        lines.append(f"| {group} | {len(d.history)} | {d.first} | {d.second} |")
    return "\n".join(lines)


def witness_xml(result: Diff, d: Disagreement) -> bytes:
    """The shortest history of a group as a scenario, with what each profile sees after its
    last step pinned down by a per-profile expectation (so `snaptree run` replays it under both)."""
    first, second = result.profiles
    scenario = Scenario(first, result.bounds.blocks, title=f"{first} and {second} differ: {d.group}",
                        description=f"{first}: {d.first}; {second}: {d.second} (found by snaptree diff)",
                        steps=[Step(op, 0) for op in d.history])
    expects: list[etree._Element] = []
    for profile in result.profiles:
        m, outcomes = replay(profile, result.bounds.blocks, d.history)
        e = expect_element(outcomes[-1], observe(m))
        e.set("profile", profile)
        expects.append(e)
    pinned: list[etree._Element | None] = [None] * (len(d.history) - 1)
    root = etree.fromstring(to_xml(scenario, [*pinned, expects[0]]))
    root.append(expects[1])
    etree.indent(root)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def witness_name(result: Diff, d: Disagreement) -> str:
    pair = f"-{d.first}-{d.second}" if d.aspect == "outcome" else ""
    return f"diff-{result.profiles[0]}-{result.profiles[1]}-{d.aspect}-{d.op.tag}{pair}.xml"


def replay(profile: str, blocks: int, history: list[ops.Operation]) -> tuple[Machine, list[Outcome]]:
    m = Machine(get_profile(profile), blocks)
    return m, [_apply(m, op) for op in history]


PAGE_STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 8px}.differs td{background:#fdd}.trees{display:flex;gap:3em}
.tree svg{max-width:40em;height:auto}"""


def html_report(result: Diff, svg: Callable[[Machine], str]) -> str:
    """The table as one self-contained page: per group the steps side by side and each
    profile's tree after them (``svg`` draws a machine's tree)."""
    first, second = result.profiles
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(first)} vs {esc(second)}</title>"
             f"<style>{PAGE_STYLE}</style></head><body><h1>{esc(first)} vs {esc(second)}</h1>",
             f"<pre>{esc(table_text(result))}</pre>"]
    for group, d in sorted(result.groups.items(), key=lambda item: (len(item[1].history), item[0])):
        runs = [replay(profile, result.bounds.blocks, d.history) for profile in result.profiles]
        parts.append(f"<section class='group'><h2>{esc(group)}</h2><p>{esc(first)}: {esc(d.first)}<br>"
                     f"{esc(second)}: {esc(d.second)}</p><table><tr><th>#</th><th>step</th>"
                     f"<th>{esc(first)}</th><th>{esc(second)}</th></tr>")
        for i, op in enumerate(d.history):
            last = " class='differs'" if i == len(d.history) - 1 else ""
            parts.append(f"<tr{last}><td>{i + 1}</td><td>{esc(ops.describe(op))}</td>"
                         f"<td>{esc(runs[0][1][i].brief())}</td><td>{esc(runs[1][1][i].brief())}</td></tr>")
        parts.append("</table><div class='trees'>")
        for profile, (m, _) in zip(result.profiles, runs, strict=True):
            drawing = svg(m)
            parts.append(f"<div class='tree' data-profile='{esc(profile)}'><h3>{esc(profile)}</h3>"
                         f"{drawing[drawing.find('<svg'):]}</div>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
