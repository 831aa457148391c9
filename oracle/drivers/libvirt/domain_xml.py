"""The XML the driver exchanges with libvirt: the embedded QEMU domain it defines, and what it
reads back from libvirt's domain and snapshot descriptions.  The ``<domainsnapshot>`` it sends,
and the model's own renderings, are in ``snaptree.oracle.libvirt_xml``."""

from __future__ import annotations

from collections.abc import Callable
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


# -- VMs of several disks (model/disks.py) ------------------------------------------------------

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"  # Debian's ovmf: the raw template of the variable store


def disk_element(name: str, file: Path, image_format: str, snapshot_no: bool = False, readonly: bool = False) -> str:
    snapshot = " snapshot='no'" if snapshot_no else ""
    return (f"    <disk type='file' device='disk'{snapshot}>\n"
            f"      <driver name='qemu' type='{image_format}'/>\n"
            f"      <source file='{file}'/>\n"
            f"      <target dev='{name}' bus='virtio'/>\n" + ("      <readonly/>\n" if readonly else "") +
            "    </disk>\n")


def qemu_domain_of(disks: str, nvram: Path | None = None, nvram_format: str = "raw") -> str:
    """A tiny TCG domain with these ``<disk>`` elements, and UEFI firmware when it has an NVRAM.
    UEFI needs q35 and ACPI ("UEFI requires ACPI on this architecture").  A raw variable store:
    firmware auto-selection (``<os firmware='efi'>``, secure boot off), the form both 9.0 and
    11.3 take; a qcow2 one (11.3 only, which cannot convert the raw template itself): an
    explicit loader and ``<nvram format='qcow2'>`` over a file made beforehand."""
    if nvram is None:
        os_xml, features, memory = "<os><type arch='x86_64' machine='pc'>hvm</type></os>", "", 32
    else:
        memory, features = 128, "\n  <features><acpi/></features>"
        if nvram_format == "raw":
            os_xml = ("<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type><firmware>"
                      "<feature enabled='no' name='secure-boot'/><feature enabled='no' name='enrolled-keys'/>"
                      f"</firmware><nvram>{nvram}</nvram></os>")
        else:
            os_xml = (f"<os><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>"
                      f"{OVMF_CODE}</loader><nvram format='{nvram_format}'>{nvram}</nvram></os>")
    return f"""<domain type='qemu'>
  <name>snaptree</name>
  <memory unit='MiB'>{memory}</memory>
  {os_xml}{features}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{disks}    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>"""


def disk_files(domain_xml: str) -> dict[str, str]:
    """Each disk's file in a domain's XML (now, or in a snapshot's <domain>), by target name;
    the NVRAM's under the key "nvram" (``<os><nvram>``)."""
    top = etree.fromstring(domain_xml.encode())
    root = top.find("domain") if top.tag == "domainsnapshot" else top
    if root is None:
        return {}
    files = {}
    for element in root.findall("devices/disk"):
        target, source = element.find("target"), element.find("source")
        if target is not None and source is not None and source.get("file"):
            files[str(target.get("dev"))] = str(source.get("file"))
    nvram = root.findtext("os/nvram")
    if nvram:
        files["nvram"] = nvram.strip()
    return files


def parse_snapshot_disks(text: str) -> dict[str, Any]:
    """What a snapshot of a VM of several disks says beyond ``parse_snapshot``: the mode of each
    disk it lists (``<disks>``), each disk's file in its ``<domain>``, and its memory file."""
    root = etree.fromstring(text.encode())
    memory = root.find("memory")
    return {
        "modes": {str(d.get("name")): str(d.get("snapshot")) for d in root.findall("disks/disk")},
        "files": disk_files(text),
        "memory_path": memory.get("file") if memory is not None and memory.get("snapshot") == "external" else None,
    }


def snapshot_create_xml(base: str, disks: tuple[tuple[str, str], ...], memory_file: Path | None,
                        overlay: Callable[[str], Path]) -> str:
    """The create XML ``base`` (``create_xml``'s) with per-disk modes (``<disks>``; an external
    disk gets the file ``overlay(disk)``) and an external memory file."""
    root = etree.fromstring(base.encode())
    if memory_file is not None:
        memory = root.find("memory")
        if memory is None:
            memory = etree.SubElement(root, "memory")
        memory.attrib.clear()
        memory.set("snapshot", "external")
        memory.set("file", str(memory_file))
    if disks:
        element = etree.SubElement(root, "disks")
        for name, mode in disks:
            disk = etree.SubElement(element, "disk", name=name, snapshot=mode)
            if mode == "external":
                etree.SubElement(disk, "source", file=str(overlay(name)))
    return etree.tostring(root, encoding="unicode")
