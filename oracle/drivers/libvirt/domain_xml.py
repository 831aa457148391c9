"""The XML the driver exchanges with libvirt: the embedded QEMU domain it defines, and what it
reads back from libvirt's domain and snapshot descriptions, and the ``<domainsnapshot>`` of a
create with per-disk modes or of a redefine.  The model's own renderings are in
``snaptree.oracle.libvirt_xml``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from snaptree.model import ops
from snaptree.model.disks import Disk

from .. import qemu_common as qc


def disk_source(domain_xml: str) -> str:
    """The file the domain's disk is now (or was, in a snapshot's <domain>)."""
    source = etree.fromstring(domain_xml.encode()).find("devices/disk/source")
    if source is None or source.get("file") is None:
        raise qc.QemuCallFailed(["libvirt"], 1, "the domain's disk has no file source")
    return str(source.get("file"))


# the test driver's domain: one disk, vda, as the model's VM has (a snapshot's XML lists it, a
# redefine names it); the test driver keeps no data, so its file need not exist
TEST_DOMAIN = ("<domain type='test'><name>snaptree</name><memory unit='MiB'>8</memory><os><type>hvm</type></os>"
               "<devices><disk type='file' device='disk'><source file='/snaptree/vda.qcow2'/>"
               "<target dev='vda' bus='virtio'/></disk></devices></domain>")


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


CREATION_TIME = "1269980040"  # a redefined snapshot's: the day of the seed's discussion


def redefine_xml(op: ops.Redefine, dumped: str | None, domain: str, disks: tuple[Disk, ...]) -> str:
    """The ``<domainsnapshot>`` a redefine sends: the snapshot's own XML as libvirt dumped it
    (None: a new one, made of the domain's XML) with what the operation changes."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    if dumped is None:
        root = etree.Element("domainsnapshot")
        etree.SubElement(root, "name").text = op.name
        etree.SubElement(root, "state").text = "running"
        etree.SubElement(root, "creationTime").text = CREATION_TIME
        new_disks = etree.SubElement(root, "disks")
        for disk in disks:
            if disk.role == "disk":
                etree.SubElement(new_disks, "disk", name=disk.name, snapshot="no" if disk.mode == "no" else "internal")
        root.append(etree.fromstring(domain.encode(), parser))
    else:
        root = etree.fromstring(dumped.encode(), parser)
    state, created = _child(root, "state"), _child(root, "creationTime")  # libvirt's dump has both
    if op.state is not None:
        state.text = op.state
    if op.parent is not None:
        for old in root.findall("parent"):
            root.remove(old)
        if op.parent:
            parent = etree.Element("parent")
            etree.SubElement(parent, "name").text = op.parent
            state.addnext(parent)
    memory = root.find("memory")
    if op.memory is not None:
        if memory is None:
            memory = etree.Element("memory")
            created.addnext(memory)
        memory.attrib.clear()
        memory.set("snapshot", "internal" if op.memory else "no")
    listed: etree._Element | None = root.find("disks")
    for name, mode in op.disks:
        if listed is None:
            listed = etree.Element("disks")
            (memory if memory is not None else created).addnext(listed)
        element = next((d for d in listed.findall("disk") if d.get("name") == name), None)
        if element is None:
            element = etree.SubElement(listed, "disk", name=name)
        for child in list(element):
            element.remove(child)
        element.set("snapshot", mode)
    return etree.tostring(root, encoding="unicode")


def _child(root: etree._Element, tag: str) -> etree._Element:
    found = root.find(tag)
    if found is None:
        raise ValueError(f"libvirt's snapshot XML has no <{tag}>")
    return found
