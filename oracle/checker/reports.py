"""A check's result as text, JSON and JUnit XML, and a divergence side by side."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from snaptree.model import ops
from snaptree.model.escape import plural, printable, shown
from snaptree.model.profiles import installed_text

from ..lockstep import Divergence, DriverError, LockstepStep
from .results import CheckResult


def summary_json(result: CheckResult) -> dict[str, Any]:
    """What a check did, for --format json and benchmarks."""
    s = result.stats
    return {
        "driver": result.driver, "profile": result.profile, "versions": result.versions,
        "conforms": result.conforms, "verdict": result.verdict, "flaky": result.flaky,
        "examples": s.examples, "steps": s.steps, "seconds": round(s.seconds, 3),
        "operations": dict(s.operations), "errors": dict(s.errors), "refusal_share": round(s.refusal_share, 3),
        "situations": s.situations.report(result.situations),
        "first_divergence_seconds": None if s.first_divergence is None else round(s.first_divergence, 3),
        "to_shrunk_seconds": None if s.to_shrunk is None else round(s.to_shrunk, 3),
        "shrink": None if s.shrink is None else {"replays": s.shrink.replays, "steps_before": s.shrink.steps_before,
                                                  "steps_after": s.shrink.steps_after,
                                                  "complete": s.shrink.complete},
        "scenario": str(result.scenario_path) if result.scenario_path else None,
        "driver_error": None if result.driver_error is None else {
            "phase": result.driver_error.phase, "error": result.driver_error.error, "frame": result.driver_error.frame,
            "step": len(result.driver_error.history)},
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
    lines = [f"{plural(s.examples, 'example')}, {plural(s.steps, 'step')} in {s.seconds:.1f} s "
             f"({s.steps / max(s.seconds, 1e-9):.0f} steps/s)"
             + (" on " + installed_text(result.versions) if result.versions else ""),
             f"operations: {operations}",
             f"refused as the profile says ({s.refusal_share:.0%} of steps): {errors}",
             f"situations reached (share of {plural(s.situations.histories, 'history', 'histories')}):"]
    width = max((len(x.label) for x in result.situations), default=0)
    for x in result.situations:
        lines.append(f"  {x.label:<{width}}  {s.situations.share(x.key):>4.0%}")
    if result.coverage is not None:
        lines.append(result.coverage.text())
    for guard, finding in result.guarded:
        lines.append(f"known finding left out: {finding.path} (guard {guard.name}: {guard.what}): "
                     f"{plural(s.excluded[guard.name], 'candidate step')} not drawn")
    if s.first_divergence is not None:
        shrunk = "" if s.shrink is None else (
            f", shrunk from {s.shrink.steps_before} to {plural(s.shrink.steps_after, 'step')} in "
            f"{plural(s.shrink.replays, 'replay')}"
            + ("" if s.shrink.complete else " (budget ran out)"))
        lines.append(f"first divergence after {s.first_divergence:.1f} s; shrunk scenario {s.to_shrunk or 0:.1f} s "
                     f"later{shrunk}")
    return "\n".join(lines)


def verdict_text(result: CheckResult, where: str = "") -> str:
    """The verdict's line -- CONFORMS, DIVERGES or DRIVER ERROR -- with where in a run it was
    reached (a shard), as the CLI, the kit and the pytest plugin print it."""
    flaky = " (flaky: the driver did not fail the same way twice)" if result.flaky else ""
    if result.conforms:
        return (f"CONFORMS: driver {result.driver} follows profile {result.profile} over "
                f"{plural(result.stats.examples, 'random history', 'random histories')}{where}")
    if result.driver_error is not None:
        return printable(f"DRIVER ERROR: driver {result.driver} failed in its own code{where}{flaky}: "
                         f"{result.driver_error.summary()}")
    return f"DIVERGES: driver {result.driver} and profile {result.profile} part ways{where}{flaky}"


def divergence_report(divergence: Divergence, driver: str) -> str:
    """The history side by side, then each difference at the step where they part ways
    (what came from the driver or the user escaped, as every text output)."""
    driver = printable(driver)
    if not divergence.history:  # the driver failed before the first step
        return f"  driver error: {printable(divergence.summary())}" if isinstance(divergence, DriverError) else ""
    width = max(len(ops.describe(s.op)) for s in divergence.history) + 2
    lines = [f"  {'step':<{width + 5}}{'model':<24}{driver}"]
    for i, s in enumerate(divergence.history, 1):
        model_side = s.model.brief()
        driver_side = "ok" if s.driver.ok else str(s.driver.kind)
        mark = "  <-- differs" if model_side != driver_side else ""
        lines.append(f"  {i:>3}. {ops.describe(s.op):<{width}}{model_side:<24}{driver_side}{_driver_terms(s)}{mark}")
    last = divergence.history[-1]
    if not last.model.ok:
        lines.append(f"  model's message:  {printable(last.model.message or '(none)')}")
    if not last.driver.ok:
        lines.append(f"  driver's message: {printable(last.driver.message or '(none)')}")
    if isinstance(divergence, DriverError):
        lines.append(f"  driver error: {printable(divergence.summary())}")
        return "\n".join(lines)
    lines.append(f"  first difference after step {len(divergence.history)}: {printable(str(divergence.differences[0]))}")
    lines.extend(f"  also: {printable(str(d))}" for d in divergence.differences[1:6])
    if len(divergence.differences) > 6:
        lines.append(f"  ... and {len(divergence.differences) - 6} more")
    return "\n".join(lines)


def _driver_terms(s: LockstepStep) -> str:
    """Where the driver's terms differ from the model's: the name or id it was sent instead
    of the step's, the name the system chose for a new snapshot."""
    notes = []
    if s.sent is not None and s.sent != s.op:
        notes.append(f"sent {ops.describe(s.sent)}")
    if s.driver.ok and None not in (s.driver.created_name, s.model.created_name) \
            and s.driver.created_name != s.model.created_name:
        notes.append(f"named {shown(str(s.driver.created_name))}")
    return printable(f" ({'; '.join(notes)})") if notes else ""


def junit_xml(results: list[CheckResult]) -> str:
    """A testcase per result: a divergence is a <failure>, the driver's own error an <error>."""
    errors = sum(1 for r in results if r.driver_error is not None)
    failures = sum(1 for r in results if not r.conforms) - errors
    total_time = sum(r.stats.seconds for r in results)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuite name="snaptree check" tests="{len(results)}" failures="{failures}" errors="{errors}" '
           f'time="{total_time:.3f}">']
    for r in results:
        name = quoteattr(f"{r.profile}{' ' + r.shard if r.shard else ''}: {plural(r.stats.examples, 'example')}, "
                         f"{plural(r.stats.steps, 'step')}")
        out.append(f'  <testcase classname={quoteattr("snaptree.check." + r.driver)} name={name} '
                   f'time="{r.stats.seconds:.3f}">')
        if r.divergence is not None:
            message = quoteattr(str(r.divergence.differences[0]))
            body = divergence_report(r.divergence, r.driver)
            if r.scenario_path is not None:
                body += f"\n  scenario: {r.scenario_path}"
            tag = "error" if r.driver_error is not None else "failure"
            out.append(f"    <{tag} message={message}>{escape(body)}</{tag}>")
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"
