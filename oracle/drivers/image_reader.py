"""A disk image's contents read in this process: what `qemu-img convert -U -O raw` writes for a
raw file, a qcow2 file (its own clusters, an internal snapshot's, the backing chain's), without a
process per point in time (a check reads every snapshot after every step).

It knows the qcow2 layout QEMU writes for the checks' images (docs/interop/qcow2.txt): versions 2
and 3, standard L2 entries, the zero flag, internal snapshots, a backing file by path. Anything
else (compressed clusters, extended L2 entries, encryption, an external data file, a backing
named by protocol or json:) raises ``Unsupported``, and the caller asks qemu-img instead; so does
a snapshot the table lacks, for qemu-img's own error. ``tests/drivers/test_image_reader.py``
compares it with qemu-img on images of every kind the drivers make."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"QFI\xfb"
OFFSET = 0x00FF_FFFF_FFFF_FE00  # bits 9-55 of an L1 or L2 entry: the host offset
COMPRESSED = 1 << 62
ZERO = 1  # a version 3 L2 entry's "reads as zeros"
KNOWN_INCOMPATIBLE = 0b1011  # dirty, corrupt, compression type (used by compressed clusters only)
BACKING_FORMAT, EXTERNAL_DATA = 0xE2792ACA, 0x44415441
DEPTH = 64  # backing files at most: a loop of backing names is no image


class Unsupported(Exception):
    """Something this reader does not read; qemu-img does."""


def read_image(path: Path, length: int, image_format: str = "qcow2", snapshot_id: str | None = None,
               snapshot_name: str | None = None) -> bytes:
    """The first ``length`` bytes of the disk (fewer if the disk is smaller), as ``qemu-img
    convert`` reads it: of the image now, or of its internal snapshot by id or by name."""
    return _read(path, length, image_format, DEPTH, snapshot_id, snapshot_name)


def _read(path: Path, length: int, image_format: str, depth: int, snapshot_id: str | None = None,
          snapshot_name: str | None = None) -> bytes:
    with open(path, "rb") as file:
        if image_format == "raw":
            if snapshot_id is not None or snapshot_name is not None:
                raise Unsupported("a raw image has no snapshots")
            return file.read(length)
        if image_format != "qcow2":
            raise Unsupported(f"format {image_format}")
        return Qcow2(file, path, depth).read(length, snapshot_id, snapshot_name)


def snapshot_table(path: Path) -> list[dict[str, Any]]:
    """A qcow2 image's snapshot table: id, name, date-sec, date-nsec, vm-state-size (qemu_common.TABLE_KEYS)."""
    with open(path, "rb") as file:
        return [{k: v for k, v in entry.items() if k != "l1"} for entry in Qcow2(file, path, DEPTH).table()]


