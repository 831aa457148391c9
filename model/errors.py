"""Error kinds: the shared vocabulary in which every profile and driver reports failure."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    NOT_FOUND = "not-found"
    DUPLICATE_NAME = "duplicate-name"
    HAS_CHILDREN = "has-children"
    INVALID_STATE = "invalid-state"
    UNSUPPORTED = "unsupported"
    INVALID_ARGUMENT = "invalid-argument"
    DISK_ONLY = "disk-only"  # a memory load from a snapshot that has no memory image
    CRASHED = "crashed"  # the server dropped the request: its handler crashed (vcsim 0.24.2)


class ModelError(Exception):
    """An operation refused by the modelled system.

    ``message`` is the vendor's text where it is known.  ``side_effect`` names a state change
    the real system makes even though the operation fails (QEMU's failed ``loadvm`` leaves a
    running VM stopped); without one, a failed operation leaves the state exactly as it was.
    """

    def __init__(self, kind: ErrorKind, message: str, side_effect: str | None = None):
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.side_effect = side_effect

    def __repr__(self) -> str:
        return f"ModelError({self.kind.value!r}, {self.message!r})"
