"""Operations: plain values that a profile applies to a machine.

Each operation has a ``tag``, the element name it has in scenario files.  Snapshot arguments
are given as a user types them (``ref``), plus optionally the profile's snapshot id (``id``),
which scenarios use where names repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .escape import printable, shown


@dataclass(frozen=True)
class Write:
    block: int
    value: str
    disk: str | None = None  # None: the VM's first disk
    tag = "write"


@dataclass(frozen=True)
class Start:
    tag = "start"


@dataclass(frozen=True)
class Pause:
    tag = "pause"


@dataclass(frozen=True)
class Resume:
    tag = "resume"


@dataclass(frozen=True)
class Shutdown:
    tag = "shutdown"


@dataclass(frozen=True)
class Suspend:
    """Save the running VM's memory to disk and stop it (ESX suspend, VirtualBox saveState)."""

    tag = "suspend"


@dataclass(frozen=True)
class CreateSnapshot:
    name: str | None = None
    memory: bool | None = None  # None: the profile's default for the power state
    description: str = ""
    flags: tuple[str, ...] = ()
    # per disk, what to do with it (("vdb", "no"), ...); a disk not named takes its default
    disks: tuple[tuple[str, str], ...] = ()
    memory_file: str | None = None  # the memory image goes to this file (libvirt's external memory)
    tag = "snapshot"


@dataclass(frozen=True)
class Revert:
    ref: str | None = None  # None: the current snapshot (ESX RevertToCurrentSnapshot)
    id: str | None = None
    flags: tuple[str, ...] = ()
    tag = "revert"


@dataclass(frozen=True)
class Delete:
    ref: str | None = None
    id: str | None = None
    flags: tuple[str, ...] = field(default=())
    tag = "delete"


@dataclass(frozen=True)
class Redefine:
    """Re-create a snapshot's metadata from its XML (libvirt's CREATE_REDEFINE): the disks and
    the VM are not touched.  Of an existing snapshot, a field left None is as libvirt dumps it;
    of a new one, None is: no parent, state "running", memory as the state has it, every disk
    internal.  ``parent=""`` asks for no parent (a root)."""

    name: str
    parent: str | None = None
    state: str | None = None  # <state>: running, paused, shutoff or disk-snapshot
    memory: bool | None = None  # <memory snapshot='internal'> or 'no'
    disks: tuple[tuple[str, str], ...] = ()  # <disks><disk name= snapshot=>
    flags: tuple[str, ...] = ()  # create flags beside REDEFINE: "current" makes it current
    tag = "redefine"


@dataclass(frozen=True)
class DeleteAll:
    """Remove every snapshot, keeping the current state (ESX RemoveAllSnapshots)."""

    tag = "delete-all"


Operation = Write | Start | Pause | Resume | Shutdown | Suspend | CreateSnapshot | Revert | Delete | DeleteAll | Redefine
POWER_OPS = (Start, Pause, Resume, Shutdown, Suspend)


def describe(op: Operation) -> str:
    """A short human-readable form, as shown in step listings: ``delete B [children]``,
    ``revert ""``, ``write 0=a`` (names and values as :func:`~snaptree.model.escape.shown` shows
    them, escaped as :func:`~snaptree.model.escape.printable` does)."""
    if isinstance(op, Write):
        where = f"{op.disk}:{op.block}" if op.disk is not None else str(op.block)
        return printable(f"write {where}={shown(op.value)}")
    if isinstance(op, CreateSnapshot):
        words = ["snapshot", shown(op.name) if op.name is not None else "(unnamed)"]
        if op.memory_file is not None:
            words.append(f"memory={shown(op.memory_file)}")
        elif op.memory is not None:
            words.append("memory" if op.memory else "disk-only")
        words += [f"{disk}:{mode}" for disk, mode in op.disks]
    elif isinstance(op, Redefine):
        words = ["redefine", shown(op.name)]
        if op.parent is not None:
            words.append(f"parent={shown(op.parent)}" if op.parent else "root")
        if op.state is not None:
            words.append(op.state)
        if op.memory is not None:
            words.append("memory" if op.memory else "no-memory")
        words += [f"{disk}:{mode}" for disk, mode in op.disks]
    elif isinstance(op, (Revert, Delete)):
        # an id is what the profile looks up when both are given
        target = f"id={op.id}" if op.id is not None else shown(op.ref) if op.ref is not None else "(current)"
        words = [op.tag, target]
    else:
        return op.tag
    if op.flags:
        words.append("[" + " ".join(op.flags) + "]")
    return printable(" ".join(words))
