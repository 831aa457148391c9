"""A VM's disks: their layout, and how a machine addresses their blocks.

A machine has an ordered list of disks, each with a name (``vda``, ``vdb``...), a format
(``qcow2`` or ``raw``), a role (``disk``, or ``nvram`` for the firmware's variable store) and a
mode (how its hypervisor treats it in snapshots: ``normal``, or a vendor's word for a disk kept
out of them, such as ESX's ``independent-persistent`` or VirtualBox's ``writethrough``).

The overlays of :mod:`~snaptree.model.machine` are one sparse map over every disk: block ``b``
of disk ``i`` is the address ``i * blocks + b``.  A one-disk machine's addresses are its block
numbers, so it behaves (and costs) exactly as before disks were known; and a merge, a read or
a copy of an overlay is the same code whatever the number of disks.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("qcow2", "raw")
ROLES = ("disk", "nvram")
# What a snapshot did with one disk (libvirt's <disk snapshot=...> words, formatsnapshot.html):
# its point in time kept in the image (internal), in a new overlay file (external), or not at
# all (no: the disk is outside the snapshot, and a revert leaves it as it is).
SNAPSHOT_MODES = ("internal", "external", "no")


@dataclass(frozen=True)
class Disk:
    name: str
    format: str = "qcow2"
    role: str = "disk"
    mode: str = "normal"  # the profile's word for how snapshots treat it; "normal": they include it
    readonly: bool = False

    def describe(self) -> str:
        """``vdb (raw, nvram, writethrough, read-only)``: what differs from a plain qcow2 disk."""
        extras = [word for word, plain in ((self.format, "qcow2"), (self.role, "disk"), (self.mode, "normal"))
                  if word != plain] + (["read-only"] if self.readonly else [])
        return f"{self.name} ({', '.join(extras)})" if extras else self.name


DEFAULT_LAYOUT: tuple[Disk, ...] = (Disk("vda"),)


def layout_problem(disks: tuple[Disk, ...]) -> str | None:
    """What makes a layout impossible whatever the profile; None when it is a layout."""
    if not disks:
        return "a VM has at least one disk"
    names = [disk.name for disk in disks]
    for name in names:
        if not name or any(c.isspace() or c == ":" for c in name):
            return f"disk name '{name}' must be non-empty, without spaces or ':'"
        if names.count(name) > 1:
            return f"two disks are named '{name}'"
    for disk in disks:
        if disk.format not in FORMATS:
            return f"disk {disk.name}: format '{disk.format}' is not one of: {', '.join(FORMATS)}"
        if disk.role not in ROLES:
            return f"disk {disk.name}: role '{disk.role}' is not one of: {', '.join(ROLES)}"
    if sum(disk.role == "nvram" for disk in disks) > 1:
        return "a VM has at most one nvram disk"
    return None


def view_key(disks: tuple[Disk, ...], blocks: int, address: int) -> str:
    """How an observation names an address: ``3`` on the first disk (as before disks were
    known), ``vdb:3`` on the others."""
    index, block = divmod(address, blocks)
    return str(block) if index == 0 else f"{disks[index].name}:{block}"


def view_key_order(key: str) -> tuple[str, int]:
    """Sorts observed view keys: the first disk's blocks, then each other disk's, by number."""
    disk, _, block = key.rpartition(":")
    return disk, int(block)


# The layouts a check draws for a driver that can build any VM (the model's own driver): two
# disks, a raw second disk, one left out of snapshots ("excluded": each profile's word for it),
# a firmware variable store, three disks.
SAMPLE_LAYOUTS: tuple[tuple[Disk, ...], ...] = (
    (Disk("vda"), Disk("vdb")),
    (Disk("vda"), Disk("vdb", format="raw")),
    (Disk("vda"), Disk("vdb", mode="excluded")),
    (Disk("vda"), Disk("nvram", role="nvram")),
    (Disk("vda"), Disk("vdb"), Disk("vdc")),
)


def parse_layout(spec: str) -> tuple[Disk, ...]:
    """A layout from its short form: disks separated by commas, each a name followed by words
    after colons, e.g. ``vda,vdb:raw``, ``vda,pflash1:nvram``, ``vda,vdb:no``, ``vda,vdb:raw:ro``
    (a format, a role, ``ro`` for read-only, any other word is the mode).  Raises ValueError
    naming the problem."""
    disks = []
    for part in spec.split(","):
        name, *words = part.strip().split(":")
        fields: dict[str, object] = {"name": name}
        for word in words:
            key = "format" if word in FORMATS else "role" if word in ROLES else "readonly" if word == "ro" else "mode"
            if key in fields:
                raise ValueError(f"disk '{name}' has two {key}s ('{fields[key]}' and '{word}')")
            fields[key] = True if key == "readonly" else word
        disks.append(Disk(**fields))  # type: ignore[arg-type]
    layout = tuple(disks)
    problem = layout_problem(layout)
    if problem:
        raise ValueError(problem)
    return layout


def layout_spec(disks: tuple[Disk, ...]) -> str:
    """The short form :func:`parse_layout` reads."""
    def words(disk: Disk) -> str:
        extra = [w for w, plain in ((disk.format, "qcow2"), (disk.role, "disk"), (disk.mode, "normal")) if w != plain]
        return ":".join([disk.name, *extra, *(["ro"] if disk.readonly else [])])
    return ",".join(words(disk) for disk in disks)
