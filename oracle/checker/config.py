"""What a check is asked to do: one typed value, which the command line, the pytest plugin and
the workers build and pass on (a worker receives it as it is, not a rebuilt command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from snaptree.model.disks import Disk

if TYPE_CHECKING:
    from ..driver import Driver

DEFAULT_DATABASE = ".snaptree/examples"


@dataclass(frozen=True)
class CheckConfig:
    # a registered driver name (`snaptree drivers`), a third party's module:Class, or a Driver class
    # (one that pickles, i.e. defined at a module's top level, when the shards run on workers)
    driver: str | type[Driver]
    profile: str | None = None  # None: the driver's default for its options
    options: dict[str, Any] = field(default_factory=dict)  # the driver's own: uri, url, vm, insecure
    examples: int = 100  # random histories, in all shards together
    steps: int = 20  # operations per history at most
    blocks: int = 8  # disk size in blocks
    disks: tuple[Disk, ...] | None = None  # every history on this VM layout; None: drawn from the driver's
    seed: int | None = None  # makes the run repeatable
    database: str | None = DEFAULT_DATABASE  # a directory, redis://HOST:PORT/DB, or None
    out: str = "snaptree-out"  # where counterexamples go
    guards: bool = True  # leave out what the guards of known findings match
    shard: tuple[int, int] | None = None  # (K, N): run only shard K of N
    shards: int = 1  # split the examples into this many shards, each with a seed of its own
    workers: int = 1  # run the shards in this many processes at once
