"""Block data of the embedded QEMU domain's disk (profile libvirt-qemu).

Block data is written through QEMU itself while the domain runs (HMP ``qemu-io -d
/machine/peripheral/virtio-disk0/virtio-backend`` via ``virDomainQemuMonitorCommand``, then a
qemu-io ``flush``: without it QEMU keeps new qcow2 mappings in its metadata cache), and with
``qemu-io`` on the file while it is off.  Points in time are read with ``qemu-img convert -U``
(force-share), internal snapshots by name (``-l snapshot.name=``) from the file named in the
snapshot's own ``<domain>``: HMP qemu-io prints what it reads to QEMU's stdout, not to the
monitor.  A snapshot libvirt lists but QEMU never took reads '?' in every block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from snaptree.model.disks import Disk

from .. import qemu_common as qc
from .domain_xml import disk_files, disk_source
from .session import POWER

DISK_QDEV = "/machine/peripheral/virtio-disk0/virtio-backend"  # the disk's BlockBackend, for HMP qemu-io


def write(session: Any, workdir: Path | None, values_on_disk: qc.BlockValues, block: int, value: str,
          inactive: str | None = None) -> None:
    """Write one block: through the running QEMU's monitor, or with qemu-io while it is off, or
    while QEMU has let go of its block nodes (``inactive``, see ``LibvirtDriver._inactive``:
    "node", through the format node, as QEMU 7.2 keeps the file's lock; "file", to the file,
    whose lock QEMU 10.0 lets go of; a write through the device aborts QEMU either way)."""
    state, _, _, domain_xml = session.call("listing")
    words = qc.qemu_io_writes([(block, values_on_disk.stored(value))])
    if POWER.get(state) == "shutoff" or inactive == "file":
        qc.call(["qemu-io", "-f", "qcow2", *words, disk_source(domain_xml)])
        return
    assert workdir is not None
    device = node(domain_xml, "vda") if inactive else f"-d {DISK_QDEV}"
    log = workdir / "libvirt/log/qemu/snaptree.log"  # QEMU's stdout, where HMP qemu-io reports
    for command in words[1::2]:
        before = qc.size(log)
        hmp_ok(session.call("hmp", f'qemu-io {device} "{command}"') or qc.refusals(log, before))
    # qcow2 keeps new mappings in QEMU's metadata cache: flush so the file holds them
    hmp_ok(session.call("hmp", f'qemu-io {device} "flush"'))


def node(domain_xml: str, target: str) -> str:
    """The format node libvirt names for a disk's current file (``libvirt-<index>-format``)."""
    for element in etree.fromstring(domain_xml.encode()).findall("devices/disk"):
        found, source = element.find("target"), element.find("source")
        if found is not None and found.get("dev") == target and source is not None and source.get("index"):
            return f"libvirt-{source.get('index')}-format"
    raise qc.QemuCallFailed(["libvirt"], 1, f"disk {target} has no node index in the domain's XML")


def hmp_ok(output: str) -> None:
    if output.strip():  # success prints to QEMU's stdout; the monitor only hears errors
        raise qc.QemuCallFailed(["qemu-io (HMP)"], 1, output)


def views(records: list[dict[str, Any]], domain_xml: str, blocks: int, workdir: Path | None,
          values_on_disk: qc.BlockValues) -> dict[str, Any]:
    """The disk's blocks now and at each snapshot in ``records`` (``parse_snapshot``'s)."""

    def file_view(path: str, snapshot: str | None = None) -> dict[str, str]:
        assert workdir is not None
        view = qc.read_view(Path(path), blocks, workdir / "view", force_share=True, snapshot_name=snapshot)
        return values_on_disk.read(view)

    # QEMU's HMP qemu-io prints reads to its stdout, not to the monitor; every write
    # was flushed, so the file holds it
    live = file_view(disk_source(domain_xml))
    points = {}
    unreadable = {str(block): "?" for block in range(blocks)}
    for r in records:
        internal = not r["external"]
        if not Path(r["file"]).exists():  # libvirt lists it, but its file is gone
            points[r["id"]] = unreadable
        elif internal and r["name"] not in qcow2_names(r["file"]):
            # libvirt 9.0 lists it, but QEMU never took it (a '"' in the name breaks HMP
            # savevm, whose error libvirt does not recognise): every block is unreadable
            points[r["id"]] = unreadable
        else:
            points[r["id"]] = file_view(r["file"], r["name"] if internal else None)
    return {"current": live, "snapshots": points}


