"""Scenario files: steps and expectations in XML (schema ``scenarios/scenario.rng``).

This module turns a parsed XML tree into a :class:`Scenario`, runs it on the model and checks
its expectations, and writes a scenario back as XML.  It reads no file: callers hand it bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from . import ops
from .errors import ModelError
from .machine import Machine
from .observe import observe
from .profiles import PROFILES, get_profile

DEFAULT_BLOCKS = 16
# Scenario files may come from anyone: the size bounds what parsing them takes (lxml's tree is
# ~80x the file), the steps what running them takes (`run` draws the tree after each step).
MAX_BYTES = 4 * 1024 * 1024
MAX_STEPS = 5000
SIMPLE_OPS = {cls.tag: cls for cls in ops.POWER_OPS + (ops.DeleteAll,)}


class ScenarioError(ValueError):
    """The scenario is malformed; the message names the element and line."""


@dataclass
class Expect:
    line: int
    profiles: tuple[str, ...] = ()  # empty: every profile
    error: str | None = None
    current: str | None = None
    power: str | None = None
    ram: str | None = None  # the snapshot whose memory image the RAM was loaded from ("none": off)
    count: int | None = None
    snapshots: list[dict[str, str]] = field(default_factory=list)  # attributes to check
    absent: list[dict[str, str]] = field(default_factory=list)
    views: list[tuple[dict[str, str], dict[int, str]]] = field(default_factory=list)

    def applies_to(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles

    @property
    def reads_state(self) -> bool:
        """It checks more than the step's outcome (so the state after the step is observed)."""
        return any(value is not None for value in (self.current, self.power, self.ram, self.count)) or bool(
            self.snapshots or self.absent or self.views)


