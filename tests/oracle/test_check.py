"""The oracle finds bugs and raises no false alarms.

Every mutant (the model with one rule broken, tests/mutants.py) must be caught by
`snaptree check` with its default settings and shrunk to a short scenario that replays;
the model checked against itself must conform under every profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snaptree.model import PROFILES
from snaptree.oracle.cli import main
from snaptree.oracle.differences import Correspondence, state_differences
from snaptree.oracle.drivers import load
from snaptree.oracle.drivers.model import ModelDriver

from ..checks import check
from ..mutants import MUTANTS

SHORT = 8  # a shrunk counterexample is at most this many steps


@pytest.mark.parametrize("profile", list(PROFILES))
def test_model_conforms_to_itself(profile: str, tmp_path: Path) -> None:
    result = check(ModelDriver, profile, examples=60, seed=7, database=None, out=str(tmp_path), progress=None)
    assert result.conforms, result.divergence
    assert result.stats.examples >= 60
    assert not list(tmp_path.iterdir()), "no counterexample is written when the driver conforms"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_mutant_is_caught_and_shrunk(mutant: type[ModelDriver], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"tests.mutants:{mutant.__name__}"
    code = main(["check", "--driver", spec, "--profile", mutant.profiles[0], "--database", "none", "--seed", "1",
                 "--out", str(tmp_path), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["conforms"], f"{mutant.name} was not caught: {report}"
    scenario = Path(report["scenario"])
    assert scenario.exists()
    # the scenario replays: the model passes its expectations, the mutant still diverges
    assert main(["run", str(scenario)]) == 0
    capsys.readouterr()
    assert main(["replay", str(scenario), "--driver", spec]) == 1
    replayed = capsys.readouterr().out
    assert "DIVERGES" in replayed
    steps = scenario.read_text().count("<expect")
    assert steps <= SHORT, f"{mutant.name}: counterexample not shrunk ({steps} steps)\n{scenario.read_text()}"


def test_replay_of_a_conforming_scenario_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "seed-delete-b-two-children.xml", "--driver", "model", "--profile", "vbox"]) == 0
    assert "SAME" in capsys.readouterr().out


def test_check_exit_codes_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "check.xml"
    assert main(["check", "--driver", "model", "--profile", "esx", "--examples", "10", "--seed", "1",
                 "--database", "none", "--junit", str(junit)]) == 0
    assert 'failures="0"' in junit.read_text()
    assert "CONFORMS" in capsys.readouterr().out
    assert main(["check", "--driver", "no-such-driver"]) == 2
    assert main(["check", "--driver", "model", "--profile", "nope"]) == 2
    assert main(["check", "--driver", "json:loads"]) == 2  # not a Driver class
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err


def test_examples_database_replays_a_failure_first(tmp_path: Path) -> None:
    from ..mutants import IdsReused

    db = str(tmp_path / "db")
    first = check(IdsReused, "esx", examples=200, database=db, out=str(tmp_path), progress=None)
    assert not first.conforms
    again = check(IdsReused, "esx", examples=200, database=db, out=str(tmp_path), progress=None)
    assert not again.conforms
    assert again.stats.examples < first.stats.examples, "the saved failure should be tried first"


def test_correspondence_is_one_to_one() -> None:
    match = Correspondence()
    assert match.same_image("ram1", "c100")
    assert match.same_image("ram1", "c100")
    assert not match.same_image("ram1", "c200"), "one model image cannot be two driver images"
    assert not match.same_image("ram2", "c100"), "two model images cannot be one driver image"
    assert match.same_image(None, None) and not match.same_image("ram3", None)


def test_compare_reports_views_of_every_snapshot() -> None:
    snap: dict[str, object] = {"name": "A", "id": "1", "parent": None, "children": [], "memory": False, "memory_image": None,
            "state": "shutoff", "description": ""}
    model = {"current": "1", "power": "shutoff", "ram": None, "snapshots": [snap],
             "views": {"current": {}, "snapshots": {"1": {"0": "a"}}}}
    driver = json.loads(json.dumps(model))
    driver["views"]["snapshots"]["1"] = {"0": "b"}
    diffs = state_differences(model, driver, frozenset({"views"}), Correspondence())
    assert [str(d) for d in diffs] == ["view of A, block 0: model a, driver b"]
    assert state_differences(model, driver, frozenset({"tree", "current"}), Correspondence()) == []


def test_third_party_driver_by_module_and_class() -> None:
    assert load("snaptree.oracle.drivers.model:ModelDriver") is ModelDriver


def test_a_per_disk_bug_shrinks_to_a_scenario_of_its_vm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The counterexample of a bug that needs a second disk declares the VM's disks, so that it
    replays on that VM (and the model passes it)."""
    from ..mutants import DeleteMergesFirstDiskOnly

    result = check(DeleteMergesFirstDiskOnly, "esx", seed=1, database=None, out=str(tmp_path), progress=None)
    assert not result.conforms and result.divergence is not None
    assert len(result.divergence.disks) > 1
    text = Path(str(result.scenario_path)).read_text()
    assert text.count("<disk name=") == len(result.divergence.disks) and 'disk="vd' in text
    assert main(["replay", str(result.scenario_path), "--driver", "model"]) == 0
    assert main(["replay", str(result.scenario_path), "--driver", "tests.mutants:DeleteMergesFirstDiskOnly"]) == 1
    capsys.readouterr()


def test_disks_puts_every_history_on_one_vm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--driver", "model", "--profile", "qemu-qmp", "--disks", "vda,vdb:raw", "--examples", "20",
                 "--seed", "3", "--database", "none", "--out", str(tmp_path), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    reached = {s["situation"]: s["histories"] for s in report["situations"]}
    assert reached["disk-raw-refused"] > 0 and reached["disk-left-out"] > 0
    # a VM the driver does not build, or the profile cannot have, is refused before anything runs
    assert main(["check", "--driver", "qemu-img", "--disks", "vda,vdb"]) == 2
    assert main(["check", "--driver", "model", "--profile", "libvirt-qemu", "--disks", "vda,nvram:nvram"]) == 2
    err = capsys.readouterr().err
    assert "a VM of 2 disks is not one" in err and "no qcow2 NVRAM" in err
