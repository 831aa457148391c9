"""Reading scenario files: safe XML parsing, RelaxNG validation, the embedded library."""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path

from lxml import etree

from snaptree.model.scenario import MAX_BYTES, Scenario, ScenarioError, from_element, parse_xml, safe_parser

SEED_EXAMPLE = "seed-delete-b-two-children.xml"  # what `snaptree compare` shows by default


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
    if not candidate.exists() and shipped is not None and shipped.is_file():  # e.g. findings/NAME.xml
        return shipped.read_bytes()
    try:
        with candidate.open("rb") as file:
            return file.read(MAX_BYTES + 1)
    except OSError as error:
        raise ScenarioError(f"cannot read: {error.strerror or error}") from None


def parse(data: bytes) -> Scenario:
    """Parse and validate scenario XML (entities unresolved, no network)."""
    tree = parse_xml(data)
    validator = schema()
    if not validator.validate(tree):
        first = validator.error_log[0]
        from_element(tree)  # names the problem more exactly where it can
        raise ScenarioError(f"line {first.line}: does not match scenario.rng: {first.message}")
    return from_element(tree)


def load(path: str) -> Scenario:
    try:
        return parse(read(path))
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
