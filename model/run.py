"""Running a scenario on the model, and checking its expectations against what each step did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .escape import plural, shown, snapshot_labels
from .machine import Machine
from .observe import observe
from .profiles import get_profile
from .scenario import Expect, Scenario, ScenarioStep
from .step import Outcome, step


@dataclass
class StepResult:
    index: int
    step: ScenarioStep
    outcome: Outcome
    state: dict[str, Any] | None  # observation after the step, where an expectation reads it
    tree: str | None  # the seed's notation after the step, if asked for
    failures: list[tuple[Expect, list[str]]]  # per checked expectation, what did not hold

    @property
    def checked(self) -> list[Expect]:
        return [expect for expect, _ in self.failures]


@dataclass
class Run:
    scenario: Scenario
    profile: str
    steps: list[StepResult]
    machine: Machine

    @property
    def passed(self) -> bool:
        return all(not problems for result in self.steps for _, problems in result.failures)

    @property
    def expectations(self) -> int:
        return sum(len(result.failures) for result in self.steps)

    def final(self) -> dict[str, Any] | None:
        """The observation after the last step (None without steps)."""
        return observe(self.machine) if self.steps else None


def run(scenario: Scenario, profile: str | None = None, trees: bool = False) -> Run:
    """Run every step on a fresh model machine and check the expectations that apply; with
    ``trees``, draw the tree after every step.  The state is observed only after steps whose
    expectations read it: observing costs the tree's size, so doing it after every step of a
    long scenario would be quadratic."""
    from .notation import text

    name = profile or scenario.profile
    system = get_profile(name)
    m = Machine(system, scenario.blocks, system.own_layout(scenario.disks))
    results = []
    for index, scenario_step in enumerate(scenario.steps, 1):
        outcome = step(m, scenario_step.op) if scenario_step.applies_to(name) else Outcome(True, skipped=True)
        expects = [e for e in scenario_step.expects if e.applies_to(name)]
        state = observe(m, views=any(e.views for e in expects)) if any(e.reads_state for e in expects) else None
        checked = [(e, unmet_expectations(e, outcome, state)) for e in expects]
        results.append(StepResult(index, scenario_step, outcome, state, text(m) if trees else None, checked))
    return Run(scenario, name, results, m)


def unmet_expectations(expect: Expect, outcome: Outcome, state: dict[str, Any] | None) -> list[str]:
    """What in ``expect`` does not hold after a step with this outcome and resulting state
    (which may be None when the expectation does not read it)."""
    problems = []
    if expect.error is not None:
        if outcome.ok:
            problems.append(f"expected error {expect.error}, but the step succeeded")
        elif outcome.kind != expect.error:
            problems.append(f"expected error {expect.error}, got {outcome.kind}: {outcome.message}")
    elif not outcome.ok:
        problems.append(f"expected success, got {outcome.kind}: {outcome.message}")
    if not expect.reads_state:
        return problems
    assert state is not None, "an expectation that reads the state was given none"
    snapshots = state["snapshots"]
    by_id = {s["id"]: s for s in snapshots}
    label = _labeller(snapshots)
    if expect.current is not None:
        current = by_id.get(state["current"])
        if expect.current == "none":
            if state["current"] is not None:
                problems.append(f"expected no current snapshot, current is {label(current)}")
        elif current is None and state["current"] is not None:  # a removed snapshot (vcsim), by id
            if expect.current != state["current"]:
                problems.append(f"expected current {shown(expect.current)}, current is removed id {state['current']}")
        elif current is None or expect.current not in (current["name"], current["id"]):
            problems.append(f"expected current {shown(expect.current)}, current is {label(current)}")
    if expect.power is not None and state["power"] != expect.power:
        problems.append(f"expected power {expect.power}, power is {state['power']}")
    if expect.ram is not None:
        if expect.ram == "none":
            if state["ram"] is not None:
                problems.append("expected no RAM (the VM off), but it has RAM")
        else:
            found, problem = _find(snapshots, {"id": expect.ram} if expect.ram in by_id else {"name": expect.ram})
            if found is None:
                problems.append(problem)
            elif found["memory_image"] is None or state["ram"] != found["memory_image"]:
                problems.append(f"expected the RAM to hold snapshot {label(found)}'s memory image, "
                                f"it holds {_image_owner(snapshots, state['ram'], label)}")
    if expect.count is not None and len(snapshots) != expect.count:
        problems.append(f"expected {plural(expect.count, 'snapshot')}, there {'is' if len(snapshots) == 1 else 'are'} "
                        f"{len(snapshots)}")
    for wanted in expect.snapshots:
        found, problem = _find(snapshots, wanted)
        if found is None:
            problems.append(problem)
            continue
        for key, value in wanted.items():
            actual = snapshot_attribute(found, key, by_id)
            if actual != value:
                problems.append(f"snapshot {label(found)}: expected {key}={shown(value)}, got {shown(actual)}")
    for unwanted in expect.absent:
        found, _ = _find(snapshots, unwanted)
        if found is not None:
            problems.append(f"expected no snapshot {_describe(unwanted)}, found {label(found)}")
    for where, cells in expect.views:
        if where.get("of") == "current":
            view = state["views"]["current"]
            where_label = "the current state"
        else:
            found, problem = _find(snapshots, {"name": where["of"]} if "of" in where else {"id": where["id"]})
            if found is None:
                problems.append(problem)
                continue
            view, where_label = state["views"]["snapshots"][found["id"]], f"snapshot {label(found)}"
        disk = where.get("disk")
        first = state["disks"][0]["name"] if "disks" in state else None
        on = "" if disk is None or disk == first else f"{disk}:"  # how observe() names the block
        for block, value in cells.items():
            actual = view.get(f"{on}{block}", "")
            if actual != value:
                where_block = f"{disk} block" if disk is not None else "block"
                problems.append(f"{where_label} {where_block} {block}: expected {shown(value)}, reads {shown(actual)}")
    return problems


def snapshot_attribute(snapshot: dict[str, Any], key: str, by_id: dict[str, dict[str, Any]]) -> str:
    """An observed snapshot's attribute as an expectation's <snapshot KEY="..."> spells it."""
    if key == "parent":
        parent = by_id.get(snapshot["parent"])
        return "none" if parent is None else parent["name"]
    if key == "memory":
        return "yes" if snapshot["memory"] else "no"
    if key == "children":
        return " ".join(sorted(by_id[c]["name"] for c in snapshot["children"]))
    if key == "disks":  # "vda:internal vdb:no", in the layout's order
        return " ".join(f"{disk}:{mode}" for disk, mode in snapshot.get("disks", {}).items())
    if key == "memory-file":
        return snapshot.get("memory_file") or "none"
    return str(snapshot.get(key))


def _find(snapshots: list[dict[str, Any]], wanted: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    if "id" in wanted:
        matches = [s for s in snapshots if s["id"] == wanted["id"]]
    else:
        matches = [s for s in snapshots if s["name"] == wanted["name"]]
        if len(matches) > 1:
            ids = ", ".join(s["id"] for s in matches)
            return None, f"name {shown(wanted['name'])} is ambiguous (ids {ids}): address the snapshot by id"
    if not matches:
        return None, f"expected snapshot {_describe(wanted)}, there is none"
    return matches[0], ""


def _image_owner(snapshots: list[dict[str, Any]], image: str | None, label: Callable[[dict[str, Any]], str]) -> str:
    if image is None:
        return "nothing (the VM is off)"
    owners = [label(s) for s in snapshots if s["memory_image"] == image]
    return f"the image of {', '.join(owners)}" if owners else "an image no snapshot holds (a boot or later run)"


def _labeller(snapshots: list[dict[str, Any]]) -> Callable[[dict[str, Any] | None], str]:
    """How a problem names an observed snapshot: as all text output does (``snapshot_labels``)."""
    names: dict[str, str] = {}

    def label(snapshot: dict[str, Any] | None) -> str:
        if snapshot is None:
            return "none"
        if not names:  # only for a problem: labelling every snapshot of a long scenario's each step would cost
            names.update(snapshot_labels({s["id"]: (s["id"], s["name"]) for s in snapshots}))
        return names[snapshot["id"]]

    return label


def _describe(wanted: dict[str, str]) -> str:
    return f"id={wanted['id']}" if "id" in wanted else shown(wanted["name"])
