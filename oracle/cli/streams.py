"""The standard streams as every command uses them, whatever they are connected to:

- a stdout that cannot encode Unicode (PYTHONIOENCODING=ascii, a latin-1 locale): the tool's
  own characters (—, ✓, ✗) in ASCII, any other it cannot encode as an escape (``\\xe9``, as
  ``printable`` writes them), never a UnicodeEncodeError; JSON stays exact (``to_json``);
- a stdout or stderr closed before the start (``>&-``): /dev/null in its place, so its output
  goes nowhere and no file opened later takes its descriptor;
- a stdout or stderr whose reader went away (``| head -1``, ``2>&1 | head -1``): further output
  to it is dropped and the command runs on to the end, so its exit status (1: a scenario
  failed) is not lost to the pipe.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

ASCII_FORMS = {"\u2014": "--", "\u2713": "+", "\u2717": "x"}  # the tool's own: render.py's dash and marks
ERRORS = "snaptree-ascii"


def _replace(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    return "".join(ASCII_FORMS.get(c) or c.encode("ascii", "backslashreplace").decode() for c in text), error.end


codecs.register_error(ERRORS, _replace)


def drop_stdout(stream: Any = None) -> None:
    """Point stdout (or ``stream``) at /dev/null once writing to it failed, so that the
    interpreter's flush at exit does not fail (and print) again."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture): nothing to flush at exit
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, (stream or sys.stdout).fileno())
        os.close(null)


class Dropping:
    """sys.stdout or sys.stderr while a command runs: a closed pipe drops what follows instead
    of raising (in the middle of a command, or of a Hypothesis example, which would take it for
    a failure)."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return int(self.stream.write(text))
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        drop_stdout(self.stream)  # what is still buffered goes to /dev/null at exit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _open_closed_descriptors() -> None:
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:  # Python found the descriptor closed at start
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115 - for the process's life


@contextlib.contextmanager
def standard_streams() -> Iterator[None]:
    """For the length of a command: the streams as the module's docstring says."""
    _open_closed_descriptors()
    encoding = (getattr(sys.stdout, "encoding", None) or "utf-8").lower()
    if codecs.lookup(encoding).name != "utf-8" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors=ERRORS)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Dropping(sys.stdout), Dropping(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
