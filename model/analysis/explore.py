"""Exhaustive exploration of the model within small bounds (the small-scope hypothesis).

Breadth-first over every history of at most ``depth`` operations drawn from a finite alphabet
(``Bounds``: a few names, a few blocks and values, the profile's operations and single flags),
checking the four properties of ``model/analysis/properties.py`` on every transition and in every
reachable state.  Equal states are explored once: a state is identified by ``canonical_key``.

The canonical key, and why deduplicating by it is sound
-------------------------------------------------------
What an observer sees is ``snaptree.model.observe``: the tree (ids, names, parents, children
in sibling order, roots), current, power, the RAM's image, every snapshot's recorded state,
description and memory image, and the views.  The key is the machine's *whole* state
(``Machine.fingerprint``) less the bookkeeping that no operation ever reads back:

* memory image tokens are renamed ``0, 1, ...`` in order of appearance (snapshots in creation
  order, then the RAM, then the profile's ``profile_state``).  Tokens are only ever compared for
  equality or copied, and a new one is always fresh (``Machine.images`` only grows), so a
  renaming of the live tokens changes no later outcome; ``Machine.images`` itself is dropped;
* ``Snapshot.order``, ``Snapshot.created`` and ``Machine.serial`` are dropped: nothing but
  ``fingerprint`` reads them (creation order is kept as the order of ``Machine.snapshots``);
* the logical clock is dropped unless the alphabet has an unnamed create: ``auto_name`` is
  the only reader of ``Machine.clock`` (libvirt's epoch-second names, HMP's ``vm-DATE``).

Everything else stays, hidden or not: the overlays themselves (not just the views, so that a
broken merge rule cannot hide behind a state that reads the same), ``ram_ran`` (whether the
next memory snapshot gets a new image), ``id_counter`` (ESX and VirtualBox ids are never
reused) and ``profile_state`` (libvirt-qemu's qcow2 table, live QEMU's VM-state areas).  So two states
with one key differ only in fields no code path reads, or in a consistent renaming of image
tokens, and every history from one is a history from the other with the same outcomes.
``tests/model/test_explore.py`` checks that claim by replaying the same continuation from merged
states.  Names and values of the form ``ram<N>`` are refused, so that renaming cannot touch
them.  The model stays pure: this module is the only one that explores, and writes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import ops
from ..disks import DEFAULT_LAYOUT, Disk
from ..errors import ModelError
from ..escape import plural, printable
from ..machine import Machine
from ..notation import labels, state_text
from ..profiles import get_profile
from .properties import PROPERTIES, Before, capture, check_after

IMAGE = re.compile(r"^ram\d+$")  # Machine.new_memory_image's tokens
OP_TAGS = ("write", "start", "pause", "resume", "shutdown", "suspend", "snapshot", "revert", "delete", "delete-all")
FLAG_CHOICES = ("none", "common", "all")  # common: single revert and delete flags; all: create flags too


# What one exploration may cost (explore, diff, check --plan cover); README's "Limits" has the
# measurements: esx at depth 7 tries 852,700 transitions and keeps 258,404 states (about 50 s, 1 GB).
MAX_LETTERS = 1_000  # operations in the alphabet: depth 2 still fits in the transitions
MAX_TRANSITIONS = 1_000_000  # tried in all: time
MAX_STATES = 300_000  # kept (pairs of states, for diff): memory


class BoundsError(ValueError):
    """Bounds that cannot be explored (one line for the user)."""


def check_depth(level: int, done: int, frontier: int, letters: int) -> None:
    """Before depth ``level``: it tries exactly every letter on every state of the frontier, so
    a depth over the limit is refused before it starts."""
    total = done + frontier * letters
    if total > MAX_TRANSITIONS:
        raise BoundsError(f"depth {level} would take {total:,} transitions in all, over the limit of "
                          f"{MAX_TRANSITIONS:,}: --depth {level - 1} fits, or give fewer names, blocks or values")


def check_states(level: int, states: int, what: str = "states") -> None:
    if states > MAX_STATES:
        raise BoundsError(f"more than {MAX_STATES:,} {what} by depth {level}, over the limit (memory): "
                          f"--depth {level - 1} fits, or give fewer names, blocks or values")


def check_letters(letters: int) -> None:
    if letters > MAX_LETTERS:
        raise BoundsError(f"{letters:,} operations in the alphabet, over the limit of {MAX_LETTERS:,}: "
                          "give fewer names, blocks or values")


@dataclass(frozen=True)
class Bounds:
    names: tuple[str, ...] = ("A", "B")
    blocks: int = 2
    values: tuple[str, ...] = ("a", "b")
    operations: tuple[str, ...] = OP_TAGS  # those the profile cannot perform are left out
    flags: str = "common"
    unnamed: bool = False  # also creates without a name (the profile's automatic name)
    disks: tuple[Disk, ...] = DEFAULT_LAYOUT  # the VM: writes go to every disk

    def validate(self) -> None:
        for what, items in (("name", self.names), ("value", self.values)):
            for item in items:
                if IMAGE.match(item):
                    raise BoundsError(f"{what} '{item}' looks like a memory image token (ram<N>): choose another")
        if self.blocks < 1:
            raise BoundsError("--blocks must be at least 1")
        check_letters(max(self.blocks * len(self.values) * len(self.disks), len(self.names)))  # before a list is made
        unknown = sorted(set(self.operations) - set(OP_TAGS))
        if unknown:
            raise BoundsError(f"unknown operation '{unknown[0]}' (known: {', '.join(OP_TAGS)})")
        if self.flags not in FLAG_CHOICES:
            raise BoundsError(f"--flags must be one of {', '.join(FLAG_CHOICES)}")


def alphabet(profile_name: str, bounds: Bounds) -> list[ops.Operation]:
    """Every operation a history may take, in a fixed order."""
    profile = get_profile(profile_name)
    wanted = [tag for tag in bounds.operations if profile.supports(tag)]

    def flag_sets(tag: str) -> list[tuple[str, ...]]:
        if bounds.flags == "none" or (bounds.flags == "common" and tag == "snapshot"):
            return [()]
        return [(), *((flag,) for flag in sorted(profile.accepted_flags(tag)))]

    result: list[ops.Operation] = []
    for tag in wanted:
        if tag == "write":
            disks = [None, *(disk.name for disk in bounds.disks[1:] if not disk.readonly)]
            result += [ops.Write(b, v, d) for d in disks for b in range(bounds.blocks) for v in bounds.values]
        elif tag == "snapshot":
            names: list[str | None] = [*bounds.names, *([None] if bounds.unnamed else [])]
            result += [ops.CreateSnapshot(name, flags=f) for f in flag_sets(tag) for name in names]
            if len(bounds.disks) > 1 and "no" in profile.create_disk_modes:  # the other disks left out
                left_out = tuple((disk.name, "no") for disk in bounds.disks[1:])
                result += [ops.CreateSnapshot(name, disks=left_out) for name in names]
        elif tag in ("revert", "delete"):
            refs: list[str | None] = list(bounds.names)
            if tag == "revert" and profile.revert_to_current:
                refs.append(None)
            cls = ops.Revert if tag == "revert" else ops.Delete
            result += [cls(ref, flags=f) for f in flag_sets(tag) for ref in refs]
        elif tag == "delete-all":
            result.append(ops.DeleteAll())
        else:
            result.append(next(cls for cls in ops.POWER_OPS if cls.tag == tag)())
    return result


def canonical_key(m: Machine, clock: bool) -> tuple:
    """The state up to bookkeeping no operation reads back (see the module docstring)."""
    images: dict[str, int] = {}

    def image(token: str | None) -> int | None:
        return None if token is None else images.setdefault(token, len(images))

    nodes = tuple(
        (s.id, s.name, s.parent.id if s.parent else None, tuple(c.id for c in s.children),
         tuple(sorted(s.delta.items())), image(s.memory), s.state, s.description, s.modes, s.memory_file)
        for s in m.snapshots.values()
    )
    extra = _rename(m.profile_state_key(), image)
    return (nodes, tuple(r.id for r in m.roots), m.current.id if m.current else None,
            tuple(sorted(m.overlay.items())), m.power, image(m.ram), m.ram_ran, m.id_counter, extra,
            m.clock if clock else None)


def _rename(value: Any, image: Callable[[str | None], int | None]) -> Any:
    if isinstance(value, tuple):
        return tuple(_rename(v, image) for v in value)
    if isinstance(value, str):
        # profile_state_key keys dicts by repr: a token can come quoted
        bare = value[1:-1] if value[:1] == value[-1:] == "'" else value
        if IMAGE.match(bare):
            return ("image", image(bare))
    return value


@dataclass
class Violation:
    prop: str  # the property's name, or "crash" for an exception the model raised
    message: str
    history: list[ops.Operation]


@dataclass
class Edge:
    source: int
    target: int
    op: ops.Operation
    outcome: str  # "ok" or the error kind


@dataclass
class Exploration:
    profile: str
    depth: int
    bounds: Bounds
    alphabet: list[ops.Operation]
    states: int = 0
    transitions: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    new_per_depth: list[int] = field(default_factory=list)  # index d: states first reached at depth d
    saturated_at: int | None = None  # the first depth that added no state
    violations: dict[str, Violation] = field(default_factory=dict)  # the shortest one per property
    seconds: float = 0.0
    edges: list[Edge] = field(default_factory=list)  # only when asked for (the graph)
    parents: list[tuple[int, int]] = field(default_factory=list)  # per state: (parent, op index); root (-1, -1)
    keys: dict[tuple, int] = field(default_factory=dict)  # canonical key -> state (with the graph)
    clock: bool = False  # whether the keys include the model's clock (unnamed creates)

    def history(self, state: int) -> list[ops.Operation]:
        """The shortest history that reaches ``state``."""
        steps = []
        while state > 0:
            state, at = self.parents[state]
            steps.append(self.alphabet[at])
        return steps[::-1]


def check_layout(profile_name: str, disks: tuple[Disk, ...]) -> None:
    problem = get_profile(profile_name).layout_problem(disks)
    if problem:
        raise BoundsError(f"--disks: {problem}")


def explore(profile_name: str, depth: int, bounds: Bounds = Bounds(), props: frozenset[str] = frozenset(PROPERTIES),
            graph: bool = False, dedup: bool = True, keep: Callable[[ops.Operation], bool] | None = None) -> Exploration:
    """Breadth-first over every history up to ``depth``; ``dedup=False`` is the baseline that
    expands every history (for the benchmark); ``keep`` narrows the alphabet (to what a driver can do)."""
    bounds.validate()
    check_layout(profile_name, bounds.disks)
    started = time.perf_counter()
    letters = [op for op in alphabet(profile_name, bounds) if keep is None or keep(op)]
    check_letters(len(letters))
    clock = any(isinstance(op, ops.CreateSnapshot) and op.name is None for op in letters)
    result = Exploration(profile_name, depth, bounds, letters, clock=clock)
    profile = get_profile(profile_name)
    root = Machine(profile, bounds.blocks, profile.own_layout(bounds.disks))
    seen: dict[tuple, int] = {canonical_key(root, clock): 0}
    result.parents.append((-1, -1))
    result.new_per_depth.append(1)
    frontier: list[tuple[int, Machine]] = [(0, root)]
    for level in range(1, depth + 1):
        check_depth(level, result.transitions, len(frontier), len(letters))
        next_frontier: list[tuple[int, Machine]] = []
        for index, m in frontier:
            base = capture(m, props)
            twin: Machine | None = None
            for at, op in enumerate(letters):
                if twin is None:
                    twin = m.clone()
                    before = copy.copy(base)  # what is by value is the same for a clone; identities are its own
                    before.current, before.snapshots = twin.current, dict(twin.snapshots)
                outcome, broken = _step(result, twin, op, before, props, index, at)
                result.transitions += 1
                if outcome != "ok":
                    result.refusals[outcome] += 1
                if broken:  # reported; a state that breaks a property is not explored further
                    twin = None
                    continue
                if dedup and refused_in_place(outcome, twin, props, base):
                    target = index  # failed-op held: the fingerprint, and so the key, is the source's
                    # and the twin is still the source state: the next letter starts from it, uncloned
                else:
                    key = canonical_key(twin, clock) if dedup else (len(result.parents),)
                    known = seen.get(key)
                    if known is None:
                        known = seen[key] = len(result.parents)
                        check_states(level, known + 1)
                        result.parents.append((index, at))
                        next_frontier.append((known, twin))
                    target = known
                    twin = None
                if graph:
                    result.edges.append(Edge(index, target, op, outcome))
        result.new_per_depth.append(len(next_frontier))
        frontier = next_frontier
        if not frontier:
            result.saturated_at = level
            break
    result.states = len(result.parents)
    if graph:
        result.keys = seen
    result.seconds = time.perf_counter() - started
    return result


def refused_in_place(outcome: str, m: Machine, props: frozenset[str], base: Before) -> bool:
    """A refusal that left the state exactly as it was (checked by failed-op, or here)."""
    if outcome == "ok" or outcome == "crash":
        return False
    if "failed-op" in props:
        return m.clock == base.clock  # check_failed_op passed: without a side effect nothing changed
    return False


def _step(result: Exploration, m: Machine, op: ops.Operation, before: Before, props: frozenset[str],
          source: int, at: int) -> tuple[str, bool]:
    """Apply one letter to ``m`` (a clone) and check the properties: the outcome's brief form,
    and whether a property broke.
    A violation is kept if it is the first of its property: breadth-first, so the shortest."""
    error: ModelError | None = None
    try:
        m.perform(op)
    except ModelError as refused:
        error = refused
    except Exception as crash:  # noqa: BLE001 - a broken model's exception is a finding, not the end
        _record(result, "crash", f"{ops.describe(op)} raised {type(crash).__name__}: {crash}", source, at)
        return "crash", True
    outcome = "ok" if error is None else error.kind.value
    try:
        check_after(m, op, before, error, props)
    except AssertionError as broken:
        message = str(broken)
        _record(result, message.split(":", 1)[0], message, source, at)
        return outcome, True
    return outcome, False


def _record(result: Exploration, prop: str, message: str, source: int, at: int) -> None:
    if prop not in result.violations:
        result.violations[prop] = Violation(prop, message, [*result.history(source), result.alphabet[at]])


# -- reporting ------------------------------------------------------------------------------

def report_text(result: Exploration) -> str:
    b = result.bounds
    lines = [
        f"explored profile {result.profile} to depth {result.depth}: names {','.join(b.names)}, {plural(b.blocks, 'block')}, "
        f"values {','.join(b.values)}, flags {b.flags}{', unnamed creates' if b.unnamed else ''}",
        f"  alphabet      {plural(len(result.alphabet), 'operation')}: "
        + ", ".join(ops.describe(op) for op in result.alphabet),
        f"  states        {result.states:,}",
        f"  transitions   {result.transitions:,}",
        "  new states    " + ", ".join(f"depth {d}: {n:,}" for d, n in enumerate(result.new_per_depth)),
        f"  saturated     {'at depth ' + str(result.saturated_at) if result.saturated_at else 'no: new states at every depth'}",
        "  refusals      " + (", ".join(f"{kind} {n:,}" for kind, n in result.refusals.most_common()) or "none"),
        f"  time          {result.seconds:.2f} s ({result.transitions / max(result.seconds, 1e-9):,.0f} transitions/s)",
    ]
    if not result.violations:
        lines.append(f"no property violated ({', '.join(PROPERTIES)}) in {plural(result.transitions, 'transition')}")
    for violation in result.violations.values():
        lines.append(printable(f"VIOLATED {violation.prop} at depth {len(violation.history)}: {violation.message}"))
        lines.extend(printable(f"    {i}. {ops.describe(op)}") for i, op in enumerate(violation.history, 1))
    return "\n".join(lines)


def state_graph(result: Exploration) -> Any:
    """The explored states and transitions as a networkx multigraph (needs ``graph=True``):
    each state labelled with what it is (``notation.state_text``: the tree, power, what the
    running state reads), each transition with its operation and outcome."""
    import networkx as nx

    g = nx.MultiDiGraph()
    for state, m in enumerate(_replayed(result)):
        g.add_node(state, depth=len(result.history(state)), label=state_text(m), power=m.power,
                   current="" if m.current is None else labels(m, short_ids=True)[m.current.id], snapshots=len(m.snapshots))
    for edge in result.edges:
        op = ops.describe(edge.op)
        g.add_edge(edge.source, edge.target, op=op, outcome=edge.outcome, label=f"{op}: {edge.outcome}")
    return g


def _replayed(result: Exploration) -> Iterator[Machine]:
    """Each explored state as a machine, in order: its parent's with one more operation.  States
    are numbered breadth-first, so no later state has an earlier parent than the one before it,
    and a machine is dropped once no state can come from it."""
    profile = get_profile(result.profile)
    machines = {0: Machine(profile, result.bounds.blocks, profile.own_layout(result.bounds.disks))}
    yield machines[0]
    oldest = 0
    for state in range(1, result.states):
        parent, at = result.parents[state]
        while oldest < parent:
            machines.pop(oldest, None)
            oldest += 1
        m = machines[parent].clone()
        with contextlib.suppress(ModelError):  # a refusal with a side effect is a state of its own too
            m.perform(result.alphabet[at])
        machines[state] = m
        yield m
