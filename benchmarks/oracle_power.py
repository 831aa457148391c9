"""How much a default `snaptree check` tests: situations reached, refusals, mutants caught, and
the time from the first divergence to the shrunk scenario.

    python benchmarks/oracle_power.py            # every profile and mutant, 5 seeds, + baseline
    python benchmarks/oracle_power.py --quick    # esx and libvirt-test, 2 seeds, baseline catch rate only

Everything runs on the model driver at the default budget (100 examples x 20 steps).  The
named baseline, measured in the same run, is the *uniform generator*: one Hypothesis rule per
kind of operation with uniform arguments (Hypothesis's swarm testing switches rules off per
history) and Hypothesis's own shrinker; that is how `snaptree check` generated histories
before the tree-building generator (`oracle/generate.py`) and the replaying shrinker
(`oracle/shrink.py`).

Targets (esx and libvirt-test): >= 90% of histories take a snapshot; refusals <= 20% of steps;
each situation reached in >= 10% of histories where the profile allows it; every mutant
caught on every seed; median time from the first divergence to the shrunk scenario <= 5 s.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.mutants

from snaptree.model import PROFILES, get_profile, ops  # noqa: E402
from snaptree.oracle import CheckConfig, run_check  # noqa: E402
from snaptree.oracle.checker.progress import Progress  # noqa: E402
from snaptree.oracle.driver import Driver  # noqa: E402
from snaptree.oracle.drivers.model import ModelDriver  # noqa: E402
from snaptree.oracle.generate import AWKWARD_NAMES, PLAIN_NAMES, POWER_TAGS  # noqa: E402
from snaptree.oracle.lockstep import Divergence  # noqa: E402
from snaptree.oracle.situations import SITUATIONS, applicable  # noqa: E402
from snaptree.oracle.stateful import SnapshotConformance  # noqa: E402
from tests.mutants import MUTANTS  # noqa: E402

EXAMPLES, STEPS, BLOCKS = 100, 20, 8
TARGETED = ("esx", "libvirt-test")
GENERAL = {s.key for s in SITUATIONS}


# -- the baseline: the uniform generator ----------------------------------------------------------

NAMES = st.one_of(st.sampled_from(PLAIN_NAMES), st.sampled_from(AWKWARD_NAMES))


class UniformMachine(SnapshotConformance):
    """One rule per kind of operation, arguments uniform; no look at the tree."""

    def begin(self, data: st.DataObject) -> None:  # type: ignore[override]  # no mix: plain Hypothesis rules
        pass

    def step(self, data: st.DataObject) -> None:  # type: ignore[override]  # replaced by the rules below
        pass

    def flag_draw(self, data: st.DataObject, tag: str) -> tuple[str, ...]:
        available = sorted(self.driver.flags.get(tag, ()))
        return tuple(data.draw(st.lists(st.sampled_from(available), max_size=2, unique=True))) if available else ()

    def target(self, data: st.DataObject) -> dict[str, str | None]:
        names = sorted(self.lockstep.model.by_name)
        if data.draw(st.integers(0, 9)) < 7 and names:
            return {"ref": data.draw(st.sampled_from(names)), "id": None}
        return {"ref": data.draw(NAMES), "id": None}

    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        self.do(ops.Write(data.draw(st.integers(0, self.blocks - 1)), data.draw(st.sampled_from(("a", "b", "c")))))

    @rule(data=st.data())
    def power(self, data: st.DataObject) -> None:
        self.do({cls.tag: cls for cls in ops.POWER_OPS}[data.draw(st.sampled_from(POWER_TAGS))]())

    @rule(data=st.data(), name=st.one_of(NAMES, st.none()))
    def snapshot(self, data: st.DataObject, name: str | None) -> None:
        memory = data.draw(st.sampled_from([None, True, False]))
        self.do(ops.CreateSnapshot(name=name, memory=memory, flags=self.flag_draw(data, "snapshot")))

    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        self.do(ops.Revert(**self.target(data), flags=self.flag_draw(data, "revert")))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.do(ops.Delete(**self.target(data), flags=self.flag_draw(data, "delete")))

    @precondition(lambda self: len(self.lockstep.model.snapshots) >= 3)
    @rule()
    def delete_all(self) -> None:
        self.do(ops.DeleteAll())


def baseline_check(driver_class: type[Driver], profile: str, seed: int, shrink: bool) -> dict[str, Any]:
    progress = Progress(EXAMPLES, None)
    attrs = {"make_driver": staticmethod(lambda: driver_class(profile)), "blocks": BLOCKS, "listener": progress,
             "_driver": None}
    machine = type("Uniform", (UniformMachine,), attrs)
    phases = [Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])]
    config = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, verbosity=Verbosity.quiet,
                      database=None, suppress_health_check=list(HealthCheck), phases=phases,
                      report_multiple_bugs=False)
    caught = None
    try:
        run_state_machine_as_test(hypothesis_seed(seed)(lambda: machine()), settings=config)  # type: ignore[arg-type]
    except Divergence as divergence:
        caught = divergence
    seconds = progress.stats.seconds
    first = progress.stats.first_divergence
    return {"stats": progress.stats, "caught": caught is not None, "first": first,
            "to_shrunk": None if first is None else seconds - first,
            "steps": None if caught is None else len(caught.history)}


def ours(driver_class: type[Driver], profile: str, seed: int) -> dict[str, Any]:
    r = run_check(CheckConfig(driver=driver_class, profile=profile, examples=EXAMPLES, steps=STEPS, blocks=BLOCKS,
                              seed=seed, database=None, out="/nonexistent-unused"), progress=None)
    return {"stats": r.stats, "caught": not r.conforms, "first": r.stats.first_divergence, "to_shrunk": r.stats.to_shrunk,
            "steps": None if r.divergence is None else len(r.divergence.history), "result": r}


# -- reports ----------------------------------------------------------------------------------

def pct(x: float) -> str:
    return f"{x:4.0%}"


def situations_table(profiles: list[str], seeds: list[int], with_baseline: bool) -> None:
    print("\n## Situations (share of histories, mean over seeds; baseline in brackets)\n")
    for profile in profiles:
        runs = [ours(ModelDriver, profile, s)["stats"] for s in seeds]
        base = [baseline_check(ModelDriver, profile, s, shrink=False)["stats"] for s in seeds] if with_baseline else []
        keys = applicable(get_profile(profile), ModelDriver.operations)

        def mean(stats_list: list[Any], key: str) -> float:
            return statistics.mean(s.situations.share(key) for s in stats_list)

        refusals = statistics.mean(s.refusal_share for s in runs)
        line = f"{profile}: refusals {pct(refusals)} of steps"
        if base:
            line += f" [{pct(statistics.mean(s.refusal_share for s in base))}]"
        print(line)
        for s in keys:
            share = mean(runs, s.key)
            target = profile in TARGETED and s.key in GENERAL
            missed = target and (share < (0.9 if s.key == "snapshot" else 0.1))
            base_part = f" [{pct(mean(base, s.key))}]" if base else ""
            print(f"  {s.label:<62} {pct(share)}{base_part}{'  MISSES TARGET' if missed else ''}")
        if profile in TARGETED and refusals > 0.2:
            print("  refusals MISS TARGET (<= 20%)")


def mutants_table(seeds: list[int], baseline_shrink: int) -> None:
    print(f"\n## Mutants (tests/mutants.py) at the default budget, seeds {seeds[0]}-{seeds[-1]}\n")
    print(f"  {'mutant':<36} {'profile':<13} {'caught':>6} {'baseline':>8} {'first s':>8} {'to shrunk s':>11} {'steps':>6}")
    to_shrunk_all: list[float] = []
    baseline_times: list[float] = []
    for mutant in MUTANTS:
        profile = mutant.profiles[0]
        runs = [ours(mutant, profile, s) for s in seeds]
        base = [baseline_check(mutant, profile, s, shrink=False) for s in seeds]
        caught = sum(r["caught"] for r in runs)
        base_caught = sum(b["caught"] for b in base)
        firsts = [r["first"] for r in runs if r["first"] is not None]
        shrunk = [r["to_shrunk"] for r in runs if r["to_shrunk"] is not None]
        steps = [r["steps"] for r in runs if r["steps"] is not None]
        to_shrunk_all.extend(shrunk)
        print(f"  {mutant.name:<36} {profile:<13} {caught:>4}/{len(seeds)} {base_caught:>6}/{len(seeds)} "
              f"{statistics.median(firsts) if firsts else float('nan'):>8.2f} "
              f"{statistics.median(shrunk) if shrunk else float('nan'):>11.3f} {max(steps) if steps else '-':>6}")
    for mutant in MUTANTS[:baseline_shrink]:
        b = baseline_check(mutant, mutant.profiles[0], seeds[0], shrink=True)
        if b["to_shrunk"] is not None:
            baseline_times.append(b["to_shrunk"])
    median = statistics.median(to_shrunk_all) if to_shrunk_all else float("nan")
    print(f"\n  first divergence to shrunk scenario: median {median:.3f} s, max {max(to_shrunk_all, default=0):.3f} s"
          f"{'  MISSES TARGET (<= 5 s)' if median > 5 else ''}")
    if baseline_times:
        base_median = statistics.median(baseline_times)
        print(f"  baseline (Hypothesis's shrinker, first {baseline_shrink} mutants, seed {seeds[0]}): median "
              f"{base_median:.2f} s, max {max(baseline_times):.2f} s -> {base_median / max(median, 1e-9):.0f}x slower")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="esx and libvirt-test, 2 seeds")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--baseline-shrink", type=int, default=7,
                        help="how many mutants to shrink with the baseline (each takes up to minutes)")
    args = parser.parse_args()
    seeds = list(range(1, (2 if args.quick else args.seeds) + 1))
    profiles = list(TARGETED) if args.quick else list(PROFILES)
    print(f"# oracle power on {platform.node()}: {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, {EXAMPLES} examples x {STEPS} steps per check")
    started = time.monotonic()
    situations_table(profiles, seeds, with_baseline=True)
    mutants_table(seeds, 0 if args.quick else args.baseline_shrink)
    print(f"\n{time.monotonic() - started:.0f} s in all")


if __name__ == "__main__":
    main()
