"""Run a check: random histories through the model and a driver in lockstep (the Hypothesis
state machine of ``oracle/stateful.py``), a divergence shrunk by replaying it and written as a
scenario file; several shards run in worker processes (``oracle/workers.py``)."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import IO, Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from snaptree.model import get_profile
from snaptree.model.disks import Disk, layout_spec

from .. import lifetime
from ..cover import random_coverage
from ..driver import Capabilities, Driver
from ..driver_checks import own_frame
from ..errors import UsageError, hide_secrets
from ..findings import guards_for
from ..lockstep import Divergence, DriverError, Lockstep
from ..resolve import ResolvedDriver, resolve_driver
from ..shards import merge, open_database, shard_examples, shard_seed
from ..shrink import shrink
from ..situations import Situation, applicable
from ..stateful import conformance_machine
from . import hypothesis_adapter
from .config import CheckConfig
from .counterexample import write_counterexample
from .database import LosableDatabase
from .limits import check_limits
from .progress import Progress
from .results import CheckResult


def run_check(config: CheckConfig, resolved: ResolvedDriver | None = None,
              progress: IO[str] | None = sys.stderr) -> CheckResult:
    """Check ``config.driver`` against its profile.  ``resolved`` skips resolving the driver
    again (the caller has, and reported its notes).  Raises UsageError and DriverUnavailable
    before any example runs, EnvironmentFailure when the machine under the driver fails."""
    check_limits(config)
    resolved = resolved or resolve_driver(config.driver, config.profile, config.options)
    if config.disks is not None:
        check_layout(resolved, config.disks)
    shards = 1 if config.shard else max(config.shards, config.workers)
    if shards > 1:
        return _run_on_workers(config, resolved, shards, progress)
    k, n = config.shard or (1, 1)
    result = _run_shard(resolved, examples=shard_examples(config.examples, k, n), steps=config.steps,
                        blocks=config.blocks, seed=shard_seed(config.seed, k, n), database=config.database,
                        out=config.out, progress=progress, guards=config.guards, disks=config.disks)
    if config.shard:
        result.shard = f"shard {k}/{n}"
    return result


def _run_on_workers(config: CheckConfig, resolved: ResolvedDriver, shards: int,
                    progress: IO[str] | None) -> CheckResult:
    """Each shard a worker process with the configuration of its own shard; one merged result."""
    from ..workers import run_shards  # workers run this module's run_check

    started = time.monotonic()
    shard_config = dataclasses.replace(config, profile=resolved.profile, shards=1, workers=1)
    try:
        results = run_shards(shard_config, shards, min(config.workers, shards), progress)
    except lifetime.Terminated as signalled:  # the shards' results so far, as one
        signalled.partial = _merged(signalled.partial, config, resolved, started) if signalled.partial else None
        raise
    return _merged(results, config, resolved, started)


def _merged(results: list[CheckResult], config: CheckConfig, resolved: ResolvedDriver, started: float) -> CheckResult:
    merged = merge(results, resolved.cls, started, time.monotonic(),
                   situations_of(resolved.profile, resolved.make().capabilities()),
                   guards_for(resolved.profile) if config.guards else [])
    merged.shard_results, merged.workers = results, config.workers
    return merged


def situations_of(profile: str, capabilities: Capabilities) -> list[Situation]:
    """The situations a driver that can do this can reach under this profile."""
    return applicable(get_profile(profile), capabilities.operations, bool(capabilities.layouts),
                      capabilities.memory_files)


def check_layout(resolved: ResolvedDriver, disks: tuple[Disk, ...]) -> None:
    """UsageError when the profile cannot have this VM or the driver cannot build it."""
    problem = resolved.make().capabilities().cannot_have(resolved.profile, disks)
    if problem:
        raise UsageError(f"--disks {layout_spec(disks)}: {problem}")


def _run_shard(resolved: ResolvedDriver, *, examples: int, steps: int, blocks: int, seed: int | None,
               database: str | None, out: str, progress: IO[str] | None, guards: bool,
               disks: tuple[Disk, ...] | None = None) -> CheckResult:
    """Drive ``examples`` random histories of up to ``steps`` operations through the model and
    the driver.  A divergence is shrunk by replaying it; the minimal one is written to ``out``.
    With ``guards``, operations that a known finding's guard matches are not drawn."""
    driver_class, profile = resolved.cls, resolved.profile
    guarded = guards_for(profile) if guards else []
    progress_listener = Progress(examples, progress, label=f"{driver_class.name}/{profile}")
    drivers: list[Driver] = []

    def make_driver() -> Driver:
        driver = resolved.make()
        drivers.append(driver)
        return driver

    machine = conformance_machine(make_driver, blocks, progress_listener, label=f"{driver_class.name}_{profile}",
                                  guards=tuple(g for g, _ in guarded), excluded=progress_listener.stats.excluded,
                                  disks=disks)

    def factory() -> Any:
        return machine()

    hypothesis_adapter.tag_examples(factory, f"{driver_class.name}:{profile}:{blocks}".encode())
    if seed is not None:
        factory = hypothesis_seed(seed)(factory)
    opened = open_database(database)
    db = None if opened is None else LosableDatabase(opened, f"--database {hide_secrets(str(database))}")

    def lost() -> str | None:
        return None if db is None else db.lost

    config = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, verbosity=Verbosity.quiet,
        database=db,
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
        # the history is shrunk by replaying it (shrink.py), far faster than Hypothesis' shrinker
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    result = CheckResult(driver_class.name, profile, progress_listener.stats,
                         situations=applicable(get_profile(profile), driver_class.operations,
                                               bool(driver_class.layouts), driver_class.memory_files), guarded=guarded,
                         versions=driver_class.installed_versions({**resolved.options, "profile": profile}))
    stopped = ""
    try:
        try:
            with hypothesis_adapter.no_local_constants():
                # shorter histories are the shrinker's business, so half the budget at least
                stopped = hypothesis_adapter.run_machine(factory, config, min_steps=steps // 2,
                                                         enough=lambda: result.stats.examples >= examples or lost() is not None)
        except Divergence as divergence:
            result.divergence = divergence
        except Flaky as flaky:
            lifetime.reraise_unwinding(flaky)
            lifetime.raise_if_terminating()  # a signal that reached Hypothesis in disguise (a SystemError)
            result.flaky = True
            inner = [e for e in getattr(flaky, "exceptions", []) if isinstance(e, Divergence)]
            # no divergence inside: the same choices drew another history (FlakyStrategyDefinition),
            # which only a driver that changes what the lockstep does from one run to the next causes
            result.divergence = inner[0] if inner else DriverError(
                [], "replay", "the driver did not behave the same way when the same history was replayed "
                f"({type(flaky).__name__})", "no frame")
        except Exception:
            lifetime.raise_if_terminating()
            raise
    except lifetime.Terminated as signalled:  # the summary of what ran so far comes before its one line
        result.stats.ended = time.monotonic()
        progress_listener.show(final=True)
        result.coverage = random_coverage(profile, driver_class, result.stats.histories)
        signalled.partial = result
        raise
    result.database_lost = lost()
    if drivers:  # the situations of what the driver, as made for this profile, can do (layouts, memory files)
        result.situations = situations_of(profile, drivers[0].capabilities())
    if result.divergence is None and result.stats.examples < examples and not result.database_lost:
        result.stopped = f"Hypothesis ended the run after {result.stats.examples} of {examples} examples: {stopped}"
    try:
        if result.divergence is not None and not result.flaky:
            replayer = drivers[0] if drivers else make_driver()
            disks = result.divergence.disks
            result.divergence, result.stats.shrink = shrink(result.divergence, lambda: Lockstep(replayer, blocks, disks),
                                                                 guards=[g for g, _ in guarded])
    finally:
        result.stats.ended = time.monotonic()
        progress_listener.show(final=True)
        for driver in drivers:
            try:
                driver.close()
            except Exception as error:  # the driver's own bug, reported as such if nothing came first
                lifetime.raise_if_terminating()
                if result.divergence is None:
                    result.divergence = DriverError([], "close", f"{type(error).__name__}: {error}",
                                                    own_frame(error, driver))
    result.coverage = random_coverage(profile, driver_class, result.stats.histories)
    if result.divergence is not None:
        result.scenario_path = write_counterexample(result.divergence, resolved.spec, profile, blocks, out, seed)
    return result
