"""The two live QEMU drivers, by the commands that save, load and delete a VM's snapshots
[semantics.md §5]: ``qemu-hmp`` with HMP ``savevm``/``loadvm``/``delvm`` (through
``human-monitor-command``; HMP errors come back as text), ``qemu-qmp`` with the
``snapshot-save``/``-load``/``-delete`` jobs.  Everything else is ``qemu_live.LiveQemuDriver``'s."""

from __future__ import annotations

import time
from typing import Any

from snaptree.model import ops
from snaptree.model.disks import Disk
from snaptree.model.profiles.qemu_live import DISK_NODE

from .qemu_live import LiveQemuDriver
from .qemu_live_disks import LAYOUTS
from .qemu_process import ExecuteError, hmp_quote


def tag(name: str | None) -> dict[str, str]:
    """A job's tag argument: left out when there is no name (QEMU then says it is missing)."""
    return {} if name is None else {"tag": name}


class QemuHmpDriver(LiveQemuDriver):
    name = "qemu-hmp"
    description = "a live QEMU: HMP savevm/loadvm/delvm through QMP human-monitor-command"
    profiles = ("qemu-hmp",)

    def save(self, name: str | None) -> str | None:
        assert self.qemu is not None
        if name is None:
            self.await_fresh_auto_name()
        return self.qemu.hmp("savevm" if name is None else f"savevm {hmp_quote(name)}") or None

    def await_fresh_auto_name(self) -> None:
        """savevm names an unnamed snapshot after the local wall-clock second (vm-YYYYMMDDhhmmss)
        and does not overwrite then: two within one second share a name.  The model's clock
        moves one second per operation, so wait for a second no snapshot is named after."""
        assert self.qemu is not None
        taken = {entry["name"] for entry in self.qemu.table()}
        while time.strftime("vm-%Y%m%d%H%M%S") in taken:
            time.sleep(0.02)

    def load(self, name: str | None) -> str | None:
        return self.command("loadvm", name)

    def delete(self, name: str | None) -> str | None:
        return self.command("delvm", name)

    def command(self, verb: str, name: str | None) -> str | None:
        assert self.qemu is not None
        return self.qemu.hmp(verb if name is None else f"{verb} {hmp_quote(name)}") or None


class QemuQmpDriver(LiveQemuDriver):
    name = "qemu-qmp"
    description = "a live QEMU: QMP snapshot-save/snapshot-load/snapshot-delete jobs"
    profiles = ("qemu-qmp",)
    jobs = 0

    layouts = LAYOUTS + ((Disk("vda"), Disk("vdb", mode="no")),)
    disk_modes = frozenset({"internal", "no"})  # snapshot-save's devices [§9.6]

    def run_job(self, command: str, devices: list[str] | None = None, /, **args: Any) -> str | None:
        assert self.qemu is not None
        self.jobs += 1
        try:
            return self.qemu.job(command, f"snaptree-{self.jobs}", devices=devices or [DISK_NODE], **args)
        except ExecuteError as error:  # refused before a job exists: "Parameter 'tag' is missing"
            return str(error)

    def save(self, name: str | None) -> str | None:
        return self.run_job("snapshot-save", vmstate=DISK_NODE, **tag(name))

    def save_disks(self, op: ops.CreateSnapshot) -> str | None:
        """devices: the disks whose mode is not 'no' (by default every writable disk of mode
        'normal')."""
        asked = dict(op.disks)
        devices = [node.name for disk, node in zip(self.disks, self.nodes, strict=True)
                   if (asked.get(disk.name) or ("no" if disk.mode == "no" or disk.readonly else "internal")) != "no"]
        # the VM state to the first disk, or the first one the snapshot takes when it leaves that out
        return self.run_job("snapshot-save", devices, vmstate=(devices or [self.nodes[0].name])[0], **tag(op.name))

    def snapshot_devices(self, name: str | None) -> tuple[list[str], str]:
        """The devices of the snapshot a load or delete of ``name`` goes to (the first of that
        name), and the node holding its VM state; for a name no snapshot has, the first disk."""
        first = self.nodes[0].name
        for key, entries in self.groups():
            if key[0] == name:
                devices = [node.name for node in self.nodes if node.name in entries]
                vmstate = next((n for n in devices if entries[n]["vm-state-size"] > 0), devices[0])
                return devices, vmstate
        return [first], first

    def loads_nvram(self, name: str | None) -> bool:
        nvram = self.nvram
        return nvram is not None and nvram.name in self.snapshot_devices(name)[0]

    def load(self, name: str | None) -> str | None:
        if self.several:
            devices, vmstate = self.snapshot_devices(name)
            return self.run_job("snapshot-load", devices, vmstate=vmstate, **tag(name))
        return self.run_job("snapshot-load", vmstate=DISK_NODE, **tag(name))

    def delete(self, name: str | None) -> str | None:
        if self.several:
            return self.run_job("snapshot-delete", self.snapshot_devices(name)[0], **tag(name))
        return self.run_job("snapshot-delete", **tag(name))
