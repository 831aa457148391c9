"""The XML the driver exchanges with libvirt: the embedded QEMU domain it defines, and what it
reads back from libvirt's domain and snapshot descriptions.  The ``<domainsnapshot>`` it sends,
and the model's own renderings, are in ``snaptree.oracle.libvirt_xml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from .. import qemu_common as qc


def disk_source(domain_xml: str) -> str:
    """The file the domain's disk is now (or was, in a snapshot's <domain>)."""
    source = etree.fromstring(domain_xml.encode()).find("devices/disk/source")
    if source is None or source.get("file") is None:
        raise qc.QemuCallFailed(["libvirt"], 1, "the domain's disk has no file source")
    return str(source.get("file"))


def parse_snapshot(text: str) -> dict[str, Any]:
    """One ``getXMLDesc`` as a record of the observation shape (plus the disk's file)."""
    root = etree.fromstring(text.encode())
    memory = root.find("memory")
    domain_disk = root.find("domain/devices/disk/source")
    return {
        "name": root.findtext("name"),
        "id": root.findtext("name"),
        "parent": root.findtext("parent/name"),
        "children": [],
        "memory": memory is not None and memory.get("snapshot") in ("internal", "external"),
        "memory_image": None,
        "state": root.findtext("state"),
        "description": root.findtext("description") or "",
        "file": domain_disk.get("file") if domain_disk is not None else None,
        "external": root.find("disks/disk[@snapshot='external']") is not None,
    }


def qemu_domain(disk: Path) -> str:
    """A tiny TCG domain with no OS: SeaBIOS finds nothing to boot and waits."""
    return f"""<domain type='qemu'>
  <name>snaptree</name>
  <memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>"""
