"""What the QEMU-based drivers share: block values as byte patterns, bounded process calls,
a scratch directory per example, and reading a qcow2 image's snapshot table and contents.

Names and other arguments always go to processes as separate argv items, never through a
shell; every call has a timeout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..driver import DriverUnavailable

BLOCK_SIZE = 64 * 1024  # one model block = one qcow2 cluster
CALL_TIMEOUT = 60.0  # seconds for any one qemu-img / qemu-io call
INSTALL = {"qemu-img": "apt-get install qemu-utils", "qemu-io": "apt-get install qemu-utils",
           "qemu-system-x86_64": "apt-get install qemu-system-x86"}


class QemuCallFailed(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str):
        self.argv, self.returncode, self.stderr = list(argv), returncode, stderr
        super().__init__(f"{argv[0]} exited {returncode}: {stderr.strip()}")

    @property
    def message(self) -> str:
        """QEMU's own message, without the program's name prefix."""
        prog = Path(self.argv[0]).name + ": "
        lines = self.stderr.strip().splitlines()
        # the first "prog: " line is the error; a usage error adds "Try 'prog --help'" after it
        text = next((line for line in lines if line.startswith(prog)), lines[0] if lines else "")
        text = text[len(prog):] if text.startswith(prog) else text
        return text or f"exit status {self.returncode}"


def missing(*programs: str) -> str | None:
    """None when every program is on PATH; otherwise what to install."""
    absent = [p for p in programs if shutil.which(p) is None]
    if not absent:
        return None
    commands = sorted({INSTALL.get(p, p) for p in absent})
    return f"{', '.join(absent)} not found: install with `{' && '.join(commands)}`"


def require(*programs: str) -> None:
    problem = missing(*programs)
    if problem:
        raise DriverUnavailable(problem)


def call(argv: Sequence[str], timeout: float = CALL_TIMEOUT, input: bytes | None = None) -> str:
    """Run a program; its stdout, or QemuCallFailed with its stderr."""
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise QemuCallFailed(argv, -1, f"timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        raise QemuCallFailed(argv, done.returncode, done.stderr.decode(errors="replace"))
    return done.stdout.decode(errors="replace")


# -- block values ---------------------------------------------------------------------------

def pattern(value: str) -> int:
    """The byte a block holding ``value`` is filled with ("" is zeros)."""
    if value == "":
        return 0
    if len(value) != 1 or not 0 < ord(value) < 256:
        raise ValueError(f"block value {value!r} has no byte pattern (one character, code 1..255)")
    return ord(value)


def decode_blocks(data: bytes, blocks: int) -> dict[str, str]:
    """The model's view of a raw disk: block -> value, empty blocks left out.  A block that
    is not one repeated byte reads as '?' (the model never writes such a block)."""
    view = {}
    for block in range(blocks):
        chunk = data[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]
        first = chunk[:1]
        if not first or chunk.count(first) != len(chunk):
            view[str(block)] = "?"
        elif first != b"\0":
            view[str(block)] = chr(first[0])
    return view


class BlockValues:
    """Block values as fill bytes for one example.  A one-character value is its own byte;
    scenario files also write longer values ("unsaved"), which get a byte each, from 0xFF down."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # a longer value -> the one-character value stored

    def stored(self, value: str) -> str:
        if value == "" or (len(value) == 1 and 0 < ord(value) < 256):
            return value
        return self.aliases.setdefault(value, chr(0xFF - len(self.aliases)))

    def read(self, view: dict[str, str]) -> dict[str, str]:
        """A view read from disk, with the longer values put back."""
        named = {byte: value for value, byte in self.aliases.items()}
        return {block: named.get(value, value) for block, value in view.items()}


def qemu_io_write(block: int, value: str) -> str:
    """The qemu-io command that fills one block with ``value`` (one character or "")."""
    byte = pattern(value)
    if byte == 0:
        return f"write -z {block * BLOCK_SIZE} {BLOCK_SIZE}"
    return f"write -P {byte} {block * BLOCK_SIZE} {BLOCK_SIZE}"


def qemu_io_writes(writes: Sequence[tuple[int, str]]) -> list[str]:
    """qemu-io command words for several block writes (one process for all of them)."""
    return [word for block, value in writes for word in ("-c", qemu_io_write(block, value))]


# -- images -------------------------------------------------------------------------------------

class Workspace:
    """A scratch directory for one example, removed with everything in it."""

    def __init__(self, prefix: str = "snaptree-"):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))

    def file(self, name: str) -> Path:
        return self.path / name

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def create_image(path: Path, blocks: int, backing: Path | None = None) -> None:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={BLOCK_SIZE}"]
    if backing is not None:
        argv += ["-b", str(backing), "-F", "qcow2"]
    call(argv + [str(path), str(blocks * BLOCK_SIZE)])


def snapshot_table(image: Path, force_share: bool = False) -> list[dict[str, Any]]:
    """The qcow2 snapshot table, in table order: id, name, vm-state-size, ..."""
    argv = ["qemu-img", "info", "--output=json", "-f", "qcow2"] + (["-U"] if force_share else []) + [str(image)]
    info = json.loads(call(argv))
    return list(info.get("snapshots", []))


def read_view(image: Path, blocks: int, scratch: Path, snapshot_id: str | None = None,
              force_share: bool = False, image_format: str = "qcow2", snapshot_name: str | None = None) -> dict[str, str]:
    """What the image (or one of its internal snapshots, by id or name) reads, block by block."""
    out = scratch.with_suffix(".raw")
    argv = ["qemu-img", "convert", "-f", image_format] + (["-U"] if force_share else [])
    if snapshot_id is not None:
        argv += ["-l", f"snapshot.id={snapshot_id}"]
    elif snapshot_name is not None:
        argv += ["-l", f"snapshot.name={snapshot_name.replace(',', ',,')}"]
    call(argv + ["-O", "raw", str(image), str(out)])
    try:
        return decode_blocks(out.read_bytes(), blocks)
    finally:
        os.unlink(out)
