"""The commands that check a driver: check (random histories, or --plan cover) and replay."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from snaptree.model.escape import plural, printable

from .. import lifetime, scenario_format
from ..checker.config import DEFAULT_DATABASE, CheckConfig
from ..checker.replay import replay_scenario
from ..checker.reports import divergence_report, junit_xml, summary_json, summary_text, verdict_text
from ..checker.results import CheckResult
from ..checker.run import run_check
from ..errors import UsageError, hide_secrets
from ..lockstep import DriverError
from ..outputs import write_output
from ..resolve import ResolvedDriver, resolve_driver
from ..shards import ShardError, check_redis, is_redis, parse_shard, per_shard
from .common import EXIT_BAD_INPUT, EXIT_DRIVER_ERROR, EXIT_FAILED, EXIT_OK, check_writable, one_profile, to_json, unwritable


def driver_options(args: argparse.Namespace) -> dict[str, Any]:
    """The driver's own options among the command's: --uri, --url, --vm, --insecure."""
    options: dict[str, Any] = {"uri": args.uri} if getattr(args, "uri", None) else {}
    options.update({key: value for key in ("url", "vm", "insecure") if (value := getattr(args, key, None))})
    return options


def resolve(args: argparse.Namespace, profile: str | None) -> ResolvedDriver:
    resolved = resolve_driver(args.driver, profile, driver_options(args))
    for note in resolved.notes:
        print(f"snaptree: {note}", file=sys.stderr)
    return resolved


def cmd_check(args: argparse.Namespace) -> int:
    idle_options(args)
    resolved = resolve(args, one_profile(args.profile))
    check_writable(args.out, "--out", folder=True)  # before the work, not after it
    if args.junit:
        check_writable(args.junit, "--junit", folder=False)
    if args.plan == "cover":
        from .cover_command import check_cover

        return check_cover(args, resolved)
    given = CheckConfig(driver=args.driver)  # the defaults of what was not given
    examples, steps, workers = args.examples or given.examples, args.steps or given.steps, args.workers or given.workers
    database: str = args.database or DEFAULT_DATABASE
    try:
        shard = parse_shard(args.shard) if args.shard else None
        if is_redis(database):
            check_redis(database)  # a server that is down fails now, not at the first example
        elif database != "none":
            check_writable(database, "--database", folder=True)
    except ShardError as error:
        raise UsageError(str(error)) from None
    shards = args.shards or workers
    if shard is not None and (args.shards or workers > 1):
        raise UsageError("--shard K/N runs one shard here; --shards and --workers split a run on this machine")
    if max(shard[1] if shard else 1, shards) > examples:
        raise UsageError(f"--examples {examples} is fewer than the shards: each shard needs one at least")
    config = CheckConfig(driver=args.driver, profile=resolved.profile, options=resolved.options,
                         examples=examples, steps=steps, blocks=args.blocks, disks=args.disks, seed=args.seed,
                         database=None if database == "none" else database, out=args.out,
                         guards=not args.no_guards, shard=shard, shards=shards, workers=workers)
    try:
        result = run_check(config, resolved, progress=None if args.format == "json" else sys.stderr)
    except lifetime.Terminated as signalled:  # what ran so far, then main's one line
        if isinstance(signalled.partial, CheckResult):
            so_far = signalled.partial
            if args.format == "json":
                print(to_json(interrupted_json(so_far, signalled)))
            else:
                print(summary_text(so_far))
                print(interrupted_line(signalled, f"{so_far.stats.examples:,} of {examples:,} examples"))
        raise
    unwritten = []  # outputs that still failed: reported after the verdict, which is not lost
    if result.divergence is not None and result.scenario_path is None:
        unwritten.append(f"the counterexample was not written into {args.out} (it is above)")
    if args.junit:
        try:
            write_output(args.junit, junit_xml(result.shard_results or [result]).encode())
        except OSError as error:
            unwritten.append(unwritable("--junit", args.junit, error))
    lost = [r.database_lost for r in result.shard_results or [result] if r.database_lost]
    unwritten.extend(lost[:1])  # every shard lost the same database: one line
    if args.format == "json":
        print(to_json(check_json(result)))
    else:
        print(check_text(result, args))
    return exit_status(result, unwritten)


def exit_status(result: CheckResult, problems: list[str]) -> int:
    """After the report: each problem that came after the verdict (an output not written, the
    example database lost) one line, exit 2; else the verdict's status."""
    for problem in problems:
        print(f"snaptree: {printable(problem)}", file=sys.stderr)
    if problems:
        return EXIT_BAD_INPUT
    return EXIT_OK if result.conforms else EXIT_DRIVER_ERROR if result.driver_error is not None else EXIT_FAILED


