"""pyproject.toml ships every directory of model/, oracle/ and scenarios/ as a package (a directory
left out is missing from a non-editable install, and setuptools warns of it during every
install), and every file in them that is not Python as package data (scenarios/semantics.md too)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def directories() -> dict[str, Path]:
    """Every directory under the package-dir mapping, by the package name it has when installed."""
    found = {}
    for package, folder in SETUPTOOLS["package-dir"].items():
        for path in [ROOT / folder, *sorted(p for p in (ROOT / folder).rglob("*") if p.is_dir())]:
            if "__pycache__" not in path.parts:
                found[".".join([package, *path.relative_to(ROOT / folder).parts])] = path
    return found


def unshipped(files: list[tuple[str, str]]) -> list[str]:
    """The (package, file name) pairs no package-data pattern of their package matches."""
    data = SETUPTOOLS["package-data"]
    return [f"{package}: {name}" for package, name in files
            if not any(fnmatch.fnmatch(name, pattern) for pattern in data.get(package, []))]


def test_every_directory_is_a_listed_package() -> None:
    assert sorted(directories()) == sorted(SETUPTOOLS["packages"])
    assert {"snaptree.scenarios.findings", "snaptree.oracle.vcsim"} <= set(directories())


def test_every_data_file_is_package_data() -> None:
    files = [(package, p.name) for package, folder in directories().items()
             for p in sorted(folder.iterdir()) if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert ("snaptree.scenarios", "semantics.md") in files and ("snaptree.oracle.vcsim", "main.go") in files
    assert unshipped(files) == []
    assert unshipped([("snaptree.scenarios", "notes.txt")]) == ["snaptree.scenarios: notes.txt"]
