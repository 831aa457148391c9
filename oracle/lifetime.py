"""How a run's processes and scratch files end: with the run, whatever ends it.  Every driver
uses this one mechanism.

Scratch directories (``workspace``) are named ``snaptree-<driver>-<pid>-XXXXXXXX`` after the
process that owns them, so:

- a normal end, an exception, SIGINT, SIGTERM or SIGHUP removes them: teardown for the
  example, and an ``atexit`` hook for whatever is still registered;
- SIGKILL gives the process no chance at all: the next run's first workspace sweeps the
  directories of owners that no longer exist, and first kills any process still using them
  (a QEMU that libvirt daemonised outlives everything else); in TMPDIR and /tmp, and in a
  folder the user gave (an embed ``root=DIR``) when the first workspace goes there.

A directory that will hold unix sockets (libvirt's embed root) asks for ``room``: a socket's
path has at most 107 bytes, so under a long TMPDIR it goes to /tmp instead.

Child processes call ``die_with_parent`` (PR_SET_PDEATHSIG) before they exec, or after they
drop credentials: the kernel clears the death signal on a change of credentials.

Signals: SIGTERM and SIGHUP (and SIGINT, under the command line) raise ``Terminated``, a
``KeyboardInterrupt``: Hypothesis passes that through, where it would take ``SystemExit`` or
any ``Exception`` for a failing example, shrink it and replay it.  Once one is raised, later
signals are ignored, so that the cleanup it starts runs to its end.

``EnvironmentFailure``: the machine under the driver failed (a full disk, a disk size qcow2
cannot hold), which is no verdict on the driver; see ``machine_failures``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import gc
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from snaptree.model import ops

from .driver import EnvironmentFailure, Result

SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1
SHORT_BASE = "/tmp"  # for directories that hold sockets, when TMPDIR is too deep
SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# errors of the machine, not of the system under test
MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.E2BIG)
MACHINE_MESSAGES = tuple(os.strerror(e) for e in MACHINE_ERRNOS)

_OWNED = re.compile(r"^snaptree-(?:[a-z][a-z0-9]*-)+(\d+)-")  # snaptree-DRIVER-PID-..., any driver
_live: set[Workspace] = set()
_swept = False
_swept_bases: set[str] = set()
_unwinding: Terminated | None = None


# -- scratch directories ---------------------------------------------------------------------

class Workspace:
    """A scratch directory for one example (or one driver), removed with everything in it."""

    def __init__(self, prefix: str, base: str | None = None):
        with machine_failures():
            self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def file(self, name: str) -> Path:
        return self.path / name

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def workspace(driver: str, room: int = 0, base: str | None = None) -> Workspace:
    """A fresh directory, registered for removal at exit.  ``room``: how many bytes of path
    the caller will put below it (for sockets); ``base``: where, instead of TMPDIR."""
    global _swept
    raise_if_terminating()
    if not _swept:
        _swept = True
        sweep()
        atexit.register(remove_all)
        handle_signals(SIGNALS)
    if base is not None and base not in _swept_bases:  # a folder of the user's (an embed root=DIR)
        _swept_bases.add(base)
        sweep(base)
    prefix = f"snaptree-{driver}-{os.getpid()}-"
    if room:
        base = short_base(base, len(prefix) + 9 + room)  # mkdtemp adds 8 characters, then "/"
    space = Workspace(prefix, base)
    _live.add(space)
    return space


def short_base(base: str | None, below: int) -> str:
    """``base`` (default TMPDIR) when ``below`` more bytes fit in a socket path, else /tmp."""
    chosen = base or tempfile.gettempdir()
    if len(os.fsencode(chosen)) + 1 + below <= SOCKET_PATH_MAX:
        return chosen
    if base is None and len(SHORT_BASE) + 1 + below <= SOCKET_PATH_MAX:
        return SHORT_BASE
    raise EnvironmentFailure(f"'{chosen}' is too deep for a unix socket's path ({SOCKET_PATH_MAX} bytes at most, "
                             f"{below} more are needed below it): choose a shorter directory")


def release(space: Workspace | None, processes: bool = False) -> None:
    """Remove the directory; with ``processes``, first kill every process still using it
    (one that is exiting may write one last file: a few tries)."""
    if space is None:
        return
    for _ in range(50 if processes else 1):
        if processes:
            kill_processes_using([space.path])
        space.remove()
        if not space.path.exists():
            break
        time.sleep(0.1)
    _live.discard(space)


def remove_all() -> None:
    """At exit: every directory named after this process, also one that a process of libvirt's
    made again after its example released it (whatever still uses one is killed first)."""
    for space in list(_live):
        release(space)
    mine = [entry for root in {Path(tempfile.gettempdir()), Path(SHORT_BASE)}
            for entry in root.glob(f"snaptree-*-{os.getpid()}-*") if _OWNED.match(entry.name)]
    if mine:
        kill_processes_using(mine)
        for entry in mine:
            shutil.rmtree(entry, ignore_errors=True)


def sweep(*folders: str) -> list[Path]:
    """Remove the directories left by killed runs (their owner process is gone), after killing
    whatever still uses them."""
    removed = []
    roots = {Path(f) for f in folders} or {Path(tempfile.gettempdir()), Path(SHORT_BASE)}
    dead = []
    for root in roots:
        with contextlib.suppress(OSError):
            for entry in root.iterdir():
                owner = _OWNED.match(entry.name)
                if owner and entry.is_dir() and not alive(int(owner.group(1))):
                    dead.append(entry)
    if dead:
        kill_processes_using(dead)
    for entry in dead:
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def processes_using(folders: list[Path]) -> list[int]:
    """Live processes (not zombies, not this one) whose command line, working directory or
    environment names one of ``folders`` (a virtlogd names its root only in HOME)."""
    names = [os.fsencode(folder) for folder in folders]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                continue
            seen = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
            cwd = os.fsencode(os.readlink(entry / "cwd"))
        except (OSError, IndexError):
            continue
        if any(name in seen or cwd == name or cwd.startswith(name + b"/") for name in names):
            found.append(int(entry.name))
    return found


def kill_processes_using(folders: list[Path]) -> None:
    for pid in processes_using(folders):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- child processes -------------------------------------------------------------------------

def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In a child: get ``signum`` when the parent dies, even by SIGKILL (PR_SET_PDEATHSIG).
    Call it after any setuid/setgid: a change of credentials clears it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signum)


# -- signals ---------------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
    """A signal asked the run to end: unwind (every ``finally`` runs), then exit 128 + signal."""

    def __init__(self, signum: int):
        self.signum = signum
        self.partial: Any = None  # what the run had done when it came (a check's result), for its summary
        super().__init__(signum)

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        return "interrupted" if self.signum == signal.SIGINT else f"terminated by {name}"

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _on_signal(signum: int, frame: object) -> None:
    global _unwinding
    if _unwinding is not None:
        return  # the cleanup of the first signal is under way: let it finish
    _unwinding = Terminated(signum)
    raise _unwinding


def _unraisable(info: Any) -> None:
    """A ``Terminated`` raised where Python swallows exceptions (a gc callback, a finaliser)
    would print "Exception ignored" and a traceback, and be lost: signal again instead, a
    moment later from a thread (so that the handler runs once this hook has returned), for it
    to be raised where it can unwind the run."""
    global _unwinding
    if isinstance(info.exc_value, Terminated) and info.exc_value is _unwinding:
        _unwinding = None
        threading.Timer(0.02, os.kill, (os.getpid(), info.exc_value.signum)).start()
        return
    _previous_unraisable(info)


_previous_unraisable = sys.unraisablehook


def handle_signals(signums: tuple[int, ...] = (signal.SIGINT, *SIGNALS)) -> None:
    """Turn these signals into ``Terminated`` where nobody else has claimed them (and only
    from the main thread, where Python can)."""
    if threading.current_thread() is not threading.main_thread():
        return
    sys.unraisablehook = _unraisable
    for signum in signums:
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _on_signal)


def skip_final_collection() -> None:
    """Leave what a run made to the kernel at exit: the interpreter's last garbage collection,
    after the atexit hooks that clean up, walks every object left (3.5 s after a SIGTERM to an
    explore holding 1 GB of states; minutes at 14 GB, so the signal seemed to do nothing)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)  # frozen objects are not collected