def qcow2_names(path: str) -> set[str]:
    return {entry["name"] for entry in qc.snapshot_table(Path(path), force_share=True)}


# -- VMs of several disks (model/disks.py) ------------------------------------------------------
#
# Each disk is a file of the example's directory, written through its own virtio device while
# the domain runs (libvirt's alias virtio-disk<N>, N the target's index: vda 0, vdb 1, ...) and
# with qemu-io while it is off.  The NVRAM (OVMF's variable store) is a pflash device: the
# model's blocks are 4 KiB blocks from NVRAM_OFFSET on, a region OVMF leaves erased (0xff), so
# the firmware still boots; an erased block (all 0xff) reads as empty.

NVRAM_OFFSET = 0x60000
NVRAM_BLOCK = 4096
NVRAM_BLOCKS = (0x80000 - NVRAM_OFFSET) // NVRAM_BLOCK  # up to the end of the region OVMF leaves alone
NVRAM_QDEV = "/machine/system.flash1"  # q35's second pflash: the variable store
ERASED = 0xFF


def qdev(disk: Disk) -> str:
    """The device whose BlockBackend HMP qemu-io writes through."""
    if disk.role == "nvram":
        return NVRAM_QDEV
    return f"/machine/peripheral/virtio-disk{ord(disk.name[-1]) - ord('a')}/virtio-backend"


def nvram_writes(block: int, token: str) -> list[str]:
    """The qemu-io commands that fill one NVRAM block with ``token`` ("" erases it to 0xff)."""
    first, second = qc.halves(token) if token else (ERASED, ERASED)  # a token's bytes are never 0
    offset, half = NVRAM_OFFSET + block * NVRAM_BLOCK, NVRAM_BLOCK // 2
    if first == second:
        return [f"write -P {first} {offset} {NVRAM_BLOCK}"]
    return [f"write -P {first} {offset} {half}", f"write -P {second} {offset + half} {half}"]


def write_disk(session: Any, workdir: Path, values_on_disk: qc.BlockValues, disk: Disk, block: int,
               value: str, inactive: str | None = None) -> None:
    """Write one block of one disk of a VM of several disks (``inactive``: as for ``write``)."""
    state, _, _, domain_xml = session.call("listing")
    token = values_on_disk.stored(value)
    commands = nvram_writes(block, token) if disk.role == "nvram" else qc.qemu_io_write(block, token)
    if POWER.get(state) == "shutoff" or (inactive == "file" and disk.role != "nvram"):  # as ``write`` does
        file = disk_files(domain_xml)[file_key(disk)]
        qc.call(["qemu-io", "-f", image_format(file), *[w for c in commands for w in ("-c", c)], file])
        return
    log = workdir / "libvirt/log/qemu/snaptree.log"  # QEMU's stdout, where HMP qemu-io reports
    device = node(domain_xml, disk.name) if inactive and disk.role != "nvram" else f"-d {qdev(disk)}"
    for command in commands:
        before = qc.size(log)
        hmp_ok(session.call("hmp", f'qemu-io {device} "{command}"') or qc.refusals(log, before))
    hmp_ok(session.call("hmp", f'qemu-io {device} "flush"'))


def file_key(disk: Disk) -> str:
    """The disk's key in ``disk_files``: its target, or "nvram" for the variable store, whatever its name."""
    return "nvram" if disk.role == "nvram" else disk.name


