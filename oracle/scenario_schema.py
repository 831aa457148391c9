"""What ``scenarios/scenario.rng`` allows, read from the schema itself: per element its
attributes, whether each is required and what values it takes; so that a file the schema refuses
gets a message naming the value and what is allowed (libxml2 names neither)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from lxml import etree


def _grammar() -> etree._Element:
    from .scenario_format import library, safe_parser  # the one place scenario files are read

    return etree.fromstring(library().joinpath("scenario.rng").read_bytes(), safe_parser())


RNG = "{http://relaxng.org/ns/structure/1.0}"
# the schema's datatypes: what a value must look like (XML Schema collapses the spaces around it)
DATATYPES = {"positiveInteger": (r"\+?0*[1-9][0-9]*", "a whole number from 1"),
             "nonNegativeInteger": (r"\+?[0-9]+", "a whole number from 0"),
             "NCName": (r"[^\W\d][\w.-]*", "a name without spaces or colons")}
Allowed = tuple[str, ...] | str | None  # the values, a datatype, or any text
Rule = dict[str, tuple[bool, Allowed]]  # per attribute: (required, allowed)


@cache
def attribute_rules() -> dict[tuple[str, str], Rule]:
    """Per element, by (its parent's tag, its tag) as the schema places it: its attributes,
    whether each is required, and what it allows; read from scenario.rng itself."""
    grammar = _grammar()
    defines = {d.get("name"): d for d in grammar.iter(RNG + "define")}
    rules: dict[tuple[str, str], Rule] = {}

    def allowed(node: etree._Element) -> Allowed:
        values = [v.text or "" for v in _within(node, defines, "value")]
        types = [d.get("type", "") for d in _within(node, defines, "data")]
        return tuple(values) if values else types[0] if types else None

    def walk(node: etree._Element, parent: str, rule: Rule, optional: bool) -> None:
        for child in node:
            kind = child.tag.removeprefix(RNG) if isinstance(child.tag, str) else ""
            if kind == "element":
                walk(child, child.get("name", ""), rules.setdefault((parent, child.get("name", "")), {}), False)
            elif kind == "attribute":
                rule[child.get("name", "")] = (not optional, allowed(child))
            elif kind == "ref":
                walk(defines[child.get("name")], parent, rule, optional)
            elif kind in ("optional", "zeroOrMore", "choice", "group", "oneOrMore", "interleave", "start"):
                walk(child, parent, rule, optional or kind in ("optional", "zeroOrMore", "choice"))

    walk(grammar, "", {}, False)
    return rules


def _within(node: etree._Element, defines: dict[Any, etree._Element], kind: str) -> list[etree._Element]:
    """The <value>s or <data>s under ``node``, through its refs."""
    found = []
    for child in node:
        if not isinstance(child.tag, str):
            continue
        if child.tag == RNG + kind:
            found.append(child)
        else:
            found += _within(defines[child.get("name")] if child.tag == RNG + "ref" else child, defines, kind)
    return found


def schema_problem(root: etree._Element) -> tuple[int, str] | None:
    """The first attribute the schema refuses, with the value it has and what it may have
    (libxml2 says only "Invalid attribute power for element expect"); None when none is."""
    rules = attribute_rules()
    for e in root.iter():
        parent = e.getparent()
        rule = rules.get(("" if parent is None else str(parent.tag), str(e.tag)))
        if rule is None:  # a comment, or an element out of place: libxml2's message names it
            continue
        where = f"<{e.tag}>"
        attributes = {str(key): str(value) for key, value in e.attrib.items()}
        for name, raw in attributes.items():
            if name not in rule:
                return _line(e), f"{where} has no attribute {name}= (it takes: {', '.join(rule) or 'none'})"
            allowed = rule[name][1]
            if isinstance(allowed, tuple) and " ".join(raw.split()) not in allowed:
                return _line(e), f"{where} {name}='{raw}' is not one of: {', '.join(allowed)}"
            if isinstance(allowed, str) and allowed in DATATYPES and not re.fullmatch(DATATYPES[allowed][0], raw.strip()):
                return _line(e), f"{where} {name}='{raw}' must be {DATATYPES[allowed][1]}"
        missing = [name for name, (required, _) in rule.items() if required and name not in attributes]
        if missing:
            return _line(e), f"{where} needs {missing[0]}="
    return None


def _line(e: etree._Element) -> int:
    return e.sourceline if isinstance(e.sourceline, int) else 0
