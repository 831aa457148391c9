"""The live QEMU drivers (qemu-hmp, qemu-qmp) on VMs of several block nodes [semantics.md §9],
against the QEMU installed here (7.2 on Debian 12; CI runs this file in the bookworm-backports
chroot too, on 10.0).

Like test_qemu_live.py these FAIL where QEMU, the qemu.qmp client or Debian's ovmf is missing,
naming the install command."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.model.disks import Disk
from snaptree.oracle.drivers.qemu_guest import OVMF_CODE, OVMF_VARS, efi_counter, nv_decode
from snaptree.oracle.drivers.qemu_hmp_qmp import QemuHmpDriver, QemuQmpDriver
from snaptree.oracle.drivers.qemu_live import LiveQemuDriver
from snaptree.oracle.drivers.qemu_live_disks import LAYOUTS
from snaptree.oracle.lockstep import Lockstep

from ..checks import check
from .test_qemu_live import real_qemu  # noqa: F401 - a real QEMU, or the test fails

DRIVERS = (QemuHmpDriver, QemuQmpDriver)
TWO = (Disk("vda"), Disk("vdb"))
RAW = (Disk("vda"), Disk("vdb", format="raw"))
NVRAM = (Disk("vda"), Disk("pflash1", role="nvram"))


@pytest.fixture(autouse=True)
def real_qemu_and_ovmf(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("real_qemu")
    if not (OVMF_CODE.is_file() and OVMF_VARS.is_file()):
        pytest.fail("Debian's OVMF is missing: `apt-get install ovmf`")


# -- without QEMU ------------------------------------------------------------------------------------

def test_layouts_declared() -> None:
    assert TWO in QemuHmpDriver.layouts and RAW in QemuHmpDriver.layouts and NVRAM in QemuHmpDriver.layouts
    assert (Disk("vda"), Disk("vdb", mode="no")) in QemuQmpDriver.layouts
    assert (Disk("vda"), Disk("vdb", mode="no")) not in QemuHmpDriver.layouts
    assert QemuQmpDriver.disk_modes == {"internal", "no"} and not QemuHmpDriver.disk_modes
    assert set(LAYOUTS) <= set(QemuQmpDriver.layouts)


def test_efi_application_and_nvram_tokens() -> None:
    image = efi_counter()
    assert image[:2] == b"MZ" and image[0x40:0x44] == b"PE\0\0" and len(image) == 0x2000
    erased = b"\xff" * 0x84000
    assert nv_decode(erased, 4) == {}
    written = bytearray(erased)
    written[0x61000:0x62000] = bytes([ord("a") ^ 0xFF]) * 0x1000
    assert nv_decode(bytes(written), 4) == {"1": "a"}


# -- against QEMU --------------------------------------------------------------------------------------

@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)
def test_check_with_layouts_conforms(driver: type[LiveQemuDriver], tmp_path: Path) -> None:
    """A short fixed-seed check: 40% of its histories draw one of the driver's layouts."""
    started = time.monotonic()
    result = check(driver, driver.profiles[0], examples=12, steps=15, seed=5, database=None, out=str(tmp_path),
                   progress=None)
    print(f"{driver.name}: {result.stats.examples} examples, {result.stats.steps} steps in "
          f"{time.monotonic() - started:.1f} s")
    assert result.conforms, str(result.divergence)


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: "+".join(d.describe() for d in layout))
def test_every_layout_in_lockstep(driver: type[LiveQemuDriver], layout: tuple[Disk, ...]) -> None:
    """Each layout built, written on every disk, saved, written again, loaded (running and
    paused), deleted: in lockstep with the model (a writable raw node refused as it says)."""
    lockstep = Lockstep(driver(), 4, layout)
    with lockstep:
        lockstep.step(ops.Start())
        for disk in layout:
            lockstep.step(ops.Write(1, "a", disk.name))
        lockstep.step(ops.CreateSnapshot("A"))
        for disk in layout:
            lockstep.step(ops.Write(1, "b", disk.name))
        lockstep.step(ops.Revert("A"))
        lockstep.step(ops.Resume())
        lockstep.step(ops.Pause())
        for disk in layout:
            lockstep.step(ops.Write(2, "c", disk.name))
        lockstep.step(ops.Revert("A"))
        lockstep.step(ops.Resume())
        lockstep.step(ops.Delete("A"))
        lockstep.step(ops.Shutdown())


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)
def test_savevm_with_a_writable_raw_node_is_refused(driver: type[LiveQemuDriver]) -> None:
    instance = driver()
    instance.setup(4, RAW)
    try:
        assert instance.apply(ops.Start()).ok
        refused = instance.apply(ops.CreateSnapshot("A"))
        assert (refused.ok, refused.kind) == (False, "unsupported")
        assert "vdb" in (refused.message or "") and "does not support snapshots" in (refused.message or "")
        assert instance.observe()["snapshots"] == []
    finally:
        instance.teardown()
        instance.close()


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)
def test_loadvm_reads_both_nodes_back(driver: type[LiveQemuDriver]) -> None:
    instance = driver()
    instance.setup(4, TWO)
    try:
        for op in (ops.Start(), ops.Write(0, "a"), ops.Write(3, "b", "vdb"), ops.CreateSnapshot("A"),
                   ops.Write(0, "c"), ops.Write(3, "d", "vdb"), ops.Write(1, "c", "vdb")):
            assert instance.apply(op).ok, op
        assert instance.observe()["views"]["current"] == {"0": "c", "vdb:1": "c", "vdb:3": "d"}
        assert instance.apply(ops.Revert("A")).ok
        seen = instance.observe()
        assert seen["power"] == "running"
        assert seen["views"]["current"] == {"0": "a", "vdb:3": "b"}
        (snapshot,) = seen["snapshots"]
        assert snapshot["disks"] == {"vda": "internal", "vdb": "internal"} and snapshot["memory"]
        assert seen["views"]["snapshots"][snapshot["id"]] == {"0": "a", "vdb:3": "b"}
    finally:
        instance.teardown()
        instance.close()


def test_qmp_leaves_a_disk_out_of_devices() -> None:
    """snapshot-save's devices without vdb: a load takes vda back and leaves vdb as it reads [§9.6]."""
    lockstep = Lockstep(QemuQmpDriver(), 4, (Disk("vda"), Disk("vdb", mode="no")))
    with lockstep:
        for op in (ops.Start(), ops.Write(0, "a"), ops.Write(0, "x", "vdb"), ops.CreateSnapshot("A"),
                   ops.Write(0, "b"), ops.Write(0, "y", "vdb"), ops.Revert("A"),
                   ops.CreateSnapshot("B", disks=(("vdb", "internal"),)), ops.Revert("B"), ops.Delete("A")):
            lockstep.step(op)
