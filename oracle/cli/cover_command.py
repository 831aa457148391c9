"""`snaptree check --plan cover`: every transition of the bounded state graph, in lockstep
(oracle/cover.py), with a random check's outputs: text or JSON, JUnit, progress with an
estimate of the time left, and what ran so far when a signal ends it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from snaptree.model.escape import plural, printable

from .. import lifetime
from ..checker.counterexample import write_counterexample
from ..checker.progress import Progress
from ..checker.reports import divergence_report, junit_xml
from ..checker.results import CheckResult, Stats
from ..cover import CoverResult
from ..errors import UsageError
from ..lockstep import DriverError
from ..outputs import write_output
from ..resolve import ResolvedDriver
from .check_commands import check_json, exit_status, interrupted_json, interrupted_line
from .common import to_json, unwritable

DEPTH = 3  # --depth when not given


def check_cover(args: argparse.Namespace, resolved: ResolvedDriver) -> int:
    from snaptree.model.analysis.explore import Bounds, BoundsError

    from ..cover import cover_plan, report_text, run_cover

    depth = args.depth or DEPTH
    try:
        plan = cover_plan(resolved.profile, depth, resolved.cls, Bounds(blocks=args.blocks))
    except BoundsError as error:  # over the limits of the graph: refused before the driver starts
        raise UsageError(str(error)) from None
    stream = None if args.format == "json" else sys.stderr
    progress = Progress(len(plan.histories), stream, label=f"{resolved.name}/{resolved.profile} plan cover",
                        noun="histories")
    if stream is not None:
        print(f"plan cover: {plural(plan.transitions, 'transition')} at depth {depth}: "
              f"{plural(len(plan.histories), 'history', 'histories')}, {plural(sum(map(len, plan.histories)), 'step')} "
              "to run", file=stream)

    def ran(so_far: CoverResult) -> None:
        progress.stats.examples, progress.stats.steps = so_far.histories_run, so_far.steps
        progress.show()

    try:
        result = run_cover(resolved.cls, resolved.profile, depth, args.blocks, resolved.options, plan=plan, ran=ran)
    except lifetime.Terminated as signalled:
        if isinstance(signalled.partial, CoverResult):
            progress.show(final=True)
            partial = signalled.partial
            if args.format == "json":
                print(to_json({**interrupted_json(as_check_result(partial, resolved, None), signalled),
                               "plan": plan_json(partial)}))
            else:
                print(report_text(partial))
                print(interrupted_line(signalled, f"{partial.histories_run:,} of {len(plan.histories):,} histories"))
        raise
    progress.show(final=True)
    problems = []
    path = None
    if result.divergence is not None:
        path = write_counterexample(result.divergence, args.driver, resolved.profile, args.blocks, args.out, None)
        if path is None:
            problems.append(f"the counterexample was not written into {args.out} (it is above)")
    checked = as_check_result(result, resolved, path)
    if args.junit:
        try:
            write_output(args.junit, junit_xml([checked]).encode())
        except OSError as error:
            problems.append(unwritable("--junit", args.junit, error))
    if args.format == "json":
        print(to_json({**check_json(checked), "plan": plan_json(result)}))
    else:
        print(cover_text(result, resolved, path))
    return exit_status(checked, problems)


def as_check_result(result: CoverResult, resolved: ResolvedDriver, path: Any) -> CheckResult:
    """The plan's run in a random check's terms, for its JSON and JUnit: a history is an example."""
    stats = Stats(examples=result.histories_run, steps=result.steps, shrink=result.shrink)
    stats.ended = stats.started + result.seconds
    return CheckResult(resolved.name, resolved.profile, stats, divergence=result.divergence, scenario_path=path,
                       shard="plan cover")


def plan_json(result: CoverResult) -> dict[str, Any]:
    p = result.plan
    return {"depth": p.exploration.depth, "transitions": p.transitions, "covered": len(result.covered),
            "states": p.exploration.states, "histories": len(p.histories), "steps": sum(map(len, p.histories))}


def cover_text(result: CoverResult, resolved: ResolvedDriver, path: Any) -> str:
    from ..cover import report_text

    lines = [report_text(result)]
    if result.divergence is None:
        lines.append(f"CONFORMS: driver {resolved.name} follows profile {resolved.profile} on every transition of the plan")
        return "\n".join(lines)
    lines.append(printable(f"DRIVER ERROR: driver {resolved.name} failed in its own code: {result.divergence.summary()}")
                 if isinstance(result.divergence, DriverError)
                 else f"DIVERGES: driver {resolved.name} and profile {resolved.profile} part ways")
    lines.append(divergence_report(result.divergence, resolved.name))
    if path is not None:
        lines.append(printable(f"scenario: {path}"))
    return "\n".join(lines)
