"""Readable results: one naming scheme in counterexamples and reports (the system's names, ids
where names repeat, the empty name as ``""``), no Python reprs in text output, plurals that
agree, and an explored state graph whose nodes show their states."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from snaptree.model import Machine, get_profile, notation, ops
from snaptree.model.analysis.explore import Bounds, canonical_key, explore, report_text, state_graph
from snaptree.model.analysis.profile_diff import diff, table_text
from snaptree.model.escape import plural, short_ids_of, shown, snapshot_labels
from snaptree.model.run import run
from snaptree.model.step import step
from snaptree.oracle import render, scenario_format
from snaptree.oracle.checker.counterexample import counterexample
from snaptree.oracle.checker.reports import divergence_report
from snaptree.oracle.cli import main
from snaptree.oracle.differences import Correspondence, Difference, state_differences
from snaptree.oracle.driver import Result
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.lockstep import Divergence, Lockstep

from ..mutants import CurrentNotMovingToParent

REPR = re.compile(r"'[^']*'|\bNone\b|\bTrue\b|\bFalse\b")  # what Python's repr() leaves in text


class OwnNames(CurrentNotMovingToParent):
    """Names an unnamed snapshot unnamed-N itself (as qcow2-chain once did under esx, where the
    model's is ""), and leaves no current snapshot after deleting the current one."""

    name = "own-names"

    def setup(self, blocks: int, *disks: Any) -> None:
        super().setup(blocks, *disks)
        self.count = 0

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.CreateSnapshot) and op.name is None:
            self.count += 1
            op = dataclasses.replace(op, name=f"unnamed-{self.count}")
        return super().apply(op)


class AutoNamedLosesCurrent(ModelDriver):
    """Lists an unnamed snapshot as auto1, auto2, ... (the model's libvirt names it after the
    epoch second), and loses the current pointer when the current snapshot is deleted."""

    name = "auto-names"

    def setup(self, blocks: int, *disks: Any) -> None:
        super().setup(blocks, *disks)
        self.auto: dict[str, str] = {}  # the model's name -> this system's

    def apply(self, op: ops.Operation) -> Result:
        assert self.machine is not None
        if isinstance(op, ops.Delete) and self.machine.current is not None and op.ref == self.machine.current.name:
            result = super().apply(op)
            self.machine.current = None
            return result
        result = super().apply(op)
        if isinstance(op, ops.CreateSnapshot) and op.name is None and result.created_name is not None:
            self.auto[result.created_name] = f"auto{len(self.auto) + 1}"
            result.created_name = result.created_id = self.auto[result.created_name]
        return result

    def observe(self) -> dict[str, Any]:
        state = super().observe()
        rename = self.auto.get
        for snap in state["snapshots"]:
            snap["name"], snap["id"] = rename(snap["name"], snap["name"]), rename(snap["id"], snap["id"])
            snap["parent"] = snap["parent"] and rename(snap["parent"], snap["parent"])
            snap["children"] = [rename(c, c) for c in snap["children"]]
        state["roots"] = [rename(r, r) for r in state["roots"]]
        state["current"] = state["current"] and rename(state["current"], state["current"])
        state["views"]["snapshots"] = {rename(k, k): v for k, v in state["views"]["snapshots"].items()}
        return state


def _difference_line(report: str) -> str:
    return next(line for line in report.splitlines() if "first difference" in line)


