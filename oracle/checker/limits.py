"""How much one check may be asked to do (README, "Limits"): every size it takes has a bound,
measured on a 2-core machine, so that no number typed can make a run that never ends or
outgrows the memory.  The state graph of explore, diff and ``--plan cover`` is bounded in
``model/analysis/explore.py`` (alphabet, transitions, states)."""

from __future__ import annotations

import os

from ..errors import UsageError
from ..shards import shard_examples
from .config import CheckConfig

# Hypothesis holds a history in 8,192 choices and cuts it at 80% of them; a step takes 13 to 30
# (vbox the most): at 200 steps the longest history drew 6,447, at 250 half were cut short, and
# from about 1,200 on every example overruns and Hypothesis never ends.
MAX_STEPS = 200
# a real driver reads every block after every step: qemu-img took 9.9 s and 317 MB for 27 steps
# on 4,096 blocks (1 s on 8)
MAX_BLOCKS = 4_096
# a process keeps about 5 KB per step (Hypothesis' tree of the choices, the histories): 4,659
# examples of 20 steps took 398 MB, 521 of 200 steps 570 MB
MAX_SHARD_STEPS = 200_000
# every shard's histories come back to the run (the coverage of the bounded graph)
MAX_RUN_STEPS = 2_000_000
# a shard is a process start (about 1 s) and one example at least
MAX_SHARDS = 1_000


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def max_workers() -> int:
    """Every driver here keeps a core busy (QEMU's TCG, the model, libvirt in process): more
    workers than cores only add memory; twice as many leave room for one that waits on a host."""
    return 2 * cpus()


def check_limits(config: CheckConfig) -> None:
    """UsageError, one line, for a check over the limits, before anything runs."""
    if config.steps > MAX_STEPS:
        raise UsageError(f"--steps {config.steps}: at most {MAX_STEPS} (Hypothesis holds no longer history)")
    if config.blocks > MAX_BLOCKS:
        raise UsageError(f"--blocks {config.blocks}: at most {MAX_BLOCKS:,} (a real driver reads every block after "
                         "every step)")
    n = config.shard[1] if config.shard else max(config.shards, config.workers)
    if n > MAX_SHARDS:
        raise UsageError(f"{n:,} shards: at most {MAX_SHARDS:,}")
    if config.workers > max_workers():
        raise UsageError(f"--workers {config.workers}: at most {max_workers()} here (twice the {cpus()} CPUs this "
                         "process may use; more only add memory)")
    steps = config.examples * config.steps
    if steps > MAX_RUN_STEPS:
        raise UsageError(f"--examples {config.examples} of up to {config.steps} steps: {steps:,} steps, over the limit "
                         f"of {MAX_RUN_STEPS:,} for one run")
    one = shard_examples(config.examples, 1, n) * config.steps  # the first shard is the largest
    if one > MAX_SHARD_STEPS:
        per_shard = MAX_SHARD_STEPS // config.steps
        needed = -(-config.examples // per_shard)
        raise UsageError(f"--examples {config.examples} of up to {config.steps} steps: {one:,} steps in one process, "
                         f"over the limit of {MAX_SHARD_STEPS:,} (memory): split them into --shards {needed} or more")
