"""A live QEMU VM of several disks [semantics.md §9], for ``qemu_live``'s drivers: each disk's block
node, a write to one disk (an NVRAM's in the variable store's free area), pflash's write-back, and
the snapshot table read across nodes.  ``SeveralDisks`` is a mixin of ``LiveQemuDriver``, which holds
the state it reads."""

from __future__ import annotations

from typing import Any

from snaptree.model.disks import DEFAULT_LAYOUT, Disk

from ..driver import Result
from ..lifetime import Workspace
from .qemu_common import BlockValues, call, qemu_io_writes, read_view, snapshot_table
from .qemu_guest import export, nv_decode, nv_writes
from .qemu_process import Node, Qemu, failure, hmp_quote

STOPPED = {"paused": "paused", "restore-vm": "paused"}  # QEMU run states the model calls paused

# -- several disks [semantics.md §9] ----------------------------------------------------------------
#
# Each disk is a block node named after it, attached to a device (§9.8), in layout order, so that
# the VM state goes to the first disk (§9.3).  An NVRAM disk is OVMF's variable store on pflash1
# (``qemu_guest``: how its blocks hold tokens).
LAYOUTS: tuple[tuple[Disk, ...], ...] = (
    (Disk("vda"), Disk("vdb")),
    (Disk("vda"), Disk("vdb", format="raw")),
    (Disk("vda"), Disk("vdb"), Disk("vdc")),
    (Disk("vda"), Disk("pflash1", role="nvram")),
    (Disk("vda"), Disk("pflash1", role="nvram", format="raw")),
)


def group_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    """One snapshot command's entries on every node share its name and its creation time."""
    return entry["name"], entry["date-sec"], entry["date-nsec"]



