"""`snaptree check` and `snaptree replay`: run the lockstep state machine, and turn the
shrunk divergence into a report and a scenario file that replays."""

from __future__ import annotations

import itertools
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky
from hypothesis.internal.conjecture import providers
from hypothesis.stateful import run_state_machine_as_test

from snaptree.model import get_profile, ops
from snaptree.model.escape import printable
from snaptree.model.profiles import installed_text
from snaptree.model.scenario import Scenario, Step, expect_element, to_xml

from . import lifetime
from .cover import RandomCoverage, random_coverage
from .driver import Driver
from .findings import Finding, Guard, guards_for
from .lockstep import Divergence, Lockstep
from .lockstep import Step as LockstepStep
from .shrink import ShrinkStats, shrink
from .situations import Situation, Tally, applicable
from .stateful import conformance_machine


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

    @property
    def conforms(self) -> bool:
        return self.divergence is None


def check(driver_class: type[Driver], profile: str, *, examples: int = 100, steps: int = 20, blocks: int = 8,
          seed: int | None = None, database: str | None = ".snaptree/examples", out: str = "snaptree-out",
          progress: IO[str] | None = sys.stderr, options: dict[str, Any] | None = None,
          spec: str | None = None, guards: bool = True) -> CheckResult:
    """Drive ``examples`` random histories of up to ``steps`` operations through the model and
    the driver.  A divergence is shrunk by replaying it; the minimal one is written to ``out``.
    With ``guards``, operations that a known finding's guard matches are not drawn."""
    from .shards import open_database  # shards builds on this module

    options = options or {}
    guarded = guards_for(profile) if guards else []
    progress_listener = Progress(examples, progress, label=f"{driver_class.name}/{profile}")
    drivers: list[Driver] = []

    def make_driver() -> Driver:
        driver = driver_class(profile, **options)
        drivers.append(driver)
        return driver

    machine = conformance_machine(make_driver, blocks, progress_listener, label=f"{driver_class.name}_{profile}",
                                  guards=tuple(g for g, _ in guarded), excluded=progress_listener.stats.excluded)

    def factory() -> Any:
        return machine()

    # tell Hypothesis's example database which driver and profile these examples belong to
    factory._hypothesis_internal_add_digest = f"{driver_class.name}:{profile}:{blocks}".encode()  # type: ignore[attr-defined]
    if seed is not None:
        factory = hypothesis_seed(seed)(factory)
    config = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, verbosity=Verbosity.quiet,
        database=open_database(database),
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
        # the history is shrunk by replaying it (shrink.py), far faster than Hypothesis' shrinker
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    result = CheckResult(driver_class.name, profile, progress_listener.stats,
                         situations=applicable(get_profile(profile), driver_class.operations), guarded=guarded,
                         versions=driver_class.installed_versions({**options, "profile": profile}))
    try:
        with _no_local_constants():
            # Hypothesis's mutations sometimes end a history after a step or two, which tests
            # nothing; shorter histories are the shrinker's business, so half the budget at least
            run_state_machine_as_test(factory, settings=config, _min_steps=steps // 2)  # type: ignore[arg-type]
    except Divergence as divergence:
        result.divergence = divergence
    except Flaky as flaky:
        lifetime.reraise_unwinding(flaky)
        lifetime.raise_if_terminating()  # a signal that reached Hypothesis in disguise (a SystemError)
        result.flaky = True
        inner = [e for e in getattr(flaky, "exceptions", []) if isinstance(e, Divergence)]
        result.divergence = inner[0] if inner else None
        if result.divergence is None:
            raise
    except Exception:
        lifetime.raise_if_terminating()
        raise
    try:
        if result.divergence is not None and not result.flaky:
            replayer = drivers[0] if drivers else make_driver()
            result.divergence, result.stats.shrink = shrink(result.divergence, lambda: Lockstep(replayer, blocks),
                                                                 guards=[g for g, _ in guarded])
    finally:
        result.stats.ended = time.monotonic()
        progress_listener.show(final=True)
        for driver in drivers:
            driver.close()
    result.coverage = random_coverage(profile, driver_class, result.stats.histories)
    if result.divergence is not None:
        result.scenario_path = write_counterexample(result.divergence, spec or driver_class.name, profile, blocks, out,
                                                    seed)
    return result


@contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis mixes literals from every local module in ``sys.modules`` into what it draws
    (and caches them in ``.hypothesis/constants``), so the same --seed would give other
    histories depending on what happens to be imported.  The generator's choices need no
    such hints: switch them off while a check runs."""
    saved = providers._get_local_constants
    providers._get_local_constants = lambda: _NO_CONSTANTS
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


_NO_CONSTANTS = providers.Constants()


def counterexample(divergence: Divergence, driver: str, profile: str, blocks: int, seed: int | None) -> bytes:
    """A scenario file of the diverging history, with the model's expectations: the model
    passes it, the driver does not."""
    first = divergence.differences[0]
    scenario = Scenario(
        profile=profile, blocks=blocks, title=f"driver {driver} diverges from the {profile} profile",
        description=f"Found by snaptree check{'' if seed is None else f' --seed {seed}'}: after step "
                    f"{len(divergence.history)}, {first}. Replay: snaptree replay FILE --driver {driver}",
        steps=[Step(s.op, 0) for s in divergence.history],
    )
    last = len(divergence.history) - 1
    expects = [expect_element(s.model, s.model_state, views=i == last) for i, s in enumerate(divergence.history)]
    for i, element in enumerate(expects):
        if i != last:  # before the last step only the outcome is pinned down
            for key in ("current", "power", "snapshots"):
                element.attrib.pop(key, None)
            for child in list(element):
                element.remove(child)
    return to_xml(scenario, list(expects))


def write_counterexample(divergence: Divergence, driver: str, profile: str, blocks: int, out: str,
                         seed: int | None) -> Path | None:
    """Write the counterexample into the folder ``out`` under a new name: created exclusively,
    with -2, -3, ... after the second, so that checks finishing in the same second never
    overwrite each other's.  If it cannot be written, it goes to stderr rather than be lost,
    and None comes back."""
    data = counterexample(divergence, driver, profile, blocks, seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_driver = "".join(c if c.isalnum() or c in "-_" else "_" for c in driver)
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            path = Path(out) / f"counterexample-{safe_driver}-{profile}-{stamp}{'' if n == 1 else f'-{n}'}.xml"
            try:
                file = path.open("xb")
            except FileExistsError:
                continue
            with file:
                try:
                    file.write(data)
                except OSError:
                    path.unlink()  # no half a scenario
                    raise
            return path
    except OSError as error:
        sys.stderr.write(f"snaptree: cannot write the counterexample into {printable(out)}: "
                         f"{error.strerror or error}; here it is:\n{data.decode()}")
    return None


def summary_json(result: CheckResult) -> dict[str, Any]:
    """What a check did, for --format json and benchmarks."""
    s = result.stats
    return {
        "driver": result.driver, "profile": result.profile, "versions": result.versions,
        "conforms": result.conforms, "flaky": result.flaky,
        "examples": s.examples, "steps": s.steps, "seconds": round(s.seconds, 3),
        "operations": dict(s.operations), "errors": dict(s.errors), "refusal_share": round(s.refusal_share, 3),
        "situations": s.situations.report(result.situations),
        "first_divergence_seconds": None if s.first_divergence is None else round(s.first_divergence, 3),
        "to_shrunk_seconds": None if s.to_shrunk is None else round(s.to_shrunk, 3),
        "shrink": None if s.shrink is None else {"replays": s.shrink.replays, "steps_before": s.shrink.steps_before,
                                                  "steps_after": s.shrink.steps_after,
                                                  "complete": s.shrink.complete},
        "scenario": str(result.scenario_path) if result.scenario_path else None,
        "guarded": [{"finding": f.path, "guard": g.name, "excluded": s.excluded[g.name]} for g, f in result.guarded],
        "graph_coverage": None if result.coverage is None else {
            "depth": result.coverage.depth, "taken": result.coverage.taken,
            "transitions": result.coverage.transitions, "share": round(result.coverage.share, 3)},
    }


def summary_text(result: CheckResult) -> str:
    """The summary a check prints: counts, refusals, and how often each situation came up."""
    s = result.stats
    operations = ", ".join(f"{tag} {count}" for tag, count in s.operations.most_common())
    errors = ", ".join(f"{kind} {count}" for kind, count in s.errors.most_common()) or "none"
    lines = [f"{s.examples} examples, {s.steps} steps in {s.seconds:.1f} s ({s.steps / max(s.seconds, 1e-9):.0f} steps/s)"
             + (" on " + installed_text(result.versions) if result.versions else ""),
             f"operations: {operations}",
             f"refused as the profile says ({s.refusal_share:.0%} of steps): {errors}",
             f"situations reached (share of {s.situations.histories} histories):"]
    width = max((len(x.label) for x in result.situations), default=0)
    for x in result.situations:
        lines.append(f"  {x.label:<{width}}  {s.situations.share(x.key):>4.0%}")
    if result.coverage is not None:
        lines.append(result.coverage.text())
    for guard, finding in result.guarded:
        lines.append(f"known finding left out: {finding.path} (guard {guard.name}: {guard.what}): "
                     f"{s.excluded[guard.name]} candidate steps not drawn")
    if s.first_divergence is not None:
        shrunk = "" if s.shrink is None else (
            f", shrunk from {s.shrink.steps_before} to {s.shrink.steps_after} steps in {s.shrink.replays} replays"
            + ("" if s.shrink.complete else " (budget ran out)"))
        lines.append(f"first divergence after {s.first_divergence:.1f} s; shrunk scenario {s.to_shrunk or 0:.1f} s "
                     f"later{shrunk}")
    return "\n".join(lines)


def divergence_report(divergence: Divergence, driver: str) -> str:
    """The history side by side, then each difference at the step where they part ways
    (what came from the driver or the user escaped, as every text output)."""
    driver = printable(driver)
    width = max(len(ops.describe(s.op)) for s in divergence.history) + 2
    lines = [f"  {'step':<{width + 5}}{'model':<24}{driver}"]
    for i, s in enumerate(divergence.history, 1):
        model_side = s.model.brief()
        driver_side = "ok" if s.driver.ok else str(s.driver.kind)
        mark = "  <-- differs" if model_side != driver_side else ""
        lines.append(f"  {i:>3}. {ops.describe(s.op):<{width}}{model_side:<24}{driver_side}{mark}")
    last = divergence.history[-1]
    if not last.model.ok:
        lines.append(f"  model's message:  {printable(str(last.model.message))}")
    if not last.driver.ok:
        lines.append(f"  driver's message: {printable(str(last.driver.message))}")
    lines.append(f"  first difference after step {len(divergence.history)}: {printable(str(divergence.differences[0]))}")
    lines.extend(f"  also: {printable(str(d))}" for d in divergence.differences[1:6])
    if len(divergence.differences) > 6:
        lines.append(f"  ... and {len(divergence.differences) - 6} more")
    return "\n".join(lines)


def replay(driver: Driver, scenario: Scenario) -> tuple[Lockstep, Divergence | None]:
    """Run a scenario's steps on the driver and the model in lockstep, up to the first
    difference."""
    lockstep = Lockstep(driver, scenario.blocks)
    with lockstep:
        try:
            for step in scenario.steps:
                if step.applies_to(driver.profile):
                    lockstep.step(step.op)
        except Divergence as divergence:
            return lockstep, divergence
    return lockstep, None


def junit_xml(results: list[CheckResult]) -> str:
    failures = sum(1 for r in results if not r.conforms)
    total_time = sum(r.stats.seconds for r in results)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuite name="snaptree check" tests="{len(results)}" failures="{failures}" errors="0" '
           f'time="{total_time:.3f}">']
    for r in results:
        name = quoteattr(f"{r.profile}{' ' + r.shard if r.shard else ''}: {r.stats.examples} examples, "
                         f"{r.stats.steps} steps")
        out.append(f'  <testcase classname={quoteattr("snaptree.check." + r.driver)} name={name} '
                   f'time="{r.stats.seconds:.3f}">')
        if r.divergence is not None:
            message = quoteattr(str(r.divergence.differences[0]))
            body = divergence_report(r.divergence, r.driver)
            if r.scenario_path is not None:
                body += f"\n  scenario: {r.scenario_path}"
            out.append(f"    <failure message={message}>{escape(body)}</failure>")
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"
