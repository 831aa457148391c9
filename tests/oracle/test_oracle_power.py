"""The default check reaches the situations the seed is about, catches every one-rule mutant on
every seed, and hands back a counterexample with no step to spare.

`benchmarks/oracle_power.py` prints the same numbers for every profile; these tests hold the
targets for the two profiles the seed is about (esx, libvirt-test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snaptree.model import get_profile, ops
from snaptree.oracle import CheckResult
from snaptree.oracle.cli import main
from snaptree.oracle.differences import Correspondence, state_differences
from snaptree.oracle.lockstep import Lockstep
from snaptree.oracle.shrink import Shrinker, kind_of
from snaptree.oracle.situations import SITUATIONS, Tally

from ..checks import check
from ..mutants import MUTANTS, NamesLowerCased

SEEDS = (1, 2, 3, 4, 5)
REPO = Path(__file__).resolve().parents[2]


def _check(driver: type, profile: str, seed: int, tmp_path: Path) -> CheckResult:
    return check(driver, profile, seed=seed, database=None, out=str(tmp_path), progress=None)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_mutant_is_caught_on_every_seed_with_a_one_minimal_counterexample(mutant: type, tmp_path: Path) -> None:
    for seed in SEEDS:
        result = _check(mutant, mutant.profiles[0], seed, tmp_path)
        assert not result.conforms, f"{mutant.name} passed the default check with --seed {seed}"
        divergence = result.divergence
        assert divergence is not None and result.stats.shrink is not None and result.stats.shrink.complete
        # 1-minimal: removing any single step loses the divergence (a later step naming an
        # unnamed snapshot follows its new clock name, as it does while shrinking)
        shrinker = Shrinker(divergence, lambda: Lockstep(mutant(mutant.profiles[0]), 8))
        steps = shrinker.steps
        for i in range(len(steps) - 1):
            again = shrinker.replay(steps[:i] + steps[i + 1:])
            assert again is None or kind_of(again) != kind_of(divergence), (
                f"{mutant.name}, seed {seed}: step {i + 1} of {len(steps)} can go")


@pytest.mark.parametrize("profile", ["esx", "libvirt-test"])
def test_default_check_builds_trees_and_reaches_every_situation(profile: str, tmp_path: Path) -> None:
    from snaptree.oracle.drivers.model import ModelDriver

    pooled = Tally()
    for seed in (1, 2):
        result = _check(ModelDriver, profile, seed, tmp_path)
        tally, stats = result.stats.situations, result.stats
        assert tally.histories == stats.examples == 100
        assert tally.share("snapshot") >= 0.9, "a history that takes no snapshot tests nothing"
        assert stats.refusal_share <= 0.2, dict(stats.errors)
        general = {s.key for s in SITUATIONS}
        reachable = [s for s in result.situations if s.key in general]
        assert len(reachable) >= 9
        pooled.histories += tally.histories
        pooled.reached.update(tally.reached)
    # over both seeds' 200 histories: one seed's 100 can fall under (libvirt-test, seed 1: a delete
    # where the snapshot and a child wrote the same block in 6%; seeds 1 to 10 average 21%)
    low = {s.key: pooled.share(s.key) for s in reachable if pooled.share(s.key) < 0.1}
    assert not low, f"situations reached in under 10% of the histories of seeds 1 and 2: {low}"


def test_situations_follow_the_profile() -> None:
    from snaptree.oracle.situations import applicable

    everything = frozenset({"write", "start", "pause", "resume", "shutdown", "suspend", "snapshot", "revert", "delete",
                            "delete-all"})
    esx = {s.key for s in applicable(get_profile("esx"), everything)}
    libvirt = {s.key for s in applicable(get_profile("libvirt-test"), everything)}
    qcow2 = {s.key for s in applicable(get_profile("qemu-img"), everything)}
    assert "memory-paused" not in esx and "memory-paused" in libvirt  # ESX has no pause
    assert "duplicate-lookup" in esx and "duplicate-lookup" not in libvirt  # libvirt refuses duplicates
    assert "delete-two-children" not in qcow2  # a flat table has no children
    assert {"delete[remove-children]", "revert-current", "delete-all"} <= esx


def test_a_driver_listing_another_name_diverges_even_on_replay(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "one.xml"
    scenario.write_text('<scenario profile="esx"><snapshot name="Base"/></scenario>')
    assert main(["replay", str(scenario), "--driver", f"tests.mutants:{NamesLowerCased.__name__}"]) == 1
    out = capsys.readouterr().out
    assert "the new snapshot's name: model Base, driver base" in out


def test_sibling_order_is_compared_where_the_profile_defines_it() -> None:
    def snap(sid: str, parent: str | None, children: list[str]) -> dict[str, object]:
        return {"name": sid, "id": sid, "parent": parent, "children": children, "memory": False,
                "memory_image": None, "state": "shutoff", "description": ""}

    model = {"current": "B", "power": "shutoff", "ram": None, "roots": ["A"],
             "snapshots": [snap("A", None, ["B", "C"]), snap("B", "A", []), snap("C", "A", [])]}
    driver = json.loads(json.dumps(model))
    driver["snapshots"][0]["children"] = ["C", "B"]
    observes = frozenset({"tree", "order"})
    diffs = state_differences(model, driver, observes, Correspondence(), sibling_order=True)
    assert [str(d) for d in diffs] == ["snapshot A: order of its children: model [B, C], driver [C, B]"]
    assert state_differences(model, driver, observes, Correspondence(), sibling_order=False) == []
    assert state_differences(model, driver, frozenset({"tree"}), Correspondence(), sibling_order=True) == []


def _check_json(tmp_path: Path, preamble: str) -> dict[str, object]:
    """`snaptree check` in a fresh interpreter, after ``preamble`` (imports), in an empty directory."""
    code = (f"{preamble}\nimport sys\nfrom snaptree.oracle.cli import main\n"
            "sys.exit(main(['check', '--driver', 'model', '--profile', 'esx', '--examples', '60', '--seed', '3', "
            "'--database', 'none', '--format', 'json']))")
    work = tmp_path / f"cwd{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(work.iterdir()), "nothing is written to the working directory with --database none"
    report = json.loads(done.stdout)
    return {key: report[key] for key in ("examples", "steps", "operations", "errors", "situations")}


def test_a_seed_gives_the_same_histories_whatever_is_imported(tmp_path: Path) -> None:
    plain = _check_json(tmp_path, "")
    crowded = _check_json(tmp_path, "import tests.mutants, tests.profiles.test_profiles, snaptree.oracle.drivers.libvirt, "
                                    "snaptree.oracle.drivers.qemu_hmp_qmp, snaptree.oracle.drivers.qcow2_chain")
    assert plain == crowded


def test_shrinking_never_walks_into_what_a_guard_leaves_out(tmp_path: Path) -> None:
    """A divergence must not shrink into a known finding the check left out: a candidate
    history that draws what a guard leaves out counts as not diverging."""
    from snaptree.oracle.findings import Guard

    from ..mutants import DeleteWithoutMerge

    result = _check(DeleteWithoutMerge, "esx", 1, tmp_path)
    assert result.divergence is not None
    unguarded = [s.op for s in result.divergence.history]
    assert any(isinstance(op, ops.Write) for op in unguarded), "the merge shows only through a written block"
    no_writes = Guard("no-writes", "every write", lambda m, op: isinstance(op, ops.Write))
    shrinker = Shrinker(result.divergence, lambda: Lockstep(DeleteWithoutMerge("esx"), 8), guards=[no_writes])
    assert shrinker.replay(shrinker.steps) is None  # the history itself holds a write: refused
