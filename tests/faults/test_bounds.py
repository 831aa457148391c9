"""Bounded by default: what a user types cannot make a run outgrow the memory (README, "Limits":
2.5 GB, checked here under an address-space limit of that size), and a signal ends every
command -- explore, diff, a check, the cover plan, on workers or not -- with 128 + the signal
and one line, after a check's summary of what it ran so far."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..fault_kit import SNAPTREE, one_line

MEMORY_BOUND = int(2.5 * 1024**3)  # README, "Limits"
MESSAGES = {signal.SIGINT: "snaptree: interrupted", signal.SIGTERM: "snaptree: terminated by SIGTERM"}


def _start_as_a_terminal_would() -> None:
    """SIGINT and SIGTERM at their defaults: a test run in the background hands its children
    SIGINT ignored, which snaptree leaves ignored."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _bounded() -> None:
    _start_as_a_terminal_would()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def snaptree(*argv: str, cwd: Path, limit_memory: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(SNAPTREE), *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
                            preexec_fn=_bounded if limit_memory else _start_as_a_terminal_would)


def finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"did not end within {timeout:.0f} s: {err.decode(errors='replace')[-2000:]}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# -- memory ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("check", "--driver", "model", "--plan", "cover", "--depth", "9"),  # grew to 12 GB in 10 minutes
    ("explore", "--profile", "esx", "--depth", "9"),
    ("diff", "esx", "vbox", "--depth", "9"),  # the most memory per state: two machines and a history
], ids=lambda a: " ".join(a[:2]))
def test_deep_graphs_are_refused_within_the_memory_bound(argv: tuple[str, ...], tmp_path: Path) -> None:
    """Each explores as deep as the limits allow (depth 7 or 5: about 1 GB), then refuses the
    next depth with one line: no MemoryError under the bound."""
    status, out, err = finish(snaptree(*argv, cwd=tmp_path, limit_memory=True), timeout=400)
    line = one_line(err)
    assert status == 2, err
    assert "would take" in line and "transitions in all, over the limit of 1,000,000: --depth" in line
    assert out == ""


def test_a_check_at_the_size_limits_stays_within_the_memory_bound(tmp_path: Path) -> None:
    """The largest disk, the longest histories, on workers: the run ends as any run does."""
    status, out, err = finish(snaptree("check", "--driver", "model", "--examples", "40", "--steps", "200",
                                       "--blocks", "4096", "--workers", "2", "--seed", "1", "--database", "none",
                                       "--format", "json", "--out", str(tmp_path / "out"), cwd=tmp_path,
                                       limit_memory=True), timeout=400)
    assert status == 0, err
    assert json.loads(out)["examples"] == 40


def test_typed_sizes_that_grew_without_end_are_refused_at_once(tmp_path: Path) -> None:
    """Each of these ran for minutes, or until the memory ran out, before it had a limit."""
    for argv in (("check", "--driver", "model", "--blocks", "99999999999999999999"),
                 ("check", "--driver", "model", "--examples", "1", "--steps", "1600"),
                 ("check", "--driver", "model", "--examples", "2000", "--workers", "1000"),
                 ("explore", "--profile", "esx", "--depth", "3", "--blocks", "100")):
        started = time.monotonic()
        status, out, err = finish(snaptree(*argv, cwd=tmp_path, limit_memory=True), timeout=60)
        line = one_line(err)
        assert status == 2 and ("over the limit" in line or "at most" in line), (argv, err)
        assert time.monotonic() - started < 20, argv


# -- signals ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_signal_prints_what_the_check_ran_so_far(signum: signal.Signals, workers: int, tmp_path: Path) -> None:
    proc = snaptree("check", "--driver", "model", "--examples", "10000", "--workers", str(workers), "--seed", "1",
                    "--database", "none", "--format", "json", "--out", str(tmp_path / "out"), cwd=tmp_path)
    time.sleep(5)
    proc.send_signal(signum)
    status, out, err = finish(proc, timeout=60)
    assert (status, one_line(err)) == (128 + signum, MESSAGES[signum])
    report = json.loads(out)
    assert report["verdict"] == "interrupted" and report["interrupted"] == MESSAGES[signum].removeprefix("snaptree: ")
    assert 0 < report["examples"] < 10_000 and report["steps"] >= report["examples"]
    assert report["graph_coverage"]["taken"] > 0
    if workers > 1:
        assert report["workers"] == 2 and sum(s["examples"] for s in report["shards"]) == report["examples"]
    assert not (tmp_path / "out").exists(), "a signal is no divergence: no counterexample"


def test_a_signal_prints_the_text_summary_so_far(tmp_path: Path) -> None:
    proc = snaptree("check", "--driver", "model", "--examples", "10000", "--seed", "1", "--database", "none",
                    "--out", str(tmp_path / "out"), cwd=tmp_path)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    status, out, err = finish(proc, timeout=60)
    assert status == 143 and err.splitlines()[-1] == MESSAGES[signal.SIGTERM]
    assert "situations reached" in out and "random histories took" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("INTERRUPTED (terminated by SIGTERM) after ") and last.endswith("of 10,000 examples: no verdict")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_ends_the_cover_plan_with_what_it_covered(signum: signal.Signals, tmp_path: Path) -> None:
    """Depth 4 of the model on 8 blocks: about 40,000 histories, 5 s or more once planned."""
    proc = snaptree("check", "--driver", "model", "--plan", "cover", "--depth", "4", "--out", str(tmp_path / "out"),
                    cwd=tmp_path)
    assert proc.stderr is not None
    planned = proc.stderr.readline().decode()  # the estimate before the run: the plan's size
    assert planned.startswith("plan cover: ") and planned.rstrip().endswith("steps to run"), planned
    histories = int(planned.split(": ")[2].split(" histories")[0].replace(",", ""))
    time.sleep(2)
    proc.send_signal(signum)
    status, out, err = finish(proc, timeout=60)
    assert (status, err.splitlines()[-1]) == (128 + signum, MESSAGES[signum])
    covered, ran = out.strip().splitlines()
    taken, of = covered.removeprefix("plan cover: ").split(" transitions")[0].split(" of ")
    assert 0 < int(taken.replace(",", "")) < int(of.replace(",", ""))
    assert ran.startswith(f"INTERRUPTED ({MESSAGES[signum].removeprefix('snaptree: ')}) after ")
    assert ran.endswith(f" of {histories:,} histories: no verdict")


@pytest.mark.parametrize("argv", [("explore", "--profile", "esx", "--depth", "7"), ("diff", "esx", "vbox", "--depth", "7"),
                                  ("check", "--driver", "model", "--plan", "cover", "--depth", "5")],
                         ids=lambda a: " ".join(a[:2]))
def test_sigterm_ends_a_deep_exploration_at_once(argv: tuple[str, ...], tmp_path: Path) -> None:
    """After seconds of exploring (hundreds of MB of states), the signal ends it in seconds: the
    interpreter's last garbage collection of every state is skipped (it took minutes at 14 GB)."""
    proc = snaptree(*argv, cwd=tmp_path)
    time.sleep(12)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    status, out, err = finish(proc, timeout=60)
    assert (status, one_line(err)) == (143, MESSAGES[signal.SIGTERM])
    assert time.monotonic() - sent < 10
