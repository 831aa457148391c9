"""A live QEMU's internal snapshots, driven over QMP [semantics.md §5], checked on QEMU 7.2.22 and 10.0.2.

One ``qemu-system-x86_64`` per example (TCG, 64 MiB, no network, no display) holds the model's
disk as the qcow2 ``-blockdev`` node ``disk0``; the client is ``qemu.qmp`` on a unix socket in
the example's directory.  ``qemu-hmp`` saves, loads and deletes with HMP ``savevm``/``loadvm``/
``delvm`` (through ``human-monitor-command``; HMP errors come back as text), ``qemu-qmp`` with
the ``snapshot-save``/``-load``/``-delete`` jobs; a disk-only snapshot is
``blockdev-snapshot-internal-sync`` in both.  Guest writes go through HMP ``qemu-io`` while
QEMU runs and through a ``qemu-io`` process while it is off.  Power: start launches QEMU (a
second launch on a running VM is refused by the image lock), pause/resume are ``stop``/
``cont``, shutdown is ``quit``; with no QEMU, pause, resume and snapshot commands have no
monitor to go to and are refused without starting anything.

Observed: the snapshot table (ids, names, ``vm-state-size`` > 0 as "memory") from
``query-block`` (``qemu-img info`` while off); views with ``qemu-img convert -U -l
snapshot.id=ID`` after an HMP ``qemu-io flush`` (QEMU keeps qcow2 metadata in a write-back
cache); power from ``query-status`` (``restore-vm``, where a failed load leaves a running VM,
is stopped like ``paused``).

Memory is checked for real.  The guest is a boot sector on a second, read-only raw disk (a
read-only disk takes no part in snapshots; a writable raw one would make savevm fail) that
increments the 32-bit counter at 0x500 forever, so RAM content is the counter's value:

- a memory image's token is the counter in it: saving a running VM is bracketed by
  ``stop``/``cont`` and the counter is read between them.  savevm stops and restarts a
  running VM itself, before and after, success or not, so the bracket changes nothing QEMU
  would do; a snapshot of a paused VM is read without one.
- the live RAM's token (``ram``) is the image it came from: a fresh token per boot, the
  saved image after a save, the loaded one after a successful load, measured: a load of a
  paused VM leaves the counter exactly at the image's value.  A load of a running VM is sent
  as it is (no ``stop`` first: QEMU itself must be what leaves a failed load paused and a
  good one running); after a good one the counter is read once while running, then the
  driver stops, loads the same name again, reads the exact value and continues.  The first
  load cannot have restored that image if the counter right after it is below the image's
  value (it kept counting on from an older RAM): then ``ram`` becomes a token nothing else
  has.  Finer checks of the running load are timing guesses (QEMU lets the guest run 1-50 ms
  between its vm_start and the next monitor command), so the exact value comes from the
  paused load, which runs the same load_snapshot().

The process itself (its start, monitor, stop and lifetime) is ``qemu_process``'s.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
from pathlib import Path
from typing import Any

from snaptree.model import ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk
from snaptree.model.profiles.qemu_live import DISK_NODE

from .. import lifetime
from ..driver import Driver, DriverUnavailable, EnvironmentFailure, Result
from ..lifetime import Workspace
from .qemu_common import (
    BLOCK_SIZE,
    BlockValues,
    QemuCallFailed,
    call,
    create_image,
    halves,
    missing,
    qemu_io_writes,
    read_view,
    snapshot_table,
    versions,
)
from .qemu_process import (
    ExecuteError,
    Firmware,
    Node,
    Qemu,
    QEMUMonitorProtocol,
    QemuStartFailed,
    failure,
    hmp_quote,
)

# xor ax,ax; mov ds,ax; l: inc dword [0x500]; jmp l   [semantics.md §5.8]
BOOT_SECTOR = bytes.fromhex("31c08ed866ff060005ebf9")
BOOT_DISK_SIZE = 1 << 20  # SeaBIOS cannot read a 512-byte disk (0 cylinders); 1 MiB boots
WRAP = 1 << 32
STOPPED = {"paused": "paused", "restore-vm": "paused"}  # QEMU run states the model calls paused

# -- several disks [semantics.md §9] ----------------------------------------------------------------
#
# Each disk is a block node named after it, attached to a device (§9.8), in layout order, so that
# the VM state goes to the first disk (§9.3).  An NVRAM disk is OVMF's variable store on pflash1
# (OVMF_VARS_4M.fd as Debian's ovmf ships it, raw, or converted to qcow2), with OVMF_CODE_4M.fd
# read-only as pflash0; the guest is then an EFI application that counts at 0x500 as the boot
# sector does.  The NVRAM's blocks are 4 KiB pieces of its erased (0xff) area from 0x60000 on, so
# the firmware keeps its variables: a token's bytes are stored inverted there (empty = erased).
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
NV_BASE = 0x60000
NV_BLOCK = 4096
NV_SIZE = 0x84000  # OVMF_VARS_4M.fd
NV_BLOCKS = (NV_SIZE - NV_BASE) // NV_BLOCK

LAYOUTS: tuple[tuple[Disk, ...], ...] = (
    (Disk("vda"), Disk("vdb")),
    (Disk("vda"), Disk("vdb", format="raw")),
    (Disk("vda"), Disk("vdb"), Disk("vdc")),
    (Disk("vda"), Disk("pflash1", role="nvram")),
    (Disk("vda"), Disk("pflash1", role="nvram", format="raw")),
)


def efi_counter(counter: int = 0x500) -> bytes:
    """A PE32+ EFI application: SetWatchdogTimer(0, 0, 0, NULL) (the boot manager's 5-minute
    watchdog would reset the VM), then ``inc dword [counter]`` forever.  Padded to 8 KiB: QEMU
    reads ``-kernel`` as a Linux kernel first and wants more than its setup sectors; OVMF gets the
    file back whole over fw_cfg and starts it."""
    code = bytes.fromhex("4883ec28" "488b4260" "31c9" "31d2" "4531c0" "4531c9" "ff9000010000")  # rdx: SystemTable
    code += b"\xff\x04\x25" + struct.pack("<I", counter) + b"\xeb\xf7"  # l: inc dword [counter]; jmp l
    dos = b"MZ".ljust(0x3C, b"\0") + struct.pack("<I", 0x40)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 240, 0x0022)
    optional = struct.pack("<HBBIIIII", 0x20B, 0, 0, 0x200, 0, 0, 0x1000, 0x1000)
    optional += struct.pack("<QII", 0x10000000, 0x1000, 0x200) + bytes(12)
    optional += struct.pack("<IIIIHH", 0, 0x2000, 0x200, 0, 10, 0)  # subsystem 10: EFI application
    optional += struct.pack("<QQQQII", 0x10000, 0x10000, 0x10000, 0x10000, 0, 16) + bytes(128)
    section = b".text\0\0\0" + struct.pack("<IIIIIIHHI", len(code), 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    image = (dos + coff + optional + section).ljust(0x200, b"\0") + code.ljust(0x200, b"\0")
    return image.ljust(0x2000, b"\0")


def nv_writes(block: int, token: str) -> list[str]:
    """qemu-io commands that store ``token`` in an NVRAM block (bytes inverted: "" is erased)."""
    first, second = (b ^ 0xFF for b in halves(token))
    offset = NV_BASE + block * NV_BLOCK
    if first == second:
        return [f"write -P {first} {offset} {NV_BLOCK}"]
    half = NV_BLOCK // 2
    return [f"write -P {first} {offset} {half}", f"write -P {second} {offset + half} {half}"]


def nv_decode(data: bytes, blocks: int) -> dict[str, str]:
    """The tokens of an NVRAM's blocks (empty ones left out; neither empty nor a token: '?')."""
    view = {}
    half = NV_BLOCK // 2
    for block in range(blocks):
        start = NV_BASE + block * NV_BLOCK
        parts = data[start:start + half], data[start + half:start + NV_BLOCK]
        if any(len(part) != half or part.count(part[:1]) != half for part in parts):
            view[str(block)] = "?"
            continue
        first, second = parts[0][0] ^ 0xFF, parts[1][0] ^ 0xFF
        if first == second != 0:
            view[str(block)] = chr(first)
        elif first != second:
            view[str(block)] = chr(first) + chr(second) if first and second else "?"
    return view


