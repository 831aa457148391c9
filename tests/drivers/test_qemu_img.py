"""The qemu-img driver: real qcow2 internal snapshots, checked against the qemu-img profile.
Needs qemu-utils (`bash .ci/setup --real`); without it these tests fail, they do not skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.oracle import summary_json, summary_text
from snaptree.oracle.drivers import qemu_io
from snaptree.oracle.drivers.qemu_common import QemuCallFailed, call
from snaptree.oracle.drivers.qemu_img import QemuImgDriver, error_kind
from snaptree.oracle.generate import AWKWARD_NAMES
from snaptree.oracle.lockstep import Lockstep

from ..checks import check
from ..fault_kit import require_qemu


@pytest.fixture
def driver():
    require_qemu()
    d = QemuImgDriver()
    yield d
    d.teardown()


def test_check_conforms_with_a_fixed_seed(tmp_path: Path) -> None:
    require_qemu()
    result = check(QemuImgDriver, "qemu-img", examples=30, steps=20, seed=2, database=None, out=str(tmp_path),
                   progress=None)
    assert result.conforms, result.divergence
    assert result.stats.examples >= 30
    assert result.stats.operations["snapshot"] > 100 and result.stats.operations["delete"] > 50


# -- the driver's own parsing and mapping -------------------------------------------------------

@pytest.mark.parametrize("message, kind", [
    ("Could not delete snapshot 'x': snapshot not found", "not-found"),
    ("Could not apply snapshot 'x': Failed to load snapshot: No such file or directory", "not-found"),
    ("Expecting one image file name", "invalid-argument"),
    ("Could not create snapshot 's1': -95 (Operation not supported)", "unsupported"),  # QEMU 7.2
    ("Could not create snapshot 's1': Operation not supported", "unsupported"),  # QEMU 10.0
    ("write failed: Input/output error", "invalid-argument"),
    ("something new", "unexpected"),
])
def test_error_kinds(message: str, kind: str) -> None:
    assert error_kind(message) == kind


@pytest.mark.parametrize("hint", ["Try 'qemu-img --help' for more information",  # QEMU 7.2
                                  "Try 'qemu-img snapshot --help' for more info"])  # QEMU 10.0
def test_real_message_skips_the_usage_hint(hint: str) -> None:
    error = QemuCallFailed(["qemu-img", "snapshot"], 1, f"qemu-img: Expecting one image file name\n{hint}\n")
    assert error.message == "Expecting one image file name"


def test_a_check_names_the_qemu_it_ran_on(tmp_path: Path) -> None:
    require_qemu()
    first_line = call(["qemu-img", "--version"]).splitlines()[0]  # "qemu-img version 10.0.2 (Debian ...)"
    versions = QemuImgDriver.installed_versions({})
    assert list(versions) == ["QEMU"] and first_line.startswith(f"qemu-img version {versions['QEMU']}")
    result = check(QemuImgDriver, "qemu-img", examples=1, steps=2, seed=1, database=None, out=str(tmp_path),
                   progress=None)
    assert summary_json(result)["versions"] == versions
    assert f" on QEMU {versions['QEMU']}\n" in summary_text(result)


def test_parse_reads() -> None:
    values = ("", "a", "b")
    # block 0 empty (its 'a' and 'b' checks fail), block 1 'b', block 2 matches nothing
    fail = "Pattern verification failed at offset 0, 65536 bytes"
    out = "\n".join([
        "512 KiB", fail, "512 KiB", fail, "512 KiB",
        fail, "512 KiB", fail, "512 KiB", "512 KiB",
        fail, "512 KiB", fail, "512 KiB", fail, "512 KiB",
    ])
    assert qemu_io.parse_reads(out, 3, values) == {"1": "b", "2": "?"}
    with pytest.raises(ValueError):
        qemu_io.parse_reads("512 KiB", 3, values)


def test_write_and_read_against_convert(driver: QemuImgDriver) -> None:
    driver.setup(4)
    view = qemu_io.write_and_read(driver.image, [(0, "a"), (3, "d"), (0, "b"), (2, "")], 4, driver.values)
    assert view == {"0": "b", "3": "d"}
    raw = driver.image.with_name("check.raw")
    call(["qemu-img", "convert", "-O", "raw", str(driver.image), str(raw)])
    data = raw.read_bytes()
    assert data[:65536] == b"b" * 65536 and data[3 * 65536:] == b"d" * 65536
    with pytest.raises(QemuCallFailed, match="write failed"):
        qemu_io.write_and_read(driver.image, [(4, "a")], 4, driver.values)


# -- names and ids through the command line ------------------------------------------------------

def test_awkward_names_in_lockstep() -> None:
    require_qemu()
    with Lockstep(QemuImgDriver(), 4) as lockstep:
        for i, name in enumerate(AWKWARD_NAMES):
            lockstep.step(ops.Write(i % 4, "abcd"[i % 4]))
            lockstep.step(ops.CreateSnapshot(name))
        for name in AWKWARD_NAMES:  # over 255 bytes: not found; cut inside a character: shown name not found
            lockstep.step(ops.Revert(name))
            lockstep.step(ops.Delete(name))
        names = [s["name"] for s in lockstep.driver.observe()["snapshots"]]
    assert "x" * 255 in names and "é" * 127 + "\ufffd" in names, names


def test_names_reach_qemu_img_unchanged(driver: QemuImgDriver) -> None:
    driver.setup(2)
    for name in ("with space", "semi;colon", "quo'te\"s", "-dash", "", "ünïcødé ✓"):
        assert driver.apply(ops.CreateSnapshot(name)).ok
    info = json.loads(call(["qemu-img", "info", "--output=json", str(driver.image)]))
    assert [s["name"] for s in info["snapshots"]] == ["with space", "semi;colon", "quo'te\"s", "-dash", "",
                                                      "ünïcødé ✓"]


def test_revert_by_id_and_delete_by_id(driver: QemuImgDriver) -> None:
    driver.setup(2)
    driver.apply(ops.Write(0, "a"))
    assert driver.apply(ops.CreateSnapshot("2")).created_id == "1"  # id 1, named "2"
    driver.apply(ops.Write(0, "b"))
    assert driver.apply(ops.CreateSnapshot("2")).created_id == "2"  # id 2, also named "2"
    driver.apply(ops.Write(0, "c"))
    assert driver.apply(ops.Revert(id="1")).ok  # -a 1: the id first
    assert driver.observe()["views"]["current"] == {"0": "a"}
    shadowed = driver.apply(ops.Delete(id="2"))  # -d "2" would delete id 1, the first named "2"
    assert shadowed.kind == "unsupported" and "finds id 1" in (shadowed.message or "")
    assert driver.apply(ops.Delete(id="1")).ok
    assert [s["id"] for s in driver.observe()["snapshots"]] == ["2"]
    assert driver.apply(ops.Delete(id="7")).kind == "not-found"


def test_errors_keep_qemu_img_messages(driver: QemuImgDriver) -> None:
    driver.setup(2)
    missing_name = driver.apply(ops.Delete("nope"))
    assert (missing_name.kind, missing_name.message) == ("not-found", "Could not delete snapshot 'nope': snapshot not found")
    unnamed = driver.apply(ops.CreateSnapshot(None))
    assert (unnamed.kind, unnamed.message) == ("invalid-argument", "Expecting one image file name")
