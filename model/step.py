"""The model's step function: ``step(machine, op) -> Outcome``, one operation applied to a
machine (which it changes), and what came of it as a value (Knossos-style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ops
from .errors import ModelError
from .machine import Machine


@dataclass
class Outcome:
    """What one step did: ok, or the error's kind and message."""

    ok: bool
    kind: str | None = None
    message: str | None = None
    side_effect: str | None = None
    skipped: bool = False  # the step is for other profiles
    created_id: str | None = None  # the snapshot a successful create made
    created_name: str | None = None

    def brief(self) -> str:
        return "-" if self.skipped else "ok" if self.ok else str(self.kind)

    def to_json(self) -> dict[str, Any]:
        error = None if self.ok else {"kind": self.kind, "message": self.message}
        result: dict[str, Any] = {"ok": self.ok, "error": error}
        if self.skipped:
            result["skipped"] = True
        return result


def step(m: Machine, op: ops.Operation) -> Outcome:
    """Apply ``op`` to ``m`` under its profile's rules; a refusal is an outcome, not an exception."""
    try:
        created = m.perform(op)
    except ModelError as error:
        return Outcome(False, error.kind.value, error.message, error.side_effect)
    if created is None:
        return Outcome(True)
    return Outcome(True, created_id=created.id, created_name=created.name)
