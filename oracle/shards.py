"""A check split into shards: each shard runs its share of the examples with a seed of its
own, so that N shards on N workers (or N machines, `--shard K/N`) do what one run of N shards
does; their results add up to one.  Shards share an example database (a directory, or Redis
across machines), so a counterexample one shard finds is tried first by every other."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from .checker.results import CheckResult, Stats
from .cover import random_coverage
from .driver import Driver
from .errors import hide_secrets
from .findings import Finding, Guard
from .situations import Situation, Tally


class ShardError(ValueError):
    """A shard or database given wrongly: the caller reports it as bad input."""


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N), 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ShardError(f"'{text}' is no shard: give K/N, e.g. 3/8")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= k <= n:
        raise ShardError(f"shard {text}: K must be from 1 to N")
    return k, n


def shard_examples(examples: int, k: int, n: int) -> int:
    """Shard K's share: the examples split evenly, the first ``examples % n`` one more."""
    return examples // n + (1 if k <= examples % n else 0)


def shard_seed(seed: int | None, k: int, n: int) -> int | None:
    """One shard of one keeps the seed (the same run as without shards); shard K of more gets
    a seed of its own from the base seed and K, the same on every machine."""
    if seed is None or n == 1:
        return seed
    digest = hashlib.sha256(f"snaptree shard {seed} {k}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_label(driver: str, profile: str, k: int, n: int) -> str:
    return f"{driver}/{profile} shard {k}/{n}"


# -- example databases --------------------------------------------------------------------------

def is_redis(database: str | None) -> bool:
    return bool(database) and str(database).startswith(("redis://", "rediss://", "unix://"))


def open_database(database: str | None) -> ExampleDatabase | None:
    """A directory, a redis:// URL (Hypothesis' RedisExampleDatabase), or None."""
    if not database:
        return None
    if not is_redis(database):
        return DirectoryBasedExampleDatabase(database)
    from hypothesis.extra.redis import RedisExampleDatabase

    return RedisExampleDatabase(_redis_client(database))


def _redis_client(url: str) -> Any:
    shown = f"--database {hide_secrets(url)}"  # its password is never printed
    problem = redis_url_problem(url)
    if problem:
        raise ShardError(f"{shown}: {problem}")
    try:
        import redis
    except ImportError:
        raise ShardError(f"{shown}: the redis package is not installed (pip install 'snaptree[redis]')") from None
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    except ValueError as error:
        raise ShardError(f"{shown}: {hide_secrets(str(error))}") from None


def redis_url_problem(url: str) -> str | None:
    """What redis-py would replace without a word: a port of 0 (by 6379) and a DB that is not a
    whole number (by 0), in the path or as ?db=."""
    parts = urlparse(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "the port must be a number from 1 to 65535"
    given = parse_qs(parts.query).get("db", [])
    if parts.scheme in ("redis", "rediss") and parts.path.strip("/"):
        given.append(parts.path.strip("/"))
    for db in given:
        if not re.fullmatch("[0-9]+", db):
            return f"the DB '{db}' is not a whole number (redis://HOST:PORT/DB)"
    return None


def check_redis(url: str) -> None:
    """Before a run starts: the server answers, and lets us write (a read-only replica, a
    password asked for and not given, an out-of-range DB all refuse here)."""
    import redis

    client = _redis_client(url)
    try:
        client.ping()
        client.set("snaptree:check-database", b"1", ex=60)
    except redis.RedisError as error:
        text = " ".join(str(error).split()) or type(error).__name__
        raise ShardError(f"--database {hide_secrets(url)}: the Redis server cannot be used: {hide_secrets(text)}") from None
    finally:
        client.close()


# -- results ------------------------------------------------------------------------------------

def merge(results: list[CheckResult], driver_class: type[Driver], started: float, ended: float,
          situations: list[Situation], guarded: list[tuple[Guard, Finding]]) -> CheckResult:
    """One result of the shards' results: the statistics added up, the time the wall time of the
    whole run, and the first divergence found (the earliest after its shard started)."""
    first = results[0]
    stats = Stats(started=started, ended=ended)
    stats.situations = Tally()
    for r in results:
        s = r.stats
        stats.examples += s.examples
        stats.steps += s.steps
        stats.operations.update(s.operations)
        stats.errors.update(s.errors)
        stats.excluded.update(s.excluded)
        stats.situations.histories += s.situations.histories
        stats.situations.reached.update(s.situations.reached)
        stats.histories.extend(s.histories)
    diverged = sorted((r for r in results if r.divergence is not None), key=lambda r: r.stats.first_divergence or 0.0)
    merged = CheckResult(first.driver, first.profile, stats, situations=situations, guarded=guarded,
                         versions=first.versions)
    if diverged:
        found = diverged[0]
        merged.divergence, merged.flaky, merged.scenario_path = found.divergence, found.flaky, found.scenario_path
        # from the start of the whole run to the shard's first divergence
        stats.first_divergence = found.stats.started - started + (found.stats.first_divergence or 0.0)
        stats.shrink = copy.copy(found.stats.shrink)
    merged.coverage = random_coverage(first.profile, driver_class, stats.histories)
    return merged


def per_shard(results: list[CheckResult]) -> list[dict[str, Any]]:
    """What each shard did, for the summary."""
    return [{"examples": r.stats.examples, "steps": r.stats.steps, "seconds": round(r.stats.seconds, 3),
             "conforms": r.conforms, "scenario": str(r.scenario_path) if r.scenario_path else None}
            for r in results]

