"""What the QEMU-based drivers share: block values as byte patterns, bounded process calls,
and reading a qcow2 image's snapshot table and contents.

Names and other arguments always go to processes as separate argv items, never through a
shell; every call has a timeout."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..driver import DriverUnavailable, EnvironmentFailure
from ..lifetime import machine_failures, raise_if_machine_failure
from . import image_reader

BLOCK_SIZE = 64 * 1024  # one model block = one qcow2 cluster
CALL_TIMEOUT = 60.0  # seconds for any one qemu-img / qemu-io call
# how points in time are read: "reader" (in this process, qemu-img where it cannot), "qemu-img"
# (a process each, as before the reader: the benchmarks' baseline), "both" (and compare: tests)
READ_WITH = os.environ.get("SNAPTREE_READ_WITH", "reader")
# what the reader raises on an image it does not know (or a damaged one): qemu-img reads it instead
READER_FAILURES = (image_reader.Unsupported, OSError, struct.error, UnicodeDecodeError)
INSTALL = {"qemu-img": "apt-get install qemu-utils", "qemu-io": "apt-get install qemu-utils",
           "qemu-system-x86_64": "apt-get install qemu-system-x86"}


# qemu-io's refusals of a write outside the disk: past its end, or an offset it cannot parse
WRITE_REFUSALS = (("write failed", "invalid-argument"), ("Parsing error", "invalid-argument"))


def write_refusal(message: str, otherwise: str) -> str:
    """The model's kind for a qemu-io refusal of a write, else ``otherwise``."""
    return next((kind for text, kind in WRITE_REFUSALS if text in message), otherwise)


def refusals(log: Path, since: int) -> str:
    """The write refusals a QEMU's HMP qemu-io printed on its stdout (``log``) after offset
    ``since``: HMP qemu-io reports on QEMU's stdout, never to the monitor."""
    try:
        with open(log, "rb") as file:
            file.seek(since)
            printed = file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(line for line in printed.splitlines() if any(text in line for text, _ in WRITE_REFUSALS))


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


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


@functools.cache
def version(program: str) -> str | None:
    """The QEMU version a QEMU program reports ("qemu-img version 10.0.2 (Debian ...)" ->
    "10.0.2"); None when it is missing or says no version.  Asked once per process."""
    if shutil.which(program) is None:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, timeout=CALL_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(rb"version (\d+(?:\.\d+)+)", done.stdout)
    return found.group(1).decode() if found else None


def versions(program: str) -> dict[str, str]:
    """``{"QEMU": VERSION}`` from one QEMU program, or nothing when it reports none."""
    found = version(program)
    return {} if found is None else {"QEMU": found}


class OfflineQemu:
    """What the drivers that work on image files (qemu-img, qemu-io) share: they need those two
    programs, and qemu-img tells the version."""

    @classmethod
    def availability(cls) -> str | None:
        return missing("qemu-img", "qemu-io")

    @classmethod
    def installed_versions(cls, options: dict[str, Any]) -> dict[str, str]:
        return versions("qemu-img")


def require(*programs: str) -> None:
    problem = missing(*programs)
    if problem:
        raise DriverUnavailable(problem)


