"""What libvirt's QEMU driver keeps of a machine beyond the snapshot tree (``Machine.profile_state``):
the qcow2 tables of its image files, which file is which, and what a memory state carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..machine import Machine, ProfileState


@dataclass
class Qcow2Entry:
    """An internal snapshot in the disk's qcow2 table, as QEMU sees it (libvirt may not list it).
    QEMU 7.2 applies a snapshot by id first, then by name (qcow2's find_snapshot_by_id_or_name,
    for `loadvm`/`-loadvm` and `qemu-img snapshot -a` alike), and ids are highest + 1 [§4.3, §4.4]: a
    libvirt snapshot named "2" reverts to the disk and memory of qcow2 snapshot id 2 (seen)."""

    id: int
    name: str
    view: dict[int, str]  # the blocks that read other than empty, as it was taken
    image: str | None  # its memory image, if any
    snapshot: str | None  # the id of the listed snapshot it belongs to, if any
    file: str = "base"  # the image file that holds it
    left_out: tuple[int, ...] = ()  # the disks it does not hold


@dataclass
class QemuDriverState(ProfileState):
    """What libvirt's QEMU driver keeps beyond the snapshot tree (``Machine.profile_state``)."""

    qcow2: list[Qcow2Entry] = field(default_factory=list)
    # external (DISK_ONLY) snapshots: overlays, which their recorded state alone does not tell
    external: set[str] = field(default_factory=set)
    # libvirt 9.0.0, seen: HMP `savevm "NAME"` fails for a NAME with '"' ("extraneous
    # characters"), libvirt does not recognise that reply as an error and lists the snapshot anyway
    phantoms: set[str] = field(default_factory=set)
    # which image file is which: the file the domain's disk is now, the file each internal
    # snapshot is in, and each external snapshot's overlay (the file made when it was taken) and
    # base (its point in time)
    live: str = "base"
    file_of: dict[str, str] = field(default_factory=dict)
    overlay_of: dict[str, str] = field(default_factory=dict)
    base_of: dict[str, str] = field(default_factory=dict)
    # what the NVRAM held when an external snapshot saved the memory: the flash rides in the
    # migration stream, and loading it writes it back to the file [§9.18]
    flash: dict[str, dict[int, str]] = field(default_factory=dict)
    # 9.0.0, seen: a paused domain's external memory snapshot leaves it paused "due to migration"
    # until it runs or stops again [§9.22]
    migration_paused: bool = False
    # the disks the snapshot that paused it left out: their nodes stay writable in QEMU (9.0.0, seen);
    # that snapshot may be unlisted (NO_METADATA), so the current one does not say [§9.22]
    migration_left_out: tuple[int, ...] = ()
    # the files a commit removed, and the file of each disk that a phantom redefined snapshot's
    # definition names: a commit does not rewrite it (9.0.0, 11.3.0, seen) [§7.19]
    gone: set[str] = field(default_factory=set)
    named_files: dict[str, dict[int, str]] = field(default_factory=dict)
    # 11.3.0: the flash a revert loaded from a memory file, until the domain runs and QEMU writes it
    pending_flash: dict[int, str] | None = None

    def take(self, name: str, view: dict[int, str], image: str | None, snapshot: str | None,
             left_out: tuple[int, ...] = ()) -> None:
        # ids count per image file: each qcow2 file has its own snapshot table
        last = max((e.id for e in self.qcow2 if e.file == self.live), default=0)
        self.qcow2.append(Qcow2Entry(last + 1, name, view, image, snapshot, self.live, left_out))

    def tag(self, name: str) -> Qcow2Entry | None:
        """The first qcow2 snapshot of that name in the domain's disk (the one a lookup by name finds)."""
        return next((e for e in self.qcow2 if e.file == self.live and e.name == name), None)

    def found(self, name: str) -> Qcow2Entry | None:
        """The tag QEMU's savevm finds taken (bdrv_snapshot_find): it compares the name with
        each tag's name cut to 255 bytes (QEMUSnapshotInfo.name), so a longer one is never
        found, and a savevm of it adds another tag (11.3.0, seen; QEMU 7.2 and 10.0's block/snapshot.c)."""
        return self.tag(name) if len(name.encode()) <= 255 else None

    def removed_file(self, snapshot_id: str) -> tuple[int, str] | None:
        """A disk (index, file) whose file the snapshot's definition names and a commit removed."""
        return next(((i, file) for i, file in self.named_files.get(snapshot_id, {}).items() if file in self.gone),
                    None)

    def merged(self, old: str, new: str, followers: set[str]) -> None:
        """File ``old`` was committed into ``new``: whatever rested on it rests on ``new``; of the
        internal snapshots in it, libvirt rewrites the definitions of ``followers`` only."""
        self.live = new if self.live == old else self.live
        self.gone.add(old)
        for table in (self.file_of, self.overlay_of, self.base_of):
            for key, value in table.items():
                if value == old and (table is not self.file_of or key in followers):
                    table[key] = new
        for entry in self.qcow2:
            entry.file = new if entry.file == old else entry.file


def qemu_state(machine: Machine) -> QemuDriverState:
    """The driver's state of ``machine``, made (empty) on first use."""
    return machine.state(QemuDriverState)
