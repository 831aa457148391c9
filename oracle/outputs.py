"""Files a command writes for its user (``--junit``, ``--html``, ``--graph``, diff's witnesses):
never through a symbolic link, and all of a file or none of it.

An output may be named in a folder that others can write to (/tmp, a shared CI workspace),
where a symbolic link planted under a name snaptree is going to write would make it (as root)
overwrite the link's target.  So a file is written to a new temporary file beside it, created
exclusively (which follows no link), and renamed over the name: a rename replaces a link that
appeared since, it does not follow it.  A name that already is a link is refused.  A device or
FIFO (/dev/null, /dev/full, a named pipe) is written in place, opened without following a link:
a rename would replace the device.  Counterexamples get fresh names, created exclusively
(``checker/counterexample.py``).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

SYMLINK = "is a symbolic link (snaptree writes no output through one)"


def write_outputs(files: dict[str, bytes]) -> None:
    """Write several files; none when one of their names is refused (a link, a folder)."""
    for path in files:
        _existing(path)
    for path, data in files.items():
        write_output(path, data)


def write_output(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` as the file ``path``; an OSError (with its strerror) when it cannot be."""
    target = os.fspath(path)
    found = _existing(target)
    if found is not None and not stat.S_ISREG(found.st_mode):
        with open(os.open(target, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "wb") as device:
            device.write(data)
        return
    fd, partial = tempfile.mkstemp(prefix=".snaptree-", suffix=".partial", dir=os.path.dirname(os.path.abspath(target)))
    try:
        with open(fd, "wb") as out:
            out.write(data)
            os.fchmod(out.fileno(), stat.S_IMODE(found.st_mode) if found is not None else 0o666 & ~_umask())
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)  # no half a file, under either name
        raise


def _existing(target: str) -> os.stat_result | None:
    """What is at ``target`` now (None: nothing); an OSError for a link or a folder."""
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(found.st_mode):
        raise OSError(errno.ELOOP, f"{os.path.basename(target)} {SYMLINK}", target)  # named: it may be one of several
    if stat.S_ISDIR(found.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
    return found


def probe(folder: str | os.PathLike[str]) -> None:
    """Create and remove a file in ``folder``: an OSError when no file can be made there,
    which access(2) does not tell root (/proc, a read-only mount)."""
    fd, name = tempfile.mkstemp(prefix=".snaptree-probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
