"""`snaptree --version`: the installed package's version, exit 0."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from snaptree.oracle import cli


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    out, err = capsys.readouterr()
    assert exit_.value.code == 0 and err == ""
    assert out == f"snaptree {version('snaptree')}\n"
    assert re.fullmatch(r"snaptree \d+\.\d+\.\d+\n", out)


def test_the_installed_command_exits_0() -> None:
    script = 'import sys; from snaptree.oracle.cli import main; sys.exit(main(["--version"]))'
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"snaptree {version('snaptree')}\n", "")


def test_without_package_metadata_the_checkouts_pyproject_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backports chroot puts the checkout on the path with no metadata: --version still works."""
    import importlib
    import importlib.metadata

    main_module = importlib.import_module("snaptree.oracle.cli.main")  # the module, not its main()

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert main_module.snaptree_version() == version("snaptree")
