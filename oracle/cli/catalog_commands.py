"""The commands that list what snaptree knows of: drivers, and the findings (with --replay,
each replayed on this machine's components)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import Counter
from typing import Any

from snaptree.model.escape import printable

from ..driver import DriverUnavailable
from .common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK


def cmd_drivers(args: argparse.Namespace) -> int:
    from ..drivers import REGISTRY, load

    rows: list[dict[str, Any]] = []
    for name in REGISTRY:
        try:
            cls = load(name)
            problem = cls.availability()
            rows.append({"name": name, "profiles": list(cls.profiles), "installed": problem is None,
                         "problem": problem, "observes": sorted(cls.observes), "description": cls.description})
        except DriverUnavailable as error:
            rows.append({"name": name, "profiles": [], "installed": False, "problem": str(error), "observes": [],
                         "description": ""})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        status = "installed" if r["installed"] else "NOT AVAILABLE"
        print(f"{r['name']:<{width}}  {status}: {r['description']}")
        print(f"{'':<{width}}  profiles: {', '.join(r['profiles'])}; observes: {', '.join(r['observes'])}")
        if r["problem"]:
            print(f"{'':<{width}}  {r['problem']}")
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    """The library of real bugs (scenarios/findings/); with --replay, each one on the installed
    versions: a finding seen on them must still diverge, and one that diverges must say so."""
    from ..checker.replay import replay_finding
    from ..findings import findings

    rows: list[dict[str, Any]] = []
    for finding in findings():
        row: dict[str, Any] = {
            "path": finding.path, "title": finding.title, "profile": finding.profile,
            "guard": finding.guard.name if finding.guard else None,
            "affects": [f"{component} {version}" for component, version in finding.affects],
            "replay": "snaptree " + " ".join(shlex.quote(word) for word in finding.replay_args())}
        if args.replay:
            replayed = replay_finding(finding)
            row.update({"verdict": replayed.verdict, "installed": replayed.installed, "detail": replayed.detail})
        rows.append(row)
    stale = [row for row in rows if row.get("verdict") in ("fixed?", "unlisted")]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            guard = f"guard {row['guard']}" if row["guard"] else "no guard: the profile of its system holds it"
            print(printable(f"{row['path']}  [{row['profile']}; {guard}]"))
            print(printable(f"  {row['title']}"))
            print(printable(f"  seen on: {', '.join(row['affects']) or '(not said)'}"))
            print(printable(f"  replay:  {row['replay']}"))
            if "verdict" in row:
                print(printable(f"  here ({row['installed']}): {row['verdict'].upper()}: {row['detail']}"))
    if not args.replay:
        return EXIT_OK
    cannot = Counter(row["detail"] for row in rows if row["verdict"] == "cannot")
    done = len(rows) - cannot.total()
    why = "; ".join(f"{reason} ({count})" for reason, count in cannot.items())
    if args.format == "text":
        print(printable(f"replayed {done} of {len(rows)} findings here"
                        + (f"; {cannot.total()} could not be replayed: {why}" if cannot else "")))
    if rows and not done:  # a CI job must not pass having checked nothing
        print(printable(f"snaptree: no finding could be replayed here: {why}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FAILED if stale else EXIT_OK
