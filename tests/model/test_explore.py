"""snaptree explore: exhaustive exploration of the model within small bounds (model/analysis/explore.py)."""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import subprocess
from typing import Any

import networkx as nx
import pytest

from snaptree.model import PROFILES, Machine, ModelError, get_profile, observe, ops
from snaptree.model.analysis.explore import Bounds, alphabet, canonical_key, explore, state_graph
from snaptree.model.disks import parse_layout
from snaptree.model.escape import plural
from snaptree.model.profiles.base import Profile
from snaptree.model.profiles.qemu_live import LiveQemu, QemuHmp
from snaptree.model.profiles.vbox import VBox
from snaptree.oracle.cli import main
from tests.model.test_properties import (
    live_revert_dropping_ram,
    remove_discarding_delta,
    remove_forgetting_name_index,
    remove_merging_into_first_child_only,
    remove_without_reparenting,
    restore_keeping_overlay,
    take_forgetting_children,
    take_sharing_overlay,
    vbox_check_delete_moving_current,
    write_into_current_snapshot,
)


@pytest.mark.parametrize("profile_name", list(PROFILES))
def test_no_property_is_violated_within_small_bounds(profile_name: str) -> None:
    result = explore(profile_name, 4)
    assert not result.violations, result.violations
    assert result.states == sum(result.new_per_depth) and result.states > 20
    assert result.transitions == len(result.alphabet) * sum(result.new_per_depth[:-1])


MUTANTS = [
    ("esx", "remove", remove_discarding_delta, "invariant"),
    ("esx", "remove", remove_merging_into_first_child_only, "invariant"),
    ("libvirt-test", "remove", remove_merging_into_first_child_only, "invariant"),
    ("vbox", "restore", restore_keeping_overlay, "revert"),
    ("qemu-img", "write", write_into_current_snapshot, "revert"),
    ("esx", "take", take_sharing_overlay, "revert"),  # Machine.clone keeps the aliasing it makes
    ("esx", "remove", remove_without_reparenting, "well-formed"),
    ("qemu-img", "remove", remove_forgetting_name_index, "well-formed"),
]


@pytest.mark.parametrize(("profile_name", "method", "mutant", "prop"), MUTANTS,
                         ids=[f"{m[0]}-{m[2].__name__}" for m in MUTANTS])
def test_each_broken_rule_is_found_with_its_shortest_history(profile_name: str, method: str, mutant: Any, prop: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Machine, method, mutant)
    result = explore(profile_name, 6, Bounds(names=("A", "B"), blocks=1, values=("a",)))
    assert prop in result.violations, result.violations
    history = result.violations[prop].history
    # the history is real: replayed on the broken model it leads to the violation
    assert 1 <= len(history) <= 6 and result.violations[prop].message.startswith(prop)


