"""A check's reports (oracle/checker/reports.py) and its counterexample file
(oracle/checker/counterexample.py), from a real small check of a mutant that deletes without
merging (the ``mutant_check`` fixture)."""

from __future__ import annotations

import dataclasses
import json
import re
import types
from pathlib import Path

import pytest
from lxml import etree

from snaptree.model.run import run
from snaptree.oracle import CheckResult, Stats
from snaptree.oracle.checker import counterexample
from snaptree.oracle.checker.replay import replay
from snaptree.oracle.checker.reports import divergence_report, junit_xml, summary_json, summary_text
from snaptree.oracle.differences import Difference
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.lockstep import Divergence
from snaptree.oracle.scenario_format import parse
from snaptree.oracle.shrink import kind_of

from ..mutants import DeleteWithoutMerge


def diverged(result: CheckResult) -> Divergence:
    assert result.divergence is not None, "the mutant was not caught"
    return result.divergence


def counted(count: int, noun: str) -> str:
    """A count as the reports write it, with its noun in the singular or the plural."""
    return rf"\b{count:,} {noun}s?\b"


def test_the_summary_names_examples_steps_situations_and_the_shrink(mutant_check: CheckResult) -> None:
    s = mutant_check.stats
    text = summary_text(mutant_check)
    assert re.search(rf"{counted(s.examples, 'example')}, {counted(s.steps, 'step')} in ", text), text
    assert mutant_check.situations and all(x.label in text for x in mutant_check.situations)
    assert s.shrink is not None
    shrink_line = (rf"shrunk from {s.shrink.steps_before} to {counted(s.shrink.steps_after, 'step')} "
                   rf"in {counted(s.shrink.replays, 'replay')}")
    assert re.search(shrink_line, text), text
    assert "budget ran out" not in text
    ran_out = dataclasses.replace(s, shrink=dataclasses.replace(s.shrink, complete=False))
    assert re.search(shrink_line + r" \(budget ran out\)", summary_text(dataclasses.replace(mutant_check, stats=ran_out)))


def test_a_conforming_summary_has_no_shrink_line() -> None:
    assert "shrunk" not in summary_text(CheckResult("model", "esx", Stats()))


def test_the_json_summary_round_trips_and_counts_as_the_stats(mutant_check: CheckResult) -> None:
    s = mutant_check.stats
    report = summary_json(mutant_check)
    assert json.loads(json.dumps(report)) == report
    assert (report["examples"], report["steps"]) == (s.examples, s.steps)
    assert (report["operations"], report["errors"]) == (dict(s.operations), dict(s.errors))
    assert sum(report["operations"].values()) == s.steps, "each step counted once, by its operation"
    assert s.shrink is not None
    assert report["shrink"] == {"replays": s.shrink.replays, "steps_before": s.shrink.steps_before,
                                "steps_after": s.shrink.steps_after, "complete": s.shrink.complete}
    assert report["conforms"] is False and report["scenario"] == str(mutant_check.scenario_path)
    reached = {x["situation"]: x["histories"] for x in report["situations"]}
    assert reached == {x.key: s.situations.reached[x.key] for x in mutant_check.situations}
    assert reached["snapshot"] > 0


def test_junit_counts_tests_and_failures_and_carries_the_side_by_side_report(mutant_check: CheckResult) -> None:
    divergence = diverged(mutant_check)
    root = etree.fromstring(junit_xml([mutant_check, CheckResult("model", "esx", Stats())]).encode())
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuite", "2", "1")
    failing, passing = root.findall("testcase")
    assert passing.find("failure") is None
    failure = failing.find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message") == str(divergence.differences[0])
    assert divergence_report(divergence, mutant_check.driver) in failure.text
    assert f"scenario: {mutant_check.scenario_path}" in failure.text


def test_junit_keeps_markup_in_a_difference_exact(outcome_divergence: Divergence) -> None:
    odd = Difference("snapshot <a & \"b\">: name", "<a & \"b\">", "it's")
    result = CheckResult("model", "esx", Stats(), divergence=Divergence(outcome_divergence.history, [odd], None))
    failure = etree.fromstring(junit_xml([result]).encode()).find("testcase/failure")
    assert failure is not None and failure.get("message") == str(odd)


def test_the_report_marks_the_step_whose_outcomes_differ(outcome_divergence: Divergence) -> None:
    report = divergence_report(outcome_divergence, "refuses-deletes")
    marked = [line for line in report.splitlines() if "<-- differs" in line]
    assert len(marked) == 1 and re.match(r"\s*3\. delete A\s+ok\s+unsupported\b", marked[0]), report
    assert "driver's message: this system deletes nothing" in report
    assert f"first difference after step 3: {outcome_divergence.differences[0]}" in report


def test_the_counterexample_parses_passes_on_the_model_and_replays_on_the_mutant(mutant_check: CheckResult) -> None:
    divergence = diverged(mutant_check)
    assert mutant_check.scenario_path is not None
    scenario = parse(mutant_check.scenario_path.read_bytes())
    assert (scenario.profile, [s.op for s in scenario.steps]) == ("esx", [s.op for s in divergence.history])
    assert run(scenario).passed, "the model meets its own expectations"
    _, again = replay(DeleteWithoutMerge("esx"), scenario)
    assert again is not None and len(again.history) == len(divergence.history)
    assert kind_of(again) == kind_of(divergence)
    assert replay(ModelDriver("esx"), scenario)[1] is None, "only the mutant diverges on it"


def test_counterexamples_written_in_the_same_second_get_distinct_names(
        mutant_check: CheckResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counterexample, "time", types.SimpleNamespace(strftime=lambda fmt: "20100326-120000"))
    paths = [counterexample.write_counterexample(diverged(mutant_check), "tests.mutants:DeleteWithoutMerge", "esx", 8,
                                                 str(tmp_path), seed=2) for _ in range(3)]
    assert all(p is not None and p.parent == tmp_path for p in paths)
    first, second, third = (p.name for p in paths if p is not None)
    assert len({first, second, third}) == 3 and ":" not in first
    assert (second, third) == (first.replace(".xml", "-2.xml"), first.replace(".xml", "-3.xml"))
    assert len({p.read_bytes() for p in paths if p is not None}) == 1


def test_a_counterexample_that_cannot_be_written_goes_to_stderr(mutant_check: CheckResult, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert counterexample.write_counterexample(diverged(mutant_check), "driver", "esx", 8, str(blocked), None) is None
    err = capsys.readouterr().err
    assert "cannot write the counterexample" in err
    assert parse(err.split("here it is:\n", 1)[1].encode()).steps, "the whole scenario, lost nowhere"
