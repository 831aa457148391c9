"""What a check found: its statistics and its result (verdict, divergence, coverage, situations)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from snaptree.model import ops

from ..cover import RandomCoverage
from ..findings import Finding, Guard
from ..lockstep import Divergence, DriverError
from ..shrink import ShrinkStats
from ..situations import Situation, Tally


@dataclass
class Stats:
    examples: int = 0
    steps: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    situations: Tally = field(default_factory=Tally)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    first_divergence: float | None = None  # seconds from the start to the first divergence met
    shrink: ShrinkStats | None = None
    excluded: Counter[str] = field(default_factory=Counter)  # candidates each known finding's guard left out
    histories: list[list[ops.Operation]] = field(default_factory=list)  # every example's operations

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def refusal_share(self) -> float:
        return sum(self.errors.values()) / self.steps if self.steps else 0.0

    @property
    def to_shrunk(self) -> float | None:
        """Seconds from the first divergence to the shrunk scenario."""
        if self.first_divergence is None or self.ended is None:
            return None
        return self.ended - self.started - self.first_divergence


@dataclass
class CheckResult:
    driver: str
    profile: str
    stats: Stats
    divergence: Divergence | None = None
    flaky: bool = False
    scenario_path: Path | None = None
    situations: list[Situation] = field(default_factory=list)  # those the driver can reach under the profile
    guarded: list[tuple[Guard, Finding]] = field(default_factory=list)  # known findings left out
    coverage: RandomCoverage | None = None  # of the bounded state graph (--plan cover's)
    versions: dict[str, str] = field(default_factory=dict)  # the real components checked, by name
    shard: str = ""  # "shard K/N" when this is one shard of a run
    shard_results: list[CheckResult] = field(default_factory=list)  # each shard's, when the run had several
    workers: int = 1  # processes the shards ran in
    stopped: str = ""  # why it ran fewer examples than asked, with no divergence to end it
    database_lost: str | None = None  # the example database failed during the run: one line naming it

    @property
    def conforms(self) -> bool:
        return self.divergence is None

    @property
    def driver_error(self) -> DriverError | None:
        """The driver's own failure (it raised, or observed in the wrong shape), not a divergence."""
        return self.divergence if isinstance(self.divergence, DriverError) else None

    @property
    def verdict(self) -> str:
        return "conforms" if self.conforms else "driver-error" if self.driver_error is not None else "diverges"
