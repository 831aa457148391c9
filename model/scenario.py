"""Scenarios: steps and expectations, as types (the XML form is ``oracle/scenario_format.py``,
schema ``scenarios/scenario.rng``; running one on the model is ``model/run.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ops
from .disks import DEFAULT_LAYOUT, Disk

DEFAULT_BLOCKS = 16
# Scenario files may come from anyone: the size bounds what parsing them takes (lxml's tree is
# ~80x the file), the steps what running them takes (`run` draws the tree after each step).
MAX_BYTES = 4 * 1024 * 1024
MAX_STEPS = 5000


class ScenarioError(ValueError):
    """The scenario is malformed; the message names the element and line."""


@dataclass
class Expect:
    line: int
    profiles: tuple[str, ...] = ()  # empty: every profile
    error: str | None = None
    current: str | None = None
    power: str | None = None
    ram: str | None = None  # the snapshot whose memory image the RAM was loaded from ("none": off)
    count: int | None = None
    snapshots: list[dict[str, str]] = field(default_factory=list)  # attributes to check
    absent: list[dict[str, str]] = field(default_factory=list)
    views: list[tuple[dict[str, str], dict[int, str]]] = field(default_factory=list)

    def applies_to(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles

    @property
    def reads_state(self) -> bool:
        """It checks more than the step's outcome (so the state after the step is observed)."""
        return any(value is not None for value in (self.current, self.power, self.ram, self.count)) or bool(
            self.snapshots or self.absent or self.views)


@dataclass
class ScenarioStep:
    op: ops.Operation
    line: int
    expects: list[Expect] = field(default_factory=list)
    profiles: tuple[str, ...] = ()  # empty: every profile; otherwise skipped under the others

    def applies_to(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles


@dataclass
class Scenario:
    profile: str
    blocks: int = DEFAULT_BLOCKS  # per disk
    disks: tuple[Disk, ...] = DEFAULT_LAYOUT
    title: str = ""
    description: str = ""
    steps: list[ScenarioStep] = field(default_factory=list)