def run(argv: Sequence[str], timeout: float = CALL_TIMEOUT, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a program to its end (QemuCallFailed when it times out); a failure of the machine
    (a full disk) in what it prints is ``EnvironmentFailure``, not the program's answer."""
    try:
        with machine_failures():  # e.g. E2BIG: an argument list this machine cannot pass
            done = subprocess.run(list(argv), capture_output=True, timeout=timeout, input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise QemuCallFailed(argv, -1, f"timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        raise_if_machine_failure(done.stderr.decode(errors="replace") + done.stdout.decode(errors="replace"),
                                 Path(argv[0]).name)
    return done


def call(argv: Sequence[str], timeout: float = CALL_TIMEOUT, input: bytes | None = None) -> str:
    """Run a program; its stdout, or QemuCallFailed with its stderr."""
    done = run(argv, timeout, input)
    if done.returncode != 0:
        # qemu-io says some refusals ("Parsing error") on stdout only
        raise QemuCallFailed(argv, done.returncode, (done.stderr or done.stdout).decode(errors="replace"))
    return done.stdout.decode(errors="replace")


# -- block values ---------------------------------------------------------------------------
#
# A block holds a token: "" (zeros), one character of code 1..255 (the block filled with that
# byte), or two different such characters (the first half filled with one, the second half
# with the other): 255 one-byte values and 64,770 two-byte ones for longer values.

HALF = BLOCK_SIZE // 2


def halves(token: str) -> tuple[int, int]:
    """The fill bytes of a token's two halves ("" is zeros)."""
    codes = [ord(c) for c in token] or [0]
    first, second = codes[0], codes[-1]
    if len(codes) > 2 or not (0 <= first < 256 and 0 <= second < 256) or (len(codes) == 2 and first == second):
        raise ValueError(f"block token {token!r} is not '', one byte or two different bytes")
    return first, second


def decode_blocks(data: bytes, blocks: int) -> dict[str, str]:
    """The tokens of a raw disk: block -> token, empty blocks left out.  A block that is
    neither empty nor a token reads as '?' (the model never writes such a block)."""
    view = {}
    for block in range(blocks):
        start = block * BLOCK_SIZE
        parts = data[start:start + HALF], data[start + HALF:start + BLOCK_SIZE]
        if any(len(part) != HALF or part.count(part[:1]) != HALF for part in parts):
            view[str(block)] = "?"
        elif parts[0][0] == parts[1][0] != 0:
            view[str(block)] = chr(parts[0][0])
        elif parts[0][0] != parts[1][0]:
            view[str(block)] = chr(parts[0][0]) + chr(parts[1][0]) if parts[0][0] and parts[1][0] else "?"
    return view


class BlockValues:
    """Block values as tokens for one example.  A one-character value of code 1..255 is its
    own token; any other value (scenario files write "unsaved") gets a two-byte token."""

    PAIRS = 255 * 254

    def __init__(self, values: Sequence[str] = ()) -> None:
        self.aliases: dict[str, str] = {}  # a value -> its two-byte token
        self.known: dict[str, None] = {}  # every token this example may read, in order
        for value in values:
            self.stored(value)

    def stored(self, value: str) -> str:
        if value == "" or (len(value) == 1 and 0 < ord(value) < 256):
            token = value
        elif value in self.aliases:
            token = self.aliases[value]
        else:
            n = len(self.aliases)
            if n >= self.PAIRS:
                raise EnvironmentFailure(f"more than {self.PAIRS} distinct block values in one history: "
                                         "a 64 KiB block of the real disk holds no more")
            first = 0xFF - n // 254
            token = self.aliases[value] = chr(first) + chr([b for b in range(0xFF, 0, -1) if b != first][n % 254])
        self.known.setdefault(token)
        return token

    def tokens(self) -> list[str]:
        return list(self.known)

    def read(self, view: dict[str, str]) -> dict[str, str]:
        """A view read from disk, with the longer values put back (a token never written: '?')."""
        named = {token: value for value, token in self.aliases.items()}
        return {block: named.get(token, "?" if len(token) == 2 else token) for block, token in view.items()}


def qemu_io_write(block: int, token: str) -> list[str]:
    """The qemu-io commands that fill one block with ``token``."""
    first, second = halves(token)
    offset = block * BLOCK_SIZE
    if first == second == 0:
        return [f"write -z {offset} {BLOCK_SIZE}"]
    if first == second:
        return [f"write -P {first} {offset} {BLOCK_SIZE}"]
    return [f"write -P {first} {offset} {HALF}", f"write -P {second} {offset + HALF} {HALF}"]


def qemu_io_writes(writes: Sequence[tuple[int, str]]) -> list[str]:
    """qemu-io command words for several block writes of tokens (one process for all of them)."""
    return [word for block, token in writes for command in qemu_io_write(block, token) for word in ("-c", command)]


# -- images -------------------------------------------------------------------------------------

def create_image(path: Path, blocks: int, backing: Path | None = None) -> None:
    """A qcow2 image; one that cannot be made (a size qcow2 cannot hold) is a set-up error."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={BLOCK_SIZE}"]
    if backing is not None:
        argv += ["-b", str(backing), "-F", "qcow2"]
    try:
        call(argv + [str(path), str(blocks * BLOCK_SIZE)])
    except QemuCallFailed as error:
        raise EnvironmentFailure(f"cannot make a qcow2 disk of {blocks} blocks of 64 KiB: {error.message}") from None


TABLE_KEYS = ("id", "name", "date-sec", "date-nsec", "vm-state-size")


def snapshot_table(image: Path, force_share: bool = False) -> list[dict[str, Any]]:
    """The qcow2 snapshot table, in table order: id, name, date-sec, date-nsec, vm-state-size
    (read in this process where it can, as ``read_view``)."""
    table = None
    if READ_WITH != "qemu-img":
        with contextlib.suppress(*READER_FAILURES):
            table = image_reader.snapshot_table(image)
    if table is None or READ_WITH == "both":
        argv = ["qemu-img", "info", "--output=json", "-f", "qcow2"] + (["-U"] if force_share else []) + [str(image)]
        listed = list(json.loads(call(argv)).get("snapshots", []))
        if table is not None and table != [{key: e[key] for key in TABLE_KEYS} for e in listed]:
            raise AssertionError(f"the image reader and qemu-img list {image}'s snapshots differently: "
                                 f"{table} != {listed}")
        table = listed
    return table


def read_view(image: Path, blocks: int, scratch: Path, snapshot_id: str | None = None,
              force_share: bool = False, image_format: str = "qcow2", snapshot_name: str | None = None) -> dict[str, str]:
    """What the image (or one of its internal snapshots, by id or name) reads, block by block."""
    data = image_bytes(image, blocks * BLOCK_SIZE, scratch, snapshot_id, force_share, image_format, snapshot_name)
    return decode_blocks(data, blocks)


def image_bytes(image: Path, length: int, scratch: Path, snapshot_id: str | None = None, force_share: bool = False,
                image_format: str = "qcow2", snapshot_name: str | None = None) -> bytes:
    """The first ``length`` bytes of the image (or of one of its internal snapshots): read in
    this process where it can (``image_reader``), else through ``qemu-img convert`` (READ_WITH)."""
    data = None
    if READ_WITH != "qemu-img":  # else qemu-img reads it, or says why not
        with contextlib.suppress(*READER_FAILURES):
            data = image_reader.read_image(image, length, image_format, snapshot_id, snapshot_name)
    if data is None or READ_WITH == "both":
        converted = convert(image, scratch, snapshot_id, force_share, image_format, snapshot_name)[:length]
        if data is not None and data != converted:
            raise AssertionError(f"the image reader and qemu-img read {image} (snapshot {snapshot_id or snapshot_name}) "
                                 "differently")
        data = converted
    return data


def convert(image: Path, scratch: Path, snapshot_id: str | None = None, force_share: bool = False,
            image_format: str = "qcow2", snapshot_name: str | None = None) -> bytes:
    """The image's bytes as ``qemu-img convert -O raw`` writes them."""
    out = scratch.with_suffix(".raw")
    argv = ["qemu-img", "convert", "-f", image_format] + (["-U"] if force_share else [])
    if snapshot_id is not None:
        argv += ["-l", f"snapshot.id={snapshot_id}"]
    elif snapshot_name is not None:
        argv += ["-l", f"snapshot.name={snapshot_name.replace(',', ',,')}"]
    call(argv + ["-O", "raw", str(image), str(out)])
    try:
        return out.read_bytes()
    finally:
        os.unlink(out)
