"""The in-process image reader against qemu-img, on images of every kind the drivers make:
internal snapshots (by id and by name, duplicate names), zeroed and discarded clusters, qcow2
and raw backing files (named absolutely and relatively), qcow2 version
2, clusters smaller than a block; and what it does not read falls back to qemu-img."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from snaptree.oracle.drivers import image_reader
from snaptree.oracle.drivers import qemu_common as qc
from snaptree.oracle.drivers.qcow2_chain import Qcow2ChainDriver
from snaptree.oracle.lockstep import DriverError

from ..checks import check
from ..fault_kit import require_qemu

BLOCKS = 6
SIZE = BLOCKS * qc.BLOCK_SIZE


def run(*argv: str | Path) -> None:
    subprocess.run([str(a) for a in argv], check=True, capture_output=True)


def io(image: Path, *commands: str, image_format: str = "qcow2") -> None:
    run("qemu-io", "-f", image_format, *[x for c in commands for x in ("-c", c)], image)


def both(image: Path, tmp_path: Path, image_format: str = "qcow2", **snapshot: str) -> bytes:
    """The reader's bytes, after checking that they are qemu-img's."""
    ours = image_reader.read_image(image, SIZE, image_format, snapshot.get("id"), snapshot.get("name"))
    theirs = qc.convert(image, tmp_path / "scratch", snapshot.get("id"), True, image_format, snapshot.get("name"))
    assert ours == theirs[:SIZE], f"{image.name} {snapshot}"
    return ours


def block(data: bytes, n: int) -> bytes:
    return data[n * qc.BLOCK_SIZE:n * qc.BLOCK_SIZE + 1]


@pytest.fixture(autouse=True)
def _qemu_img() -> None:
    require_qemu()


@pytest.mark.parametrize("options", ["cluster_size=65536", "cluster_size=4096", "compat=0.10"])
def test_internal_snapshots_zeroes_and_discards(tmp_path: Path, options: str) -> None:
    image = tmp_path / "disk.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", options, image, SIZE)
    io(image, f"write -P 97 0 {qc.BLOCK_SIZE}", f"write -P 98 {2 * qc.BLOCK_SIZE} {qc.BLOCK_SIZE}")
    run("qemu-img", "snapshot", "-c", "S", image)
    io(image, f"write -z 0 {qc.BLOCK_SIZE}", f"discard {2 * qc.BLOCK_SIZE} {qc.BLOCK_SIZE}",
       f"write -P 99 {3 * qc.BLOCK_SIZE} 4096")
    run("qemu-img", "snapshot", "-c", "S", image)  # a second snapshot of the same name
    io(image, f"write -P 100 {5 * qc.BLOCK_SIZE} {qc.BLOCK_SIZE}")
    now = both(image, tmp_path)
    first = both(image, tmp_path, name="S")
    assert block(first, 0) == b"a" and block(first, 2) == b"b"  # the first of that name, as qemu-img's lookup
    second = both(image, tmp_path, id="2")
    assert block(second, 0) == b"\0" and block(second, 3) == b"c"
    assert block(now, 5) == b"d"


def test_backing_chains(tmp_path: Path) -> None:
    raw = tmp_path / "base.raw"
    run("qemu-img", "create", "-q", "-f", "raw", raw, SIZE // 2)  # smaller than the overlays: zeros past its end
    io(raw, f"write -P 97 0 {qc.BLOCK_SIZE}", image_format="raw")
    middle = tmp_path / "middle.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", raw, "-F", "raw", middle, SIZE)
    io(middle, f"write -P 98 {qc.BLOCK_SIZE} {qc.BLOCK_SIZE}")
    run("qemu-img", "snapshot", "-c", "M", middle)
    io(middle, f"write -P 120 {qc.BLOCK_SIZE} {qc.BLOCK_SIZE}")
    top = tmp_path / "top.qcow2"
    # named relatively: relative to the overlay's directory
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "middle.qcow2", "-F", "qcow2", "top.qcow2"],
                   check=True, capture_output=True, cwd=tmp_path)
    io(top, f"write -P 99 {2 * qc.BLOCK_SIZE} {qc.BLOCK_SIZE}")
    run("qemu-img", "snapshot", "-c", "T", top)
    io(top, f"write -z {qc.BLOCK_SIZE} {qc.BLOCK_SIZE}")
    now = both(top, tmp_path)
    assert [block(now, n) for n in range(4)] == [b"a", b"\0", b"c", b"\0"]
    at_t = both(top, tmp_path, name="T")
    assert block(at_t, 1) == b"x"  # unallocated in the snapshot: the backing file as it is now
    assert block(both(middle, tmp_path, name="M"), 1) == b"b"
    assert block(both(raw, tmp_path, "raw"), 0) == b"a"


def test_what_it_does_not_read_goes_to_qemu_img(tmp_path: Path) -> None:
    plain = tmp_path / "plain.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", plain, SIZE)
    io(plain, f"write -P 97 0 {qc.BLOCK_SIZE}")
    packed = tmp_path / "packed.qcow2"
    run("qemu-img", "convert", "-c", "-O", "qcow2", plain, packed)
    with pytest.raises(image_reader.Unsupported, match="compressed"):
        image_reader.read_image(packed, SIZE)
    assert qc.read_view(packed, BLOCKS, tmp_path / "scratch") == {"0": "a"}
    with pytest.raises(image_reader.Unsupported, match="no snapshot"):
        image_reader.read_image(plain, SIZE, snapshot_name="nope")
    with pytest.raises(qc.QemuCallFailed):  # qemu-img's own error, as the drivers always had it
        qc.read_view(plain, BLOCKS, tmp_path / "scratch", snapshot_name="nope")


def test_snapshot_tables(tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", image, SIZE)
    assert image_reader.snapshot_table(image) == []
    for name in ("A", "ünïcødé ✓", "A", "x" * 200):
        run("qemu-img", "snapshot", "-c", name, image)
    listed = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image)], check=True,
                                       capture_output=True, text=True).stdout)["snapshots"]
    assert image_reader.snapshot_table(image) == [{key: e[key] for key in qc.TABLE_KEYS} for e in listed]


class DeleteWritesTheParent(Qcow2ChainDriver):
    """A driver whose delete also writes into the deleted snapshot's parent: every point in
    time that rests on that file now reads otherwise."""

    def remove(self, sid: str) -> None:
        parent = self.parent(sid)
        super().remove(sid)
        if parent is not None:
            io(self.file(parent), f"write -P 122 0 {qc.BLOCK_SIZE}")


def test_the_reader_finds_a_delete_that_changes_another_snapshot(tmp_path: Path) -> None:
    result = check(DeleteWritesTheParent, "esx", examples=60, seed=1, database=None, out=str(tmp_path))
    assert not result.conforms
    assert result.divergence is not None and not isinstance(result.divergence, DriverError)
    assert any(d.what.startswith("view of") for d in result.divergence.differences), result.divergence
