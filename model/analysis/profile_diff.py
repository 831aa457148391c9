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
(``model/analysis/explore.py``): each machine's future depends only on its own key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import ops
from ..disks import DEFAULT_LAYOUT, Disk
from ..escape import plural
from ..machine import Machine
from ..profiles import get_profile
from ..step import Outcome, step
from .explore import Bounds, alphabet, canonical_key, check_depth, check_layout, check_letters, check_states

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
    flag_free = Bounds(bounds.names, bounds.blocks, bounds.values, bounds.operations, "none", bounds.unnamed,
                       bounds.disks)
    theirs = set(alphabet(second, flag_free))
    return [op for op in alphabet(first, flag_free) if op in theirs and not (isinstance(op, ops.Revert) and op.ref is None)]


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
    bounds.validate()
    for name in (first, second):
        check_layout(name, bounds.disks)
    started = time.perf_counter()
    letters = common_alphabet(first, second, bounds)
    check_letters(len(letters))
    result = Diff((first, second), depth, bounds, letters)
    p1, p2 = get_profile(first), get_profile(second)
    tree, sibling_order = p1.tree and p2.tree, p1.sibling_order and p2.sibling_order
    clock = bounds.unnamed
    start = (Machine(p1, bounds.blocks, p1.own_layout(bounds.disks)), Machine(p2, bounds.blocks, p2.own_layout(bounds.disks)))
    seen = {(canonical_key(start[0], clock), canonical_key(start[1], clock))}
    frontier: list[tuple[list[ops.Operation], Machine, Machine]] = [([], *start)]
    for level in range(1, depth + 1):
        if not frontier:  # every pair diverged or was seen: deeper adds nothing
            break
        check_depth(level, result.transitions, len(frontier), len(letters))
        next_frontier = []
        for history, m1, m2 in frontier:
            for op in letters:
                a, b = m1.clone(), m2.clone()
                o1, o2 = step(a, op), step(b, op)
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
                    check_states(level, len(seen), "pairs of states")
                    next_frontier.append(([*history, op], a, b))
        frontier = next_frontier
    result.pairs = len(seen)
    result.seconds = time.perf_counter() - started
    return result


def ordered_groups(result: Diff) -> list[tuple[str, Disagreement]]:
    """The groups in the order every table lists them: shortest history first, then by name."""
    return sorted(result.groups.items(), key=lambda item: (len(item[1].history), item[0]))


def stats_text(result: Diff) -> str:
    """What a diff explored, in one line."""
    first, second = result.profiles
    return (f"{first} vs {second} to depth {result.depth}: {plural(len(result.alphabet), 'common flag-free operation')}, "
            f"{plural(result.pairs, 'pair of states', 'pairs of states')}, {plural(result.transitions, 'transition')}, "
            f"{plural(len(result.groups), 'group')}, {result.seconds:.2f} s")


def table_text(result: Diff) -> str:
    first, second = result.profiles
    rows = [("group", "steps", first, second)]
    for group, d in ordered_groups(result):
        rows.append((group, str(len(d.history)), d.first, d.second))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [stats_text(result)]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
              for r in rows]
    return "\n".join(lines)


def markdown_table(result: Diff) -> str:
    first, second = result.profiles
    lines = [f"| what differs, after | steps | `{first}` | `{second}` |", "|---|---|---|---|"]
    for group, d in ordered_groups(result):
        lines.append(f"| {group} | {len(d.history)} | {d.first} | {d.second} |")
    return "\n".join(lines)


def replay(profile: str, blocks: int, history: list[ops.Operation],
           disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> tuple[Machine, list[Outcome]]:
    system = get_profile(profile)
    m = Machine(system, blocks, system.own_layout(disks))
    return m, [step(m, op) for op in history]
