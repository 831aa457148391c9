"""Conformance runs at scale: shards (`--shard K/N`, the pytest plugin's items), workers on one
machine (`--workers N`, `pytest -n N`), and a Redis example database shared by runners in
separate directories, as on separate machines.  The Redis tests start a real redis-server
(Debian's `redis-server`; `bash .ci/setup --real`): without it they FAIL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from snaptree.oracle.shards import ShardError, parse_shard, shard_examples, shard_seed

from ..fault_kit import SNAPTREE

ROOT = Path(__file__).resolve().parents[2]
MUTANT = ("--driver", "tests.mutants:DeleteWithoutMerge", "--profile", "esx")
MODEL = ("--driver", "model", "--profile", "esx")
RARER = ("--driver", "tests.mutants:MergeIntoFirstChildOnly", "--profile", "esx")  # found after some 20 examples


def snaptree(cwd: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # tests.mutants importable from any directory
    return subprocess.run([str(SNAPTREE), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def plugin(cwd: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """pytest in ``cwd`` (no tests of its own there): only what the plugin collects."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def report(done: subprocess.CompletedProcess[str]) -> dict:
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


# -- shards ---------------------------------------------------------------------------------------

def test_shards_split_the_examples_evenly() -> None:
    for examples in (1, 7, 400, 401):
        for n in range(1, min(examples, 9) + 1):
            shares = [shard_examples(examples, k, n) for k in range(1, n + 1)]
            assert sum(shares) == examples and max(shares) - min(shares) <= 1


def test_shard_seeds_are_repeatable_and_distinct() -> None:
    assert shard_seed(1, 1, 1) == 1 and shard_seed(None, 3, 8) is None
    seeds = [shard_seed(1, k, 8) for k in range(1, 9)]
    assert seeds == [shard_seed(1, k, 8) for k in range(1, 9)] and len(set(seeds)) == 8
    assert shard_seed(2, 1, 8) not in seeds


@pytest.mark.parametrize("text", ["3", "0/2", "3/2", "a/b", "1/0"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ShardError):
        parse_shard(text)


def test_workers_add_up_to_their_shards_run_one_by_one(tmp_path: Path) -> None:
    """--shards 3 --workers 2 does what --shard 1/3, 2/3, 3/3 do, one after another: the same
    histories (the same steps), one summary, one JUnit file with a case per shard."""
    common = ("check", *MODEL, "--examples", "31", "--seed", "7", "--database", "none", "--format", "json")
    merged = report(snaptree(tmp_path, *common, "--shards", "3", "--workers", "2", "--junit", "j.xml"))
    alone = [report(snaptree(tmp_path, *common, "--shard", f"{k}/3")) for k in (1, 2, 3)]
    assert [s["steps"] for s in merged["shards"]] == [a["steps"] for a in alone]
    assert merged["steps"] == sum(a["steps"] for a in alone)
    assert merged["examples"] == sum(a["examples"] for a in alone) >= 31
    assert merged["operations"] == {op: sum(a["operations"].get(op, 0) for a in alone) for op in merged["operations"]}
    assert merged["conforms"] and merged["workers"] == 2 and merged["graph_coverage"]["taken"] > 0
    assert sum(s["histories"] for s in merged["situations"]) == sum(
        s["histories"] for a in alone for s in a["situations"])
    cases = ET.parse(tmp_path / "j.xml").getroot().findall("testcase")
    assert [c.get("name").split(":")[0] for c in cases] == ["esx shard 1/3", "esx shard 2/3", "esx shard 3/3"]


def test_workers_report_the_first_divergence_with_its_scenario(tmp_path: Path) -> None:
    done = snaptree(tmp_path, "check", *MUTANT, "--examples", "40", "--seed", "1", "--database", "none", "--workers", "2",
                    "--out", "out")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DIVERGES: driver mutant-delete-without-merge" in done.stdout
    scenario = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("scenario: "))
    assert (tmp_path / scenario).exists() and Path(scenario).parent.name == "out"
    replay = snaptree(tmp_path, "replay", scenario, "--driver", MUTANT[1])
    assert replay.returncode == 1 and "DIVERGES" in replay.stdout


@pytest.mark.parametrize("argv, message", [
    (("--shard", "1/2", "--workers", "2"), "--shard K/N runs one shard here"),
    (("--shard", "5/4"), "shard 5/4: K must be from 1 to N"),
    (("--shards", "9", "--examples", "4"), "--examples 4 is fewer than the shards"),
])
def test_bad_shard_options_are_one_line(argv: tuple[str, ...], message: str, tmp_path: Path) -> None:
    done = snaptree(tmp_path, "check", *MODEL, "--database", "none", *argv)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- the pytest plugin ------------------------------------------------------------------------------