@pytest.mark.parametrize(("owner", "profile_name", "method", "mutant", "prop"), [
    (VBox, "vbox", "check_delete", vbox_check_delete_moving_current, "failed-op"),
    (LiveQemu, "qemu-hmp", "revert", live_revert_dropping_ram, "failed-op"),
    (Machine, "esx", "take", take_forgetting_children, "well-formed"),
], ids=["vbox-refusal-moves-current", "failed-loadvm-drops-ram", "take-forgets-children"])
def test_the_other_broken_rules_are_found_too(owner: type, profile_name: str, method: str, mutant: Any, prop: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With the rest above and below, every rule tests/model/test_properties.py breaks is found here."""
    monkeypatch.setattr(owner, method, mutant)
    result = explore(profile_name, 6, Bounds(names=("A", "B"), blocks=1, values=("a",)))
    assert prop in result.violations, result.violations
    assert 1 <= len(result.violations[prop].history) <= 6


def test_a_refusal_that_changes_state_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Profile.resolve

    def resolve(self: Profile, m: Machine, op: Any, purpose: str) -> Any:
        m.current = None
        return original(self, m, op, purpose)

    monkeypatch.setattr(Profile, "resolve", resolve)
    result = explore("esx", 3)
    assert "failed-op" in result.violations
    monkeypatch.setattr(QemuHmp, "failure_side_effects", frozenset())
    assert "does not list" in explore("qemu-hmp", 3).violations["failed-op"].message


def _replay(profile_name: str, history: list[ops.Operation], blocks: int) -> Machine:
    m = Machine(get_profile(profile_name), blocks)
    for op in history:
        with contextlib.suppress(ModelError):
            m.perform(op)
    return m


def _renamed(state: dict[str, Any]) -> str:
    """The observation with image tokens renamed in order of appearance."""
    text, names = repr(state), {}
    return re.sub(r"ram\d+", lambda t: names.setdefault(t.group(), f"img{len(names)}"), text)


@pytest.mark.parametrize("profile_name", ["esx", "vbox", "qemu-hmp", "libvirt-qemu"])
def test_merged_states_behave_alike_whatever_follows(profile_name: str) -> None:
    """Soundness of the key: two histories that reach one key, continued by the same random
    operations, observe the same (up to image renaming) after every step."""
    bounds = Bounds(blocks=1, values=("a",))
    result = explore(profile_name, 4, bounds, graph=True)
    letters = alphabet(profile_name, bounds)
    rng = random.Random(7)
    merged = [e for e in result.edges if result.parents[e.target] != (e.source, letters.index(e.op))]
    assert merged
    for edge in rng.sample(merged, min(40, len(merged))):
        first = result.history(edge.target)
        second = [*result.history(edge.source), edge.op]
        a, b = _replay(profile_name, first, 1), _replay(profile_name, second, 1)
        assert canonical_key(a, False) == canonical_key(b, False)
        for op in rng.choices(letters, k=6):
            outcomes = []
            for m in (a, b):
                try:
                    m.perform(op)
                    outcomes.append("ok")
                except ModelError as error:
                    outcomes.append(error.kind.value)
            assert outcomes[0] == outcomes[1]
            assert _renamed(observe(a)) == _renamed(observe(b))


def test_saturation_is_reported() -> None:
    result = explore("libvirt-test", 10, Bounds(names=("A",), blocks=1, values=("a",), flags="none",
                                                operations=("write", "snapshot", "revert", "delete")))
    assert result.saturated_at is not None and result.new_per_depth[result.saturated_at] == 0


def test_graph_files(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    graphml, dot = tmp_path / "s.graphml", tmp_path / "s.dot"
    assert main(["explore", "--profile", "vbox", "--depth", "3", "--graph", str(graphml)]) == 0
    g = nx.read_graphml(graphml)
    result = explore("vbox", 3, graph=True)
    assert g.number_of_nodes() == result.states and g.number_of_edges() == result.transitions
    assert state_graph(result).number_of_edges() == result.transitions
    assert main(["explore", "--profile", "vbox", "--depth", "2", "--graph", str(dot)]) == 0
    assert dot.read_text().startswith("digraph states {")
    out = capsys.readouterr().out
    assert "transitions" in out and "no property violated" in out


@pytest.mark.parametrize("argv", [
    ["explore", "--profile", "nope"],
    ["explore", "--profile", "esx", "--names", "A,ram2"],
    ["explore", "--profile", "esx", "--names", "A,,B"],
    ["explore", "--profile", "esx", "--ops", "fly"],
    ["explore", "--profile", "esx", "--depth", "0"],
    ["explore", "--profile", "esx", "--graph", "g.png"],
])
def test_bad_bounds_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("snaptree: ") and err.count("\n") == 1


def test_a_violation_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Machine, "remove", remove_discarding_delta)
    assert main(["explore", "--profile", "esx", "--depth", "4", "--blocks", "1", "--values", "a"]) == 1
    assert "VIOLATED invariant at depth" in capsys.readouterr().out


# -- snaptree diff --------------------------------------------------------------------------

QUESTIONS = [("esx", "vbox"), ("esx", "libvirt-test"), ("qemu-hmp", "qemu-qmp"), ("libvirt-test", "proposal-2010")]


@pytest.mark.parametrize(("first", "second"), QUESTIONS)
def test_every_diff_witness_replays_under_both_profiles(first: str, second: str, tmp_path: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", first, second, "--depth", "5", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    files = sorted(tmp_path.glob("*.xml"))
    assert files and f"{plural(len(files), 'witness', 'witnesses')} in" in table
    for path in files:
        assert main(["run", str(path), "--profile", f"{first},{second}", "-q"]) == 0, path.read_text()
        if "-outcome-" in path.name or "-power-" in path.name:
            # the expectations tell the profiles apart: swapped, they fail
            swapped = path.read_text().replace(f'profile="{first}"', 'profile="@"') \
                .replace(f'profile="{second}"', f'profile="{first}"').replace('profile="@"', f'profile="{second}"')
            (tmp_path / "swapped.xml").write_text(swapped)
            assert main(["run", str(tmp_path / "swapped.xml"), "--profile", f"{first},{second}", "-q"]) == 1
    capsys.readouterr()


def test_diff_finds_the_seeds_questions() -> None:
    from snaptree.model.analysis.profile_diff import diff

    groups = diff("esx", "vbox", 4).groups
    assert "outcome after delete (ok / has-children)" in groups  # VirtualBox refuses two dependants
    assert len(groups["outcome after delete (ok / has-children)"].history) == 4
    assert "outcome after snapshot (ok / duplicate-name)" in diff("qemu-hmp", "qemu-qmp", 4).groups
    assert not diff("esx", "esx", 4).groups


def test_diff_uses_only_common_flag_free_operations() -> None:
    from snaptree.model.analysis.profile_diff import common_alphabet

    letters = common_alphabet("esx", "vbox", Bounds())
    assert all(not getattr(op, "flags", ()) for op in letters)
    assert ops.Pause() not in letters and ops.DeleteAll() not in letters and ops.Suspend() in letters
    assert ops.Revert(None) not in letters


@pytest.mark.parametrize("argv", [["diff", "esx", "esx"], ["diff", "esx", "nope"], ["diff", "esx", "vbox", "--names", "ram1"]])
def test_bad_diff_input_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("snaptree: ") and err.count("\n") == 1


def test_html_report_shows_each_profiles_tree_in_a_browser(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("chromium") is None or shutil.which("dot") is None:
        pytest.fail("needs Debian's chromium and Graphviz (bash .ci/setup --real installs them)")
    page = tmp_path / "esx-vbox.html"
    assert main(["diff", "esx", "vbox", "--depth", "4", "--html", str(page)]) == 0
    groups = capsys.readouterr().out.count(" after ")
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    # per group both trees are there, as Graphviz drew them, under the profile's name
    assert dom.count("<svg") == 2 * groups and groups >= 4
    assert dom.count("data-profile=\"esx\"") == groups and dom.count("data-profile=\"vbox\"") == groups
    assert "class=\"node\"" in dom and "outcome after delete (ok / has-children)" in dom
    shot = tmp_path / "page.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000


# -- snaptree check --plan cover ------------------------------------------------------------

def _covers_everything(out: str) -> bool:
    found = re.search(r"plan cover: ([\d,]+) of ([\d,]+) transitions at depth", out)
    return found is not None and found.group(1) == found.group(2) and found.group(1) != "0"


def test_cover_plan_takes_every_transition() -> None:
    from snaptree.oracle.cover import cover_plan
    from snaptree.oracle.drivers.model import ModelDriver

    plan = cover_plan("vbox", 3, ModelDriver)
    taken = {t for path in plan.takes for t in path}
    assert len(taken) == plan.transitions == plan.exploration.transitions
    assert all(path[0][0] == 0 for path in plan.takes)  # every history starts from the fresh VM


def test_cover_on_the_model_conforms(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--driver", "model", "--profile", "esx", "--plan", "cover", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert _covers_everything(out) and "CONFORMS" in out


def test_cover_catches_a_mutant_and_shrinks_it(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "--driver", "tests.mutants:DeleteWithoutMerge", "--profile", "esx", "--plan", "cover",
            "--depth", "4", "--out", str(tmp_path)]
    assert main(argv) == 1
    assert "DIVERGES" in capsys.readouterr().out
    [scenario] = tmp_path.glob("*.xml")
    assert main(["replay", str(scenario), "--driver", "tests.mutants:DeleteWithoutMerge", "--profile", "esx"]) == 1


@pytest.mark.parametrize(("driver", "extra"), [("qemu-img", []), ("libvirt", ["--uri", "test:///default"])])
def test_cover_on_real_drivers(driver: str, extra: list[str], tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from snaptree.oracle.drivers import load

    problem = load(driver).availability()
    if problem is not None:
        pytest.fail(f"the real component is missing: {problem} (or run `bash .ci/setup --real`)")
    depth = "2" if driver == "qemu-img" else "3"  # one qemu-img process per step
    assert main(["check", "--driver", driver, *extra, "--plan", "cover", "--depth", depth, "--out", str(tmp_path)]) == 0
    assert _covers_everything(capsys.readouterr().out)


def test_refusals_and_takes_that_break_the_model_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The remaining broken rules of tests/model/test_properties.py, each at the depth it needs."""
    from snaptree.model.profiles.vbox import VBox

    original = VBox.check_delete

    def check_delete(self: VBox, m: Machine, target: Any, flags: frozenset[str]) -> None:
        m.current = target.parent  # moved before the refusal
        original(self, m, target, flags)

    monkeypatch.setattr(VBox, "check_delete", check_delete)
    assert len(explore("vbox", 3).violations["failed-op"].history) == 2
    monkeypatch.undo()
    taking = Machine.take

    def take(self: Machine, *args: Any, **kwargs: Any) -> Any:
        node = taking(self, *args, **kwargs)
        (node.parent.children if node.parent is not None else self.roots).remove(node)
        return node

    monkeypatch.setattr(Machine, "take", take)
    assert len(explore("esx", 2).violations["well-formed"].history) == 1


def test_random_coverage_counts_the_bounded_transitions_a_history_takes() -> None:
    from snaptree.oracle.cover import random_coverage
    from snaptree.oracle.drivers.model import ModelDriver

    history = [ops.CreateSnapshot("A"), ops.Write(0, "a"), ops.Revert("A"), ops.Delete("B")]
    coverage = random_coverage("esx", ModelDriver, [history, history])
    assert (coverage.taken, coverage.depth) == (4, 3) and coverage.transitions > 100
    # a write outside the bounds' two blocks leaves the graph: nothing after it counts
    assert random_coverage("esx", ModelDriver, [[ops.Write(5, "a"), ops.CreateSnapshot("A")]]).taken == 0
    assert "took 4 of its" in coverage.text()


TWO_DISK_LAYOUTS = ("vda,vdb", "vda,vdb:excluded", "vda,vdb:raw", "vda,pflash1:nvram", "vda,pflash1:nvram:raw")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_no_property_is_violated_at_depth_5_on_two_disks(profile: str) -> None:
    """Every layout of two disks the profile can have, every history of 5 operations (writes to
    either disk, per-disk modes where the profile takes them): the four properties hold per disk."""
    explored = 0
    for spec in TWO_DISK_LAYOUTS:
        disks = parse_layout(spec)
        if get_profile(profile).layout_problem(disks):
            continue
        result = explore(profile, 5, Bounds(blocks=1, values=("a",), disks=disks))
        assert not result.violations, f"{spec}: {list(result.violations.values())[0]}"
        explored += 1
    assert explored >= 1 if not PROFILES[profile].single_disk else explored == 0