def test_a_revert_to_the_empty_name_shows_the_name_and_what_the_driver_was_sent(
        model_lockstep: Callable[..., Lockstep], diverge: Callable[[Lockstep, Sequence[ops.Operation]], Divergence]) -> None:
    history = [ops.CreateSnapshot(), ops.CreateSnapshot(), ops.Revert(""), ops.CreateSnapshot("B"), ops.Delete("B")]
    divergence = diverge(model_lockstep("esx", OwnNames), history)
    report = divergence_report(divergence, "own-names")
    step = {i: line for i, line in enumerate(report.splitlines()) if re.match(r"\s+\d+\. ", line)}
    assert len(step) == 5
    # the step as the scenario has it, and the name the driver got for it: the first of the two
    assert 'revert ""' in step[3] and "(sent revert unnamed-1)" in step[3]
    assert "(named unnamed-1)" in step[1] and "(named unnamed-2)" in step[2] and "(" not in step[4] + step[5]
    # both sides in the system's names: after B goes, the model's current is its "", the system's unnamed-1
    assert _difference_line(report).endswith("current snapshot: model unnamed-1, driver none")
    assert not REPR.search(report.replace("own-names", "")), report
    description = scenario_format.parse(counterexample(divergence, "own-names", "esx", 8, 7)).description
    assert "current snapshot: model unnamed-1, driver none" in description


def test_a_name_the_system_chose_is_the_one_shown(
        model_lockstep: Callable[..., Lockstep], diverge: Callable[[Lockstep, Sequence[ops.Operation]], Divergence]) -> None:
    history = [ops.Start(), ops.CreateSnapshot(), ops.Write(0, "a"), ops.CreateSnapshot("B"), ops.Delete("B")]
    divergence = diverge(model_lockstep("libvirt-test", AutoNamedLosesCurrent), history)
    model_name = divergence.history[1].model.created_name
    assert model_name is not None and model_name != "auto1"
    report = divergence_report(divergence, "auto-names")
    assert _difference_line(report).endswith("current snapshot: model auto1, driver none")
    assert model_name not in report, "the model's own name for a snapshot the system named is never shown"
    assert "named auto1" in report and not REPR.search(report.replace("auto-names", ""))


def test_differences_show_values_in_words() -> None:
    snap: dict[str, Any] = {"name": "A", "id": "1", "parent": None, "children": [], "memory": True,
                            "memory_image": "ram1", "state": "running", "description": ""}
    twin = {**snap, "id": "2"}
    model = {"current": "1", "power": "running", "ram": "ram1", "roots": ["1", "2"], "snapshots": [snap, twin],
             "views": {"current": {}, "snapshots": {"1": {"0": ""}, "2": {}}}}
    driver = {**model, "current": None, "roots": ["2", "1"],
              "snapshots": [{**snap, "memory": False, "description": "d"}, twin],
              "views": {"current": {}, "snapshots": {"1": {"0": "b"}, "2": {}}}}
    found = [str(d) for d in state_differences(model, driver, frozenset({"current", "memory", "description", "views",
                                                                             "tree", "order"}),
                                                 Correspondence(), sibling_order=True)]
    assert found == ["current snapshot: model A#1, driver none",
                     "order of the root snapshots: model [A#1, A#2], driver [A#2, A#1]",
                     "snapshot A#1: has memory: model yes, driver no",
                     'snapshot A#1: description: model "", driver d',
                     'view of A#1, block 0: model "", driver b']
    assert str(Difference("outcome", "ok", "not-found")) == "outcome: model ok, driver not-found"


def test_labels_and_names_have_one_form() -> None:
    assert [shown(n) for n in ("A", "", " A", 'say "hi"')] == ["A", '""', '" A"', '"say \\"hi\\""']
    labels = snapshot_labels({"1": ("1", ""), "2": ("2", "B"), "3": ("3", "B"), "4": ("4", "base")})
    assert labels == {"1": '""', "2": "B#2", "3": "B#3", "4": "base#4"}
    uuids = [f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2)]
    assert short_ids_of(uuids) == {uuids[0]: "…0001", uuids[1]: "…0002"}
    assert short_ids_of(["6f1c2a9e-0000-4000", "b7d0e3f1-0000-4000", "12"]) == {
        "6f1c2a9e-0000-4000": "6f1c2a9e", "b7d0e3f1-0000-4000": "b7d0e3f1", "12": "12"}
    assert [plural(n, "group") for n in (0, 1, 2, 1207)] == ["0 groups", "1 group", "2 groups", "1,207 groups"]