class Qcow2:
    def __init__(self, file: BinaryIO, path: Path, depth: int):
        self.file, self.path, self.depth = file, path, depth
        header = file.read(104)
        (magic, version, backing_offset, backing_size, cluster_bits, self.size, crypt, self.l1_size,
         self.l1_offset, _, _, self.snapshot_count, self.snapshots_offset) = struct.unpack(">4sIQIIQIIQQIIQ",
                                                                                        header[:72])
        if magic != MAGIC or version not in (2, 3) or crypt:
            raise Unsupported(f"{path}: not a plain qcow2 image")
        self.version, self.cluster_size = version, 1 << cluster_bits
        header_length = 72
        if version == 3:
            incompatible, = struct.unpack(">Q", header[72:80])
            if incompatible & ~KNOWN_INCOMPATIBLE:
                raise Unsupported(f"{path}: incompatible features {incompatible:#x}")
            header_length, = struct.unpack(">I", header[100:104])
        self.backing_format = self._extensions(header_length)
        self.backing_name = self._at(backing_offset, backing_size).decode() if backing_offset else None
        self.l2_tables: dict[int, tuple[int, ...]] = {}

    def _at(self, offset: int, size: int) -> bytes:
        self.file.seek(offset)
        data = self.file.read(size)
        if len(data) != size:
            raise Unsupported(f"{self.path}: truncated at {offset}")
        return data

    def _extensions(self, offset: int) -> str | None:
        backing_format = None
        while offset + 8 <= self.cluster_size:
            kind, size = struct.unpack(">II", self._at(offset, 8))
            if kind == 0:
                return backing_format
            if kind == EXTERNAL_DATA:
                raise Unsupported(f"{self.path}: an external data file")
            if kind == BACKING_FORMAT:
                backing_format = self._at(offset + 8, size).decode()
            offset += 8 + (size + 7) // 8 * 8
        return backing_format

    def table(self) -> list[dict[str, Any]]:
        """The snapshot table, in table order, with the keys of ``qemu-img info --output=json``
        the drivers read, and each entry's L1 table."""
        entries, offset = [], self.snapshots_offset
        for _ in range(self.snapshot_count):
            l1_offset, l1_size, id_size, name_size, seconds, nanoseconds, _, state_size, extra_size = struct.unpack(
                ">QIHHIIQII", self._at(offset, 40))
            extra = self._at(offset + 40, extra_size)
            if extra_size >= 8:
                state_size, = struct.unpack(">Q", extra[:8])
            entries.append({"id": self._at(offset + 40 + extra_size, id_size).decode(),
                            "name": self._at(offset + 40 + extra_size + id_size, name_size).decode(),
                            "date-sec": seconds, "date-nsec": nanoseconds, "vm-state-size": state_size,
                            "l1": (l1_offset, l1_size)})
            offset += (40 + extra_size + id_size + name_size + 7) // 8 * 8
        return entries

    def _snapshot(self, snapshot_id: str | None, name: str | None) -> tuple[int, int]:
        """The first snapshot of the table with that id (or else name): its L1 table's offset
        and size (QEMU reads it at the image's present size)."""
        for entry in self.table():
            if (entry["id"] == snapshot_id) if snapshot_id is not None else (entry["name"] == name):
                return entry["l1"]
        raise Unsupported(f"{self.path}: no snapshot {snapshot_id or name!r}")

    def _backing(self) -> tuple[Path, str] | None:
        if self.backing_name is None:
            return None
        if ":" in self.backing_name.split("/", 1)[0]:
            raise Unsupported(f"{self.path}: backing {self.backing_name!r} is no plain path")
        path = self.path.parent / self.backing_name  # a relative name is relative to this image
        image_format = self.backing_format
        if image_format is None:  # probed, as QEMU does
            with open(path, "rb") as file:
                image_format = "qcow2" if file.read(4) == MAGIC else "raw"
        if image_format not in ("qcow2", "raw"):
            raise Unsupported(f"{self.path}: backing format {image_format}")
        return path, image_format

    def _l2_entry(self, l1: tuple[int, ...], cluster: int) -> int:
        per_table = self.cluster_size // 8
        index, slot = divmod(cluster, per_table)
        table_offset = l1[index] & OFFSET if index < len(l1) else 0
        if not table_offset:
            return 0
        if table_offset not in self.l2_tables:
            self.l2_tables[table_offset] = struct.unpack(f">{per_table}Q", self._at(table_offset, self.cluster_size))
        return self.l2_tables[table_offset][slot]

    def read(self, length: int, snapshot_id: str | None = None, snapshot_name: str | None = None) -> bytes:
        l1_offset, l1_size = self.l1_offset, self.l1_size
        if snapshot_id is not None or snapshot_name is not None:
            l1_offset, l1_size = self._snapshot(snapshot_id, snapshot_name)
        length = min(length, self.size)
        l1 = struct.unpack(f">{l1_size}Q", self._at(l1_offset, 8 * l1_size)) if l1_size else ()
        out = bytearray(length)
        below: bytes | None = None
        for start in range(0, length, self.cluster_size):
            end = min(start + self.cluster_size, length)
            entry = self._l2_entry(l1, start // self.cluster_size)
            if entry & COMPRESSED:
                raise Unsupported(f"{self.path}: a compressed cluster")
            if self.version == 3 and entry & ZERO:
                continue  # zeros, allocated or not
            if entry & OFFSET:
                data = self._at(entry & OFFSET, end - start)
                out[start:end] = data
                continue
            if below is None:  # unallocated: the backing chain's bytes, zeros past its end
                below = self._read_backing(length)
            out[start:end] = below[start:end].ljust(end - start, b"\0")
        return bytes(out)

    def _read_backing(self, length: int) -> bytes:
        backing = self._backing()
        if backing is None:
            return b""
        if self.depth <= 0:
            raise Unsupported(f"{self.path}: backing chain deeper than {DEPTH}")
        path, image_format = backing
        return _read(path, length, image_format, self.depth - 1)
