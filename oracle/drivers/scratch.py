"""Scratch directories for the offline QEMU drivers that never outlive their run.

Each directory's name carries the owning process id (``snaptree-<driver>-<pid>-XXXX``), so:

- a normal end, an exception, Ctrl-C (SIGINT) or SIGTERM removes it: teardown for the
  example, and an ``atexit`` hook for whatever is still registered.  SIGTERM's default
  action would skip both, so it is turned into ``SystemExit`` while a driver is in use;
- SIGKILL gives the process no chance at all; the next run that makes a workspace removes
  the directories of owners that no longer exist.

Child processes stay in the caller's process group, so a signal sent to the group (a
terminal's Ctrl-C) reaches them too; ``subprocess.run`` kills a child whose wait is
interrupted.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .qemu_common import Workspace

_live: set[Workspace] = set()
_swept = False
_OWNED = re.compile(r"^snaptree-(?:[a-z][a-z0-9]*-)+(\d+)-")  # snaptree-DRIVER-PID-..., any driver


def workspace(driver: str) -> Workspace:
    """A fresh directory for one example, registered for removal at exit."""
    global _swept
    if not _swept:
        sweep()
        _swept = True
        atexit.register(remove_all)
        _terminate_on_sigterm()
    space = Workspace(prefix=f"snaptree-{driver}-{os.getpid()}-")
    _live.add(space)
    return space


def release(space: Workspace | None) -> None:
    if space is not None:
        space.remove()
        _live.discard(space)


def remove_all() -> None:
    for space in list(_live):
        release(space)


def sweep(folder: str | None = None) -> list[Path]:
    """Remove the directories left by killed runs (their owner process is gone)."""
    removed = []
    root = Path(folder or tempfile.gettempdir())
    for entry in root.iterdir():
        owner = _OWNED.match(entry.name)
        if owner and entry.is_dir() and not _alive(int(owner.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so that finally blocks and atexit hooks run (only where
    nobody else has claimed the signal, and only from the main thread, where Python can)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