def test_a_step_shows_its_names_and_values_as_written() -> None:
    described = [ops.describe(op) for op in (ops.Revert(""), ops.Delete(""), ops.CreateSnapshot(""), ops.CreateSnapshot(),
                                             ops.Write(0, "a"), ops.Write(1, ""), ops.Revert("A", id="2"), ops.Revert())]
    assert described == ['revert ""', 'delete ""', 'snapshot ""', "snapshot (unnamed)", "write 0=a", 'write 1=""',
                         "revert id=2", "revert (current)"]
    m = Machine(get_profile("qemu-img"), 2)
    m.perform(ops.CreateSnapshot(""))
    assert notation.text(m).startswith('table: 1:""')


def test_scenario_runs_name_snapshots_and_count_expectations(tmp_path: Path) -> None:
    one = scenario_format.parse(b'<scenario profile="esx"><snapshot name=""/><snapshot name=""/>'
                                b'<expect current="B" snapshots="1"><view of="current"><block n="0" value="a"/></view>'
                                b'</expect></scenario>')
    text = render.run_text(run(one, trees=True), "one.xml")
    assert 'base <--1-- ""#1 <--2-- ""#2 <--3-- current' in text
    assert 'expected current B, current is ""#2' in text and "expected 1 snapshot, there are 2" in text
    assert 'the current state block 0: expected a, reads ""' in text
    assert text.endswith("FAIL one.xml under esx: 0 of 1 expectation hold") and not REPR.search(text)
    two = scenario_format.parse(b'<scenario profile="esx"><snapshot name="A"/><expect snapshots="1"/>'
                                b'<snapshot name="B"/><expect snapshots="2"/></scenario>')
    assert render.run_text(run(two, trees=True), "two.xml").endswith("PASS two.xml under esx: 2 of 2 expectations hold")
    compared = render.compare_text([run(one, "esx"), run(one, "vbox")], "one.xml")
    assert 'current snapshot ""#2' in compared and not REPR.search(compared)


def test_diff_and_explore_count_in_agreeing_plurals() -> None:
    result = diff("qemu-hmp", "qemu-qmp", 3)
    assert len(result.groups) == 1 and ", 1 group, " in table_text(result)
    explored = explore("esx", 1, Bounds(names=("A",), blocks=1, values=("a",), operations=("write",)))
    text = report_text(explored)
    assert "1 block," in text and "alphabet      1 operation: write 0=a" in text and not REPR.search(text)


def test_the_state_graph_shows_each_state_and_operation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bounds = Bounds(names=("A", "B"), blocks=1, values=("a",))
    result = explore("esx", 3, bounds, graph=True)
    g = state_graph(result)
    assert g.number_of_nodes() == result.states
    for state, data in g.nodes(data=True):
        m = Machine(get_profile("esx"), 1)  # the state's shortest history, replayed from scratch
        for op in result.history(state):
            step(m, op)
        assert result.keys[canonical_key(m, result.clock)] == state
        assert data["label"] == notation.state_text(m) and data["power"] == m.power
    assert {data["label"] for _, _, data in g.edges(data=True)} == {
        f"{ops.describe(op)}: {outcome}" for op, outcome in ((e.op, e.outcome) for e in result.edges)}

    dot, graphml = tmp_path / "g.dot", tmp_path / "g.graphml"
    assert main(["explore", "--profile", "qemu-img", "--depth", "2", "--graph", str(dot)]) == 0
    assert main(["explore", "--profile", "qemu-img", "--depth", "2", "--graph", str(graphml)]) == 0
    capsys.readouterr()
    nodes = re.findall(r'^  s(\d+) \[label="(.*)"\];$', dot.read_text(), re.M)
    assert nodes and all(label.startswith(f"state {n}, depth ") and "table: " in label and "\\lpower " in label
                         for n, label in nodes)
    assert re.search(r'^  s0 -> s\d+ \[label="snapshot A: ok"\];$', dot.read_text(), re.M)
    read = nx.read_graphml(graphml)
    assert all("table: " in data["label"] for _, data in read.nodes(data=True))
    assert all(data["label"] == f"{data['op']}: {data['outcome']}" for _, _, data in read.edges(data=True))