class SeveralDisks:
    """The several-disk half of ``LiveQemuDriver``: the attributes below are its."""

    qemu: Qemu | None
    space: Workspace | None
    blocks: int
    tokens: dict[tuple[Any, ...], str]
    ram: str | None
    values_on_disk: BlockValues
    disks: tuple[Disk, ...]
    nodes: tuple[Node, ...]
    nv_pending: bool

    @property
    def several(self) -> bool:
        return self.disks != DEFAULT_LAYOUT

    @property
    def nvram(self) -> Node | None:
        return next((node for node in self.nodes if node.role == "nvram"), None)

    def node_of(self, disk: str | None) -> Node:
        return self.nodes[0] if disk is None else self.nodes[[d.name for d in self.disks].index(disk)]

    def write_disk(self, block: int, value: str, disk: str | None) -> Result:
        """A write to one disk of several: its node, through HMP qemu-io while QEMU runs."""
        if disk is not None and disk not in [d.name for d in self.disks]:
            return Result.error("invalid-argument", f"the VM has no disk '{disk}'")
        node = self.node_of(disk)
        token = self.values_on_disk.stored(value)
        if node.role == "nvram":
            if not 0 <= block < self.blocks:
                return Result.error("invalid-argument", f"write failed: block {block} is outside the disk")
            commands = nv_writes(block, token)
        else:
            commands = qemu_io_writes([(block, token)])[1::2]
        if self.qemu is None:
            words = [word for command in commands for word in ("-c", command)]
            out = call(["qemu-io", "-f", node.format, *words, str(node.path)])
            return Result(True) if out.startswith("wrote ") else failure(out)
        for command in commands:
            refused = self.qemu.qemu_io(command, node.name)
            if refused:
                return failure(refused)
        return Result(True)

    # -- pflash's write-back --------------------------------------------------------------------
    #
    # The pflash device keeps the variable store in RAM (part of the VM state) and a load arms a
    # handler that writes that whole copy back to the node at the next run-state change
    # (pflash_post_load).  The driver's writes go to the node behind the device's back, so the
    # copy never holds them and the write-back would undo them: the driver writes its blocks
    # again after each write-back, as a guest writing through the device would have them.

    def nv_region(self) -> dict[str, str]:
        """What the NVRAM's blocks hold now, as tokens."""
        node, qemu = self.nvram, self.qemu
        assert node is not None and self.space is not None
        if qemu is not None and node.format == "qcow2":
            qemu.hmp(f'qemu-io {node.name} "flush"')
        return nv_decode(export(node, self.space.file("nvram"), None, qemu is not None), self.blocks)

    def nv_restore(self, region: dict[str, str]) -> None:
        node, qemu = self.nvram, self.qemu
        assert node is not None and qemu is not None
        for block in range(self.blocks):
            for command in nv_writes(block, region.get(str(block), "")):
                refused = qemu.qemu_io(command, node.name)
                if refused:
                    raise RuntimeError(f"restoring NVRAM block {block} failed: {refused}")

    def cont(self) -> None:
        assert self.qemu is not None
        if not self.nv_pending:
            self.qemu.cmd("cont")
            return
        region = self.nv_region()
        self.qemu.cmd("cont")
        if self.qemu.status() == "running":
            self.nv_pending = False
            self.nv_restore(region)


    def groups(self) -> list[tuple[tuple[Any, ...], dict[str, dict[str, Any]]]]:
        """The snapshots of a VM of several disks: each snapshot command's entries on the nodes
        (node -> entry), in creation order."""
        assert self.qemu is not None
        found: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        tables = self.qemu.tables()
        for node in self.nodes:
            for entry in tables[node.name]:
                found.setdefault(group_key(entry), {}).setdefault(node.name, entry)
        return sorted(found.items(), key=lambda item: (item[0][1], item[0][2]))

    def group_id(self, entries: dict[str, dict[str, Any]]) -> str:
        """A snapshot's id: its entry's on the first node that has it (ids count per node)."""
        return next(entries[node.name]["id"] for node in self.nodes if node.name in entries)

    def newest_key(self) -> tuple[Any, ...]:
        return self.groups()[-1][0]

    def created_group(self) -> Result:
        key, entries = self.groups()[-1]
        return Result(True, created_id=self.group_id(entries), created_name=key[0])

    def offline_groups(self) -> list[tuple[tuple[Any, ...], dict[str, dict[str, Any]]]]:
        found: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        for node in self.nodes:
            if node.format != "qcow2":
                continue
            for entry in snapshot_table(node.path):
                found.setdefault(group_key(entry), {}).setdefault(node.name, entry)
        return sorted(found.items(), key=lambda item: (item[0][1], item[0][2]))

    def observe_disks(self) -> dict[str, Any]:
        """A VM of several disks: every node's table, its snapshots matched up across nodes, and
        every point in time of every disk."""
        assert self.space is not None
        shared = self.qemu is not None
        if self.qemu is None:
            power, groups = "shutoff", self.offline_groups()
        else:
            status = self.qemu.status()
            power, groups = STOPPED.get(status, status), self.groups()
            for node in self.nodes:
                if node.format == "qcow2":
                    self.qemu.hmp(f"qemu-io {node.name} {hmp_quote('flush')}")
        scratch = self.space.file("view")

        def read(node: Node, snapshot_id: str | None, index: int) -> dict[str, str]:
            if node.role == "nvram":
                view = nv_decode(export(node, scratch, snapshot_id, shared), self.blocks)
            else:
                view = read_view(node.path, self.blocks, scratch, snapshot_id, force_share=shared,
                                 image_format=node.format)
            view = self.values_on_disk.read(view)
            return view if index == 0 else {f"{node.name}:{block}": value for block, value in view.items()}

        current: dict[str, str] = {}
        for index, node in enumerate(self.nodes):
            current.update(read(node, None, index))
        views: dict[str, Any] = {"current": current, "snapshots": {}}
        snapshots = []
        for key, entries in groups:
            sid = self.group_id(entries)
            view: dict[str, str] = {}
            for index, node in enumerate(self.nodes):
                if node.name in entries:
                    view.update(read(node, entries[node.name]["id"], index))
            views["snapshots"][sid] = view
            memory = any(entry["vm-state-size"] > 0 for entry in entries.values())
            image = self.tokens.get(key, f"unmeasured-{sid}") if memory else None
            snapshots.append({"name": key[0], "id": sid, "parent": None, "children": [], "memory": memory,
                              "memory_image": image, "state": "", "description": "",
                              "disks": {node.name: "internal" if node.name in entries else "no" for node in self.nodes},
                              "memory_file": None})
        return {"current": None, "power": power, "ram": self.ram if shared else None, "snapshots": snapshots,
                "views": views}

