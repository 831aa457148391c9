"""How fast is exhaustive exploration (``snaptree explore``, ``snaptree diff``)?

    .venv/bin/python benchmarks/explore_speed.py [--quick]

1. Transitions/s of ``explore`` under esx and libvirt-test (default bounds, depth 5; best of 3),
   with the four properties checked and without them.  Target: >= 50,000 transitions/s.
2. States and transitions at depths 3-7 (3-5 with --quick) with the default bounds.
3. The time to the complete table of ``diff esx vbox`` at depth 6 (5 with --quick).
4. Named baselines measured in the same run: exploration without deduplication (every history
   expanded; depth 4), and branching by ``copy.deepcopy`` instead of ``Machine.clone`` (depth 5).
   Each is printed as a ratio against the real exploration of the same depth.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

from snaptree.model import Machine
from snaptree.model.analysis.explore import explore
from snaptree.model.analysis.profile_diff import diff

TARGET = 50_000


def best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller depths, one repeat")
    args = parser.parse_args()
    repeat, depths, diff_depth = (1, range(3, 6), 5) if args.quick else (3, range(3, 8), 6)

    print(f"1. transitions/s at depth 5, default bounds (best of {repeat})")
    for profile in ("esx", "libvirt-test"):
        for label, props in (("with the four properties", None), ("without properties", frozenset())):
            seconds, r = best(lambda p=profile, q=props: explore(p, 5) if q is None else explore(p, 5, props=q), repeat)
            rate = r.transitions / seconds
            verdict = "" if rate >= TARGET else f"  MISSES TARGET {TARGET:,}"
            print(f"   {profile:<13} {label:<26} {r.transitions:>9,} transitions {seconds:6.2f} s "
                  f"{rate:>9,.0f}/s{verdict}")

    print("2. states (transitions) per depth, default bounds, properties off")
    for profile in ("esx", "libvirt-test"):
        cells = []
        for depth in depths:
            r = explore(profile, depth, props=frozenset())
            cells.append(f"d{depth} {r.states:,} ({r.transitions:,}) {r.seconds:.1f}s")
        print(f"   {profile:<13} " + "  ".join(cells))

    seconds, d = best(lambda: diff("esx", "vbox", diff_depth), 1)
    print(f"3. diff esx vbox --depth {diff_depth}: {len(d.groups)} groups, {d.pairs:,} pairs, "
          f"{d.transitions:,} transitions, complete table in {seconds:.2f} s")

    print("4. baselines, same run")
    dedup_s, deduped = best(lambda: explore("esx", 4), repeat)
    plain_s, plain = best(lambda: explore("esx", 4, dedup=False), 1)
    print(f"   esx depth 4: deduplicated {deduped.transitions:,} transitions in {dedup_s:.2f} s; without "
          f"deduplication {plain.transitions:,} in {plain_s:.2f} s: {plain_s / dedup_s:.1f}x the time")
    clone_s, _ = best(lambda: explore("esx", 5), repeat)
    original = Machine.clone
    Machine.clone = lambda self: copy.deepcopy(self)  # type: ignore[method-assign]
    try:
        deep_s, _ = best(lambda: explore("esx", 5), 1)
    finally:
        Machine.clone = original  # type: ignore[method-assign]
    print(f"   esx depth 5: Machine.clone {clone_s:.2f} s; copy.deepcopy branching {deep_s:.2f} s: "
          f"deepcopy takes {deep_s / clone_s:.1f}x the time")


if __name__ == "__main__":
    main()
