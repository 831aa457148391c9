"""The `snaptree` command line."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from snaptree.model import PROFILES, notation
from snaptree.model.scenario import Run, ScenarioError, run

from . import render, scenario_files

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


def _profile_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in PROFILES:
            raise UsageError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})")
    return names


def cmd_run(args: argparse.Namespace) -> int:
    files = args.files or scenario_files.embedded()
    scenarios = [(path, scenario_files.load(path)) for path in files]  # every file is valid before any runs
    profile = _profile_list(args.profile)[0] if args.profile else None
    runs = [(path, run(scenario, profile)) for path, scenario in scenarios]
    if args.format == "json":
        print(json.dumps([render.run_json(r, path) for path, r in runs], indent=2, ensure_ascii=False))
    else:
        for path, r in runs:
            print(render.run_text(r, path, verbose_tree=not args.quiet) if not args.quiet or not r.passed
                  else f"PASS {path} under {r.profile}: {r.expectations} expectations hold")
        failed = [path for path, r in runs if not r.passed]
        print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    return EXIT_OK if all(r.passed for _, r in runs) else EXIT_FAILED


def cmd_compare(args: argparse.Namespace) -> int:
    path = args.file or scenario_files.SEED_EXAMPLE
    scenario = scenario_files.load(path)
    profiles = _profile_list(args.profiles) if args.profiles else list(PROFILES)
    runs: list[Run] = [run(scenario, name) for name in profiles]
    if args.format == "json":
        print(json.dumps({"file": path, "title": scenario.title, "profiles": {
            r.profile: render.run_json(r, path) for r in runs}}, indent=2, ensure_ascii=False))
    else:
        print(render.compare_text(runs, path))
    return EXIT_OK if all(r.passed for r in runs) else EXIT_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    scenario = scenario_files.load(args.file)
    profile = _profile_list(args.profile)[0] if args.profile else None
    result = run(scenario, profile)
    count = len(scenario.steps)
    step = count if args.step is None else args.step
    if not 0 <= step <= count:
        raise UsageError(f"--step {step} is out of range: the scenario has {count} steps")
    # replay the first `step` steps only, so the machine is the tree at that step
    partial = type(scenario)(scenario.profile, scenario.blocks, scenario.title, scenario.description,
                             scenario.steps[:step])
    machine = run(partial, result.profile).machine
    if args.format == "text":
        print(notation.text(machine))
    elif args.format == "dot":
        print(notation.dot(machine), end="")
    else:
        dot = shutil.which("dot")
        if dot is None:
            raise UsageError("Graphviz 'dot' is not installed (apt-get install graphviz); --format dot prints the "
                             "graph for another renderer")
        svg = subprocess.run([dot, "-Tsvg"], input=notation.dot(machine).encode(), capture_output=True,
                             timeout=60, check=True).stdout
        sys.stdout.write(svg.decode())
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace) -> int:
    if args.format == "json":
        print(json.dumps([{"name": p.name, "system": p.system, "summary": p.summary, "tree": p.tree}
                          for p in PROFILES.values()], indent=2))
        return EXIT_OK
    width = max(len(name) for name in PROFILES)
    for name, profile in PROFILES.items():
        print(f"{name:<{width}}  {profile.system}: {profile.summary}")
    return EXIT_OK


EXAMPLES = {
    "run": """examples:
  snaptree run                                   run every scenario shipped with snaptree
  snaptree run scenarios/seed-delete-leaf.xml    run one file under its own profile
  snaptree run my.xml --profile vbox             the same steps under VirtualBox's rules
  snaptree run my.xml --format json              machine-readable, for CI

exit status: 0 every expectation holds, 1 one does not, 2 bad input""",
    "compare": """examples:
  snaptree compare                               the seed's "delete B" under every profile
  snaptree compare my.xml --profiles esx,vbox    two profiles side by side

Each row is a step; each column says what it did under one profile (ok, or the error kind).
Then each profile's final tree in the seed's notation and what every snapshot reads.""",
    "show": """examples:
  snaptree show scenarios/seed-delete-leaf.xml --step 6
  snaptree show my.xml --format dot | dot -Tpng > tree.png
  snaptree show my.xml --format svg > tree.svg   (needs Graphviz)

notation: base <--1-- A <--2-- B <--3-- current
                      + <--4-- D
arrows point from child to parent; numbers are overlays; 'current' is the running state.""",
    "profiles": """example:
  snaptree profiles""",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snaptree",
        description="Hypervisor snapshot semantics: a model of every hypervisor's rules, "
                    "scenario files, and an oracle that checks real drivers against the model.",
        epilog="Start with `snaptree compare`: the seed's 'delete B' example under every profile.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = command("run", "run scenario files on the model and check their expectations", cmd_run)
    p.add_argument("files", nargs="*", metavar="FILE", help="scenario files (default: the shipped library)")
    p.add_argument("--profile", help="run under this profile instead of each file's own")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="one line per passing file")

    p = command("compare", "run one scenario under several profiles, side by side", cmd_compare)
    p.add_argument("file", nargs="?", metavar="FILE", help=f"scenario file (default: {scenario_files.SEED_EXAMPLE})")
    p.add_argument("--profiles", help="comma-separated profile names (default: all)")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = command("show", "draw the snapshot tree at a step of a scenario", cmd_show)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--step", type=int, help="after this many steps (default: all)")
    p.add_argument("--profile", help="under this profile instead of the file's own")
    p.add_argument("--format", choices=["text", "dot", "svg"], default="text")

    p = command("profiles", "list the profiles and the system each follows", cmd_profiles)
    p.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (UsageError, ScenarioError) as error:
        print(f"snaptree: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("snaptree: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
