"""``snaptree check --plan cover``: a test plan that takes every transition of the bounded state
graph (``model/analysis/explore.py``) at least once, run in lockstep on a driver like any check.

The plan is greedy: while a transition is untaken, take the shortest history to its source
state and the transition itself, then keep walking along untaken transitions out of the state
reached (up to ``depth`` more steps), so that one history covers a run of them.  Each history
starts from a fresh VM.  A divergence is shrunk by replaying (``oracle/shrink.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snaptree.model import Machine, ModelError, get_profile, ops
from snaptree.model.analysis.explore import Bounds, Exploration, canonical_key, explore
from snaptree.model.escape import plural

from . import lifetime
from .driver import Driver, capabilities_of
from .lockstep import Divergence, Lockstep
from .shrink import ShrinkStats, shrink


@dataclass
class CoverPlan:
    exploration: Exploration
    histories: list[list[ops.Operation]]
    # per history, the transitions (source state, letter index) it takes, in order
    takes: list[list[tuple[int, int]]]

    @property
    def transitions(self) -> int:
        return self.exploration.transitions


@dataclass
class CoverResult:
    plan: CoverPlan
    covered: set[tuple[int, int]] = field(default_factory=set)
    histories_run: int = 0
    steps: int = 0
    divergence: Divergence | None = None
    shrink: ShrinkStats | None = None
    seconds: float = 0.0


def cover_plan(profile: str, depth: int, driver: type[Driver], bounds: Bounds | None = None) -> CoverPlan:
    result = explore(profile, depth, bounds or Bounds(), graph=True, keep=capabilities_of(driver).draws)
    out: dict[int, dict[int, int]] = {}  # state -> letter index -> next state
    for edge in result.edges:
        out.setdefault(edge.source, {})[result.alphabet.index(edge.op)] = edge.target
    untaken = {(source, at) for source, letters in out.items() for at in letters}
    histories, takes = [], []
    for source, at in sorted(untaken, key=lambda t: (len(result.history(t[0])), t)):
        if (source, at) not in untaken:
            continue
        path, state = [], 0
        for op in result.history(source):  # the shortest way there, along explored transitions
            letter = result.alphabet.index(op)
            path.append((state, letter))
            state = out[state][letter]
        path.append((source, at))
        state = out[source][at]
        for _ in range(depth):  # then onwards along untaken transitions
            onward = next((a for a in sorted(out.get(state, {})) if (state, a) in untaken and (state, a) not in path),
                          None)
            if onward is None:
                break
            path.append((state, onward))
            state = out[state][onward]
        untaken.difference_update(path)
        takes.append(path)
        histories.append([result.alphabet[a] for _, a in path])
    return CoverPlan(result, histories, takes)


def run_cover(driver_class: type[Driver], profile: str, depth: int, blocks: int, options: dict[str, Any],
              bounds: Bounds | None = None, plan: CoverPlan | None = None,
              ran: Callable[[CoverResult], None] = lambda result: None) -> CoverResult:
    """Run the plan (``plan``, or the one for these bounds) in lockstep; stop at the first
    divergence and shrink it.  ``ran`` is told after each history (progress); a signal's
    ``Terminated`` carries the result so far (``partial``)."""
    started = time.perf_counter()
    bounds = bounds or Bounds(blocks=blocks)
    plan = plan or cover_plan(profile, depth, driver_class, bounds)
    result = CoverResult(plan)
    driver = driver_class(profile, **options)
    try:
        for history, path in zip(plan.histories, plan.takes, strict=True):
            ran(result)
            try:
                with Lockstep(driver, bounds.blocks) as lockstep:
                    for op, transition in zip(history, path, strict=True):
                        lockstep.step(op)
                        result.steps += 1
                        result.covered.add(transition)
            except Divergence as divergence:
                result.divergence, result.shrink = shrink(divergence, lambda: Lockstep(driver, bounds.blocks))
                break
            result.histories_run += 1
    except lifetime.Terminated as signalled:
        result.seconds = time.perf_counter() - started
        signalled.partial = result
        raise
    finally:
        driver.close()
    result.seconds = time.perf_counter() - started
    ran(result)
    return result


def report_text(result: CoverResult) -> str:
    p = result.plan
    return (f"plan cover: {len(result.covered):,} of {plural(p.transitions, 'transition')} at depth {p.exploration.depth} "
            f"({plural(p.exploration.states, 'state')}, {plural(len(p.histories), 'history', 'histories')}, "
            f"{plural(sum(map(len, p.histories)), 'step')}); ran {plural(result.histories_run, 'history', 'histories')}, "
            f"{plural(result.steps, 'step')} in {result.seconds:.1f} s")


@dataclass
class RandomCoverage:
    """The share of the bounded graph's transitions that a random check's histories took."""
    taken: int
    transitions: int
    depth: int
    bounds: Bounds

    @property
    def share(self) -> float:
        return self.taken / self.transitions if self.transitions else 0.0

    def text(self) -> str:
        b = self.bounds
        return (f"the bounded graph (depth {self.depth}, names {','.join(b.names)}, {plural(b.blocks, 'block')}, values "
                f"{','.join(b.values)}): random histories took {self.taken:,} of its "
                f"{plural(self.transitions, 'transition')} ({self.share:.0%}); `--plan cover` takes them all")


def random_coverage(profile: str, driver: type[Driver], histories: list[list[ops.Operation]], depth: int = 3,
                    bounds: Bounds | None = None) -> RandomCoverage:
    """Follow each history through the bounded state graph from its initial state, for as long
    as it stays inside the bounds (its operations in the graph's alphabet, its states in the
    graph), and count the distinct transitions it took."""
    bounds = bounds or Bounds()
    graph = explore(profile, depth, bounds, props=frozenset(), graph=True, keep=capabilities_of(driver).draws)
    letters = {op: at for at, op in enumerate(graph.alphabet)}
    edges = {(edge.source, letters[edge.op]) for edge in graph.edges}
    taken: set[tuple[int, int]] = set()
    for history in histories:
        m, state = Machine(get_profile(profile), bounds.blocks), 0
        for op in history:
            at = letters.get(op)
            if at is None or (state, at) not in edges:
                break
            taken.add((state, at))
            with contextlib.suppress(ModelError):  # a refusal leaves the state as it was
                m.perform(op)
            following = graph.keys.get(canonical_key(m, graph.clock))
            if following is None:
                break
            state = following
    return RandomCoverage(len(taken), len(edges), depth, bounds)
