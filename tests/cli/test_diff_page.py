"""`snaptree diff --html` as a browser shows it: a legend, each step's error kind and message
per profile, and short snapshot labels (never a whole UUID)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from snaptree.model import notation
from snaptree.model.analysis.profile_diff import diff, replay
from snaptree.oracle.cli import main

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def test_the_diff_page_explains_itself_in_a_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("chromium") is None or shutil.which("dot") is None:
        pytest.fail("needs Debian's chromium and Graphviz (bash .ci/setup --real installs them)")
    page = tmp_path / "esx-vbox.html"
    assert main(["diff", "esx", "vbox", "--depth", "4", "--html", str(page)]) == 0
    capsys.readouterr()
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).replace("&quot;", '"').replace("&amp;", "&")
    assert "How to read this page" in text
    for words in ("the system's own message", "double frame", "points from a child to its parent", "empty disk",
                  "the running state", "first 8 characters of a UUID", 'an empty name is ""', "error kind"):
        assert words in text, words
    result = diff("esx", "vbox", 4)
    assert result.groups
    refused = 0
    for d in result.groups.values():
        for profile in result.profiles:
            machine, outcomes = replay(profile, 2, d.history)
            for outcome in outcomes:
                if not outcome.ok:  # its kind and the system's message, in the profile's column
                    refused += 1
                    assert f"{outcome.kind} {outcome.message}" in text
            # the tree's labels as the drawing shows them; where names repeat, each is told apart
            shown = notation.labels(machine, short_ids=True)
            assert len(set(shown.values())) == len(shown)
            assert all(label.replace("&", "&amp;") in dom for label in shown.values())
    assert refused >= 3
    assert "A#…0001" in dom and "A#…0002" in dom, "vbox's two snapshots named A, by their short ids"
    assert not UUID.search(dom), UUID.search(dom)
    shot = tmp_path / "page.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