@contextlib.contextmanager
def signals_handled() -> Iterator[None]:
    """``handle_signals`` for the length of a command; the previous handlers afterwards."""
    global _unwinding
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, *SIGNALS)}
    handle_signals()
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in before.items():
                signal.signal(signum, handler)
        _unwinding = None


def reraise_unwinding(error: BaseException) -> None:
    """Raise the set-up error or signal that ``error`` (Hypothesis' FlakyStrategyDefinition
    while it unwound one) was raised in the handling of, if any."""
    seen = error.__context__
    while seen is not None:
        if isinstance(seen, EnvironmentFailure | Terminated):
            raise seen.with_traceback(None) from None
        seen = seen.__context__


def terminating() -> bool:
    """Whether a signal is unwinding the run: cleanup then skips what may block (a call to a
    server whose client a signal interrupted may wait on a lock the interrupted call held)."""
    return _unwinding is not None


def raise_if_terminating() -> None:
    """Raise the signal's ``Terminated`` again where something swallowed it."""
    if _unwinding is not None:
        raise Terminated(_unwinding.signum)


# -- failures of the machine ------------------------------------------------------------------

def machine_failure(message: str) -> str | None:
    """The machine's error named in a message (a program's stderr), or None."""
    return next((text for text in MACHINE_MESSAGES if text in message), None)


def raise_if_machine_failure(message: str, what: str) -> None:
    """``EnvironmentFailure`` naming ``what`` failed, with the line that names the cause."""
    text = machine_failure(message)
    if text is not None:
        line = next(line for line in message.splitlines() if text in line)
        raise EnvironmentFailure(f"the machine under the driver failed: {what}: {line.strip()}")


def full_disk_note(path: Path) -> str:
    """A note "(...: No space left on device)" when the file system of ``path`` is full, else "":
    for messages that name only what failed (libvirt: "Failed to write pid file")."""
    try:
        fs = os.statvfs(path if path.exists() else path.parent)
    except OSError:
        return ""
    if fs.f_bfree == 0 or fs.f_ffree == 0:
        return f" (the file system of {path}: {os.strerror(errno.ENOSPC)})"
    return ""


def raise_if_full(path: Path, op: ops.Operation, result: Result) -> None:
    """After a live QEMU's refusal, or a write it reports on a log that may be on the same full
    disk ("Error while writing VM state: Input/output error", or nothing): when the file system
    of ``path`` is full, that is the cause, not the system under test."""
    if result.ok and not isinstance(op, ops.Write):
        return
    note = full_disk_note(path)
    if note:
        raise EnvironmentFailure(f"the machine under the driver failed: {ops.describe(op)}: {result.brief()}{note}")


@contextlib.contextmanager
def machine_failures() -> Iterator[None]:
    """An OSError of the machine (full disk, read-only file system, no memory) as
    ``EnvironmentFailure``; other errors as they are."""
    try:
        yield
    except OSError as error:
        if error.errno not in MACHINE_ERRNOS:
            raise
        where = f": {error.filename}" if error.filename else ""
        raise EnvironmentFailure(f"the machine under the driver failed: {error.strerror}{where}") from None
