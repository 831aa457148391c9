"""The commands on the model alone: run, compare, show, dumpxml, profiles."""

from __future__ import annotations

import argparse
import json
import sys

from snaptree.model import PROFILES, Machine, notation, observe
from snaptree.model.escape import printable
from snaptree.model.profiles import get_profile, versions_text
from snaptree.model.run import Run, run

from .. import libvirt_xml, render, scenario_format
from ..errors import UsageError
from .common import EXIT_FAILED, EXIT_OK, one_profile, profile_list, to_json
from .graphviz import svg


def cmd_run(args: argparse.Namespace) -> int:
    files = args.files or scenario_format.embedded()
    scenarios = [(path, scenario_format.load(path)) for path in files]  # every file is valid before any runs
    # several profiles: each file under each, as one would run them one by one
    profiles: list[str | None] = [*profile_list(args.profile)] if args.profile is not None else [None]
    for (path, scenario), profile in ((s, p) for s in scenarios for p in profiles if p is not None):
        problem = get_profile(profile).layout_problem(scenario.disks)
        if problem:  # its steps would say nothing about the system
            raise UsageError(f"{path}: {profile} cannot have this scenario's VM: {problem}")
    trees = args.format == "text" and not args.quiet
    runs = [(path, run(scenario, profile, trees=trees)) for path, scenario in scenarios for profile in profiles]
    if args.format == "json":
        print(to_json([render.run_json(r, path) for path, r in runs]))
    else:
        for path, r in runs:
            print(render.run_text(r, path, verbose_tree=not args.quiet) if not args.quiet or not r.passed
                  else f"PASS {printable(path)} under {r.profile}: {render.expectations_hold(r.expectations, r.expectations)}")
        failed = [path for path, r in runs if not r.passed]
        print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    return EXIT_OK if all(r.passed for _, r in runs) else EXIT_FAILED


def cmd_compare(args: argparse.Namespace) -> int:
    path = args.file or scenario_format.SEED_EXAMPLE
    scenario = scenario_format.load(path)
    profiles = profile_list(args.profiles) if args.profiles is not None else list(PROFILES)
    # a system that cannot have the scenario's VM (one image only, no way to leave a disk out)
    cannot = {name: problem for name in profiles if (problem := get_profile(name).layout_problem(scenario.disks))}
    runs: list[Run] = [run(scenario, name) for name in profiles if name not in cannot]
    if not runs:
        raise UsageError(f"no profile can have this scenario's VM: {next(iter(cannot.values()))}")
    if args.format == "json":
        print(to_json({"file": path, "title": scenario.title,
                       "profiles": {r.profile: render.run_json(r, path) for r in runs}, "cannot": cannot}))
    else:
        print(render.compare_text(runs, path))
        for name, problem in cannot.items():
            print(f"\n== {name}: not run, {problem}")
    return EXIT_OK if all(r.passed for r in runs) else EXIT_FAILED


def machine_at(args: argparse.Namespace) -> Machine:
    """The model after the first --step steps of the scenario (default: all of them)."""
    scenario = scenario_format.load(args.file)
    count = len(scenario.steps)
    step = count if args.step is None else args.step
    if not 0 <= step <= count:
        raise UsageError(f"--step {step} is out of range: the scenario has {count} steps")
    scenario.steps = scenario.steps[:step]
    return run(scenario, one_profile(args.profile)).machine


def cmd_show(args: argparse.Namespace) -> int:
    machine = machine_at(args)
    if args.format == "text":
        print(notation.text(machine))
    elif args.format == "virsh":
        print(libvirt_xml.virsh_tree(observe(machine, views=False)), end="")
    elif args.format == "dot":
        print(notation.dot(machine), end="")
    else:
        sys.stdout.write(svg(machine))
    return EXIT_OK


def cmd_dumpxml(args: argparse.Namespace) -> int:
    machine = machine_at(args)
    state = observe(machine, views=False)
    matches = [s for s in state["snapshots"] if args.name in (s["name"], s["id"])]
    if not matches:
        when = "at the end" if args.step is None else f"after step {args.step}"
        raise UsageError(f"no snapshot named '{args.name}' {when} "
                         f"(there are: {', '.join(s['name'] for s in state['snapshots']) or 'none'})")
    print(libvirt_xml.snapshot_xml(matches[0], state), end="")
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace) -> int:
    if args.format == "json":
        print(json.dumps([{"name": p.name, "system": p.system, "summary": p.summary, "tree": p.tree,
                           "family": p.family or p.name,
                           "versions": {c: {"from": low, "before": high} for c, (low, high) in p.versions.items()}}
                          for p in PROFILES.values()], indent=2))
        return EXIT_OK
    width = max(len(name) for name in PROFILES)
    for name, profile in PROFILES.items():
        versions = versions_text(profile)
        print(f"{name:<{width}}  {profile.system}: {profile.summary}" + (f" [{versions}]" if versions else ""))
    return EXIT_OK
