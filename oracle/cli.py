"""The `snaptree` command line."""

from __future__ import annotations

import argparse
import contextlib
import errno
import inspect
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, urlparse

from snaptree.model import PROFILES, Machine, notation, observe, ops
from snaptree.model.escape import printable
from snaptree.model.profiles import follows, installed_text, profile_for, versions_text
from snaptree.model.scenario import Run, ScenarioError, run

from . import libvirt_xml, lifetime, render, scenario_files
from .driver import Driver, DriverUnavailable, EnvironmentFailure

if TYPE_CHECKING:
    from .findings import Finding

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# how writing to a full or failing output (> /dev/full, a full disk) fails; files snaptree
# writes itself report their own errors
OUTPUT_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, as every other input error, instead of argparse's usage block."""
        raise UsageError(f"{message} (see {self.prog} --help)")


def _profile_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"no profile named in '{text}' (known: {', '.join(PROFILES)})")
    for name in names:
        if name not in PROFILES:
            raise UsageError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})")
    return names


def _one_profile(text: str | None) -> str | None:
    """--profile of the commands that work under one profile."""
    if text is None:
        return None
    names = _profile_list(text)
    if len(names) > 1:
        raise UsageError(f"--profile takes one profile, not '{text}' (`snaptree run --profile a,b` runs under each, "
                         "`snaptree compare --profiles a,b` shows them side by side)")
    return names[0]


def _uri(text: str) -> str:
    """The libvirt URIs the libvirt driver can use; anything else of libvirt's fails there
    with a message of its own.  A test:///FILE would make libvirt parse FILE as its config
    and quote it in the error; a relative embed root is refused only when the first example
    starts."""
    if text.startswith("test:") and text != "test:///default":
        raise argparse.ArgumentTypeError(f"'{text}': the test driver runs as test:///default (snaptree defines "
                                         "its own domain)")
    if text.startswith("qemu:///embed"):
        root = parse_qs(urlparse(text).query).get("root", [""])[0]
        if not os.path.isabs(root):
            raise argparse.ArgumentTypeError(f"'{text}': the embed root must be an absolute directory: "
                                             "qemu:///embed?root=/DIR")
    return text


def cmd_run(args: argparse.Namespace) -> int:
    files = args.files or scenario_files.embedded()
    scenarios = [(path, scenario_files.load(path)) for path in files]  # every file is valid before any runs
    # several profiles: each file under each, as one would run them one by one
    profiles: list[str | None] = [*_profile_list(args.profile)] if args.profile is not None else [None]
    trees = args.format == "text" and not args.quiet
    runs = [(path, run(scenario, profile, trees=trees)) for path, scenario in scenarios for profile in profiles]
    if args.format == "json":
        print(_json([render.run_json(r, path) for path, r in runs]))
    else:
        for path, r in runs:
            print(render.run_text(r, path, verbose_tree=not args.quiet) if not args.quiet or not r.passed
                  else f"PASS {printable(path)} under {r.profile}: {r.expectations} expectations hold")
        failed = [path for path, r in runs if not r.passed]
        print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    return EXIT_OK if all(r.passed for _, r in runs) else EXIT_FAILED


