"""The VMs of several disks the embedded QEMU driver builds (profiles libvirt-qemu and
libvirt-qemu-11.3): the layouts each libvirt version can declare, and the files and domain XML of
one of them.  How their blocks are written and read is ``disk``'s; the XML itself, ``domain_xml``'s."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from snaptree.model.disks import Disk

from ...driver import DriverUnavailable, EnvironmentFailure
from .. import qemu_common as qc
from . import disk
from . import domain_xml as dxml

# The VMs the embedded QEMU driver builds besides one qcow2 disk: two disks, a raw second one, one
# the domain keeps out of snapshots (<disk snapshot='no'>), three, and UEFI firmware with a raw
# variable store; libvirt 11.3 also a qcow2 one (9.0 drops <nvram format=...>).
LAYOUTS_9_0: tuple[tuple[Disk, ...], ...] = (
    (Disk("vda"), Disk("vdb")),
    (Disk("vda"), Disk("vdb", format="raw")),
    (Disk("vda"), Disk("vdb", mode="no")),
    (Disk("vda"), Disk("vdb"), Disk("vdc")),
    (Disk("vda"), Disk("nvram", role="nvram", format="raw")),
)
LAYOUTS_11_3 = LAYOUTS_9_0 + ((Disk("vda"), Disk("nvram", role="nvram", format="qcow2")),)


def nvram_named(disks: tuple[Disk, ...]) -> tuple[Disk, ...]:
    """The layout with its NVRAM named "nvram": whatever a scenario calls it, it is the variable store."""
    return tuple(dataclasses.replace(d, name="nvram") if d.role == "nvram" else d for d in disks)


def make_disks(workdir: Path, blocks: int, disks: tuple[Disk, ...]) -> tuple[Path, tuple[Path, ...], str]:
    """The files of a VM of several disks: the first disk's, the others', and the domain."""
    files, elements, nvram, nvram_format = [], "", None, "raw"
    for d in disks:
        if d.role == "nvram":
            if blocks > disk.NVRAM_BLOCKS:
                raise EnvironmentFailure(f"the NVRAM's free region holds {disk.NVRAM_BLOCKS} blocks of "
                                         f"{disk.NVRAM_BLOCK} bytes, not {blocks}: check with --blocks "
                                         f"{disk.NVRAM_BLOCKS} or fewer")
            if not Path(dxml.OVMF_VARS).exists():
                raise DriverUnavailable(f"{dxml.OVMF_VARS} not found: apt-get install ovmf")
            nvram, nvram_format = workdir / ("nvram.fd" if d.format == "raw" else "nvram.qcow2"), d.format
            qc.call(["qemu-img", "convert", "-f", "raw", "-O", d.format, dxml.OVMF_VARS, str(nvram)])
            files.append(nvram)
            continue
        path = workdir / f"{d.name}.{d.format}"
        if d.format == "qcow2":
            qc.create_image(path, blocks)
        else:
            qc.call(["qemu-img", "create", "-q", "-f", "raw", str(path), str(blocks * qc.BLOCK_SIZE)])
        files.append(path)
        elements += dxml.disk_element(d.name, path, d.format, d.mode == "no", d.readonly)
    return files[0], tuple(files[1:]), dxml.qemu_domain_of(elements, nvram, nvram_format)
