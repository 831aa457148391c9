"""The layout README's "Layout" section promises: small modules with one job each, the command
line a thin shell that nothing imports, no reach into another module's private names, a pure
model, and a Layout section that names every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for package in ("model", "oracle") for p in (ROOT / package).rglob("*.py"))
MAX_LINES = 400


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module as written, with leading dots; the names imported) for every import in a file."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            found.append(("." * node.level + (node.module or ""), [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _absolute(path: Path, module: str) -> str:
    """A relative import as snaptree.<package>.<module>."""
    if not module.startswith("."):
        return module
    dots = len(module) - len(module.lstrip("."))
    package = ["snaptree", *path.relative_to(ROOT).with_suffix("").parts][:-1]
    if path.name == "__init__.py":
        package = ["snaptree", *path.parent.relative_to(ROOT).parts]
    base = package[:len(package) - dots + 1]
    rest = module.lstrip(".")
    return ".".join(base + ([rest] if rest else []))


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 50 and ROOT / "oracle" / "cli" / "main.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_the_limit(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concept"


def test_nothing_outside_the_command_line_imports_it() -> None:
    offenders = []
    for path in SOURCES:
        if (ROOT / "oracle" / "cli") in path.parents:
            continue
        for module, names in _imports(path):
            target = _absolute(path, module)
            if target.startswith("snaptree.oracle.cli") or (target == "snaptree.oracle" and "cli" in names):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [f"{path.relative_to(ROOT)}: {module} import {name}"
                 for path in SOURCES for module, names in _imports(path)
                 for name in names if name.startswith("_") and not name.startswith("__")]
    assert offenders == []


def test_the_model_is_pure() -> None:
    """No import of the oracle, no process, no file or network I/O modules."""
    forbidden = ("snaptree.oracle", "subprocess", "socket", "os", "shutil", "tempfile", "pathlib", "urllib")
    offenders = [f"{path.relative_to(ROOT)}: {module}"
                 for path in SOURCES if path.parts[len(ROOT.parts)] == "model"
                 for module, _ in _imports(path)
                 if any(_absolute(path, module) == f or _absolute(path, module).startswith(f + ".") for f in forbidden)]
    assert offenders == []


def test_the_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    words = set(re.findall(r"[\w./]+", layout))
    missing = []
    for path in SOURCES:
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if path.name not in words and not any(w.endswith("/" + path.name) for w in words):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == [], "README's Layout section does not name these modules"


def test_an_absolute_import_of_a_relative_one() -> None:
    """The helper the checks above stand on."""
    assert _absolute(ROOT / "oracle" / "cli" / "main.py", "..errors") == "snaptree.oracle.errors"
    assert _absolute(ROOT / "oracle" / "checker" / "__init__.py", ".run") == "snaptree.oracle.checker.run"
    assert _absolute(ROOT / "oracle" / "lockstep.py", ".driver") == "snaptree.oracle.driver"
