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

The process itself (its start, monitor, stop and lifetime) is ``qemu_process``'s; the guest, the
firmware and the NVRAM's blocks are ``qemu_guest``'s; a VM of several disks (its nodes, pflash's
write-back, the table across nodes) is ``qemu_live_disks``'s; the two drivers, ``qemu-hmp`` and
``qemu-qmp``, and their save, load and delete commands are in ``qemu_hmp_qmp``.
"""

from __future__ import annotations

import shutil
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
    missing,
    qemu_io_writes,
    read_view,
    snapshot_table,
    versions,
)
from .qemu_guest import (
    BOOT_DISK_SIZE,
    BOOT_SECTOR,
    NV_BLOCKS,
    OVMF_CODE,
    OVMF_VARS,
    WRAP,
    counter_bios,
    efi_counter,
    token,
)
from .qemu_live_disks import LAYOUTS, STOPPED, SeveralDisks
from .qemu_process import (
    ExecuteError,
    Firmware,
    Node,
    Qemu,
    QEMUMonitorProtocol,
    QemuStartFailed,
    failure,
)


def entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    """A table entry's identity: ids are reused, but not at the same creation time."""
    return entry["id"], entry["name"], entry["date-sec"], entry["date-nsec"]


# -- the drivers ------------------------------------------------------------------------------------

class LiveQemuDriver(SeveralDisks, Driver):
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
        self.nv_pending = False  # a load armed pflash's write-back of its RAM copy (see SeveralDisks.cont)

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
                self.boot_space.file("boot.bios").write_bytes(counter_bios())
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
        if running and self.qemu.status() == "running":
            # the next save must not read the same counter: a starved vCPU may not have run
            # between this cont and the next stop (seen once under CI's load)
            self.qemu.wait_past(counter)
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
