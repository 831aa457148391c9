"""A check's progress on stderr while it runs, and the statistics it counts on the way."""

from __future__ import annotations

import sys
import time
from typing import IO

from ..lockstep import LockstepStep
from .results import Stats


class Progress:
    """Counts what the state machine does and shows it on stderr while it runs."""

    def __init__(self, total: int, stream: IO[str] | None = sys.stderr, label: str = ""):
        self.stats = Stats()
        self.total = total
        self.stream = stream
        self.label = label
        self.tty = bool(stream is not None and stream.isatty())
        self.last_line = 0.0

    def stepped(self, step: LockstepStep, situations: set[str]) -> None:
        self.stats.steps += 1
        self.stats.operations[step.op.tag] += 1
        if not step.model.ok:
            self.stats.errors[str(step.model.kind)] += 1
        self.stats.situations.add(situations)

    def example_done(self, history: list[LockstepStep]) -> None:
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
        line = f"{self.label} [{bar:<{width}}] {s.examples} examples, {s.steps} steps, {rate:.0f} steps/s"
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self.last_line > 10:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_line = now
