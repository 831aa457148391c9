"""How fast and how small is snaptree's model?  A rerunnable benchmark.

    .venv/bin/python benchmarks/model_speed.py [--ops N] [--seed S] [--quick]

Four measurements, all printed as aligned text (see benchmarks/README.md):

1. Throughput: a seeded random trace (writes, creates, deletes, reverts; the tree grows to at
   most --max-snapshots) on a 2^24-block disk is generated up front, then replayed through
   ``Machine.perform`` under the ``esx`` and ``libvirt-test`` profiles.  Only the replay is timed.
2. Memory: the same replay under tracemalloc; bytes per live written (snapshot, block) entry.
3. Delete cost: deleting a middle snapshot, against the size of its delta, the disk size, and
   500 unrelated snapshots with big deltas elsewhere in the tree.
4. A named baseline measured in the same run, the "dense baseline": every snapshot stores a full
   copy of the disk as a Python list.  The model and the baseline replay the same smaller trace
   (and the same delete experiment), and their final states are checked to read the same.

Exit status 0 unless the model and the dense baseline disagree (1) or a replay fails.  Targets
that are missed are reported as such, they do not change the exit status.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from snaptree.model import Machine, get_profile
from snaptree.model.machine import EMPTY
from snaptree.model.ops import CreateSnapshot, Delete, Revert, Write

PROFILES = ("esx", "libvirt-test")
TARGET_OPS_PER_S = 100_000
TARGET_BYTES_PER_BLOCK = 200

# The operation mix: mostly writes and creates, so that the tree grows until it reaches the
# snapshot limit, after which every create is replaced by a delete.
MIX = (("write", 0.960), ("create", 0.025), ("delete", 0.008), ("revert", 0.007))
REMOVE_CHILDREN_SHARE = 0.10  # of esx deletes, when the target's subtree is small
REMOVE_CHILDREN_MAX_SUBTREE = 8  # so one delete does not wipe out half the tree
WARMUP = 3  # rounds of deletes done, and not counted, before the delete-cost measurement
VALUES = tuple(f"v{i}" for i in range(256))  # block contents; shared objects, like real data pages


# -- the trace ---------------------------------------------------------------------------------


@dataclass
class Trace:
    ops: list
    blocks: int
    counts: Counter = field(default_factory=Counter)
    max_live: int = 0  # most snapshots alive at once
    final_live: int = 0


def make_trace(profile: str, n_ops: int, blocks: int, seed: int, max_snapshots: int) -> Trace:
    """A seeded random trace that every profile accepts, built against a shadow tree of names so
    that deletes and reverts always target a snapshot that exists.

    Writes come in runs of consecutive blocks (mean length 8); three runs in four start inside
    one of 64 hot regions of 4096 blocks, the rest anywhere on the disk, so deltas have realistic,
    uneven sizes and the deltas of different snapshots overlap."""
    rng = random.Random(f"{seed}:{profile}:{blocks}")  # str seeds are stable across runs
    parent: dict[str, str | None] = {}
    kids: dict[str | None, list[str]] = {None: []}  # None: the roots
    live: list[str] = []  # for uniform random choice, with O(1) swap-removal
    where: dict[str, int] = {}
    current: str | None = None
    serial = 0
    hot = [rng.randrange(blocks) for _ in range(64)]
    run_left, cursor = 0, 0
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]
    trace = Trace([], blocks)

    def remove_one(name: str) -> None:
        """What a delete without flags does to the tree (the model's Machine.remove)."""
        nonlocal current
        up = parent.pop(name)
        siblings = kids[up]
        at = siblings.index(name)
        mine = kids.pop(name)
        siblings[at : at + 1] = mine
        for child in mine:
            parent[child] = up
        if current == name:
            current = up
        i = where.pop(name)
        last = live.pop()
        if last != name:
            live[i], where[last] = last, i

    def subtree(name: str) -> list[str]:
        """``name`` and its descendants, children before parents."""
        order, stack = [], [name]
        while stack:
            top = stack.pop()
            order.append(top)
            stack.extend(kids[top])
        order.reverse()
        return order

    for kind in rng.choices(kinds, weights, k=n_ops):
        if kind == "create" and len(live) >= max_snapshots:
            kind = "delete"
        if kind in ("delete", "revert") and not live:
            kind = "write"
        if kind == "write":
            if run_left == 0:
                run_left = 1 + int(rng.expovariate(1 / 8))
                base = rng.choice(hot) + rng.randrange(4096) if rng.random() < 0.75 else rng.randrange(blocks)
                cursor = base % blocks
            trace.ops.append(Write(cursor, VALUES[rng.randrange(len(VALUES))]))
            cursor = (cursor + 1) % blocks
            run_left -= 1
        elif kind == "create":
            serial += 1
            name = f"s{serial}"  # unique, so libvirt accepts it
            parent[name] = current
            kids[current].append(name)
            kids[name] = []
            current = name
            where[name] = len(live)
            live.append(name)
            trace.ops.append(CreateSnapshot(name=name))
        elif kind == "revert":
            current = live[rng.randrange(len(live))]
            trace.ops.append(Revert(ref=current))
        else:
            target = live[rng.randrange(len(live))]
            doomed = [target]
            if profile == "esx" and rng.random() < REMOVE_CHILDREN_SHARE:
                whole = subtree(target)
                if len(whole) <= REMOVE_CHILDREN_MAX_SUBTREE:
                    doomed = whole
                    kind = "delete remove-children"
            for name in doomed:  # children first, as the esx profile removes them
                remove_one(name)
            flags = ("remove-children",) if kind == "delete remove-children" else ()
            trace.ops.append(Delete(ref=target, flags=flags))
        trace.counts[kind] += 1
        trace.max_live = max(trace.max_live, len(live))
    trace.final_live = len(live)
    return trace


# -- the dense baseline ------------------------------------------------------------------------


class DenseSnapshot:
    __slots__ = ("name", "parent", "children", "disk")

    def __init__(self, name: str, parent: DenseSnapshot | None, disk: list[str]):
        self.name, self.parent, self.children, self.disk = name, parent, [], disk


class DenseBaseline:
    """The naive reference model: every snapshot stores a full copy of the disk as a Python list.
    Create copies the running disk, revert copies the snapshot's disk back, delete just drops the
    snapshot's list (its children already hold full copies).  No rules are checked; it accepts
    the same operation values as Machine.perform (Write, CreateSnapshot, Revert, Delete with or
    without remove-children)."""

    def __init__(self, blocks: int):
        self.blocks = blocks
        self.disk: list[str] = [EMPTY] * blocks  # the running state
        self.snapshots: dict[str, DenseSnapshot] = {}
        self.roots: list[DenseSnapshot] = []
        self.current: DenseSnapshot | None = None

    def apply(self, op) -> None:
        if isinstance(op, Write):
            self.disk[op.block] = op.value
        elif isinstance(op, CreateSnapshot):
            node = DenseSnapshot(op.name, self.current, self.disk.copy())
            (self.current.children if self.current else self.roots).append(node)
            self.snapshots[op.name] = self.current = node
        elif isinstance(op, Revert):
            self.current = self.snapshots[op.ref]
            self.disk = self.current.disk.copy()
        elif isinstance(op, Delete):
            node = self.snapshots[op.ref]
            for doomed in self._subtree(node) if op.flags else [node]:
                self._drop(doomed)
        else:
            raise TypeError(f"the dense baseline does not model {op!r}")

    def _subtree(self, node: DenseSnapshot) -> list[DenseSnapshot]:
        order, stack = [], [node]
        while stack:
            top = stack.pop()
            order.append(top)
            stack.extend(top.children)
        order.reverse()
        return order

    def _drop(self, node: DenseSnapshot) -> None:
        siblings = node.parent.children if node.parent else self.roots
        at = siblings.index(node)
        siblings[at : at + 1] = node.children
        for child in node.children:
            child.parent = node.parent
        if self.current is node:
            self.current = node.parent
        del self.snapshots[node.name]  # the last reference to its disk copy: freed here
        node.disk = None

    def view(self, disk: list[str]) -> dict[int, str]:
        return {block: value for block, value in enumerate(disk) if value != EMPTY}


# -- measuring ---------------------------------------------------------------------------------


def replay(apply: Callable, ops: Sequence) -> float:
    """Seconds to apply every operation; nothing but the calls is inside the timed loop.

    The garbage collector stays on, but every object that exists beforehand (the trace above
    all: one tracked object per operation) is frozen out of its reach, so a collection costs
    what the replayed state costs it and not what the benchmark's own input does."""
    gc.collect()
    gc.freeze()
    try:
        start = time.perf_counter()
        for op in ops:
            apply(op)
        return time.perf_counter() - start
    finally:
        gc.unfreeze()


def timed_replays(profile: str, trace: Trace, repeats: int) -> tuple[list[float], Machine]:
    times, machine = [], None
    for _ in range(repeats):
        machine = Machine(get_profile(profile), blocks=trace.blocks)
        times.append(replay(machine.perform, trace.ops))
    return times, machine


def per_kind_us(profile: str, trace: Trace) -> dict[str, tuple[float, float]]:
    """Median and mean microseconds per operation kind, from a separate instrumented pass (timer
    overhead included; a garbage collection lands in the mean of whichever operation set it off)."""
    machine = Machine(get_profile(profile), blocks=trace.blocks)
    apply, clock = machine.perform, time.perf_counter_ns
    samples: dict[str, list[int]] = {}
    for op in trace.ops:
        kind = op.tag if not getattr(op, "flags", ()) else f"{op.tag} {' '.join(op.flags)}"
        start = clock()
        apply(op)
        samples.setdefault(kind, []).append(clock() - start)
    return {kind: (statistics.median(ns) / 1000, statistics.fmean(ns) / 1000)
            for kind, ns in sorted(samples.items())}


def live_entries(m: Machine) -> int:
    """Distinct live written (snapshot, block) entries: every block in every snapshot's delta,
    plus every block in the running state's overlay."""
    return sum(len(s.delta) for s in m.snapshots.values()) + len(m.overlay)


def memory(profile: str, trace: Trace) -> dict[str, float]:
    gc.collect()
    tracemalloc.start()
    machine = Machine(get_profile(profile), blocks=trace.blocks)
    apply = machine.perform
    most = 0
    for i, op in enumerate(trace.ops):
        apply(op)
        if i % 1000 == 999:
            most = max(most, live_entries(machine))
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    entries = live_entries(machine)
    most = max(most, entries)
    # The same state counted object by object: the overlay dicts, the snapshot records, and the
    # distinct block-number and value objects the overlays point at (tracemalloc does not see
    # these: they were allocated with the trace, before it started).
    dicts = [s.delta for s in machine.snapshots.values()] + [machine.overlay]
    overlay_bytes = sum(sys.getsizeof(d) for d in dicts)
    record_bytes = sum(sys.getsizeof(s) + sys.getsizeof(s.__dict__) + sys.getsizeof(s.children)
                       for s in machine.snapshots.values())
    objects = {id(o): o for d in dicts for item in d.items() for o in item}
    object_bytes = sum(sys.getsizeof(o) for o in objects.values())
    return {"peak": peak, "current": current, "entries": entries, "most": most, "snapshots": len(machine.snapshots),
            "overlays": overlay_bytes, "records": record_bytes, "objects": object_bytes}


# -- delete cost ---------------------------------------------------------------------------------


def one_delete(apply: Callable, blocks: int, delta: int, tag: str, rng: random.Random) -> int:
    """Nanoseconds to delete a middle snapshot.  Reverts to ``base``, builds ``base <- mid <-
    child`` (``delta`` random blocks written before each of the two creates, so both deltas hold
    ``delta`` blocks), deletes ``mid`` and then ``child``, so that the rest of the tree is the
    same for every repeat.  This is done twice and only the second delete of ``mid`` is timed:
    the first warms the caches for this machine, which the other columns' turns have evicted."""
    elapsed = 0
    for attempt in (f"{tag}w", tag):
        apply(Revert(ref="base"))
        for block in rng.sample(range(blocks), delta):
            apply(Write(block, "m"))
        apply(CreateSnapshot(name=f"mid{attempt}"))
        for block in rng.sample(range(blocks), delta):
            apply(Write(block, "c"))
        apply(CreateSnapshot(name=f"child{attempt}"))
        op = Delete(ref=f"mid{attempt}")
        start = time.perf_counter_ns()
        apply(op)
        elapsed = time.perf_counter_ns() - start
        apply(Delete(ref=f"child{attempt}"))
    return elapsed


def tree_for_delete(apply: Callable, blocks: int, unrelated: int, unrelated_delta: int, rng: random.Random) -> None:
    """``base``, with ``unrelated`` snapshots of ``unrelated_delta`` random blocks each: half
    of them a chain above ``base`` (its ancestors), half a branch below it beside the one the
    experiment builds."""
    def snapshot(name: str, writes: int) -> None:
        for block in rng.sample(range(blocks), writes):
            apply(Write(block, "u"))
        apply(CreateSnapshot(name=name))

    for i in range(unrelated // 2):
        snapshot(f"above{i}", unrelated_delta)
    snapshot("base", 10)
    for i in range(unrelated - unrelated // 2):
        snapshot(f"beside{i}", unrelated_delta)


@dataclass
class DeleteSetup:
    """One column of the delete-cost table at one disk size: a machine (or dense baseline) with
    its tree built, and the delete times measured on it so far, by delta size."""

    apply: Callable
    blocks: int
    rng: random.Random
    rounds: int  # how many counted rounds it takes part in (the dense 2^24 baseline: only a few)
    first_round: int = 0  # the dense 2^24 baseline skips the uncounted rounds (it is slow)
    times: dict[int, list[int]] = field(default_factory=dict)
    keep: object = None  # the machine, kept alive


def delete_costs(setups: dict, deltas: Sequence[int], rounds: int) -> dict:
    """Median nanoseconds per delete, by setup and delta size.  The setups take turns, one delete
    each per round in a shuffled order, so that a slow stretch of a shared machine slows every
    column alike rather than one; the first WARMUP rounds are not counted.  The garbage collector
    is off meanwhile, as timeit does (it collects between rounds): a collection inside one timed
    delete would measure the collector."""
    order = random.Random(0)
    turns = [(d, setup) for d in deltas for setup in setups.values()]
    for r in range(WARMUP + rounds):
        order.shuffle(turns)  # no column always goes first, or always follows the dense baseline
        gc.collect()
        gc.disable()
        try:
            for d, setup in turns:
                if setup.first_round <= r < WARMUP + setup.rounds:
                    elapsed = one_delete(setup.apply, setup.blocks, d, f"{r}-{d}", setup.rng)
                    if r >= WARMUP:
                        setup.times.setdefault(d, []).append(elapsed)
        finally:
            gc.enable()
    return {key: {d: statistics.median(ts) for d, ts in setup.times.items()} for key, setup in setups.items()}


def delete_setups(bits: Sequence[int], unrelated: int, unrelated_delta: int, rounds: int, dense_rounds: dict,
                  seed: int) -> dict:
    """Every column of the table at every disk size: (profile, with unrelated snapshots, bits),
    and ("dense", False, bits)."""
    setups = {}
    for b in bits:
        for p in PROFILES:
            for extra in (False, True):
                rng = random.Random(f"{seed}:delete:{p}:{b}:{extra}")
                machine = Machine(get_profile(p), blocks=2**b)
                tree_for_delete(machine.perform, 2**b, unrelated if extra else 0, unrelated_delta, rng)
                setups[p, extra, b] = DeleteSetup(machine.perform, 2**b, rng, rounds, keep=machine)
        rng = random.Random(f"{seed}:delete:dense:{b}")
        dense = DenseBaseline(2**b)
        tree_for_delete(dense.apply, 2**b, 0, 0, rng)
        first = 0 if dense_rounds[b] == rounds else WARMUP
        setups["dense", False, b] = DeleteSetup(dense.apply, 2**b, rng, dense_rounds[b], first, keep=dense)
    return setups


# -- agreement check -----------------------------------------------------------------------------


def same_state(m: Machine, dense: DenseBaseline) -> str | None:
    """None when the model and the dense baseline read the same everywhere; else what differs."""
    if sorted(s.name for s in m.snapshots.values()) != sorted(dense.snapshots):
        return "different snapshots"
    if (m.current.name if m.current else None) != (dense.current.name if dense.current else None):
        return "different current snapshot"
    if m.view(None) != dense.view(dense.disk):
        return "the running state reads differently"
    for s in m.snapshots.values():
        if m.view(s) != dense.view(dense.snapshots[s.name].disk):
            return f"snapshot {s.name} reads differently"
        parent = dense.snapshots[s.name].parent
        if (s.parent.name if s.parent else None) != (parent.name if parent else None):
            return f"snapshot {s.name} has a different parent"
    return None


# -- output ----------------------------------------------------------------------------------------


def fmt_ns(ns: float) -> str:
    if ns < 10_000:
        return f"{ns / 1000:.2f} µs"
    if ns < 10_000_000:
        return f"{ns / 1000:.1f} µs"
    return f"{ns / 1e6:.1f} ms"


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES TARGET"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=None,
                        help="operations in the main trace of sections 1-2 (default 100000; 30000 with --quick)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of every trace (default 1)")
    parser.add_argument("--quick", action="store_true", help="smaller runs for a CI smoke test (under ~20 s)")
    parser.add_argument("--max-snapshots", type=int, default=1000, help="snapshot limit of the main trace")
    args = parser.parse_args(argv)
    quick = args.quick
    n_ops = args.ops if args.ops is not None else (30_000 if quick else 100_000)
    repeats = 3 if quick else 5
    disk = 2**24

    print("snaptree model benchmark")
    print(f"  python {platform.python_version()} ({platform.python_implementation()}), "
          f"{os.cpu_count()} CPUs: {cpu_model()}")
    print(f"  seed {args.seed}{', quick mode' if quick else ''}; only Machine.perform is timed, "
          "traces are generated beforehand")
    started = last = time.perf_counter()

    def lap(what: str) -> None:
        nonlocal last
        now = time.perf_counter()
        print(f"   ({what} took {now - last:.1f}s)")
        last = now

    status = 0

    # 1. throughput ----------------------------------------------------------------------------
    print(f"\n1. Throughput: {n_ops:,} operations on a 2^24-block disk, at most {args.max_snapshots:,} snapshots, "
          f"VM shut off (median of {repeats} replay{'s' if repeats > 1 else ''})")
    traces = {p: make_trace(p, n_ops, disk, args.seed, args.max_snapshots) for p in PROFILES}
    head = f"   {'profile':<14}{'ops/s':>12}{'replay':>10}   {'snapshots max/end':>17}   mix"
    print(head)
    kinds_seen: dict[str, dict[str, tuple[float, float]]] = {}
    for p in PROFILES:
        trace = traces[p]
        times, machine = timed_replays(p, trace, repeats)
        if len(machine.snapshots) != trace.final_live:
            print(f"   {p}: the replay ended with {len(machine.snapshots)} snapshots, the trace expects "
                  f"{trace.final_live}")
            return 1
        seconds = statistics.median(times)
        rate = n_ops / seconds
        mix = ", ".join(f"{trace.counts[k]:,} {k}" for k in sorted(trace.counts, key=lambda k: -trace.counts[k]))
        print(f"   {p:<14}{rate:>12,.0f}{seconds:>9.3f}s   {trace.max_live:>8,} / {trace.final_live:<6,}  {mix}")
        print(f"   {'':<14}{verdict(rate >= TARGET_OPS_PER_S)} (>= {TARGET_OPS_PER_S:,} ops/s)")
        kinds_seen[p] = per_kind_us(p, trace)
    print("   µs per operation kind, median (mean), from an instrumented pass (timer overhead included):")
    for p in PROFILES:
        print(f"   {p:<14}" + "  ".join(f"{k} {med:.2f} ({mean:.2f})" for k, (med, mean) in kinds_seen[p].items()))

    lap("section 1")

    # 2. memory -----------------------------------------------------------------------------------
    print("\n2. Memory per written block, same traces")
    print("   entries = distinct live written (snapshot, block) pairs at the end of the replay: the sum of")
    print("   len(delta) over live snapshots plus len(overlay).  Headline = tracemalloc peak during the")
    print("   replay / entries (the trace's ops, with their block numbers and values, exist before tracing")
    print("   starts and are not counted).  Object count = sys.getsizeof of the overlay dicts + the snapshot")
    print("   records + every distinct block-number and value object they hold, / entries.")
    print(f"   {'profile':<14}{'entries':>10}{'(max seen)':>12}{'peak MB':>9}{'peak B/entry':>14}"
          f"{'dicts B/e':>11}{'all objs B/e':>14}")
    for p in PROFILES:
        r = memory(p, traces[p])
        per = r["peak"] / r["entries"]
        dicts = r["overlays"] / r["entries"]
        objs = (r["overlays"] + r["records"] + r["objects"]) / r["entries"]
        ok = per <= TARGET_BYTES_PER_BLOCK and objs <= TARGET_BYTES_PER_BLOCK
        print(f"   {p:<14}{r['entries']:>10,}{r['most']:>12,}{r['peak'] / 2**20:>9.1f}{per:>14.1f}"
              f"{dicts:>11.1f}{objs:>14.1f}   {verdict(ok)} (<= {TARGET_BYTES_PER_BLOCK} B)")

    lap("section 2")

    # 3. delete cost ---------------------------------------------------------------------------------
    deltas = (10, 100, 1000)
    disks = (10, 16, 24)
    unrelated, unrelated_delta = (100, 200) if quick else (500, 1000)
    d_repeats = 7 if quick else 41
    dense_repeats = {10: d_repeats, 16: d_repeats, 24: 2 if quick else 7}
    print("\n3. Cost of one delete of a middle snapshot: base <- mid <- child, both deltas of the given size;")
    print(f"   median of {d_repeats} deletes through Machine.perform, garbage collector off.  'alone': base is the")
    print(f"   only other snapshot; '+{unrelated}': {unrelated} unrelated snapshots of {unrelated_delta:,} "
          "blocks each, half of them")
    print("   above base (its ancestors), half on a sibling branch.  All cells take turns in shuffled order, one")
    print(f"   warm-up and one timed delete each per round, after {WARMUP} uncounted rounds.  The dense baseline")
    print(f"   drops one full disk copy (median of {dense_repeats[16]}, {dense_repeats[24]} at 2^24); "
          "esx speed-up = dense baseline time / esx alone time.")
    cols = [f"{p} {v}" for p in PROFILES for v in ("alone", f"+{unrelated}")]
    print(f"   {'disk':<6}{'delta':>6}" + "".join(f"{c:>20}" for c in cols)
          + f"{'dense baseline':>18}{'esx speed-up':>14}")
    setups = delete_setups(disks, unrelated, unrelated_delta, d_repeats, dense_repeats, args.seed)
    sizes = {key: len(setup.keep.snapshots) for key, setup in setups.items()}
    costs = delete_costs(setups, deltas, d_repeats)
    if any(len(setup.keep.snapshots) != sizes[key] for key, setup in setups.items()):
        print("   the delete experiment changed the tree it ran on")
        return 1
    del setups
    gc.collect()
    for bits in disks:
        for d in deltas:
            cells = [costs[p, extra, bits][d] for p in PROFILES for extra in (False, True)]
            dense_ns = costs["dense", False, bits][d]
            print(f"   2^{bits:<4}{d:>6}" + "".join(f"{fmt_ns(c):>20}" for c in cells)
                  + f"{fmt_ns(dense_ns):>18}{dense_ns / costs['esx', False, bits][d]:>13.1f}×")
    # How flat is it?  Compare each delta size's cost across disks and unrelated trees.
    print("   spread of the model's delete time per delta size, over disk sizes and with/without "
          "unrelated snapshots (max/min):")
    for p in PROFILES:
        spreads = []
        for d in deltas:
            vals = [costs[p, extra, bits][d] for bits in disks for extra in (False, True)]
            spreads.append(f"delta {d}: {max(vals) / min(vals):.2f}×")
        small = statistics.median(costs[p, False, b][deltas[0]] for b in disks)
        big = statistics.median(costs[p, False, b][deltas[-1]] for b in disks)
        per_block = (big - small) / (deltas[-1] - deltas[0])
        print(f"   {p:<14}" + "   ".join(spreads)
              + f"   (delta {deltas[-1]} vs {deltas[0]}: {big / small:.0f}× slower, "
                f"{per_block:.0f} ns per extra block)")

    lap("section 3")

    # 4. against the dense baseline -----------------------------------------------------------------
    b_ops, b_bits, b_max = (5_000, 16, 50) if quick else (30_000, 16, 200)
    b_repeats = 5
    print(f"\n4. Model vs dense baseline: the same {b_ops:,}-operation trace on a 2^{b_bits}-block disk, "
          f"at most {b_max} snapshots (median of {b_repeats} replays each)")
    print(f"   {'profile':<14}{'model ops/s':>14}{'dense ops/s':>14}   ratio")
    for p in PROFILES:
        trace = make_trace(p, b_ops, 2**b_bits, args.seed, b_max)
        times, machine = timed_replays(p, trace, b_repeats)
        dense_times = []
        for _ in range(b_repeats):
            dense = DenseBaseline(trace.blocks)
            dense_times.append(replay(dense.apply, trace.ops))
        dense = DenseBaseline(trace.blocks)
        replay(dense.apply, trace.ops)
        model_s, dense_s = statistics.median(times), statistics.median(dense_times)
        difference = same_state(machine, dense)
        print(f"   {p:<14}{b_ops / model_s:>14,.0f}{b_ops / dense_s:>14,.0f}   "
              f"model vs dense baseline: {dense_s / model_s:.1f}× faster"
              f"   (final states {'agree' if difference is None else 'DISAGREE: ' + difference})")
        if difference is not None:
            status = 1
        del dense, machine
        gc.collect()
    print("   (delete: see the 'esx speed-up' column of table 3, dense baseline time / esx time)")

    lap("section 4")
    print(f"\ndone in {time.perf_counter() - started:.1f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