def image_format(path: str) -> str:
    """A file's format, by the names the driver gives its files (``vdb.raw``, ``nvram.fd``: raw;
    every overlay is qcow2)."""
    return "raw" if path.endswith((".raw", ".fd")) else "qcow2"


class DiskReader:
    """Reads points in time of a VM of several disks, each file's snapshot table once."""

    def __init__(self, disks: tuple[Disk, ...], blocks: int, workdir: Path, values_on_disk: qc.BlockValues):
        self.disks, self.blocks, self.workdir, self.values = disks, blocks, workdir, values_on_disk
        self.tables: dict[str, set[str]] = {}

    def names_in(self, path: str) -> set[str]:
        if path not in self.tables:
            self.tables[path] = qcow2_names(path) if image_format(path) == "qcow2" and Path(path).exists() else set()
        return self.tables[path]

    def read(self, disk: Disk, path: str, snapshot: str | None = None) -> dict[str, str]:
        """One disk's blocks (keyed as the observation keys them) in a file or one of its internal snapshots."""
        if not Path(path).exists() or (snapshot is not None and snapshot not in self.names_in(path)):
            view = {str(block): "?" for block in range(self.blocks)}  # libvirt lists what QEMU never took
        elif disk.role == "nvram":
            view = self.read_nvram(path, snapshot)
        else:
            view = self.values.read(qc.read_view(Path(path), self.blocks, self.workdir / "view", force_share=True,
                                                 image_format=image_format(path), snapshot_name=snapshot))
        prefix = "" if disk.name == self.disks[0].name else f"{disk.name}:"
        return {prefix + block: value for block, value in view.items()}

    def read_nvram(self, path: str, snapshot: str | None) -> dict[str, str]:
        data = qc.image_bytes(Path(path), NVRAM_OFFSET + self.blocks * NVRAM_BLOCK, self.workdir / "nvram-view",
                              force_share=True, image_format=image_format(path), snapshot_name=snapshot)
        view, half = {}, NVRAM_BLOCK // 2
        for block in range(self.blocks):
            start = NVRAM_OFFSET + block * NVRAM_BLOCK
            parts = data[start:start + half], data[start + half:start + NVRAM_BLOCK]
            if any(len(part) != half or part.count(part[:1]) != half for part in parts):
                view[str(block)] = "?"
                continue
            first, second = parts[0][0], parts[1][0]
            if first == second == ERASED:  # never written, or written empty
                continue
            view[str(block)] = chr(first) if first == second else chr(first) + chr(second) if first and second else "?"
        return self.values.read(view)


def disk_views(records: list[dict[str, Any]], domain_xml: str, disks: tuple[Disk, ...], blocks: int,
               workdir: Path, values_on_disk: qc.BlockValues) -> dict[str, Any]:
    """Every disk's blocks now and at each snapshot in ``records`` (``parse_snapshot``'s, with
    ``parse_snapshot_disks``' "modes" and "files"); each record gets its "disks" (what it did
    with each disk: libvirt's <disks>, a disk it does not list 'no', the NVRAM 'internal' when
    its file holds the snapshot's tag)."""
    reader = DiskReader(disks, blocks, workdir, values_on_disk)
    now = disk_files(domain_xml)
    live: dict[str, str] = {}
    for d in disks:
        live |= reader.read(d, now[file_key(d)])
    points = {}
    for r in records:
        modes: dict[str, str] = {}
        view: dict[str, str] = {}
        for d in disks:
            path = r["files"].get(file_key(d)) or now[file_key(d)]
            mode = r["modes"].get(d.name, "no")
            if d.role == "nvram" and mode == "no" and r["name"] in reader.names_in(path):
                mode = "internal"
            modes[d.name] = mode
            if mode != "no":
                view |= reader.read(d, path, r["name"] if mode == "internal" else None)
        r["disks"] = modes
        points[r["id"]] = view
    return {"current": live, "snapshots": points}