@dataclass
class Step:
    op: ops.Operation
    line: int
    expects: list[Expect] = field(default_factory=list)
    profiles: tuple[str, ...] = ()  # empty: every profile; otherwise skipped under the others

    def applies_to(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles


@dataclass
class Scenario:
    profile: str
    blocks: int = DEFAULT_BLOCKS
    title: str = ""
    description: str = ""
    steps: list[Step] = field(default_factory=list)


# -- parsing -------------------------------------------------------------------------------

def safe_parser() -> etree.XMLParser:
    """No entity expansion, no DTD loading, no network: scenario files may come from anyone."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(data: bytes) -> etree._Element:
    """The root element; a DOCTYPE is refused, since scenario files need no DTD or entities."""
    if len(data) > MAX_BYTES:
        raise ScenarioError(f"larger than the {MAX_BYTES // 2**20} MiB a scenario file may have")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as error:
        raise ScenarioError(f"not well-formed XML: {error}") from None
    info: Any = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise ScenarioError("a DOCTYPE (DTD or entities) is not allowed in a scenario file")
    return root


def parse(data: bytes) -> Scenario:
    return from_element(parse_xml(data))


def from_element(root: etree._Element) -> Scenario:
    if root.tag != "scenario":
        raise ScenarioError(f"line {root.sourceline}: the root element is <{root.tag}>, not <scenario>")
    profile = root.get("profile", "")
    if profile not in PROFILES:
        raise ScenarioError(f"line {root.sourceline}: unknown profile '{profile}' (known: {', '.join(PROFILES)})")
    scenario = Scenario(profile=profile, blocks=_int(root, "blocks", DEFAULT_BLOCKS))
    if scenario.blocks < 1:
        raise ScenarioError(f"line {root.sourceline}: blocks must be at least 1")
    for element in root:
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        if element.tag == "title":
            scenario.title = (element.text or "").strip()
        elif element.tag == "description":
            scenario.description = " ".join((element.text or "").split())
        elif element.tag == "expect":
            if not scenario.steps:
                raise ScenarioError(f"line {element.sourceline}: <expect> must follow a step")
            scenario.steps[-1].expects.append(_expect(element, scenario.blocks))
        elif len(scenario.steps) == MAX_STEPS:
            raise ScenarioError(f"line {element.sourceline}: more than the {MAX_STEPS} steps a scenario may have")
        else:
            scenario.steps.append(Step(_operation(element), _line(element),
                                       profiles=_profiles(element)))
    return scenario


def _operation(e: etree._Element) -> ops.Operation:
    tag = e.tag
    if tag in SIMPLE_OPS:
        return SIMPLE_OPS[tag]()
    if tag == "write":
        return ops.Write(block=_int(e, "block"), value=e.get("value", ""))
    flags = tuple(e.get("flags", "").split())
    if tag == "snapshot":
        memory = e.get("memory")
        return ops.CreateSnapshot(name=e.get("name"), memory=None if memory is None else _yes(e, "memory"),
                                  description=e.get("description", ""), flags=flags)
    if tag in ("revert", "delete"):
        cls = ops.Revert if tag == "revert" else ops.Delete
        return cls(ref=e.get("name"), id=e.get("id"), flags=flags)
    raise ScenarioError(f"line {e.sourceline}: unknown step <{tag}>")


def _expect(e: etree._Element, blocks: int) -> Expect:
    count = e.get("snapshots")
    expect = Expect(line=_line(e), profiles=_profiles(e),
                    error=e.get("error"), current=e.get("current"), power=e.get("power"), ram=e.get("ram"),
                    count=None if count is None else _int(e, "snapshots"))
    for child in e:
        if not isinstance(child.tag, str):
            continue
        attrs = {str(key): str(value) for key, value in child.attrib.items()}
        if child.tag in ("snapshot", "absent"):
            if "name" not in attrs and "id" not in attrs:
                raise ScenarioError(f"line {child.sourceline}: <{child.tag}> needs name or id")
            (expect.snapshots if child.tag == "snapshot" else expect.absent).append(attrs)
        elif child.tag == "view":
            if ("of" in attrs) == ("id" in attrs):
                raise ScenarioError(f"line {child.sourceline}: <view> needs one of of= or id=")
            cells = {}
            for cell in child:
                if isinstance(cell.tag, str):
                    n = _int(cell, "n")
                    if not 0 <= n < blocks:
                        raise ScenarioError(f"line {cell.sourceline}: block {n} is outside the disk (0..{blocks - 1})")
                    cells[n] = cell.get("value", "")
            expect.views.append((attrs, cells))
        else:
            raise ScenarioError(f"line {child.sourceline}: unknown element <{child.tag}> in <expect>")
    return expect


def _line(e: etree._Element) -> int:
    return e.sourceline if isinstance(e.sourceline, int) else 0


def _profiles(e: etree._Element) -> tuple[str, ...]:
    names = tuple(e.get("profile", "").replace(",", " ").split())
    for name in names:
        if name not in PROFILES:
            raise ScenarioError(f"line {e.sourceline}: unknown profile '{name}' in <{e.tag} profile=...>")
    return names


def _int(e: etree._Element, attr: str, default: int | None = None) -> int:
    raw = e.get(attr)
    if raw is None:
        if default is None:
            raise ScenarioError(f"line {e.sourceline}: <{e.tag}> needs {attr}=")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ScenarioError(f"line {e.sourceline}: {attr}='{raw}' is not a whole number") from None


def _yes(e: etree._Element, attr: str) -> bool:
    raw = e.get(attr)
    if raw not in ("yes", "no"):
        raise ScenarioError(f"line {e.sourceline}: {attr}='{raw}' must be yes or no")
    return raw == "yes"


# -- running -------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one step did: ok, or the error's kind and message."""

    ok: bool
    kind: str | None = None
    message: str | None = None
    side_effect: str | None = None
    skipped: bool = False  # the step is for other profiles
    created_id: str | None = None  # the snapshot a successful create made
    created_name: str | None = None

    def brief(self) -> str:
        return "-" if self.skipped else "ok" if self.ok else str(self.kind)

    def to_json(self) -> dict[str, Any]:
        error = None if self.ok else {"kind": self.kind, "message": self.message}
        result: dict[str, Any] = {"ok": self.ok, "error": error}
        if self.skipped:
            result["skipped"] = True
        return result


def apply(m: Machine, op: ops.Operation) -> Outcome:
    try:
        created = m.apply(op)
    except ModelError as error:
        return Outcome(False, error.kind.value, error.message, error.side_effect)
    if created is None:
        return Outcome(True)
    return Outcome(True, created_id=created.id, created_name=created.name)


@dataclass
class StepResult:
    index: int
    step: Step
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
        return all(not problems for step in self.steps for _, problems in step.failures)

    @property
    def expectations(self) -> int:
        return sum(len(step.failures) for step in self.steps)

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
    m = Machine(get_profile(name), scenario.blocks)
    results = []
    for index, step in enumerate(scenario.steps, 1):
        outcome = apply(m, step.op) if step.applies_to(name) else Outcome(True, skipped=True)
        expects = [e for e in step.expects if e.applies_to(name)]
        state = observe(m, views=any(e.views for e in expects)) if any(e.reads_state for e in expects) else None
        checked = [(e, check(e, outcome, state)) for e in expects]
        results.append(StepResult(index, step, outcome, state, text(m) if trees else None, checked))
    return Run(scenario, name, results, m)


def check(expect: Expect, outcome: Outcome, state: dict[str, Any] | None) -> list[str]:
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
    if expect.current is not None:
        current = by_id.get(state["current"])
        if expect.current == "none":
            if state["current"] is not None:
                problems.append(f"expected no current snapshot, current is {_label(current)}")
        elif current is None and state["current"] is not None:  # a removed snapshot (vcsim), by id
            if expect.current != state["current"]:
                problems.append(f"expected current {expect.current}, current is removed id {state['current']}")
        elif current is None or expect.current not in (current["name"], current["id"]):
            problems.append(f"expected current {expect.current}, current is {_label(current)}")
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
                problems.append(f"expected the RAM to hold snapshot {_label(found)}'s memory image, "
                                f"it holds {_image_owner(snapshots, state['ram'])}")
    if expect.count is not None and len(snapshots) != expect.count:
        problems.append(f"expected {expect.count} snapshots, there are {len(snapshots)}")
    for wanted in expect.snapshots:
        found, problem = _find(snapshots, wanted)
        if found is None:
            problems.append(problem)
            continue
        for key, value in wanted.items():
            actual = _field(found, key, by_id)
            if actual != value:
                problems.append(f"snapshot {_label(found)}: expected {key}={value!r}, got {actual!r}")
    for unwanted in expect.absent:
        found, _ = _find(snapshots, unwanted)
        if found is not None:
            problems.append(f"expected no snapshot {_describe(unwanted)}, found {_label(found)}")
    for where, cells in expect.views:
        if where.get("of") == "current":
            view = state["views"]["current"]
            label = "the current state"
        else:
            found, problem = _find(snapshots, {"name": where["of"]} if "of" in where else {"id": where["id"]})
            if found is None:
                problems.append(problem)
                continue
            view, label = state["views"]["snapshots"][found["id"]], f"snapshot {_label(found)}"
        for block, value in cells.items():
            actual = view.get(str(block), "")
            if actual != value:
                problems.append(f"{label} block {block}: expected {value!r}, reads {actual!r}")
    return problems


def _find(snapshots: list[dict[str, Any]], wanted: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    if "id" in wanted:
        matches = [s for s in snapshots if s["id"] == wanted["id"]]
    else:
        matches = [s for s in snapshots if s["name"] == wanted["name"]]
        if len(matches) > 1:
            ids = ", ".join(s["id"] for s in matches)
            return None, f"name {wanted['name']!r} is ambiguous (ids {ids}): address the snapshot by id"
    if not matches:
        return None, f"expected snapshot {_describe(wanted)}, there is none"
    return matches[0], ""


def _image_owner(snapshots: list[dict[str, Any]], image: str | None) -> str:
    if image is None:
        return "nothing (the VM is off)"
    owners = [_label(s) for s in snapshots if s["memory_image"] == image]
    return f"the image of {', '.join(owners)}" if owners else "an image no snapshot holds (a boot or later run)"


def _field(snapshot: dict[str, Any], key: str, by_id: dict[str, dict[str, Any]]) -> str:
    if key == "parent":
        parent = by_id.get(snapshot["parent"])
        return "none" if parent is None else parent["name"]
    if key == "memory":
        return "yes" if snapshot["memory"] else "no"
    if key == "children":
        return " ".join(sorted(by_id[c]["name"] for c in snapshot["children"]))
    return str(snapshot.get(key))


def _label(snapshot: dict[str, Any] | None) -> str:
    if snapshot is None:
        return "none"
    return snapshot["name"] if snapshot["name"] == snapshot["id"] else f"{snapshot['name']} (id {snapshot['id']})"


def _describe(wanted: dict[str, str]) -> str:
    return f"id={wanted['id']}" if "id" in wanted else repr(wanted["name"])


# -- writing -------------------------------------------------------------------------------

def op_element(op: ops.Operation, profiles: tuple[str, ...] = ()) -> etree._Element:
    e = etree.Element(op.tag)
    if profiles:
        e.set("profile", " ".join(profiles))
    if isinstance(op, ops.Write):
        e.set("block", str(op.block))
        e.set("value", op.value)
    elif isinstance(op, ops.CreateSnapshot):
        if op.name is not None:
            e.set("name", op.name)
        if op.memory is not None:
            e.set("memory", "yes" if op.memory else "no")
        if op.description:
            e.set("description", op.description)
    elif isinstance(op, (ops.Revert, ops.Delete)):
        if op.ref is not None:
            e.set("name", op.ref)
        if op.id is not None:
            e.set("id", op.id)
    if getattr(op, "flags", ()):
        e.set("flags", " ".join(op.flags))  # type: ignore[union-attr]
    return e


def expect_element(outcome: Outcome, state: dict[str, Any], views: bool = True) -> etree._Element:
    """An <expect> that pins down everything observed after a step (as the model saw it)."""
    e = etree.Element("expect")
    if not outcome.ok:
        e.set("error", str(outcome.kind))
    by_id = {s["id"]: s for s in state["snapshots"]}
    current = by_id.get(state["current"])
    e.set("current", "none" if current is None else current["id"])
    e.set("power", state["power"])
    e.set("snapshots", str(len(state["snapshots"])))
    for s in state["snapshots"]:
        attrs = {"id": s["id"], "name": s["name"], "parent": _field(s, "parent", by_id),
                 "memory": _field(s, "memory", by_id), "state": s["state"]}
        etree.SubElement(e, "snapshot", attrs)
    if views:
        for key, view in [("current", state["views"]["current"])] + sorted(state["views"]["snapshots"].items()):
            v = etree.SubElement(e, "view", {"of": "current"} if key == "current" else {"id": key})
            for block, value in view.items():
                etree.SubElement(v, "block", {"n": block, "value": value})
    return e


def to_xml(scenario: Scenario, expects: list[etree._Element | None] | None = None) -> bytes:
    """The scenario as XML; ``expects`` optionally gives one <expect> per step."""
    root = etree.Element("scenario", {"profile": scenario.profile, "blocks": str(scenario.blocks)})
    if scenario.title:
        etree.SubElement(root, "title").text = scenario.title
    if scenario.description:
        etree.SubElement(root, "description").text = scenario.description
    for index, step in enumerate(scenario.steps):
        root.append(op_element(step.op, step.profiles))
        expect = None if expects is None else expects[index]
        if expect is not None:
            root.append(expect)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
