"""``snaptree check --plan cover``: a test plan that takes every transition of the bounded state
graph (``oracle/explore.py``) at least once, run in lockstep on a driver like any check.

The plan is greedy: while a transition is untaken, take the shortest history to its source
state and the transition itself, then keep walking along untaken transitions out of the state
reached (up to ``depth`` more steps), so that one history covers a run of them.  Each history
starts from a fresh VM.  A divergence is shrunk by replaying (``oracle/shrink.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from snaptree.model import ops

from .driver import Driver
from .explore import Bounds, Exploration, explore
from .lockstep import Divergence, Lockstep
from .shrink import ShrinkStats, shrink


@dataclass
class Plan:
    exploration: Exploration
    histories: list[list[ops.Operation]]
    # per history, the transitions (source state, letter index) it takes, in order
    takes: list[list[tuple[int, int]]]

    @property
    def transitions(self) -> int:
        return self.exploration.transitions


@dataclass
class CoverResult:
    plan: Plan
    covered: set[tuple[int, int]] = field(default_factory=set)
    histories_run: int = 0
    steps: int = 0
    divergence: Divergence | None = None
    shrink: ShrinkStats | None = None
    seconds: float = 0.0


def driver_can(driver: type[Driver]) -> Any:
    """Whether the driver can perform an operation of the alphabet, with its flags and values."""
    def keep(op: ops.Operation) -> bool:
        if op.tag not in driver.operations:
            return False
        if isinstance(op, ops.Write) and op.value not in driver.values:
            return False
        return set(getattr(op, "flags", ())) <= set(driver.flags.get(op.tag, ()))
    return keep


def cover_plan(profile: str, depth: int, driver: type[Driver], bounds: Bounds | None = None) -> Plan:
    result = explore(profile, depth, bounds or Bounds(), graph=True, keep=driver_can(driver))
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
    return Plan(result, histories, takes)


def run_cover(driver_class: type[Driver], profile: str, depth: int, blocks: int, options: dict[str, Any],
              bounds: Bounds | None = None) -> CoverResult:
    """Run the plan in lockstep; stop at the first divergence and shrink it."""
    started = time.perf_counter()
    bounds = bounds or Bounds(blocks=blocks)
    plan = cover_plan(profile, depth, driver_class, bounds)
    result = CoverResult(plan)
    driver = driver_class(profile, **options)
    try:
        for history, path in zip(plan.histories, plan.takes, strict=True):
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
    finally:
        driver.close()
    result.seconds = time.perf_counter() - started
    return result


def report_text(result: CoverResult) -> str:
    p = result.plan
    return (f"plan cover: {len(result.covered):,} of {p.transitions:,} transitions at depth {p.exploration.depth} "
            f"({p.exploration.states:,} states, {len(p.histories):,} histories, {sum(map(len, p.histories)):,} steps); "
            f"ran {result.histories_run:,} histories, {result.steps:,} steps in {result.seconds:.1f} s")
