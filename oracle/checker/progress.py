"""A check's progress on stderr while it runs, and the statistics it counts on the way."""

from __future__ import annotations

import sys
import time
from typing import IO

from ..lockstep import LockstepStep
from . import hypothesis_adapter
from .results import Stats


class Progress:
    """Counts what the state machine does and shows it on stderr while it runs."""

    def __init__(self, total: int, stream: IO[str] | None = sys.stderr, label: str = "", noun: str = "examples"):
        self.noun = noun  # what is counted: examples, or a cover plan's histories
        self.stats = Stats()
        self.total = total
        self.stream = stream
        self.label = label
        self.tty = bool(stream is not None and stream.isatty())
        self.last_line = 0.0

    def stepped(self, step: LockstepStep, situations: set[str]) -> None:
        if hypothesis_adapter.replaying():  # the history counted once already
            return
        self.stats.steps += 1
        self.stats.operations[step.op.tag] += 1
        if not step.model.ok:
            self.stats.errors[str(step.model.kind)] += 1
        self.stats.situations.add(situations)

    def example_done(self, history: list[LockstepStep]) -> None:
        if hypothesis_adapter.replaying():
            return
        self.stats.examples += 1
        self.stats.histories.append([step.op for step in history])
        self.stats.situations.history_done()
        self.show()

    def diverged(self) -> None:
        if self.stats.first_divergence is None:
            self.stats.first_divergence = self.stats.seconds

    def show(self, final: bool = False) -> None:
        if self.stream is None:
            return
        s = self.stats
        done = min(s.examples, self.total)
        width = 24
        bar = "#" * (width * done // max(self.total, 1))
        rate = s.steps / s.seconds if s.seconds > 0 else 0.0
        line = f"{self.label} [{bar:<{width}}] {s.examples} {self.noun}, {s.steps} steps, {rate:.0f} steps/s"
        if done and not final:  # the estimate a long run shows from its first example on
            line += f", about {duration((self.total - done) * s.seconds / done)} left"
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))  # erase what a longer line left
            self.stream.flush()
        elif final or now - self.last_line > 10:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_line = now


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
