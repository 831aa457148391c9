"""The commands that check a driver: check (random histories, or --plan cover) and replay."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from snaptree.model.escape import printable

from .. import scenario_format
from ..checker.config import CheckConfig
from ..checker.counterexample import write_counterexample
from ..checker.replay import replay_scenario
from ..checker.reports import divergence_report, junit_xml, summary_json, summary_text
from ..checker.results import CheckResult
from ..checker.run import run_check
from ..errors import UsageError
from ..resolve import ResolvedDriver, resolve_driver
from ..shards import ShardError, check_redis, is_redis, parse_shard, per_shard
from .common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, check_writable, one_profile, to_json


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
    resolved = resolve(args, one_profile(args.profile))
    check_writable(args.out, "--out", folder=True)  # before the work, not after it
    if args.plan == "cover":
        return check_cover(args, resolved)
    if args.junit:
        check_writable(args.junit, "--junit", folder=False)
    try:
        shard = parse_shard(args.shard) if args.shard else None
        if is_redis(args.database):
            check_redis(args.database)  # a server that is down fails now, not at the first example
        elif args.database != "none":
            check_writable(args.database, "--database", folder=True)
    except ShardError as error:
        raise UsageError(str(error)) from None
    shards = args.shards or args.workers
    if shard is not None and (args.shards or args.workers > 1):
        raise UsageError("--shard K/N runs one shard here; --shards and --workers split a run on this machine")
    if max(shard[1] if shard else 1, shards) > args.examples:
        raise UsageError(f"--examples {args.examples} is fewer than the shards: each shard needs one at least")
    config = CheckConfig(driver=args.driver, profile=resolved.profile, options=resolved.options,
                         examples=args.examples, steps=args.steps, blocks=args.blocks, seed=args.seed,
                         database=None if args.database == "none" else args.database, out=args.out,
                         guards=not args.no_guards, shard=shard, shards=shards, workers=args.workers)
    result = run_check(config, resolved, progress=None if args.format == "json" else sys.stderr)
    unwritten = []  # outputs that still failed: reported after the verdict, which is not lost
    if result.divergence is not None and result.scenario_path is None:
        unwritten.append(f"the counterexample was not written into {args.out} (it is above)")
    if args.junit:
        try:
            with open(args.junit, "w", encoding="utf-8") as junit:
                junit.write(junit_xml(result.shard_results or [result]))
        except OSError as error:
            unwritten.append(f"cannot write --junit {args.junit}: {error.strerror or error}")
    if args.format == "json":
        print(to_json(check_json(result)))
    else:
        print(check_text(result, args))
    for problem in unwritten:
        print(f"snaptree: {printable(problem)}", file=sys.stderr)
    if unwritten:
        return EXIT_BAD_INPUT
    return EXIT_OK if result.conforms else EXIT_FAILED


def check_json(result: CheckResult) -> dict[str, Any]:
    report = summary_json(result)
    if result.shard:
        report["shard"] = result.shard
    if result.shard_results:
        report["workers"] = result.workers
        report["shards"] = per_shard(result.shard_results)
    if result.divergence is not None:
        report["differences"] = [str(d) for d in result.divergence.differences]
    return report


def check_text(result: CheckResult, args: argparse.Namespace) -> str:
    """The summary, then the verdict; for a divergence the history side by side and how to replay it."""
    lines = [summary_text(result)]
    stats = result.stats
    if result.shard_results:
        lines.append(f"{len(result.shard_results)} shards on {result.workers} workers: {stats.seconds:.1f} s of wall "
                     f"time, {sum(r.stats.seconds for r in result.shard_results):.1f} s in the shards")
    where = f" ({result.shard} of the examples)" if result.shard else ""
    if result.divergence is None:
        lines.append(f"CONFORMS: driver {result.driver} follows profile {result.profile} over {stats.examples} random "
                     f"histories{where}")
        return "\n".join(lines)
    lines.append(f"DIVERGES: driver {result.driver} and profile {result.profile} part ways{where}"
                 + (" (flaky: the driver did not fail the same way twice)" if result.flaky else ""))
    lines.append(divergence_report(result.divergence, result.driver))
    if result.scenario_path is not None:
        lines.append(printable(f"scenario: {result.scenario_path}"))
        lines.append(printable(f"replay:   snaptree replay {result.scenario_path} --driver {args.driver}"
                               + (f" --uri '{args.uri}'" if args.uri else "")))
    others = [r.scenario_path for r in result.shard_results if r.scenario_path not in (None, result.scenario_path)]
    lines.extend(printable(f"another shard's scenario: {path}") for path in others)
    return "\n".join(lines)


def check_cover(args: argparse.Namespace, resolved: ResolvedDriver) -> int:
    """check --plan cover: every transition of the bounded state graph, in lockstep (oracle/cover.py)."""
    from ..cover import report_text, run_cover

    result = run_cover(resolved.cls, resolved.profile, args.depth, args.blocks, resolved.options)
    print(report_text(result))
    if result.divergence is None:
        print(f"CONFORMS: driver {resolved.name} follows profile {resolved.profile} on every transition of the plan")
        return EXIT_OK
    print(f"DIVERGES: driver {resolved.name} and profile {resolved.profile} part ways")
    print(divergence_report(result.divergence, resolved.name))
    path = write_counterexample(result.divergence, args.driver, resolved.profile, args.blocks, args.out, None)
    if path is not None:
        print(printable(f"scenario: {path}"))
    return EXIT_FAILED


def cmd_replay(args: argparse.Namespace) -> int:
    scenario = scenario_format.load(args.file)
    resolved = resolve(args, one_profile(args.profile) or scenario.profile)
    result = replay_scenario(resolved, scenario, label=args.file)
    if result.divergence is None:
        print(f"SAME: driver {resolved.name} and profile {resolved.profile} agree on all {result.steps} steps of "
              f"{printable(args.file)}")
        return EXIT_OK
    print(f"DIVERGES: driver {resolved.name} and profile {resolved.profile} on {printable(args.file)}")
    print(divergence_report(result.divergence, resolved.name))
    return EXIT_FAILED
