"""Scenario files: the XML form of a :class:`Scenario` (schema ``scenarios/scenario.rng``).

Reading: safe lxml parsing (no entities, no DTD, no network, a size limit), RelaxNG validation,
element -> Scenario; the files themselves (a path, or a scenario shipped in the package).
Writing: a scenario, and the <expect> that pins down what the model observed, back as XML.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from snaptree.model import ops
from snaptree.model.disks import DEFAULT_LAYOUT, SNAPSHOT_MODES, Disk, layout_problem
from snaptree.model.profiles import PROFILES, get_profile
from snaptree.model.run import snapshot_attribute
from snaptree.model.scenario import DEFAULT_BLOCKS, MAX_BYTES, MAX_STEPS, Expect, Scenario, ScenarioError, ScenarioStep
from snaptree.model.step import Outcome

from .scenario_schema import schema_problem

SEED_EXAMPLE = "seed-delete-b-two-children.xml"  # what `snaptree compare` shows by default
SIMPLE_OPS = {cls.tag: cls for cls in ops.POWER_OPS + (ops.DeleteAll,)}
DEFAULT_DISK = {"name": "", "format": "qcow2", "role": "disk", "mode": "normal"}


# -- files ---------------------------------------------------------------------------------

def library() -> importlib.resources.abc.Traversable:
    return importlib.resources.files("snaptree.scenarios")


@cache
def schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.fromstring(library().joinpath("scenario.rng").read_bytes(), safe_parser()))


def embedded() -> list[str]:
    """The names of the scenario files shipped in the package."""
    return sorted(f.name for f in library().iterdir() if f.name.endswith(".xml"))


def read(path: str) -> bytes:
    """A file's bytes, up to one more than a scenario may have (so /dev/zero ends, and
    parse_xml names the limit); a path that is not here but in the library (a shipped
    scenario's name, findings/NAME.xml) is read from there."""
    candidate = Path(path)
    shipped = library().joinpath(*Path(path).parts) if not candidate.is_absolute() and ".." not in candidate.parts \
        else None
    try:  # exists() too raises for some paths (a name over 255 bytes)
        if not candidate.exists() and shipped is not None and shipped.is_file():  # e.g. findings/NAME.xml
            return shipped.read_bytes()
        with candidate.open("rb") as file:
            return file.read(MAX_BYTES + 1)
    except OSError as error:
        raise ScenarioError(f"cannot read: {error.strerror or error}") from None


def load(path: str) -> Scenario:
    try:
        return parse(read(path))
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None


# -- reading -------------------------------------------------------------------------------

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
    """Parse and validate scenario XML (entities unresolved, no network)."""
    tree = parse_xml(data)
    validator = schema()
    if not validator.validate(tree):
        first = validator.error_log[0]
        from_element(tree)  # names the problem more exactly where it can
        line, problem = schema_problem(tree) or (first.line, first.message)  # libxml2's names no value
        raise ScenarioError(f"line {line}: does not match scenario.rng: {problem}")
    return from_element(tree)


def from_element(root: etree._Element) -> Scenario:
    if root.tag != "scenario":
        raise ScenarioError(f"line {root.sourceline}: the root element is <{root.tag}>, not <scenario>")
    profile = root.get("profile", "")
    if profile not in PROFILES:
        raise ScenarioError(f"line {root.sourceline}: unknown profile '{profile}' (known: {', '.join(PROFILES)})")
    scenario = Scenario(profile=profile, blocks=_int(root, "blocks", DEFAULT_BLOCKS))
    if scenario.blocks < 1:
        raise ScenarioError(f"line {root.sourceline}: blocks must be at least 1")
    layout: list[Disk] = []  # the <disk>s so far
    for element in root:
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        if element.tag == "disk":
            if scenario.steps:
                raise ScenarioError(f"line {element.sourceline}: <disk> must come before the first step")
            layout.append(_disk(element))
        elif element.tag == "title":
            scenario.title = (element.text or "").strip()
        elif element.tag == "description":
            scenario.description = " ".join((element.text or "").split())
        elif element.tag == "expect":
            if not scenario.steps:
                raise ScenarioError(f"line {element.sourceline}: <expect> must follow a step")
            scenario.steps[-1].expects.append(_expect(element, scenario.blocks, tuple(layout) or DEFAULT_LAYOUT))
        elif len(scenario.steps) == MAX_STEPS:
            raise ScenarioError(f"line {element.sourceline}: more than the {MAX_STEPS} steps a scenario may have")
        else:
            scenario.steps.append(ScenarioStep(_operation(element), _line(element),
                                               profiles=_profiles(element)))
    if layout:
        scenario.disks = tuple(layout)
        problem = layout_problem(scenario.disks) or get_profile(profile).layout_problem(scenario.disks)
        if problem:
            raise ScenarioError(f"line {root.sourceline}: {problem}")
    for step in scenario.steps:  # a typo, unless the step is there to show the refusal
        problem = next(filter(None, (_step_problem(step.op, scenario, get_profile(name))
                                     for name in step.profiles or (profile,))), None)
        if problem and not any(expect.error == "invalid-argument" for expect in step.expects):
            raise ScenarioError(f"line {step.line}: {problem}: the step is refused; "
                                'follow it with <expect error="invalid-argument"/> if that is what it shows')
    return scenario


def _step_problem(op: ops.Operation, scenario: Scenario, profile: Any) -> str | None:
    """A disk the VM lacks, a block outside its disk, or a per-disk mode the profile does not know."""
    names = [disk.name for disk in scenario.disks]
    if isinstance(op, ops.Write):
        if op.disk is not None and op.disk not in names:
            return f"the VM has no disk '{op.disk}' (it has: {', '.join(names)})"
        if op.block >= scenario.blocks:
            return _outside(op.block, scenario.blocks)
    if isinstance(op, ops.CreateSnapshot):
        for disk, mode in op.disks:
            if disk not in names:
                return f"the VM has no disk '{disk}' (it has: {', '.join(names)})"
            if mode not in profile.create_disk_modes:
                known = ", ".join(sorted(profile.create_disk_modes)) or "none"
                return f"{profile.name} cannot snapshot a disk as '{mode}' (per-disk modes it knows: {known})"
        if op.memory_file is not None and not profile.external_memory:
            return f"{profile.name} cannot put a memory image in a file of its own"
    return None


def _disk(e: etree._Element) -> Disk:
    disk = Disk(name=e.get("name", ""), format=e.get("format", "qcow2"), role=e.get("role", "disk"),
                mode=e.get("mode", "normal"), readonly=e.get("readonly") == "yes")
    problem = layout_problem((disk,))
    if problem:
        raise ScenarioError(f"line {e.sourceline}: {problem}")
    return disk


def _operation(e: etree._Element) -> ops.Operation:
    tag = e.tag
    if tag in SIMPLE_OPS:
        return SIMPLE_OPS[tag]()
    if tag == "write":
        return ops.Write(block=_int(e, "block"), value=e.get("value", ""), disk=e.get("disk"))
    flags = tuple(e.get("flags", "").split())
    if tag == "snapshot":
        memory = e.get("memory")
        memory_file = e.get("memory-file")
        if memory_file is not None and memory == "no":
            raise ScenarioError(f"line {e.sourceline}: memory-file= with memory='no': a memory file needs memory")
        return ops.CreateSnapshot(name=e.get("name"), memory=True if memory_file is not None else
                                  None if memory is None else _yes(e, "memory"),
                                  description=e.get("description", ""), flags=flags,
                                  disks=_disk_modes(e), memory_file=memory_file)
    if tag == "redefine":
        bad = next((mode for _, mode in _disk_modes(e) if mode not in SNAPSHOT_MODES), None)
        if bad is not None:
            raise ScenarioError(f"line {e.sourceline}: a snapshot's XML has no disk mode '{bad}' "
                                f"(it has: {', '.join(SNAPSHOT_MODES)})")
        return ops.Redefine(name=e.get("name", ""), parent=e.get("parent"), state=e.get("state"),
                            memory=None if e.get("memory") is None else _yes(e, "memory"), disks=_disk_modes(e),
                            flags=flags)
    if tag in ("revert", "delete"):
        cls = ops.Revert if tag == "revert" else ops.Delete
        return cls(ref=e.get("name"), id=e.get("id"), flags=flags)
    raise ScenarioError(f"line {e.sourceline}: unknown step <{tag}>")


def _disk_modes_text(pairs: tuple[tuple[str, str], ...]) -> str:
    """((disk, mode), ...) as disks= spells it: "vda:internal vdb:no"."""
    return " ".join(f"{disk}:{mode}" for disk, mode in pairs)


def _disk_modes(e: etree._Element) -> tuple[tuple[str, str], ...]:
    """disks="vda:internal vdb:no" as ((disk, mode), ...)."""
    pairs: list[tuple[str, str]] = []
    for word in e.get("disks", "").split():
        disk, colon, mode = word.rpartition(":")
        if not colon or not disk or not mode:
            raise ScenarioError(f"line {e.sourceline}: disks= takes disk:mode words (vdb:no), not '{word}'")
        if disk in dict(pairs):
            raise ScenarioError(f"line {e.sourceline}: disks= names disk '{disk}' twice")
        pairs.append((disk, mode))
    return tuple(pairs)


def _expect(e: etree._Element, blocks: int, disks: tuple[Disk, ...]) -> Expect:
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
            if "disk" in attrs and attrs["disk"] not in [disk.name for disk in disks]:
                raise ScenarioError(f"line {child.sourceline}: the VM has no disk '{attrs['disk']}' "
                                    f"(it has: {', '.join(disk.name for disk in disks)})")
            cells = {}
            for cell in child:
                if isinstance(cell.tag, str):
                    n = _int(cell, "n")
                    if not 0 <= n < blocks:
                        raise ScenarioError(f"line {cell.sourceline}: {_outside(n, blocks)}")
                    cells[n] = cell.get("value", "")
            expect.views.append((attrs, cells))
        else:
            raise ScenarioError(f"line {child.sourceline}: unknown element <{child.tag}> in <expect>")
    return expect


def _outside(block: int, blocks: int) -> str:
    return f"block {block} is outside the disk (0..{blocks - 1})"


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


# -- writing -------------------------------------------------------------------------------

def op_element(op: ops.Operation, profiles: tuple[str, ...] = ()) -> etree._Element:
    e = etree.Element(op.tag)
    if profiles:
        e.set("profile", " ".join(profiles))
    if isinstance(op, ops.Write):
        if op.disk is not None:
            e.set("disk", op.disk)
        e.set("block", str(op.block))
        e.set("value", op.value)
    elif isinstance(op, ops.CreateSnapshot):
        if op.name is not None:
            e.set("name", op.name)
        if op.memory_file is not None:
            e.set("memory-file", op.memory_file)
        elif op.memory is not None:
            e.set("memory", "yes" if op.memory else "no")
        if op.description:
            e.set("description", op.description)
        if op.disks:
            e.set("disks", _disk_modes_text(op.disks))
    elif isinstance(op, ops.Redefine):
        e.set("name", op.name)
        if op.parent is not None:
            e.set("parent", op.parent)
        if op.state is not None:
            e.set("state", op.state)
        if op.memory is not None:
            e.set("memory", "yes" if op.memory else "no")
        if op.disks:
            e.set("disks", _disk_modes_text(op.disks))
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
        attrs = {"id": s["id"], "name": s["name"], "parent": snapshot_attribute(s, "parent", by_id),
                 "memory": snapshot_attribute(s, "memory", by_id), "state": s["state"]}
        if "disks" in s:
            attrs["disks"] = snapshot_attribute(s, "disks", by_id)
        etree.SubElement(e, "snapshot", attrs)
    if views:
        names = [disk["name"] for disk in state.get("disks", [])] or [DEFAULT_LAYOUT[0].name]
        for key, view in [("current", state["views"]["current"])] + sorted(state["views"]["snapshots"].items()):
            where = {"of": "current"} if key == "current" else {"id": key}
            for index, disk in enumerate(names):
                on_disk = {block.rpartition(":")[2]: value for block, value in view.items()
                           if block.rpartition(":")[0] == ("" if index == 0 else disk)}
                if index and not on_disk:
                    continue
                v = etree.SubElement(e, "view", where if index == 0 else {**where, "disk": disk})
                for block, value in on_disk.items():
                    etree.SubElement(v, "block", {"n": block, "value": value})
    return e


def to_xml(scenario: Scenario, expects: list[etree._Element | None] | None = None) -> bytes:
    """The scenario as XML; ``expects`` optionally gives one <expect> per step."""
    root = etree.Element("scenario", {"profile": scenario.profile, "blocks": str(scenario.blocks)})
    if scenario.title:
        etree.SubElement(root, "title").text = scenario.title
    if scenario.description:
        etree.SubElement(root, "description").text = scenario.description
    if scenario.disks != DEFAULT_LAYOUT:
        for disk in scenario.disks:
            attrs = {"name": disk.name, "format": disk.format, "role": disk.role, "mode": disk.mode}
            etree.SubElement(root, "disk", {key: value for key, value in attrs.items() if value != DEFAULT_DISK[key]}
                             | ({"readonly": "yes"} if disk.readonly else {}))
    for index, step in enumerate(scenario.steps):
        root.append(op_element(step.op, step.profiles))
        expect = None if expects is None else expects[index]
        if expect is not None:
            root.append(expect)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
