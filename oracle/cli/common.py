"""What every command shares: exit statuses, the one-line parser, option types, JSON output and
the check that an output can be written before the work that fills it."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlparse

from snaptree.model import PROFILES
from snaptree.model.disks import Disk, parse_layout

from .. import outputs
from ..errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_DRIVER_ERROR = 3  # the driver's own code raised, or observed in the wrong shape: its bug, not a divergence
# how writing to a full or failing output (> /dev/full, a full disk) fails; files snaptree
# writes itself report their own errors
OUTPUT_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, as every other input error, instead of argparse's usage block."""
        raise UsageError(f"{message} (see {self.prog} --help)")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def profile_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"no profile named in '{text}' (known: {', '.join(PROFILES)})")
    for name in names:
        if name not in PROFILES:
            raise UsageError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})")
    return names


def one_profile(text: str | None) -> str | None:
    """--profile of the commands that work under one profile."""
    if text is None:
        return None
    names = profile_list(text)
    if len(names) > 1:
        raise UsageError(f"--profile takes one profile, not '{text}' (`snaptree run --profile a,b` runs under each, "
                         "`snaptree compare --profiles a,b` shows them side by side)")
    return names[0]


def uri(text: str) -> str:
    """The libvirt URIs the libvirt driver can use; anything else of libvirt's fails there
    with a message of its own.  A test:///FILE would make libvirt parse FILE as its config
    and quote it in the error; a relative embed root is refused only when the first example
    starts."""
    if text.startswith("test:") and text != "test:///default":
        raise argparse.ArgumentTypeError(f"'{text}': the test driver runs as test:///default (snaptree defines "
                                         "its own domain)")
    if text.startswith("qemu:///embed"):
        root = parse_qs(urlparse(text).query).get("root", [""])[0]
        if not os.path.isabs(root):
            raise argparse.ArgumentTypeError(f"'{text}': the embed root must be an absolute directory: "
                                             "qemu:///embed?root=/DIR")
    return text


def layout(text: str) -> tuple[Disk, ...]:
    """--disks: a VM layout's short form (``snaptree.model.disks.parse_layout``)."""
    try:
        return parse_layout(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"'{text}': {error}") from None


def names(text: str) -> tuple[str, ...]:
    items = tuple(item for item in text.split(","))
    if not all(items) or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"'{text}' must be distinct, non-empty items separated by commas")
    return items


def to_json(data: Any) -> str:
    """JSON output keeps names exact; a lone surrogate (a file name's undecodable byte) is
    written as its \\u escape, exact JSON as well, since stdout could not encode it.  On a stdout
    that is not Unicode (PYTHONIOENCODING=ascii) every other character outside ASCII is too."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    text = re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return json.dumps(data, indent=2)
    return text


def check_writable(path: str, option: str, folder: bool) -> None:
    """Refuse an output that cannot be written before a check that may take hours, rather
    than lose its result after it: an existing file or folder must be of the right kind and
    writable; a new one's nearest existing folder (its own folder, for a file) writable; a file
    is no symbolic link (oracle/outputs.py).  A file is then made and removed where the output
    goes, since access(2) says yes to root on /proc or a read-only mount; a name too long, or
    any other error of the path, is the same one line."""
    target = Path(path).absolute()
    try:
        if not folder and target.is_symlink():
            raise UsageError(f"{option} {path}: {outputs.SYMLINK}")
        if target.exists():
            if target.is_dir() != folder:
                raise UsageError(f"{option} {path}: {'not a directory' if folder else 'is a directory'}")
            if not os.access(target, os.W_OK | (os.X_OK if folder else 0)):
                raise UsageError(f"{option} {path}: not writable")
            if folder or target.is_file():  # a device or FIFO is written in place
                outputs.probe(target if folder else target.parent)
            return
        parent = target.parent
        while folder and not parent.exists():  # a folder is made with its parents
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"{option} {path}: {parent} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: cannot create it, {parent} is not writable")
        outputs.probe(parent)
    except OSError as error:
        raise UsageError(unwritable(option, path, error)) from None


def unwritable(option: str, path: str, error: OSError) -> str:
    return f"cannot write {option} {path}: {error.strerror or error}"


@contextlib.contextmanager
def output(option: str, path: str) -> Iterator[None]:
    """Writing an output after the work: an error is one line and exit 2 (what was printed
    before it stays)."""
    try:
        yield
    except OSError as error:
        raise UsageError(unwritable(option, path, error)) from None
