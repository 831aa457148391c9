"""Checks of a driver's own conduct, apart from whether it agrees with the model: that what it
declares is known, that its observation has the shape its declarations promise, and where in
its code an exception it raised came from."""

from __future__ import annotations

import inspect
import traceback
from pathlib import Path
from typing import Any

from .driver import OBSERVATIONS, Driver

# what each observation needs in the driver's observe() result: top-level keys, keys of every
# snapshot record (see snaptree.model.observe for the shape)
TOP_KEYS = {"power": ("power",), "current": ("current",), "views": ("views",)}
SNAPSHOT_KEYS = {"tree": ("parent",), "state": ("state",), "memory": ("memory",), "ram": ("memory", "memory_image"),
                 "description": ("description",)}


def unknown_observations(observes: frozenset[str]) -> list[str]:
    return sorted(observes - OBSERVATIONS)


def observation_problem(observation: Any, observes: frozenset[str], ordered: bool) -> str | None:
    """What is missing from ``observation`` for what the driver ``observes``, or None.
    ``ordered``: the comparison reads the order of roots and children."""
    if not isinstance(observation, dict):
        return f"observe() returned {type(observation).__name__}, not a dict"
    needed = [key for what, keys in TOP_KEYS.items() if what in observes for key in keys]
    needed += ["roots"] if ordered else []
    missing = [key for key in ["snapshots", *needed] if key not in observation]
    if missing:
        return f"observe() returned no {', '.join(repr(k) for k in missing)}"
    snapshots = observation["snapshots"]
    if not isinstance(snapshots, list) or not all(isinstance(s, dict) for s in snapshots):
        return "observe()'s 'snapshots' is not a list of dicts"
    keys = ["id", "name", *(key for what, ks in SNAPSHOT_KEYS.items() if what in observes for key in ks)]
    keys += ["children"] if ordered else []
    for record in snapshots:
        absent = [key for key in keys if key not in record]
        if absent:
            return f"observe()'s snapshot {record.get('name', record.get('id', '?'))!r} has no " \
                   f"{', '.join(repr(k) for k in absent)}"
    if "views" in observes:
        views = observation["views"]
        if not isinstance(views, dict) or not isinstance(views.get("current"), dict) \
                or not isinstance(views.get("snapshots"), dict):
            return "observe()'s 'views' needs a dict 'current' and a dict 'snapshots' (snapshot id -> {block: value})"
        unviewed = [str(s["id"]) for s in snapshots if s["id"] not in views["snapshots"]]
        if unviewed:
            return f"observe()'s 'views' has no view of the snapshot with id {', '.join(unviewed)}"
    return None


def own_frame(error: BaseException, driver: Driver) -> str:
    """The innermost frame of the traceback in the driver's own code (its class or a base class
    of its own, not snaptree's Driver): 'file.py:42 in apply: the line'."""
    own_files = set()
    for cls in type(driver).__mro__:
        if cls in (Driver, object) or cls.__module__ in ("abc", "builtins"):
            continue
        try:
            own_files.add(inspect.getsourcefile(cls))
        except TypeError:  # a class without a source file
            continue
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename in own_files] or frames
    if not ours:
        return "no frame"
    frame = ours[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}" + (f": {frame.line}" if frame.line else "")