def test_plugin_runs_one_item_per_shard_on_xdist_workers(tmp_path: Path) -> None:
    done = plugin(tmp_path, "--snaptree-driver", "model", "--snaptree-profile", "esx", "--snaptree-examples", "40",
                  "--snaptree-shards", "4", "--snaptree-seed", "1", "--snaptree-database", "none", "-n", "2",
                  "--junitxml", "j.xml", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    assert sorted(c.get("name") for c in cases) == [f"snaptree[model/esx shard {k}/4]" for k in (1, 2, 3, 4)]


def test_plugin_shards_are_the_cli_shards(tmp_path: Path) -> None:
    """The same seed derivation: the plugin's shard 2/3 takes the histories `--shard 2/3` takes."""
    done = plugin(tmp_path, "--snaptree-driver", "model", "--snaptree-profile", "esx", "--snaptree-examples", "31",
                  "--snaptree-shard", "2/3", "--snaptree-seed", "7", "--snaptree-database", "none",
                  "--junitxml", "j.xml", "-v")
    assert done.returncode == 0 and "snaptree[model/esx shard 2/3] PASSED" in done.stdout, done.stdout
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "j.xml").getroot().iter("property")}
    alone = report(snaptree(tmp_path, "check", *MODEL, "--examples", "31", "--seed", "7", "--database", "none",
                            "--format", "json", "--shard", "2/3"))
    assert int(props["steps"]) == alone["steps"]


def test_plugin_failure_shows_the_history_and_the_scenario(tmp_path: Path) -> None:
    done = plugin(tmp_path, "--snaptree-driver", MUTANT[1], "--snaptree-profile", "esx", "--snaptree-examples", "20",
                  "--snaptree-shards", "2", "--snaptree-seed", "1", "--snaptree-database", "none", "-x")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DIVERGES: driver mutant-delete-without-merge and profile esx part ways in shard 1/2" in done.stdout
    assert "<-- differs" in done.stdout or "first difference after step" in done.stdout
    assert "scenario: snaptree-out/counterexample-" in done.stdout
    assert "1 failed" in done.stdout and "passed" not in done.stdout  # -x: shard 2 never ran


def test_without_the_driver_option_the_plugin_adds_nothing(tmp_path: Path) -> None:
    done = plugin(tmp_path, "-q")
    assert done.returncode == 5 and "no tests ran" in done.stdout, done.stdout


def test_plugin_bad_input_is_a_usage_error(tmp_path: Path) -> None:
    done = plugin(tmp_path, "--snaptree-driver", "model", "--snaptree-shard", "3/2")
    assert done.returncode == 4 and "shard 3/2: K must be from 1 to N" in done.stderr, done.stderr


def test_plugin_missing_component_fails(tmp_path: Path) -> None:
    done = plugin(tmp_path, "--snaptree-driver", "libvirt", "--snaptree-option", "uri=qemu:///embed?root=relative",
                  "--snaptree-examples", "1")
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout + done.stderr


# -- Redis: one example database for runners in separate places -------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("the real component is missing: redis-server (apt-get install redis-server, or run "
                    "`bash .ci/setup --real`)")
    data = tmp_path / "redis"
    data.mkdir()
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def runner(tmp_path: Path, name: str) -> Path:
    """A fresh working directory: nothing local (no .snaptree/examples) to replay from."""
    cwd = tmp_path / name
    cwd.mkdir()
    return cwd


def test_a_counterexample_one_runner_finds_is_replayed_first_by_another(redis_url: str, tmp_path: Path) -> None:
    common = ("check", *RARER, "--examples", "300", "--seed", "3", "--format", "json")
    # without the database, how far shard 2 of 2 gets before it diverges
    own = report(snaptree(runner(tmp_path, "alone"), *common, "--database", "none", "--shard", "2/2"))
    first = report(snaptree(runner(tmp_path, "first"), *common, "--database", redis_url, "--shard", "1/2"))
    second = report(snaptree(runner(tmp_path, "second"), *common, "--database", redis_url, "--shard", "2/2"))
    assert not own["conforms"] and not first["conforms"] and not second["conforms"]
    assert own["examples"] > 5, "pick a seed where shard 2 does not diverge at once on its own"
    # the first runner's counterexample, replayed first: the one example (Hypothesis' final replay
    # of a failure to report it is no new one)
    assert second["examples"] == 1, second["examples"]
    assert not (tmp_path / "second" / ".snaptree").exists()
    # the plugin uses the same database
    done = plugin(runner(tmp_path, "third"), "--snaptree-driver", RARER[1], "--snaptree-profile", "esx",
                  "--snaptree-examples", "300", "--snaptree-shard", "2/2", "--snaptree-seed", "3",
                  "--snaptree-database", redis_url, "--junitxml", "j.xml")
    assert done.returncode == 1, done.stdout + done.stderr
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "third" / "j.xml").getroot().iter("property")}
    assert props["examples"] == "1"


def test_a_redis_server_that_is_down_is_one_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = snaptree(tmp_path, "check", *MODEL, "--database", url)
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith(f"snaptree: --database {url}: the Redis server cannot"), line
    done = plugin(tmp_path, "--snaptree-driver", "model", "--snaptree-database", url)
    assert done.returncode == 4 and "the Redis server cannot be used" in done.stderr, done.stderr


def test_a_redis_server_that_refuses_is_one_line(redis_url: str, tmp_path: Path) -> None:
    done = snaptree(tmp_path, "check", *MODEL, "--database", redis_url.replace("/0", "/99"))  # no such DB
    assert done.returncode == 2 and "the Redis server cannot be used" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