# what each option of random histories is, that --plan cover does not do
RANDOM_ONLY = (("examples", "--examples", "the plan's histories are as many as its transitions need"),
               ("steps", "--steps", "the plan's histories are as long as --depth makes them"),
               ("seed", "--seed", "the plan is the same on every run"),
               ("database", "--database", "the plan keeps no examples"),
               ("workers", "--workers", "the plan runs in one process"),
               ("shards", "--shards", "the plan runs in one process"),
               ("shard", "--shard", "the plan runs in one process"),
               ("no_guards", "--no-guards", "the plan draws nothing that a guard could leave out"),
               ("disks", "--disks", "the plan's graph is of one qcow2 disk"))


def idle_options(args: argparse.Namespace) -> None:
    """An option that would do nothing in this combination is refused, not ignored."""
    if args.plan == "cover":
        for key, option, why in RANDOM_ONLY:
            if getattr(args, key) not in (None, False):
                raise UsageError(f"{option} does nothing with --plan cover: {why}")
        return
    if args.depth is not None:
        raise UsageError("--depth does nothing without --plan cover (random histories are --steps long)")
    if args.workers and args.shards and args.workers > args.shards:
        raise UsageError(f"--workers {args.workers} with --shards {args.shards}: "
                         f"{plural(args.workers - args.shards, 'worker')} would have no shard to run")


def interrupted_line(signalled: lifetime.Terminated, ran: str) -> str:
    return f"INTERRUPTED ({signalled}) after {ran}: no verdict"


def interrupted_json(result: CheckResult, signalled: lifetime.Terminated) -> dict[str, Any]:
    return {**check_json(result), "conforms": None, "verdict": "interrupted", "interrupted": str(signalled)}


def check_json(result: CheckResult) -> dict[str, Any]:
    report = summary_json(result)
    if result.shard:
        report["shard"] = result.shard
    if result.shard_results:
        report["workers"] = result.workers
        report["shards"] = per_shard(result.shard_results)
    if result.divergence is not None:
        report["differences"] = [str(d) for d in result.divergence.differences]
    report["stopped"] = stopped_notes(result) or None
    return report


def stopped_notes(result: CheckResult) -> list[str]:
    """Why the run (or a shard of it) ran fewer examples than asked without a divergence."""
    return [r.stopped for r in result.shard_results or [result] if r.stopped]


def check_text(result: CheckResult, args: argparse.Namespace) -> str:
    """The summary, then the verdict; for a divergence the history side by side and how to replay it."""
    lines = [summary_text(result)]
    stats = result.stats
    if result.shard_results:
        lines.append(f"{len(result.shard_results)} shards on {result.workers} workers: {stats.seconds:.1f} s of wall "
                     f"time, {sum(r.stats.seconds for r in result.shard_results):.1f} s in the shards")
    lines.extend(stopped_notes(result))
    lines.append(verdict_text(result, f" ({result.shard} of the examples)" if result.shard else ""))
    if result.divergence is None:
        return "\n".join(lines)
    lines.append(divergence_report(result.divergence, result.driver))
    if result.scenario_path is not None:
        lines.append(printable(f"scenario: {result.scenario_path}"))
        lines.append(printable(f"replay:   snaptree replay {result.scenario_path} --driver {args.driver}"
                               + (f" --uri '{hide_secrets(args.uri)}'" if args.uri else "")))
    others = [r.scenario_path for r in result.shard_results if r.scenario_path not in (None, result.scenario_path)]
    lines.extend(printable(f"another shard's scenario: {path}") for path in others)
    return "\n".join(lines)


def cmd_replay(args: argparse.Namespace) -> int:
    scenario = scenario_format.load(args.file)
    resolved = resolve(args, one_profile(args.profile) or scenario.profile)
    result = replay_scenario(resolved, scenario, label=args.file)
    if result.divergence is None:
        steps = ("all " if result.steps > 1 else "") + plural(result.steps, "step")
        print(f"SAME: driver {resolved.name} and profile {resolved.profile} agree on {steps} of {printable(args.file)}")
        return EXIT_OK
    driver_error = isinstance(result.divergence, DriverError)
    print(f"DRIVER ERROR: driver {resolved.name} failed in its own code on {printable(args.file)}: "
          f"{printable(result.divergence.summary())}" if isinstance(result.divergence, DriverError)
          else f"DIVERGES: driver {resolved.name} and profile {resolved.profile} on {printable(args.file)}")
    print(divergence_report(result.divergence, resolved.name))
    return EXIT_DRIVER_ERROR if driver_error else EXIT_FAILED
