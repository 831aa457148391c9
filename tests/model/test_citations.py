"""Every citation of the facts document in the code, the scenario files and the README names a
section (`§N`) or a row (`§N.M`) that scenarios/semantics.md has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "scenarios" / "semantics.md"
CITED_IN = ("model", "oracle", "scenarios")
SUFFIXES = (".py", ".xml", ".md", ".go", ".rng")
# a row by name or "§N row ..." is the old form: rows are cited by number
CITATION = re.compile(r"§(\d+(?:\.\d+)?)(\s+rows?\b)?")


def anchors(facts: str) -> set[str]:
    """The sections ("2") and rows ("2.1") of the facts document."""
    sections = set(re.findall(r"^## §(\d+) ", facts, re.M))
    rows = {f"{n}.{m}" for n, m in re.findall(r"^\| (\d+)\.(\d+) \|", facts, re.M) if n in sections}
    return sections | rows


def bad_citations(text: str, known: set[str]) -> list[str]:
    """Each citation in ``text`` that names no section or row of ``known``, or names a row the old way."""
    return [m.group(0) for m in CITATION.finditer(text) if m.group(1) not in known or m.group(2)]


def cited_files() -> list[Path]:
    files = [p for folder in CITED_IN for p in sorted((ROOT / folder).rglob("*")) if p.suffix in SUFFIXES]
    return [*files, ROOT / "README.md"]


def test_the_facts_document_has_its_sections_and_rows() -> None:
    known = anchors(FACTS.read_text(encoding="utf-8"))
    assert {str(n) for n in range(1, 9)} <= known
    assert {"1.2", "2.1", "5.4", "7.16", "8.3"} <= known and "1.0" not in known


def test_the_collector_finds_a_planted_bad_citation() -> None:
    known = anchors(FACTS.read_text(encoding="utf-8"))
    planted = "see semantics.md §2.1 and §7, then §2.99, §12 and §4 row `Names`"
    assert bad_citations(planted, known) == ["§2.99", "§12", "§4 row"]


def test_every_citation_resolves() -> None:
    known = anchors(FACTS.read_text(encoding="utf-8"))
    found = {path: CITATION.findall(path.read_text(encoding="utf-8")) for path in cited_files()}
    assert sum(map(len, found.values())) > 100, "the collector found too few citations"
    offenders = [f"{path.relative_to(ROOT)}: {bad}" for path in cited_files()
                 for bad in bad_citations(path.read_text(encoding="utf-8"), known)]
    assert offenders == []
