"""Every size a user types has a limit (README, "Limits"), an option that would do nothing in
its combination is refused, `--plan cover` writes JUnit and JSON, and `--examples N` runs N
examples.  Each refusal is one line and exit 2, before anything runs (oracle/checker/limits.py,
model/analysis/explore.py, oracle/cli/check_commands.py)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from snaptree.model.analysis import explore as explore_module
from snaptree.oracle.checker import hypothesis_adapter, limits

from .test_cli import assert_one_line_error, run_cli


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    line = assert_one_line_error(code, err, out)
    assert out == "", "refused before anything ran"
    return line


# -- options that would do nothing -------------------------------------------------------------

def test_depth_without_the_cover_plan_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = refused(capsys, "check", "--driver", "model", "--depth", "4", "--out", str(tmp_path / "out"))
    assert "--depth does nothing without --plan cover" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [("--seed", "1"), ("--examples", "5"), ("--steps", "5"), ("--database", "none"),
                                    ("--workers", "2"), ("--shards", "2"), ("--shard", "1/2"), ("--no-guards",)],
                         ids=lambda o: o[0])
def test_random_only_options_are_refused_with_the_cover_plan(option: tuple[str, ...], capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    line = refused(capsys, "check", "--driver", "model", "--plan", "cover", "--depth", "1", *option,
                   "--out", str(tmp_path / "out"))
    assert f"{option[0]} does nothing with --plan cover" in line


def test_more_workers_than_shards_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, "check", "--driver", "model", "--examples", "8", "--shards", "2", "--workers", "3")
    assert "--workers 3 with --shards 2: 1 worker would have no shard to run" in line


def test_the_cover_plan_writes_junit_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junit = tmp_path / "cover.xml"
    code, out, err = run_cli(capsys, "check", "--driver", "model", "--profile", "vbox", "--plan", "cover", "--depth", "2",
                             "--format", "json", "--junit", str(junit), "--out", str(tmp_path / "out"))
    assert code == 0, err
    report = json.loads(out)
    plan = report["plan"]
    assert report["verdict"] == "conforms" and plan["depth"] == 2
    assert plan["covered"] == plan["transitions"] > 0
    assert report["examples"] == plan["histories"] and report["steps"] == plan["steps"]
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None and case.find("failure") is None
    assert f"plan cover: {plan['histories']} examples" in case.get("name", "")


def test_a_cover_plan_divergence_is_a_junit_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junit = tmp_path / "cover.xml"
    code, out, err = run_cli(capsys, "check", "--driver", "tests.mutants:IdsReused", "--profile", "esx", "--plan", "cover",
                             "--depth", "3", "--format", "json", "--junit", str(junit), "--out", str(tmp_path / "out"))
    assert code == 1, err
    report = json.loads(out)
    assert report["verdict"] == "diverges" and report["scenario"] and Path(report["scenario"]).exists()
    assert ET.parse(junit).getroot().find("testcase/failure") is not None


# -- limits ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, says", [
    (("--steps", str(limits.MAX_STEPS + 1)), f"at most {limits.MAX_STEPS}"),
    (("--blocks", "99999999999999999999"), f"at most {limits.MAX_BLOCKS:,}"),
    (("--examples", "1000", "--workers", str(limits.max_workers() + 1)), f"at most {limits.max_workers()} here"),
    (("--examples", "2000", "--shards", str(limits.MAX_SHARDS + 1)), f"at most {limits.MAX_SHARDS:,}"),
    (("--examples", str(limits.MAX_SHARD_STEPS // 20 + 1)), "split them into --shards 2 or more"),
    (("--examples", str(limits.MAX_RUN_STEPS // 20 + 1), "--shards", "20"), f"over the limit of {limits.MAX_RUN_STEPS:,}"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else None)
def test_check_sizes_over_their_limit_are_refused(argv: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    line = refused(capsys, "check", "--driver", "model", *argv, "--database", "none", "--out", str(tmp_path / "out"))
    assert says in line


def test_a_check_at_its_limits_is_taken(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "check", "--driver", "model", "--examples", "1", "--steps", str(limits.MAX_STEPS),
                             "--blocks", str(limits.MAX_BLOCKS), "--seed", "1", "--database", "none", "--format", "json",
                             "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert json.loads(out)["examples"] == 1


@pytest.mark.parametrize("argv, says", [
    (("explore", "--profile", "esx", "--blocks", "99999999999999999999"), "operations in the alphabet, over the limit"),
    (("explore", "--profile", "esx", "--names", ",".join(f"n{i}" for i in range(1001))), "over the limit of 1,000"),
    (("explore", "--profile", "esx", "--depth", "3", "--blocks", "100"), "depth 3 would take"),
    (("diff", "esx", "vbox", "--blocks", "600"), "operations in the alphabet"),
    (("check", "--driver", "model", "--plan", "cover", "--blocks", "600"), "operations in the alphabet"),
], ids=lambda a: " ".join(a)[:60] if isinstance(a, tuple) else None)
def test_state_graph_sizes_over_their_limit_are_refused(argv: tuple[str, ...], says: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert says in refused(capsys, *argv)


def test_a_depth_over_the_transitions_limit_is_refused_before_it_starts(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """esx takes 840 transitions to depth 3, thousands more at depth 4: with the limit lowered to
    1,000, depth 4 is refused naming the depth that fits; the states limit likewise."""
    monkeypatch.setattr(explore_module, "MAX_TRANSITIONS", 1_000)
    line = refused(capsys, "explore", "--profile", "esx", "--depth", "4")
    assert "depth 4 would take" in line and "over the limit of 1,000: --depth 3 fits" in line
    monkeypatch.setattr(explore_module, "MAX_TRANSITIONS", 1_000_000)
    monkeypatch.setattr(explore_module, "MAX_STATES", 100)
    assert "more than 100 pairs of states by depth" in refused(capsys, "diff", "esx", "vbox", "--depth", "5")
    assert "more than 100 states by depth" in refused(capsys, "explore", "--profile", "esx", "--depth", "5")


def test_a_deep_diff_that_saturates_ends(capsys: pytest.CaptureFixture[str]) -> None:
    """Once every pair is seen or diverged, deeper adds nothing: a depth of 10^8 ends at once (it
    went on through every empty depth, about 20 s)."""
    started = time.monotonic()
    code, out, err = run_cli(capsys, "diff", "esx", "vbox", "--depth", "100000000", "--ops", "write",
                             "--blocks", "1", "--values", "a")
    assert code == 0, err
    assert "0 groups" in out and time.monotonic() - started < 5


# -- --examples N runs N examples ---------------------------------------------------------------

@pytest.mark.parametrize("examples, workers", [(10, 1), (50, 1), (100, 1), (37, 2)])
def test_examples_n_runs_n_examples(examples: int, workers: int, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    """Hypothesis' max_examples counts only valid examples: --examples 50 ran 56 (6 cut short by
    its choice buffer), 100 ran 116."""
    code, out, err = run_cli(capsys, "check", "--driver", "model", "--examples", str(examples), "--seed", "1",
                             "--workers", str(workers), "--database", "none", "--format", "json",
                             "--out", str(tmp_path / "out"))
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == examples and report["stopped"] is None
    assert sum(s["examples"] for s in report.get("shards", [report])) == examples


def test_the_same_seed_gives_the_same_histories(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runs = []
    for _ in range(2):
        code, out, err = run_cli(capsys, "check", "--driver", "model", "--profile", "vbox", "--examples", "30", "--seed",
                                 "7", "--database", "none", "--format", "json", "--out", str(tmp_path / "out"))
        assert code == 0, err
        runs.append({k: v for k, v in json.loads(out).items() if k != "seconds"})
    assert runs[0] == runs[1] and runs[0]["examples"] == 30


class Tiny(RuleBasedStateMachine):
    """Two histories in all (a start of False or True, then one step): Hypothesis runs out of them."""

    runs: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__()
        self.runs.append(1)

    @initialize(x=st.booleans())
    def start(self, x: bool) -> None:
        pass

    @rule()
    def step(self) -> None:
        pass


def test_why_hypothesis_ended_a_run_early_is_said() -> None:
    Tiny.runs.clear()
    why = hypothesis_adapter.run_machine(Tiny, settings(max_examples=100, stateful_step_count=1, database=None),
                                         min_steps=0, enough=lambda: len(Tiny.runs) >= 100)
    assert (len(Tiny.runs), why) == (2, "nothing left to do")


def test_enough_ends_the_run_before_its_next_example() -> None:
    Tiny.runs.clear()
    why = hypothesis_adapter.run_machine(Tiny, settings(max_examples=100, stateful_step_count=3, database=None),
                                         min_steps=0, enough=lambda: len(Tiny.runs) >= 2)
    assert (len(Tiny.runs), why) == (2, "")


def test_the_cli_says_why_a_run_ran_fewer_examples(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    """When Hypothesis ends a run before --examples without a divergence, the summary says so."""
    real = hypothesis_adapter.run_machine

    def two_then_done(factory: Any, config: settings, min_steps: int, enough: Callable[[], bool]) -> str:
        asked = []  # enough() is asked before each example

        def after_two() -> bool:
            asked.append(1)
            return len(asked) > 2 or enough()

        real(factory, config, min_steps, enough=after_two)
        return "nothing left to do"

    monkeypatch.setattr(hypothesis_adapter, "run_machine", two_then_done)
    code, out, err = run_cli(capsys, "check", "--driver", "model", "--examples", "10", "--seed", "1",
                             "--database", "none", "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "Hypothesis ended the run after 2 of 10 examples: nothing left to do" in out