def _json(data: Any) -> str:
    """JSON output keeps names exact; a lone surrogate (a file name's undecodable byte) is
    written as its \\u escape, exact JSON as well, since stdout could not encode it."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)


def cmd_compare(args: argparse.Namespace) -> int:
    path = args.file or scenario_files.SEED_EXAMPLE
    scenario = scenario_files.load(path)
    profiles = _profile_list(args.profiles) if args.profiles is not None else list(PROFILES)
    runs: list[Run] = [run(scenario, name) for name in profiles]
    if args.format == "json":
        print(_json({"file": path, "title": scenario.title, "profiles": {r.profile: render.run_json(r, path) for r in runs}}))
    else:
        print(render.compare_text(runs, path))
    return EXIT_OK if all(r.passed for r in runs) else EXIT_FAILED


def _machine_at(args: argparse.Namespace) -> Machine:
    """The model after the first --step steps of the scenario (default: all of them)."""
    scenario = scenario_files.load(args.file)
    count = len(scenario.steps)
    step = count if args.step is None else args.step
    if not 0 <= step <= count:
        raise UsageError(f"--step {step} is out of range: the scenario has {count} steps")
    scenario.steps = scenario.steps[:step]
    return run(scenario, _one_profile(args.profile)).machine


def cmd_show(args: argparse.Namespace) -> int:
    machine = _machine_at(args)
    if args.format == "text":
        print(notation.text(machine))
    elif args.format == "virsh":
        print(libvirt_xml.virsh_tree(observe(machine, views=False)), end="")
    elif args.format == "dot":
        print(notation.dot(machine), end="")
    else:
        sys.stdout.write(_svg(machine))
    return EXIT_OK


def _svg(machine: Machine) -> str:
    """The tree drawn by Graphviz, as SVG."""
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError("Graphviz 'dot' is not installed (apt-get install graphviz); --format dot prints the "
                         "graph for another renderer")
    try:
        svg = subprocess.run([dot, "-Tsvg"], input=notation.dot(machine).encode(), capture_output=True,
                             timeout=60, check=True).stdout
    except subprocess.CalledProcessError as error:
        raise UsageError(f"Graphviz 'dot' failed: {error.stderr.decode(errors='replace').strip()}") from None
    except subprocess.TimeoutExpired:
        raise UsageError("Graphviz 'dot' took more than 60 s; --format dot prints the graph") from None
    return svg.decode()


def _driver_class(args: argparse.Namespace) -> tuple[type[Driver], str, dict[str, Any]]:
    from .drivers import load

    module, colon, name = args.driver.partition(":")
    if colon and not (module and name):
        raise UsageError(f"--driver '{args.driver}': give a driver name (see `snaptree drivers`) or module:Class")
    try:
        cls = load(args.driver)
    except DriverUnavailable:
        raise
    except Exception as error:  # whatever a third party's module raises on import
        raise UsageError(f"cannot load driver '{args.driver}': {type(error).__name__}: {error}") from None
    if inspect.isabstract(cls):
        raise UsageError(f"driver '{args.driver}' is abstract: it does not implement "
                         f"{', '.join(sorted(cls.__abstractmethods__))}")
    unset = [attr for attr in ("name", "profiles") if not getattr(cls, attr, None)]
    if unset:
        raise UsageError(f"driver '{args.driver}' does not set {' or '.join(unset)}")
    if getattr(args, "uri", None) and not cls.takes_uri:
        raise UsageError(f"driver '{cls.name}' takes no --uri (only libvirt does)")
    options = {"uri": args.uri} if getattr(args, "uri", None) else {}
    options.update({key: value for key in ("url", "vm", "insecure") if (value := getattr(args, key, None))})
    profile = _one_profile(args.profile) or cls.default_profile(options)
    if profile not in PROFILES:
        raise UsageError(f"driver '{cls.name}' follows '{profile}', which is no profile (known: {', '.join(PROFILES)})")
    if profile not in cls.profiles:
        raise UsageError(f"driver '{cls.name}' follows {', '.join(cls.profiles)}, not '{profile}'")
    problem = cls.availability()
    if problem:
        raise DriverUnavailable(problem)
    profile = _profile_for_installed(cls, profile, options)
    cls.preflight(profile, options)
    return cls, profile, options


def _profile_for_installed(cls: type[Driver], profile: str, options: dict[str, Any]) -> str:
    """The profile of the same family that follows the versions the driver finds installed
    (libvirt-qemu on libvirt 9.0, libvirt-qemu-11.3 on 11.3), said on stderr when it is not
    the one asked for."""
    installed = cls.installed_versions({**options, "profile": profile})
    chosen = profile_for(profile, installed)
    if chosen != profile and chosen in cls.profiles:
        print(printable(f"snaptree: {installed_text(installed)} installed: profile {chosen} follows it ({profile} follows "
                        f"{versions_text(PROFILES[profile])})"), file=sys.stderr)
        return chosen
    if not follows(PROFILES[profile], installed):
        print(printable(f"snaptree: warning: {installed_text(installed)} installed, and profile {profile} follows "
                        f"{versions_text(PROFILES[profile])}"), file=sys.stderr)
    return profile


def cmd_check(args: argparse.Namespace) -> int:
    from .check import check, divergence_report, junit_xml, summary_json, summary_text
    from .shards import ShardError, check_redis, is_redis, parse_shard, shard_examples, shard_seed

    cls, profile, options = _driver_class(args)
    _check_writable(args.out, "--out", folder=True)  # before the work, not after it
    if args.plan == "cover":
        return _check_cover(args, cls, profile, options)
    if args.junit:
        _check_writable(args.junit, "--junit", folder=False)
    try:
        shard = parse_shard(args.shard) if args.shard else None
        if is_redis(args.database):
            check_redis(args.database)  # a server that is down fails now, not at the first example
        elif args.database != "none":
            _check_writable(args.database, "--database", folder=True)
    except ShardError as error:
        raise UsageError(str(error)) from None
    shards = args.shards or args.workers
    if shard is not None and (args.shards or args.workers > 1):
        raise UsageError("--shard K/N runs one shard here; --shards and --workers split a run on this machine")
    if max(shard[1] if shard else 1, shards) > args.examples:
        raise UsageError(f"--examples {args.examples} is fewer than the shards: each shard needs one at least")
    database = None if args.database == "none" else args.database
    shard_results: list[Any] = []
    if shards > 1:
        result, shard_results = _check_on_workers(args, cls, profile, shards)
    else:
        k, n = shard or (1, 1)
        result = check(cls, profile, examples=shard_examples(args.examples, k, n), steps=args.steps, blocks=args.blocks,
                       seed=shard_seed(args.seed, k, n), database=database, out=args.out, options=options,
                       progress=None if args.format == "json" else sys.stderr, spec=args.driver,
                       guards=not args.no_guards)
        if shard is not None:
            result.shard = f"shard {k}/{n}"
        if args.result:
            from .workers import save_result

            save_result(result, args.result)
            return EXIT_OK if result.conforms else EXIT_FAILED
    stats = result.stats
    unwritten = []  # outputs that still failed: reported after the verdict, which is not lost
    if result.divergence is not None and result.scenario_path is None:
        unwritten.append(f"the counterexample was not written into {args.out} (it is above)")
    if args.junit:
        try:
            with open(args.junit, "w", encoding="utf-8") as junit:
                junit.write(junit_xml(shard_results or [result]))
        except OSError as error:
            unwritten.append(f"cannot write --junit {args.junit}: {error.strerror or error}")
    if args.format == "json":
        report = summary_json(result)
        if result.shard:
            report["shard"] = result.shard
        if shard_results:
            from .shards import per_shard

            report["workers"] = args.workers
            report["shards"] = per_shard(shard_results)
        if result.divergence is not None:
            report["differences"] = [str(d) for d in result.divergence.differences]
        print(_json(report))
    else:
        print(summary_text(result))
        if shard_results:
            print(f"{len(shard_results)} shards on {args.workers} workers: {stats.seconds:.1f} s of wall time, "
                  f"{sum(r.stats.seconds for r in shard_results):.1f} s in the shards")
        where = f" ({result.shard} of the examples)" if result.shard else ""
        if result.divergence is None:
            print(f"CONFORMS: driver {cls.name} follows profile {profile} over {stats.examples} random histories{where}")
        else:
            print(f"DIVERGES: driver {cls.name} and profile {profile} part ways{where}"
                  + (" (flaky: the driver did not fail the same way twice)" if result.flaky else ""))
            print(divergence_report(result.divergence, cls.name))
            if result.scenario_path is not None:
                print(printable(f"scenario: {result.scenario_path}"))
                print(printable(f"replay:   snaptree replay {result.scenario_path} --driver {args.driver}"
                                + (f" --uri '{args.uri}'" if args.uri else "")))
            others = [r.scenario_path for r in shard_results if r.scenario_path not in (None, result.scenario_path)]
            for path in others:
                print(printable(f"another shard's scenario: {path}"))
    for problem in unwritten:
        print(f"snaptree: {printable(problem)}", file=sys.stderr)
    if unwritten:
        return EXIT_BAD_INPUT
    return EXIT_OK if result.conforms else EXIT_FAILED


def _check_on_workers(args: argparse.Namespace, cls: type[Driver], profile: str, shards: int) -> tuple[Any, list[Any]]:
    """--workers/--shards: each shard a `snaptree check --shard K/N` process; one merged result."""
    from snaptree.model import get_profile

    from .findings import guards_for
    from .shards import merge
    from .situations import applicable
    from .workers import run_shards

    def argv_for(k: int, result: Path) -> list[str]:
        argv = ["check", "--driver", args.driver, "--profile", profile, "--examples", str(args.examples),
                "--steps", str(args.steps), "--blocks", str(args.blocks), "--out", args.out,
                "--database", args.database, "--format", "json", "--shard", f"{k}/{shards}", "--result", str(result)]
        if args.seed is not None:
            argv += ["--seed", str(args.seed)]
        for key in ("uri", "url", "vm"):
            if getattr(args, key, None):
                argv += [f"--{key}", getattr(args, key)]
        return argv + ["--insecure"] * bool(args.insecure) + ["--no-guards"] * bool(args.no_guards)

    started = time.monotonic()
    results = run_shards(argv_for, shards, min(args.workers, shards), None if args.format == "json" else sys.stderr)
    merged = merge(results, cls, started, time.monotonic(), applicable(get_profile(profile), cls.operations),
                   [] if args.no_guards else guards_for(profile))
    return merged, results


def _names(text: str) -> tuple[str, ...]:
    items = tuple(item for item in text.split(","))
    if not all(items) or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"'{text}' must be distinct, non-empty items separated by commas")
    return items


def cmd_explore(args: argparse.Namespace) -> int:
    from .explore import BoundsError, explore, report_text, write_graph

    profile = _one_profile(args.profile)
    assert profile is not None
    bounds = _bounds(args)
    if args.graph and not args.graph.endswith((".graphml", ".dot", ".gv")):
        raise UsageError(f"--graph {args.graph}: the name must end in .graphml or .dot")
    if args.graph:
        _check_writable(args.graph, "--graph", folder=False)
    try:
        result = explore(profile, args.depth, bounds, graph=bool(args.graph))
    except BoundsError as error:
        raise UsageError(str(error)) from None
    print(report_text(result))
    if args.graph:
        write_graph(result, args.graph)
        print(printable(f"graph: {args.graph}"))
    return EXIT_FAILED if result.violations else EXIT_OK


def _bounds(args: argparse.Namespace) -> Any:
    from .explore import Bounds

    defaults = Bounds()
    return Bounds(names=args.names or defaults.names, blocks=args.blocks, values=args.values or defaults.values,
                  operations=args.ops or defaults.operations, flags=getattr(args, "flags", defaults.flags),
                  unnamed=args.unnamed)


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff, html_report, table_text, witness_name, witness_xml
    from .explore import BoundsError

    first, second = _one_profile(args.first), _one_profile(args.second)
    assert first is not None and second is not None
    if first == second:
        raise UsageError(f"diff needs two different profiles, not {first} twice")
    if args.out:
        _check_writable(args.out, "--out", folder=True)
    if args.html:
        _check_writable(args.html, "--html", folder=False)
    try:
        result = diff(first, second, args.depth, _bounds(args))
    except BoundsError as error:
        raise UsageError(str(error)) from None
    print(table_text(result))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for d in result.groups.values():
            path = os.path.join(args.out, witness_name(result, d))
            with open(path, "wb") as out:
                out.write(witness_xml(result, d))
        print(printable(f"{len(result.groups)} witnesses in {args.out}: snaptree compare FILE --profiles {first},{second}"))
    if args.html:
        page = html_report(result, _svg)
        with open(args.html, "w", encoding="utf-8") as out:
            out.write(page)
        print(printable(f"report: {args.html}"))
    return EXIT_OK


def _check_cover(args: argparse.Namespace, cls: type[Driver], profile: str, options: dict[str, Any]) -> int:
    """check --plan cover: every transition of the bounded state graph, in lockstep (oracle/cover.py)."""
    from .check import divergence_report, write_counterexample
    from .cover import report_text, run_cover

    result = run_cover(cls, profile, args.depth, args.blocks, options)
    print(report_text(result))
    if result.divergence is None:
        print(f"CONFORMS: driver {cls.name} follows profile {profile} on every transition of the plan")
        return EXIT_OK
    print(f"DIVERGES: driver {cls.name} and profile {profile} part ways")
    print(divergence_report(result.divergence, cls.name))
    path = write_counterexample(result.divergence, args.driver, profile, args.blocks, args.out, None)
    if path is not None:
        print(printable(f"scenario: {path}"))
    return EXIT_FAILED


def _check_writable(path: str, option: str, folder: bool) -> None:
    """Refuse an output that cannot be written before a check that may take hours, rather
    than lose its result after it: an existing file or folder must be of the right kind and
    writable; a new one's nearest existing folder (its own folder, for a file) writable."""
    target = Path(path).absolute()
    if target.exists():
        if target.is_dir() != folder:
            raise UsageError(f"{option} {path}: {'not a directory' if folder else 'is a directory'}")
        if not os.access(target, os.W_OK | (os.X_OK if folder else 0)):
            raise UsageError(f"{option} {path}: not writable")
        return
    parent = target.parent
    while folder and not parent.exists():  # a folder is made with its parents
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot create it, {parent} is not writable")