def export(node: Node, scratch: Path, snapshot_id: str | None, force_share: bool) -> bytes:
    """A node's content (or one of its internal snapshots') as raw bytes."""
    out = scratch.with_suffix(".raw")
    argv = ["qemu-img", "convert", "-f", node.format] + (["-U"] if force_share else [])
    if snapshot_id is not None:
        argv += ["-l", f"snapshot.id={snapshot_id}"]
    call(argv + ["-O", "raw", str(node.path), str(out)])
    try:
        return out.read_bytes()
    finally:
        os.unlink(out)


def group_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    """One snapshot command's entries on every node share its name and its creation time."""
    return entry["name"], entry["date-sec"], entry["date-nsec"]


def tag(name: str | None) -> dict[str, str]:
    """A job's tag argument: left out when there is no name (QEMU then says it is missing)."""
    return {} if name is None else {"tag": name}


def token(counter: int) -> str:
    return f"{counter:#010x}"


def entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    """A table entry's identity: ids are reused, but not at the same creation time."""
    return entry["id"], entry["name"], entry["date-sec"], entry["date-nsec"]


# -- the drivers ------------------------------------------------------------------------------------

class LiveQemuDriver(Driver):
    description = "a live qemu-system-x86_64 (TCG) over QMP"
    observes = frozenset({"names", "ids", "power", "memory", "ram", "views", "disks"})
    operations = frozenset({"write", "start", "pause", "resume", "shutdown", "snapshot", "revert", "delete"})
    by_id = False  # loadvm, delvm and the jobs take a name only [§5]
    qemu_class = Qemu
    layouts = LAYOUTS

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        self.flags: dict[str, frozenset[str]] = {}
        self.boot_space: Workspace | None = None  # the boot disk, shared by every example
        self.space: Workspace | None = None
        self.qemu: Qemu | None = None
        self.blocks = 0
        self.tokens: dict[tuple[Any, ...], str] = {}  # table entry -> its memory image's token
        self.ram: str | None = None
        self.launches = 0
        self.values_on_disk = BlockValues()
        self.disks: tuple[Disk, ...] = DEFAULT_LAYOUT
        self.nodes: tuple[Node, ...] = ()
        self.nv_pending = False  # a load armed pflash's write-back of its RAM copy (see cont)

    @classmethod
    def availability(cls) -> str | None:
        problem = missing("qemu-system-x86_64", "qemu-img", "qemu-io")
        if problem is None and QEMUMonitorProtocol is None:
            problem = "the QMP client is missing: install with `pip install qemu.qmp` (snaptree's `real` extra)"
        return problem

    @classmethod
    def installed_versions(cls, options: dict[str, Any]) -> dict[str, str]:
        return versions("qemu-system-x86_64")

    # -- life of an example -------------------------------------------------------------------

    def setup(self, blocks: int, disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> None:
        problem = self.availability()
        if problem:
            raise DriverUnavailable(problem)
        nvram = any(disk.role == "nvram" for disk in disks)
        if nvram and not (OVMF_CODE.is_file() and OVMF_VARS.is_file()):
            raise DriverUnavailable(f"{OVMF_CODE} or {OVMF_VARS} not found: install with `apt-get install ovmf`")
        if nvram and blocks > NV_BLOCKS:
            raise EnvironmentFailure(f"an NVRAM disk holds at most {NV_BLOCKS} blocks here, not {blocks}")
        self.teardown()  # whatever an interrupted example left
        if self.boot_space is None:
            self.boot_space = lifetime.workspace(f"{self.name}-boot")
            sector = BOOT_SECTOR.ljust(510, b"\0") + b"\x55\xaa"
            with lifetime.machine_failures():
                self.boot_space.file("boot.raw").write_bytes(sector.ljust(BOOT_DISK_SIZE, b"\0"))
                self.boot_space.file("counter.efi").write_bytes(efi_counter())
        self.space = lifetime.workspace(self.name)
        self.blocks, self.tokens, self.ram, self.values_on_disk = blocks, {}, None, BlockValues()
        self.disks, self.nv_pending = disks, False
        if disks == DEFAULT_LAYOUT:
            self.nodes = (Node(DISK_NODE, self.space.file("disk.qcow2")),)
            create_image(self.image, blocks)
            return
        self.nodes = tuple(Node(d.name, self.space.file(f"{d.name}.{d.format}"), d.format, d.role, d.readonly)
                           for d in disks)
        for node in self.nodes:
            self.make_image(node, blocks)

    def make_image(self, node: Node, blocks: int) -> None:
        assert self.boot_space is not None
        with lifetime.machine_failures():
            if node.role == "nvram" and node.format == "raw":
                shutil.copyfile(OVMF_VARS, node.path)
            elif node.role == "nvram":
                pristine = self.boot_space.file("vars.qcow2")
                if not pristine.exists():
                    call(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", f"cluster_size={BLOCK_SIZE}",
                          str(OVMF_VARS), str(pristine)])
                shutil.copyfile(pristine, node.path)
            elif node.format == "raw":
                with open(node.path, "wb") as file:
                    file.truncate(blocks * BLOCK_SIZE)
            else:
                create_image(node.path, blocks)

    def teardown(self) -> None:
        try:
            if self.qemu is not None:
                self.qemu.quit()
        finally:
            self.qemu = None
            lifetime.release(self.space)
            self.space = None

    def close(self) -> None:
        try:
            self.teardown()
        finally:
            lifetime.release(self.boot_space)
            self.boot_space = None

    @property
    def image(self) -> Path:
        assert self.space is not None
        return self.space.file("disk.qcow2")

    @property
    def several(self) -> bool:
        return self.disks != DEFAULT_LAYOUT

    @property
    def nvram(self) -> Node | None:
        return next((node for node in self.nodes if node.role == "nvram"), None)

    def node_of(self, disk: str | None) -> Node:
        return self.nodes[0] if disk is None else self.nodes[[d.name for d in self.disks].index(disk)]

    def launch(self) -> Qemu:
        assert self.space is not None and self.boot_space is not None
        self.launches += 1
        if not self.several:
            return self.qemu_class(self.space, self.image, self.boot_space.file("boot.raw"), str(self.launches))
        firmware = Firmware(OVMF_CODE, self.boot_space.file("counter.efi")) if self.nvram else None
        return self.qemu_class(self.space, self.nodes[0].path, self.boot_space.file("boot.raw"), str(self.launches),
                               nodes=self.nodes, firmware=firmware)

    # -- operations -----------------------------------------------------------------------------

    def apply(self, op: ops.Operation) -> Result:
        try:
            result = self._apply(op)
        except ExecuteError as error:
            result = failure(str(error))
        except QemuCallFailed as error:
            result = failure(error.message)
        assert self.space is not None
        lifetime.raise_if_full(self.space.path, op, result)
        return result

    def _apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.Write):
            if self.several:
                return self.write_disk(op.block, op.value, op.disk)
            return self.write(op.block, op.value)
        if isinstance(op, ops.Start):
            return self.start()
        if self.qemu is None:  # nothing to send the command to
            return Result.error("invalid-state", f"cannot {op.tag}: no QEMU process is running")
        if isinstance(op, ops.Pause):
            self.qemu.cmd("stop")
        elif isinstance(op, ops.Resume):
            self.cont()
        elif isinstance(op, ops.Shutdown):
            self.qemu.quit()
            self.qemu, self.ram = None, None
        elif isinstance(op, ops.CreateSnapshot):
            return self.snapshot(op)
        elif isinstance(op, (ops.Revert, ops.Delete)):
            if op.id is not None:
                return Result.error("unsupported", "QEMU loads and deletes snapshots by name only")
            return self.revert(op.ref) if isinstance(op, ops.Revert) else self.checked(self.delete(op.ref))
        else:
            return Result.error("unsupported", f"no '{op.tag}' operation on a live QEMU")
        return Result(True)

    @staticmethod
    def checked(error: str | None) -> Result:
        return Result(True) if error is None else failure(error)

    def write(self, block: int, value: str) -> Result:
        words = qemu_io_writes([(block, self.values_on_disk.stored(value))])
        if self.qemu is None:
            out = call(["qemu-io", "-f", "qcow2", *words, str(self.image)])
            return Result(True) if out.startswith("wrote ") else failure(out)
        for command in words[1::2]:
            refused = self.qemu.qemu_io(command)
            if refused:
                return failure(refused)
        return Result(True)

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

    def start(self) -> Result:
        try:
            qemu = self.launch()
        except QemuStartFailed as error:
            return failure(str(error).splitlines()[0].removeprefix("qemu-system-x86_64: "))
        if self.qemu is not None:  # a second QEMU got the image: not what QEMU 7.2 does
            qemu.quit()
            return Result(True)
        self.qemu, self.nv_pending = qemu, False
        qemu.wait_for_boot()
        self.ram = f"boot-{self.launches}"
        return Result(True)

    def snapshot(self, op: ops.CreateSnapshot) -> Result:
        assert self.qemu is not None
        if op.memory is False:
            name = {} if op.name is None else {"name": op.name}
            self.qemu.cmd("blockdev-snapshot-internal-sync", device=self.nodes[0].name, **name)
            return self.created(self.qemu.table()[-1]) if not self.several else self.created_group()
        running = self.qemu.status() == "running"
        if running:
            self.qemu.cmd("stop")
        try:
            counter = self.qemu.counter()
            error = self.save(op.name) if not self.several else self.save_disks(op)
        finally:
            if running:
                self.cont()
        if error is not None:
            return failure(error)
        if self.several:
            result = self.created_group()
            self.tokens[self.newest_key()] = self.ram = token(counter)
            return result
        entry = self.qemu.table()[-1]
        self.tokens[entry_key(entry)] = self.ram = token(counter)
        return self.created(entry)

    def save_disks(self, op: ops.CreateSnapshot) -> str | None:
        return self.save(op.name)  # HMP savevm: every node [§9.3]

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

    @staticmethod
    def created(entry: dict[str, Any]) -> Result:
        """``entry`` is the table's last: qcow2 appends a new snapshot to the end of its table."""
        return Result(True, created_id=entry["id"], created_name=entry["name"])

    def revert(self, name: str | None) -> Result:
        qemu = self.qemu
        assert qemu is not None
        before = qemu.counter()
        running = qemu.status() == "running"
        # a running load writes pflash's stale copy back at once: what the NVRAM holds if the load leaves it out
        kept = self.nv_region() if self.nvram is not None and running else None
        error = self.load(name)
        if error is not None:
            return failure(error)  # the RAM stays what it was
        if qemu.status() != "running":
            self.ram = token(qemu.counter())
            self.nv_pending = self.nvram is not None
            return Result(True)
        after = qemu.counter()
        qemu.cmd("stop")
        try:
            error = self.load(name)  # the measuring load: paused, so the counter stays put
            loaded = qemu.counter()
        finally:
            if self.nvram is not None:
                self.nv_pending = True
                if kept is not None and not self.loads_nvram(name):
                    self.nv_restore(kept)
            self.cont()
        if error is not None:
            raise RuntimeError(f"loading {name!r} again while paused failed: {error}")
        # a load that restored nothing kept counting on from `before`: caught when that lies
        # below the image's value; a restored counter can never be below it
        restored = (after - loaded) % WRAP < WRAP // 2
        self.ram = token(loaded) if restored else f"not-restored-{before:#x}-{after:#x}"
        return Result(True)

    def loads_nvram(self, name: str | None) -> bool:
        """Whether a load of ``name`` takes the NVRAM's node back (HMP: every node)."""
        return True

    # the profile's commands: each returns QEMU's error message, or None
    def save(self, name: str | None) -> str | None:
        raise NotImplementedError

    def load(self, name: str | None) -> str | None:
        raise NotImplementedError

    def delete(self, name: str | None) -> str | None:
        raise NotImplementedError

    # -- observation ----------------------------------------------------------------------------

    def observe(self) -> dict[str, Any]:
        assert self.space is not None
        if self.several:
            return self.observe_disks()
        if self.qemu is None:
            power, table = "shutoff", snapshot_table(self.image)
        else:
            status = self.qemu.status()
            power, table = STOPPED.get(status, status), self.qemu.table()
            self.qemu.hmp(f'qemu-io {DISK_NODE} "flush"')  # qcow2 metadata to the file, for qemu-img
        shared = self.qemu is not None
        scratch_file = self.space.file("view")

        def view(snapshot_id: str | None) -> dict[str, str]:
            return self.values_on_disk.read(read_view(self.image, self.blocks, scratch_file, snapshot_id,
                                                      force_share=shared))

        views = {"current": view(None), "snapshots": {s["id"]: view(s["id"]) for s in table}}
        snapshots = []
        for entry in table:
            memory = entry["vm-state-size"] > 0
            image = self.tokens.get(entry_key(entry), f"unmeasured-{entry['id']}") if memory else None
            snapshots.append({"name": entry["name"], "id": entry["id"], "parent": None, "children": [],
                              "memory": memory, "memory_image": image, "state": "", "description": ""})
        return {"current": None, "power": power, "ram": self.ram if shared else None,
                "snapshots": snapshots, "views": views}


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
