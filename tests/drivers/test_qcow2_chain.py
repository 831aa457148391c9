"""The qcow2-chain driver: the seed's merge semantics on real qcow2 overlay files, checked
against the esx and vbox profiles.  Needs qemu-utils (`bash .ci/setup --real`); without it
these tests fail, they do not skip."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.oracle.drivers.qcow2_chain import Qcow2ChainDriver, backing_file
from snaptree.oracle.drivers.qemu_common import call
from snaptree.oracle.generate import AWKWARD_NAMES
from snaptree.oracle.lockstep import Lockstep

from ..checks import check
from ..fault_kit import require_qemu


@pytest.mark.parametrize("profile", ["esx", "vbox"])
def test_check_conforms_with_a_fixed_seed(profile: str, tmp_path: Path) -> None:
    require_qemu()
    made: list[Qcow2ChainDriver] = []

    class Recording(Qcow2ChainDriver):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    result = check(Recording, profile, examples=30, steps=20, seed=2, database=None, out=str(tmp_path),
                   progress=None)
    assert result.conforms, result.divergence
    assert result.stats.examples >= 30
    merges: Counter[str] = sum((d.merges for d in made), Counter())
    assert merges["rebase"] > 0 and merges["commit"] > 0, merges  # both merge directions ran on real files


def driver_id(lockstep: Lockstep, name: str) -> str:
    return lockstep.match.driver_id(lockstep.model.named(name)[0].id)


def seed_picture(lockstep: Lockstep) -> None:
    """A <--1-- B <--2-- C <--3-- current, and B + <--4-- D, every overlay with data; B's
    overlay is smaller than A's, and the current one smaller than C's (so that deleting A or C
    merges backward with qemu-img commit)."""
    for step in (ops.Write(0, "a"), ops.Write(1, "a"), ops.Write(2, "a"), ops.CreateSnapshot("A"),
                 ops.Write(1, "b"), ops.CreateSnapshot("B"),
                 ops.Write(2, "c"), ops.Write(0, "c"), ops.CreateSnapshot("C"), ops.Revert("B"),
                 ops.Write(3, "d"), ops.CreateSnapshot("D"), ops.Revert("C"), ops.Write(3, "a")):
        lockstep.step(step)


@pytest.mark.parametrize("target, merge", [("B", "rebase"), ("A", "commit"), ("D", "discard"), ("C", "commit")])
def test_seed_delete_keeps_every_other_point_in_time(target: str, merge: str) -> None:
    """Lockstep compares every view after the delete with the model's: real bytes, read back."""
    require_qemu()
    driver = Qcow2ChainDriver("esx")
    with Lockstep(driver, 4) as lockstep:
        seed_picture(lockstep)
        before = driver.observe()["views"]
        gone = driver_id(lockstep, target)
        lockstep.step(ops.Delete(target))
        after = driver.observe()["views"]
        assert after["current"] == before["current"]
        assert {k: v for k, v in before["snapshots"].items() if k != gone} == after["snapshots"]
        assert not driver.file(gone).exists()
    assert driver.merges[merge] >= 1, driver.merges


def test_remove_children_keeps_the_current_state() -> None:
    require_qemu()
    driver = Qcow2ChainDriver("esx")
    with Lockstep(driver, 4) as lockstep:
        seed_picture(lockstep)
        lockstep.step(ops.Delete("B", flags=("remove-children",)))  # current was under C, under B
        state = driver.observe()
        assert [s["name"] for s in state["snapshots"]] == ["A"]
        assert state["current"] == driver_id(lockstep, "A")


def test_vbox_refuses_two_children_and_current_with_a_child() -> None:
    require_qemu()
    driver = Qcow2ChainDriver("vbox")
    with Lockstep(driver, 4) as lockstep:
        seed_picture(lockstep)
        assert lockstep.step(ops.Delete("B")).driver.kind == "has-children"  # C and D
        lockstep.step(ops.Revert("A"))
        assert lockstep.step(ops.Delete("A")).driver.kind == "has-children"  # current, with child B
        assert lockstep.step(ops.Delete("D")).driver.ok


def test_tree_comes_from_the_backing_files() -> None:
    require_qemu()
    driver = Qcow2ChainDriver("esx")
    with Lockstep(driver, 4) as lockstep:
        seed_picture(lockstep)
        for sid in driver.snaps:
            info = json.loads(call(["qemu-img", "info", "--output=json", str(driver.file(sid))]))
            assert backing_file(driver.file(sid)) == info.get("backing-filename")
        state = driver.observe()
        parents = {s["name"]: s["parent"] for s in state["snapshots"]}
        ids = {s["name"]: s["id"] for s in state["snapshots"]}
        assert parents == {"A": None, "B": ids["A"], "C": ids["B"], "D": ids["B"]}
        assert state["current"] == ids["C"]
        assert backing_file(driver.file(None)) == str(driver.file(ids["C"]))


def test_backing_file_rejects_other_formats(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 512)
    with pytest.raises(ValueError, match="not a qcow2 image"):
        backing_file(raw)


@pytest.mark.parametrize("profile", ["esx", "vbox"])
def test_awkward_names_and_ids(profile: str) -> None:
    require_qemu()
    with Lockstep(Qcow2ChainDriver(profile), 4) as lockstep:
        for i, name in enumerate(AWKWARD_NAMES):
            lockstep.step(ops.Write(i % 4, "abcd"[i % 4]))
            lockstep.step(ops.CreateSnapshot(name))
        for name in reversed(AWKWARD_NAMES):
            lockstep.step(ops.Revert(name))
        lockstep.step(ops.Revert(id=next(iter(lockstep.model.snapshots))))  # the model's id; lockstep translates
        for name in AWKWARD_NAMES:
            lockstep.step(ops.Delete(name))
