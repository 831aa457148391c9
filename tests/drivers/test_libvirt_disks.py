"""The libvirt driver's VMs of several disks (two and three qcow2 disks, a raw one, one kept out of
snapshots, UEFI firmware with its variable store) against the real libvirt: 9.0 on the host and
11.3 in the bookworm-backports chroot (``.ci/backports``).  Like ``test_libvirt.py``, these FAIL
when the real components are missing, naming what to install."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.model.disks import Disk
from snaptree.oracle.drivers import qemu_common as qc
from snaptree.oracle.drivers.libvirt import LibvirtDriver
from snaptree.oracle.drivers.libvirt import disk as libvirt_disk
from snaptree.oracle.drivers.libvirt.domain_xml import OVMF_VARS, disk_files
from snaptree.oracle.drivers.libvirt.layouts import LAYOUTS_9_0, LAYOUTS_11_3
from snaptree.oracle.drivers.libvirt.session import libvirt

from ..checks import check
from .test_libvirt import require_qemu

CHECKOUT = Path(__file__).resolve().parents[2]

# Where the model (model/profiles/libvirt_qemu.py) is known to part ways with the real libvirt
# on VMs of several disks, while its disk rules are being written: (versions, words that the
# differences, the steps and the last step's messages all hold, what the real libvirt does).
# A check that diverges in any other way fails.


def libvirt_version() -> str:
    number = libvirt.getVersion()
    return f"{number // 1_000_000}.{number // 1_000 % 1_000}"


# -- a short check on VMs of several disks, on both versions ------------------------------------

def test_layouts_check_in_process() -> None:
    """A fixed-seed check on the installed libvirt (9.0 on the host, 11.3 in the chroot): it
    conforms (the findings' guards leave out what they match); it builds VMs of several disks."""
    require_qemu()
    version = libvirt_version()
    profile = "libvirt-qemu-11.3" if version == "11.3" else "libvirt-qemu"
    started = time.monotonic()
    result = check(LibvirtDriver, profile, examples=8, steps=12, seed=5, database=None, progress=None)
    seconds = time.monotonic() - started
    print(f"{profile}: {result.stats.examples} examples, {result.stats.steps} steps in {seconds:.0f} s")
    assert result.conforms, str(result.divergence)
    assert result.stats.situations.reached["disks-several"] > 0, "no history built a VM of several disks"


def test_layouts_check_on_the_other_version() -> None:
    """From the host (9.0), the same check on 11.3 in the bookworm-backports chroot."""
    require_qemu()
    if libvirt_version() == "11.3":
        pytest.skip("this is libvirt 11.3: test_layouts_check_in_process checked it; the host checks 9.0")
    if os.geteuid() != 0:
        pytest.fail("entering the bookworm-backports chroot needs root")
    root = Path(os.environ.get("SNAPTREE_BACKPORTS", "/var/cache/snaptree/bookworm-backports"))
    if not (root / ".snaptree-recipe").exists():
        pytest.fail(f"no chroot at {root}: run 'bash .ci/backports build'")
    done = subprocess.run(["bash", ".ci/backports", "run", "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/drivers/test_libvirt_disks.py", "-k", "in_process or reads_both or nvram"],
                          cwd=CHECKOUT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


# -- what the driver reads is what the files hold ---------------------------------------------

def read_file(path: str, blocks: int) -> dict[str, str]:
    scratch = Path(path).with_name("test-view")
    return qc.read_view(Path(path), blocks, scratch, force_share=True, image_format=libvirt_disk.image_format(path))


@pytest.mark.parametrize("running", [False, True], ids=["shut off", "running"])
def test_two_disk_revert_reads_both_disks_back(running: bool) -> None:
    """A revert to an internal snapshot of two qcow2 disks: both files read what they held at
    the snapshot (read from the files themselves, after the domain is shut off), and so does
    the driver's observation."""
    require_qemu()
    profile = "libvirt-qemu-11.3" if libvirt_version() == "11.3" else "libvirt-qemu"
    driver = LibvirtDriver(profile)
    layout = (Disk("vda"), Disk("vdb"))
    driver.setup(4, layout)
    try:
        steps = [ops.Write(0, "a"), ops.Write(1, "b", "vdb"), *([ops.Start()] if running else []),
                 ops.CreateSnapshot("A"), ops.Write(0, "c"), ops.Write(1, "d", "vdb"), ops.Write(2, "c", "vdb"),
                 ops.Revert("A")]
        for op in steps:
            result = driver.apply(op)
            assert result.ok, f"{ops.describe(op)}: {result.brief()}"
        observed = driver.observe()
        assert observed["views"]["current"] == {"0": "a", "vdb:1": "b"}
        assert observed["views"]["snapshots"]["A"] == {"0": "a", "vdb:1": "b"}
        assert observed["snapshots"][0]["disks"] == {"vda": "internal", "vdb": "internal"}
        if running:
            assert observed["power"] == "running"
            assert driver.apply(ops.Shutdown()).ok  # the files alone, nothing in QEMU's caches
        _, _, _, domain = driver.session.call("listing")
        files = disk_files(domain)
        assert read_file(files["vda"], 4) == {"0": "a"}
        assert read_file(files["vdb"], 4) == {"1": "b"}
    finally:
        driver.teardown()


def test_nvram_blocks_are_the_variable_stores_free_region() -> None:
    """The NVRAM's blocks are 4 KiB blocks at 0x60000 of the variable store: OVMF still boots
    (the domain runs), a write while it runs lands in the file there, and the rest of the store
    is as large as Debian's template."""
    require_qemu()
    if not Path(OVMF_VARS).exists():
        pytest.fail(f"{OVMF_VARS} not found: apt-get install ovmf")
    profile = "libvirt-qemu-11.3" if libvirt_version() == "11.3" else "libvirt-qemu"
    driver = LibvirtDriver(profile)
    layout = next(layout for layout in driver.layouts if layout[-1].role == "nvram")
    driver.setup(4, layout)
    try:
        for op in (ops.Write(0, "a", "nvram"), ops.Start(), ops.Write(2, "b", "nvram")):
            result = driver.apply(op)
            assert result.ok, f"{ops.describe(op)}: {result.brief()}"
        assert driver.observe()["power"] == "running"
        assert driver.observe()["views"]["current"] == {"nvram:0": "a", "nvram:2": "b"}
        assert driver.apply(ops.Shutdown()).ok
        _, _, _, domain = driver.session.call("listing")
        data = Path(disk_files(domain)["nvram"]).read_bytes()
        offset, size = libvirt_disk.NVRAM_OFFSET, libvirt_disk.NVRAM_BLOCK
        assert data[offset:offset + size] == b"a" * size
        assert data[offset + 2 * size:offset + 3 * size] == b"b" * size
        assert data[offset + size:offset + 2 * size] == b"\xff" * size  # never written: erased
        assert len(data) == len(Path(OVMF_VARS).read_bytes())
    finally:
        driver.teardown()


def test_layouts_declared_per_version() -> None:
    """9.0 has no qcow2 NVRAM (it drops <nvram format=...>); 11.3 has."""
    require_qemu()
    qcow2_nvram = (Disk("vda"), Disk("nvram", role="nvram", format="qcow2"))
    assert qcow2_nvram not in LAYOUTS_9_0 and qcow2_nvram in LAYOUTS_11_3
    assert set(LibvirtDriver("libvirt-qemu").layouts) <= set(LAYOUTS_9_0)
    assert LibvirtDriver("libvirt-qemu").disk_modes == {"internal", "external", "no"}
    assert LibvirtDriver("libvirt-test").layouts == ()