def cmd_replay(args: argparse.Namespace) -> int:
    from .check import divergence_report, replay

    scenario = scenario_files.load(args.file)
    if not args.profile:
        args.profile = scenario.profile
    cls, profile, options = _driver_class(args)
    scenario.profile = profile
    driver = cls(profile, **options)
    for index, step in enumerate(scenario.steps, 1):
        problem = _cannot_perform(driver, step.op) if step.applies_to(profile) else None
        if problem:  # the driver does not claim this: no verdict on it either way
            raise UsageError(f"cannot replay {args.file} on driver {cls.name}: step {index} "
                             f"({ops.describe(step.op)}): {problem}")
    try:
        lockstep, divergence = replay(driver, scenario)
    finally:
        driver.close()
    if divergence is None:
        print(f"SAME: driver {cls.name} and profile {profile} agree on all {len(lockstep.history)} steps of "
              f"{printable(args.file)}")
        return EXIT_OK
    print(f"DIVERGES: driver {cls.name} and profile {profile} on {printable(args.file)}")
    print(divergence_report(divergence, cls.name))
    return EXIT_FAILED


def _cannot_perform(driver: Driver, op: ops.Operation) -> str | None:
    """Why ``driver`` cannot perform ``op`` by its own declarations (what `check` never
    generates for it), or None."""
    if op.tag not in driver.operations:
        return f"it does not perform {op.tag}"
    flags = getattr(op, "flags", ())
    unknown = [flag for flag in flags if flag not in driver.flags.get(op.tag, frozenset())]
    if unknown:
        return f"it does not pass {' '.join(unknown)} to {op.tag}"
    if isinstance(op, (ops.Revert, ops.Delete)) and op.id is not None and not (
            driver.by_id is True or (not isinstance(driver.by_id, bool) and op.tag in driver.by_id)):
        return f"it does not address a snapshot by id in {op.tag}"
    if isinstance(op, ops.CreateSnapshot) and op.memory is not None and not driver.memory_choice:
        return "it cannot choose between a memory and a disk-only snapshot"
    return None


