"""README.md shows every command and option of the command line (`build_parser()`) in its Commands
table, and every element and attribute of the scenario schema (scenarios/scenario.rng) in its
"Scenario files" section."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lxml import etree

from snaptree.oracle.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCHEMA = ROOT / "scenarios" / "scenario.rng"
RNG = "{http://relaxng.org/ns/structure/1.0}"
TAG = re.compile(r'<([a-z][\w-]*)((?:\s+[\w-]+="[^"]*")*)\s*/?>')


def section(readme: str, title: str) -> str:
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each command's option strings ("" for the program's own), help left out."""
    found: dict[str, list[str]] = {}
    for name, p in [("", parser), *((n, s) for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                                    for n, s in a.choices.items())]:
        found[name] = [o for a in p._actions if not isinstance(a, argparse._HelpAction) for o in a.option_strings]
    return found


def undocumented_options(parser: argparse.ArgumentParser, readme: str) -> list[str]:
    rows: dict[str, str] = {}
    for line in section(readme, "Commands").splitlines():
        m = re.match(r"\| `snaptree (\S+)", line)
        if m:
            rows["" if m.group(1).startswith("-") else m.group(1)] = line.split("` |", 1)[0]
    return [f"snaptree {command} {option}".replace("  ", " ") if command in rows else f"snaptree {command}: no row"
            for command, strings in options(parser).items()
            for option in (strings if command in rows else [""])
            if command not in rows or not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", rows[command])]


def schema() -> tuple[set[tuple[str, str]], dict[str, tuple[set[str], set[str]]]]:
    """The (element, attribute) pairs the schema allows directly, and for each shared define the
    attributes it adds and the elements that use it."""
    tree = etree.parse(str(SCHEMA))
    defines = {d.get("name"): d for d in tree.iter(f"{RNG}define")}
    direct: set[tuple[str, str]] = set()
    shared: dict[str, tuple[set[str], set[str]]] = {}

    def walk(node: etree._Element, element: str, via: str | None) -> None:
        for child in node:
            name = str(child.get("name"))
            if child.tag == f"{RNG}element":
                direct.add((name, ""))
                walk(child, name, None)
            elif child.tag == f"{RNG}attribute" and via:
                shared[via][0].add(name)
            elif child.tag == f"{RNG}attribute":
                direct.add((element, name))
            elif child.tag == f"{RNG}ref" and next(defines[name].iter(f"{RNG}element"), None) is None:
                shared.setdefault(name, (set(), set()))[1].add(element)  # a group of attributes, shared
                walk(defines[name], element, name)
            elif child.tag == f"{RNG}ref":
                walk(defines[name], element, via)
            elif child.tag != f"{RNG}define":
                walk(child, element, via)

    walk(tree.getroot(), "", None)
    return direct, shared


def unshown_schema(readme: str) -> list[str]:
    shown: dict[str, set[str]] = {}
    for name, attributes in TAG.findall(section(readme, "Scenario files")):
        shown.setdefault(name, set()).update(re.findall(r'([\w-]+)="', attributes))
    direct, shared = schema()
    missing = [f"<{e}>" if not a else f"<{e} {a}=>" for e, a in sorted(direct)
               if e not in shown or (a and a not in shown[e])]
    missing += [f"<{'|'.join(sorted(users))} {a}=>" for attributes, users in shared.values() for a in sorted(attributes)
                if not any(a in shown.get(u, ()) for u in users)]
    return missing


def test_the_schema_walk_finds_every_element_and_shared_attribute() -> None:
    direct, shared = schema()
    elements = {e for e, a in direct if not a}
    assert {"scenario", "start", "delete-all", "snapshot", "expect", "absent", "view", "block"} <= elements
    assert {("snapshot", "children"), ("view", "id"), ("scenario", "race"), ("write", "value")} <= direct
    assert ({"name", "id", "flags"}, {"revert", "delete"}) in shared.values()


def test_every_command_and_option_is_in_the_commands_table() -> None:
    assert undocumented_options(build_parser(), README) == []


def test_a_missing_option_or_command_is_found() -> None:
    parser = build_parser()
    parser.add_argument("--planted")
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands.add_parser("planted")
    assert undocumented_options(parser, README) == ["snaptree --planted", "snaptree planted: no row"]
    assert "snaptree diff --html" in undocumented_options(build_parser(), README.replace(" [--html F]", ""))


def test_every_schema_element_and_attribute_is_in_the_scenario_format() -> None:
    assert unshown_schema(README) == []


def test_a_missing_element_or_attribute_is_found() -> None:
    planted = README.replace(' children="D E"', "").replace('<view id="2">', '<view of="2">')
    assert unshown_schema(planted) == ["<snapshot children=>", "<view id=>"]
    assert unshown_schema(README.replace('<delete name="B" flags="..."/>', "")) == ["<delete>"]
