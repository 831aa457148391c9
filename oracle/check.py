"""`snaptree check` and `snaptree replay`: run the lockstep state machine, and turn the
shrunk divergence into a report and a scenario file that replays."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from snaptree.model import ops
from snaptree.model.scenario import Scenario, Step, expect_element, to_xml

from . import lifetime
from .driver import Driver
from .lockstep import Divergence, Lockstep
from .lockstep import Step as LockstepStep
from .stateful import conformance_machine


@dataclass
class Stats:
    examples: int = 0
    steps: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class Progress:
    """Counts what the state machine does and shows it on stderr while it runs."""

    def __init__(self, total: int, stream: IO[str] | None = sys.stderr, label: str = ""):
        self.stats = Stats()
        self.total = total
        self.stream = stream
        self.label = label
        self.tty = bool(stream is not None and stream.isatty())
        self.last_line = 0.0

    def stepped(self, step: LockstepStep) -> None:
        self.stats.steps += 1
        self.stats.operations[step.op.tag] += 1
        if not step.model.ok:
            self.stats.errors[str(step.model.kind)] += 1

    def example_done(self, steps: int) -> None:
        self.stats.examples += 1
        self.show()

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

    @property
    def conforms(self) -> bool:
        return self.divergence is None


def check(driver_class: type[Driver], profile: str, *, examples: int = 100, steps: int = 20, blocks: int = 8,
          seed: int | None = None, database: str | None = ".snaptree/examples", out: str = "snaptree-out",
          progress: IO[str] | None = sys.stderr, options: dict[str, Any] | None = None,
          spec: str | None = None) -> CheckResult:
    """Drive ``examples`` random histories of up to ``steps`` operations through the model and
    the driver.  On divergence Hypothesis shrinks it; the minimal one is written to ``out``."""
    options = options or {}
    progress_listener = Progress(examples, progress, label=f"{driver_class.name}/{profile}")
    drivers: list[Driver] = []

    def make_driver() -> Driver:
        driver = driver_class(profile, **options)
        drivers.append(driver)
        return driver

    machine = conformance_machine(make_driver, blocks, progress_listener, label=f"{driver_class.name}_{profile}")

    def factory() -> Any:
        return machine()

    # tell Hypothesis's example database which driver and profile these examples belong to
    factory._hypothesis_internal_add_digest = f"{driver_class.name}:{profile}:{blocks}".encode()  # type: ignore[attr-defined]
    if seed is not None:
        factory = hypothesis_seed(seed)(factory)
    config = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, verbosity=Verbosity.quiet,
        database=DirectoryBasedExampleDatabase(database) if database else None,
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
    )
    result = CheckResult(driver_class.name, profile, progress_listener.stats)
    try:
        run_state_machine_as_test(factory, settings=config)  # type: ignore[arg-type]  # any factory will do
    except Divergence as divergence:
        result.divergence = divergence
    except Flaky as flaky:
        lifetime.reraise_unwinding(flaky)
        result.flaky = True
        inner = [e for e in getattr(flaky, "exceptions", []) if isinstance(e, Divergence)]
        result.divergence = inner[0] if inner else None
        if result.divergence is None:
            raise
    finally:
        progress_listener.show(final=True)
        for driver in drivers:
            driver.close()
    if result.divergence is not None:
        result.scenario_path = write_counterexample(result.divergence, spec or driver_class.name, profile, blocks, out,
                                                    seed)
    return result


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
                         seed: int | None) -> Path:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_driver = "".join(c if c.isalnum() or c in "-_" else "_" for c in driver)
    path = folder / f"counterexample-{safe_driver}-{profile}-{stamp}.xml"
    path.write_bytes(counterexample(divergence, driver, profile, blocks, seed))
    return path


def divergence_report(divergence: Divergence, driver: str) -> str:
    """The history side by side, then each difference at the step where they part ways."""
    width = max(len(ops.describe(s.op)) for s in divergence.history) + 2
    lines = [f"  {'step':<{width + 5}}{'model':<24}{driver}"]
    for i, s in enumerate(divergence.history, 1):
        model_side = s.model.brief()
        driver_side = "ok" if s.driver.ok else str(s.driver.kind)
        mark = "  <-- differs" if model_side != driver_side else ""
        lines.append(f"  {i:>3}. {ops.describe(s.op):<{width}}{model_side:<24}{driver_side}{mark}")
    last = divergence.history[-1]
    if not last.model.ok:
        lines.append(f"  model's message:  {last.model.message}")
    if not last.driver.ok:
        lines.append(f"  driver's message: {last.driver.message}")
    lines.append(f"  first difference after step {len(divergence.history)}: {divergence.differences[0]}")
    lines.extend(f"  also: {d}" for d in divergence.differences[1:6])
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
        name = quoteattr(f"{r.profile}: {r.stats.examples} examples, {r.stats.steps} steps")
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