def cmd_drivers(args: argparse.Namespace) -> int:
    from .drivers import REGISTRY, load

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
    from .findings import findings

    rows: list[dict[str, Any]] = []
    for finding in findings():
        row: dict[str, Any] = {
            "path": finding.path, "title": finding.title, "profile": finding.profile,
            "guard": finding.guard.name if finding.guard else None,
            "affects": [f"{component} {version}" for component, version in finding.affects],
            "replay": "snaptree " + " ".join(shlex.quote(word) for word in finding.replay_args())}
        if args.replay:
            row.update(_replay_finding(finding))
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
    return EXIT_FAILED if stale else EXIT_OK


def _replay_finding(finding: Finding) -> dict[str, Any]:
    """Replay one finding on its driver: "reproduces", "unlisted" (it diverges on versions it
    does not list), "fixed?" (seen on these versions, and now the same), "same" (not seen here,
    and the same) or "cannot" (the driver is not here)."""
    from .drivers import load

    replay_args = build_parser().parse_args(finding.replay_args())
    try:
        options = {"uri": finding.uri} if finding.uri else {}
        installed = load(finding.driver).installed_versions({**options, "profile": finding.profile})
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = cmd_replay(replay_args)
    except (DriverUnavailable, UsageError) as error:
        return {"verdict": "cannot", "installed": "", "detail": str(error)}
    here = installed_text(installed) or "versions unknown"
    lines = output.getvalue().splitlines()
    first = next((line.strip() for line in lines if line.strip().startswith("first difference")), lines[0] if lines else "")
    seen = finding.seen_on(installed)
    if code == EXIT_FAILED:
        return {"verdict": "reproduces" if seen else "unlisted", "installed": here,
                "detail": first if seen else f"{first} (add these versions to its affects)"}
    if seen and finding.race:
        return {"verdict": "same", "installed": here, "detail": "a race, and this replay took the common path"}
    return {"verdict": "fixed?" if seen else "same", "installed": here,
            "detail": "it no longer diverges: update the finding" if seen else "not seen on these versions"}


