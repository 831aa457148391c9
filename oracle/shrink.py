"""Shrinking a diverging history by replaying it: remove steps, simplify the rest, keep every
change after which the driver still parts ways with the model in the same way.

Hypothesis shrinks the choices that generated a history; here the history itself is shrunk,
as a list of operations replayed in lockstep (delta debugging, Zeller and Hildebrandt,
"Simplifying and Isolating Failure-Inducing Input", TSE 2002, ending in a one-step-removal
pass).  That is faster, since every candidate is one replay without any generation, and the
result is 1-minimal: no single step can be removed without losing the divergence.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from snaptree.model import ops

from .findings import Guard
from .lockstep import Divergence, Lockstep, named_by_the_system

Step = tuple[int, ops.Operation]  # (its position in the history first found, the operation)


# what a difference about one snapshot names after "snapshot NAME: " (oracle/differences.py)
SNAPSHOT_ASPECTS = ("name", "parent", "order of its children", "recorded state", "has memory", "memory image",
                    "description")


def kind_of(divergence: Divergence) -> str:
    """What differs, without the names: 'outcome', 'parent', 'view', 'current snapshot', ..."""
    what = divergence.differences[0].what
    if what.startswith("view of"):
        return "view"
    if what.startswith("snapshot "):  # a name may hold ": " itself: only a known aspect counts
        return next((aspect for aspect in SNAPSHOT_ASPECTS if what.endswith(f": {aspect}")), "snapshot listed")
    return what


@dataclass
class ShrinkStats:
    replays: int = 0
    steps_before: int = 0
    steps_after: int = 0
    seconds: float = 0.0
    complete: bool = True  # False: the budget ran out before the last pass ended


class Shrinker:
    """Shrinks one divergence; ``new_lockstep`` gives a fresh lockstep (model and driver) per replay."""

    def __init__(self, divergence: Divergence, new_lockstep: Callable[[], Lockstep], max_replays: int = 2000,
                 max_seconds: float = 300.0, guards: Sequence[Guard] = ()):
        self.new_lockstep = new_lockstep
        # a shorter history must not walk into a known finding the check left out, or the
        # divergence found would shrink into that finding instead of showing its own cause
        self.guards = guards
        self.max_replays, self.max_seconds = max_replays, max_seconds
        self.best = divergence
        self.kind = kind_of(divergence)
        self.stats = ShrinkStats(steps_before=len(divergence.history))
        self.steps: list[Step] = list(enumerate(s.op for s in divergence.history))
        # An unnamed snapshot is named after the clock, and ids come from counters, so removing
        # an earlier step renames or renumbers a snapshot: a later step that names an unnamed
        # snapshot, or gives an id, is linked to the create that made it and follows it.
        self.links: dict[int, int] = {}
        auto_named: dict[str, int] = {}
        made: dict[str, int] = {}
        profile = new_lockstep().model.profile  # a lockstep is cheap until entered
        for i, s in enumerate(divergence.history):
            if isinstance(s.op, ops.CreateSnapshot) and s.model.created_id is not None:
                made[s.model.created_id] = i
                if named_by_the_system(s.op, profile) and s.model.created_name is not None:
                    auto_named[s.model.created_name] = i
            elif isinstance(s.op, (ops.Revert, ops.Delete)):
                if s.op.id is not None and s.op.id in made:
                    self.links[i] = made[s.op.id]
                elif s.op.ref in auto_named:
                    self.links[i] = auto_named[s.op.ref]

    def replay(self, steps: list[Step]) -> Divergence | None:
        created: dict[int, tuple[str, str]] = {}  # the create's key -> the name and id it made this time
        try:  # around the lockstep too: a driver's setup or teardown may fail (a DriverError)
            with self.new_lockstep() as lockstep:
                capabilities = lockstep.driver.capabilities()
                for key, op in steps:
                    link = self.links.get(key)
                    if link in created and isinstance(op, (ops.Revert, ops.Delete)):
                        name, sid = created[link]
                        op = dataclasses.replace(op, id=sid) if op.id is not None else dataclasses.replace(op, ref=name)
                    if any(guard.excludes(lockstep.model, op) for guard in self.guards) or \
                            capabilities.cannot_now(lockstep.model, op):  # what a check never draws there
                        return None
                    step = lockstep.step(op)
                    if step.model.created_name is not None and step.model.created_id is not None:
                        created[key] = (step.model.created_name, step.model.created_id)
        except Divergence as divergence:
            return divergence
        return None

    def attempt(self, candidate: list[Step], started: float) -> bool:
        if self.stats.replays >= self.max_replays or time.monotonic() - started > self.max_seconds:
            self.stats.complete = False
            return False
        self.stats.replays += 1
        found = self.replay(candidate)
        if found is None or kind_of(found) != self.kind:
            return False
        self.best = found
        self.steps = candidate[:len(found.history)]  # it may part ways before the candidate's end
        return True

    def run(self) -> tuple[Divergence, ShrinkStats]:
        started = time.monotonic()
        progress = True
        while progress and self.stats.complete:
            progress = False
            # chunks first, then single steps, from the end; the diverging step itself stays
            size = max(1, len(self.steps) // 2)
            while size >= 1:
                i = len(self.steps) - 1 - size
                while i >= 0:
                    steps = self.steps
                    if i + size <= len(steps) - 1 and self.attempt(steps[:i] + steps[i + size:], started):
                        progress = True
                    i -= 1 if size == 1 else size
                size //= 2
            for i in range(len(self.steps)):
                if i >= len(self.steps):
                    break
                key, op = self.steps[i]
                for simpler in _simpler(op):
                    steps = self.steps
                    if self.attempt(steps[:i] + [(key, simpler)] + steps[i + 1:], started):
                        progress = True
                        break
        self.stats.steps_after = len(self.best.history)
        self.stats.seconds = time.monotonic() - started
        return self.best, self.stats


def shrink(divergence: Divergence, new_lockstep: Callable[[], Lockstep],
           guards: Sequence[Guard] = ()) -> tuple[Divergence, ShrinkStats]:
    """The smallest history found that diverges like ``divergence`` (and draws nothing the
    guards leave out), and how it was found."""
    return Shrinker(divergence, new_lockstep, guards=guards).run()


def _simpler(op: ops.Operation) -> Iterator[ops.Operation]:
    """Simpler forms of one operation: fewer flags, the default memory, no description."""
    if isinstance(op, (ops.CreateSnapshot, ops.Revert, ops.Delete)):
        for flag in op.flags:
            yield dataclasses.replace(op, flags=tuple(f for f in op.flags if f != flag))
    if isinstance(op, ops.CreateSnapshot):
        if op.memory is not None:
            yield dataclasses.replace(op, memory=None)
        if op.description:
            yield dataclasses.replace(op, description="")
