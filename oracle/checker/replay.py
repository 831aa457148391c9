"""Replaying a scenario on a driver and the model in lockstep, and the findings on the
components installed here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from snaptree.model import ops
from snaptree.model.escape import printable
from snaptree.model.profiles import installed_text
from snaptree.model.scenario import Scenario

from ..driver import Driver, DriverUnavailable
from ..errors import UsageError
from ..findings import Finding
from ..lockstep import Divergence, Lockstep
from ..resolve import ResolvedDriver, resolve_driver
from ..scenario_format import load


def replay(driver: Driver, scenario: Scenario) -> tuple[Lockstep, Divergence | None]:
    """Run a scenario's steps on the driver and the model in lockstep, up to the first
    difference."""
    lockstep = Lockstep(driver, scenario.blocks, scenario.disks)
    try:  # around the lockstep too: a driver's setup or teardown may fail (a DriverError)
        with lockstep:
            for step in scenario.steps:
                if step.applies_to(driver.profile):
                    lockstep.step(step.op)
    except Divergence as divergence:
        return lockstep, divergence
    return lockstep, None


@dataclass
class ReplayResult:
    driver: str
    profile: str
    steps: int  # steps replayed (up to the first difference)
    divergence: Divergence | None

    @property
    def same(self) -> bool:
        return self.divergence is None


def replay_scenario(resolved: ResolvedDriver, scenario: Scenario, label: str = "the scenario") -> ReplayResult:
    """Replay ``scenario`` under the resolved driver's profile.  A step the driver does not
    claim to perform is a UsageError before anything runs: no verdict on it either way."""
    scenario = dataclasses.replace(scenario, profile=resolved.profile)
    driver = resolved.make()
    capabilities = driver.capabilities()
    problem = capabilities.cannot_have(resolved.profile, scenario.disks)
    if problem:
        raise UsageError(f"cannot replay {label} under {resolved.profile}: {problem}")
    for index, step in enumerate(scenario.steps, 1):
        problem = capabilities.cannot_perform(step.op) if step.applies_to(resolved.profile) else None
        if problem:
            raise UsageError(f"cannot replay {label} on driver {resolved.name}: step {index} "
                             f"({ops.describe(step.op)}): {problem}")
    try:
        lockstep, divergence = replay(driver, scenario)
    finally:
        driver.close()
    return ReplayResult(resolved.name, resolved.profile, len(lockstep.history), divergence)


@dataclass
class FindingReplay:
    finding: Finding
    verdict: str  # reproduces, unlisted, fixed?, same, cannot
    installed: str  # the versions here, as text
    detail: str


def replay_finding(finding: Finding) -> FindingReplay:
    """Replay one finding on its driver: "reproduces", "unlisted" (it diverges on versions it
    does not list), "fixed?" (seen on these versions, and now the same), "same" (not seen here,
    and the same) or "cannot" (the driver is not here)."""
    options = {"uri": finding.uri} if finding.uri else {}
    try:
        scenario = load(finding.path)
        resolved = resolve_driver(finding.driver, scenario.profile, options)
        installed = resolved.cls.installed_versions({**options, "profile": scenario.profile})
        result = replay_scenario(resolved, scenario, label=finding.path)
    except (DriverUnavailable, UsageError) as error:
        return FindingReplay(finding, "cannot", "", str(error))
    here = installed_text(installed) or "versions unknown"
    seen = finding.seen_on(installed)
    if result.divergence is not None:
        first = f"first difference after step {result.steps}: {printable(str(result.divergence.differences[0]))}"
        return FindingReplay(finding, "reproduces" if seen else "unlisted", here,
                             first if seen else f"{first} (add these versions to its affects)")
    if seen and finding.race:
        return FindingReplay(finding, "same", here, "a race, and this replay took the common path")
    return FindingReplay(finding, "fixed?" if seen else "same", here,
                         "it no longer diverges: update the finding" if seen else "not seen on these versions")