def cmd_dumpxml(args: argparse.Namespace) -> int:
    machine = _machine_at(args)
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


EXAMPLES = {
    "findings": """examples:
  snaptree findings                              the bugs found so far, with the versions they were seen on
  snaptree findings --replay                     replay each on this machine's components (CI does, on both
                                                 version sets: a fix upstream, or a new version, turns it red)
  bash .ci/backports run snaptree findings --replay   the same on bookworm-backports' libvirt and QEMU

exit status: 0 every finding behaves as it says, 1 one does not (update it), 2 bad input""",
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
  snaptree show my.xml --format virsh            as `virsh snapshot-list --tree` prints it

notation: base <--1-- A <--2-- B <--3-- current
                      + <--4-- D
arrows point from child to parent; numbers are overlays; 'current' is the running state.""",
    "profiles": """example:
  snaptree profiles""",
    "check": """examples:
  snaptree check --driver model --profile vbox          self-check: the model against itself
  snaptree check --driver qemu-img --examples 50 --seed 1 --junit check.xml
  snaptree check --driver mypkg.snap:MyDriver --profile libvirt-test
  snaptree check --driver qemu-img --plan cover --depth 3   every transition of the bounded state graph
  snaptree check --driver qemu-hmp --examples 400 --shards 8 --workers 2 --seed 1   8 shards, 2 processes at a time
  snaptree check --driver qemu-hmp --examples 400 --shard 3/8 --seed 1 --database redis://ci:6379/0   one runner of 8

It drives random histories through the driver and the model in lockstep and compares, after
every step, the outcome (ok or error kind) and everything the driver observes: the tree,
current snapshot, power state, memory images, and the blocks every snapshot reads.  A
divergence is shrunk to a minimal history and written as a scenario file that replays.
Failures found once are tried first next time (Hypothesis' example database, --database).

exit status: 0 conforms, 1 diverges (the scenario path is printed), 2 set-up error (the machine under
the driver failed: a full disk, a disk size qcow2 cannot hold) or bad input, 130 SIGINT, 143 SIGTERM""",
    "replay": """examples:
  snaptree replay snaptree-out/counterexample-qemu-img-qemu-img-20261126-101500.xml --driver qemu-img
  snaptree replay scenarios/seed-delete-leaf.xml --driver model --profile esx

exit status: 0 the driver and the model agree on every step, 1 they part ways, 2 set-up error or bad
input, 130 SIGINT, 143 SIGTERM""",
    "dumpxml": """examples:
  snaptree dumpxml scenarios/seed-delete-leaf.xml B
  snaptree dumpxml my.xml C --step 5 --profile libvirt-qemu

Prints what `virsh snapshot-dumpxml DOMAIN NAME` would show for the modelled snapshot.""",
    "explore": """examples:
  snaptree explore --profile esx --depth 6            every history of up to 6 operations
  snaptree explore --profile vbox --depth 5 --names A,B,C --blocks 1 --values a
  snaptree explore --profile libvirt-test --depth 4 --ops snapshot,revert,delete --flags all
  snaptree explore --profile qemu-img --depth 4 --graph states.graphml   (or states.dot)

Histories are drawn from a finite alphabet: writes of each value to each block, the
profile's power operations, creates of each name, reverts and deletes of each name (with
each single flag the system accepts, --flags common), delete-all.  Equal states are explored
once.  The four properties of the model are checked on every transition.

exit status: 0 no property is violated, 1 one is (the shortest history is printed), 2 bad input""",
    "diff": """examples:
  snaptree diff esx vbox                          where ESX and VirtualBox part ways, to depth 5
  snaptree diff qemu-hmp qemu-qmp --depth 6 --out witnesses
  snaptree diff libvirt-test proposal-2010 --names A,B,C --blocks 1
  snaptree diff esx vbox --html esx-vbox.html     one page: each group's steps side by side, trees drawn

Both profiles take the same histories of flag-free operations both can express (writes,
creates, reverts and deletes by name, shared power operations, delete-all).  Every first
disagreement (outcome, tree, current, power, recorded state, memory, RAM, what any point in
time reads) is kept, grouped by what differs and the operation that reveals it, with the
shortest history of each group; --out writes each as a scenario file with each profile's
expectations, which `snaptree run FILE --profile a,b` and `snaptree compare` replay.

exit status: 0 (differences are the answer, not a failure), 2 bad input""",
    "drivers": """example:
  snaptree drivers          each driver, whether its real component is installed, what it observes""",
}


def vsphere_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="vsphere: a real host, https://USER:PASS@HOST/sdk (default: the bundled simulator)")
    p.add_argument("--vm", help="vsphere: the VM on that host whose snapshots are checked")
    p.add_argument("--insecure", action="store_true", help="vsphere: do not verify the host's certificate")


def _bound_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--names", type=_names, help="snapshot names (default A,B)")
    p.add_argument("--blocks", type=_positive, default=2, help="disk size in blocks (default 2)")
    p.add_argument("--values", type=_names, help="values written (default a,b)")
    p.add_argument("--ops", type=_names, help="operations, by scenario tag (default: all the profile has)")
    p.add_argument("--unnamed", action="store_true", help="also creates without a name")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    p.add_argument("--profile", help="run under this profile (or each of a,b) instead of each file's own")
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
    p.add_argument("--format", choices=["text", "dot", "svg", "virsh"], default="text",
                   help="virsh: as `virsh snapshot-list --tree` prints it")

    p = command("dumpxml", "print a modelled snapshot as libvirt <domainsnapshot> XML", cmd_dumpxml)
    p.add_argument("file", metavar="FILE")
    p.add_argument("name", metavar="NAME", help="the snapshot's name (or id)")
    p.add_argument("--step", type=int, help="after this many steps (default: all)")
    p.add_argument("--profile", help="under this profile instead of the file's own")

    p = command("check", "check a driver against a profile over random histories", cmd_check)
    p.add_argument("--driver", required=True, help="a driver name (see `snaptree drivers`) or module:Class")
    p.add_argument("--profile", help="the profile to check against (default: the driver's first)")
    p.add_argument("--uri", type=_uri, help="connection URI, for drivers that take one (libvirt)")
    vsphere_options(p)
    p.add_argument("--examples", type=_positive, default=100, help="random histories (default 100)")
    p.add_argument("--steps", type=_positive, default=20, help="operations per history at most (default 20)")
    p.add_argument("--blocks", type=_positive, default=8, help="disk size in blocks (default 8)")
    p.add_argument("--seed", type=int, help="make the run repeatable")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("--out", metavar="DIR", default="snaptree-out", help="where counterexamples go")
    p.add_argument("--database", metavar="DIR|URL", default=".snaptree/examples",
                   help="Hypothesis example database: a directory, redis://HOST:PORT/DB (shared by runners on "
                        "several machines), or 'none' (default .snaptree/examples)")
    p.add_argument("--workers", type=_positive, default=1,
                   help="run the shards in this many processes at once (default 1)")
    p.add_argument("--shards", type=_positive,
                   help="split the examples into this many shards, each with a seed of its own (default: --workers)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only shard K of N (the same shard as in a run of N shards): one runner of N")
    p.add_argument("--result", help=argparse.SUPPRESS)  # a worker's pickled result, for the run that started it
    p.add_argument("--no-guards", action="store_true",
                   help="also draw what the guards of known findings (scenarios/findings/) leave out")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--plan", choices=["random", "cover"], default="random",
                   help="cover: every transition of the state graph to --depth, instead of random histories")
    p.add_argument("--depth", type=_positive, default=3, help="with --plan cover: the graph's depth (default 3)")

    p = command("replay", "replay a scenario on a driver and the model, and compare", cmd_replay)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--driver", required=True, help="a driver name or module:Class")
    p.add_argument("--profile", help="default: the scenario's profile")
    p.add_argument("--uri", type=_uri, help="connection URI, for drivers that take one")
    vsphere_options(p)

    p = command("findings", "list the real bugs snaptree has found (scenarios/findings/)", cmd_findings)
    p.add_argument("--replay", action="store_true",
                   help="replay each on its driver here; exit 1 when one seen on these versions no longer diverges, "
                        "or one diverges on versions it does not list")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = command("explore", "explore every history of the model within small bounds", cmd_explore)
    p.add_argument("--profile", required=True, help="the profile to explore")
    p.add_argument("--depth", type=_positive, default=4, help="operations per history at most (default 4)")
    _bound_options(p)
    p.add_argument("--flags", choices=["none", "common", "all"], default="common",
                   help="none; common: each single revert and delete flag (default); all: create flags too")
    p.add_argument("--graph", metavar="FILE", help="write the state graph (.graphml or .dot)")

    p = command("diff", "every way two profiles part ways on the same small histories", cmd_diff)
    p.add_argument("first", metavar="P1")
    p.add_argument("second", metavar="P2")
    p.add_argument("--depth", type=_positive, default=5, help="operations per history at most (default 5)")
    p.add_argument("--out", metavar="DIR", help="write each group's shortest history as a scenario file")
    p.add_argument("--html", metavar="FILE", help="also write the table as one page: steps side by side, trees drawn")
    _bound_options(p)

    p = command("drivers", "list the drivers and whether their real component is here", cmd_drivers)
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = command("profiles", "list the profiles and the system each follows", cmd_profiles)
    p.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def _drop_stdout() -> None:
    """Point stdout at /dev/null once writing to it failed, so that the interpreter's flush at
    exit does not fail (and print) again."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture): nothing to flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args: Any = build_parser().parse_args(argv)
        with lifetime.signals_handled():  # SIGTERM, SIGHUP, SIGINT: unwind, clean up, exit 128 + signal
            code = int(args.handler(args))
            sys.stdout.flush()  # a full disk shows here, not at exit
        return code
    except (UsageError, ScenarioError, DriverUnavailable, EnvironmentFailure) as error:
        print(f"snaptree: {printable(str(error))}", file=sys.stderr)  # one line, whatever it quotes
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_OK
    except OSError as error:
        if error.errno not in OUTPUT_FULL:
            raise  # a bug: keep its traceback
        _drop_stdout()
        print(f"snaptree: cannot write the output: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except lifetime.Terminated as signalled:
        print(f"snaptree: {signalled}", file=sys.stderr)
        return signalled.exit_status
    except KeyboardInterrupt:
        print("snaptree: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
