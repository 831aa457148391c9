"""Text and JSON forms of scenario runs, for `snaptree run` and `snaptree compare`."""

from __future__ import annotations

import dataclasses
from typing import Any

from snaptree.model import notation, ops
from snaptree.model.escape import plural, printable
from snaptree.model.run import Run, StepResult

PASS, FAIL = "✓", "✗"


def op_json(op: ops.Operation) -> dict[str, Any]:
    return {"op": op.tag, **dataclasses.asdict(op)}


def run_json(run: Run, file: str) -> dict[str, Any]:
    return {
        "file": file,
        "title": run.scenario.title,
        "profile": run.profile,
        "passed": run.passed,
        "steps": [
            {"index": r.index, **op_json(r.step.op), **r.outcome.to_json(),
             "expectations": [{"line": e.line, "passed": not problems, "failures": problems}
                              for e, problems in r.failures]}
            for r in run.steps
        ],
        "final": run.final(),
    }


def step_line(r: StepResult, width: int = 34) -> str:
    words = ops.describe(r.step.op)
    if r.step.profiles:
        words += f" (only {', '.join(r.step.profiles)})"
    outcome = r.outcome
    status = "skipped" if outcome.skipped else "ok" if outcome.ok else f"{outcome.kind}: {printable(str(outcome.message))}"
    return f"{r.index:>4} {words:<{width}} {status}"


def run_text(run: Run, file: str, verbose_tree: bool = True) -> str:
    title = f" — {printable(run.scenario.title)}" if run.scenario.title else ""
    out = [f"{printable(file)}{title} (profile {run.profile})"]
    previous_tree = None
    for r in run.steps:
        out.append(step_line(r))
        if verbose_tree and r.tree is not None and r.tree != previous_tree and not r.outcome.skipped:
            out.extend("       " + line for line in r.tree.splitlines())
            previous_tree = r.tree
        for expect, problems in r.failures:
            mark = PASS if not problems else FAIL
            out.append(f"       {mark} expect (line {expect.line})" + ("" if not problems else ": " + _problems(problems)))
    verdict = "PASS" if run.passed else "FAIL"
    failed = sum(1 for r in run.steps for _, p in r.failures if p)
    held = expectations_hold(run.expectations - failed, run.expectations)
    out.append(f"{verdict} {printable(file)} under {run.profile}: {held}")
    return "\n".join(out)


def expectations_hold(held: int, total: int) -> str:
    """``1 of 1 expectation holds``, ``2 of 3 expectations hold``: the verb agrees with ``held``."""
    return f"{held:,} of {plural(total, 'expectation')} hold{'s' if held == 1 else ''}"


def _problems(problems: list[str]) -> str:
    return printable("; ".join(problems))


def views_text(state: dict[str, Any], names: dict[str, str]) -> list[str]:
    """What each point in time reads, a line each; ``names``: the snapshots' labels by id."""
    lines = []
    for key, view in [("current", state["views"]["current"])] + list(state["views"]["snapshots"].items()):
        label = "current" if key == "current" else printable(names.get(key, key))
        lines.append(f"{label:>12}: {notation.view_text(view)}")
    return lines


def compare_text(runs: list[Run], file: str) -> str:
    scenario = runs[0].scenario
    out = [printable(file) + (f" — {printable(scenario.title)}" if scenario.title else "")]
    if scenario.description:
        out.append(f"  {printable(scenario.description)}")
    names = [run.profile for run in runs]
    widths = [max([len(name), *(len(r.outcome.brief()) for r in run.steps)]) for name, run in zip(names, runs, strict=True)]
    descriptions = [ops.describe(step.op) for step in scenario.steps]
    first = max([len("step"), *(len(d) + 5 for d in descriptions)])
    out.append("")
    out.append(f"{'step':<{first}}  " + "  ".join(f"{n:<{w}}" for n, w in zip(names, widths, strict=True)))
    for i, description in enumerate(descriptions):
        cells = [run.steps[i].outcome.brief() for run in runs]
        row = "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
        out.append(f"{i + 1:>3}. {description:<{first - 5}}  {row}")
    for run in runs:
        state = run.final()
        out.append("")
        verdict = "" if not run.expectations else f"  [{'expectations hold' if run.passed else 'EXPECTATION FAILED'}]"
        out.append(f"== {run.profile}{verdict}")
        if state is None:
            continue
        out.extend("   " + line for line in notation.text(run.machine).splitlines())
        out.append("   " + notation.power_and_current(run.machine))
        out.extend("   " + line for line in views_text(state, notation.labels(run.machine)))
        for r in run.steps:
            for expect, problems in r.failures:
                if problems:
                    out.append(f"   {FAIL} step {r.index} expect (line {expect.line}): " + _problems(problems))
    return "\n".join(out)
