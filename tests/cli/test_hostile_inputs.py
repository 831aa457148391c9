"""Hostile input (issue 9): XML attacks, huge, deep and binary files, odd names through every
command's text output, argument abuse for every command, outputs that cannot be written.

Bad input ends with exit status 2 and ONE line on stderr that names the problem, never a
traceback, and loses nothing (README "Commands").  Commands run in-process through
``cli.main``, or as a process where the process matters (memory, /dev/full, a closed pipe).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from snaptree.model import ops
from snaptree.oracle import cli, scenario_format
from snaptree.oracle.checker import counterexample as counterexample_module
from snaptree.oracle.checker.replay import replay
from snaptree.oracle.cli import check_commands
from snaptree.oracle.driver import Result
from snaptree.oracle.drivers.model import ModelDriver

from .test_cli import SECRET, assert_one_line_error, run_cli

REPO = Path(__file__).resolve().parents[2]
FORGED = "FORGED"  # what an injected line would start with


def run_process(argv: list[str], limit_memory: int | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """snaptree as its own process, from the repository (so tests.* drivers import)."""

    def limit() -> None:
        if limit_memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run([sys.executable, "-m", "snaptree.oracle.cli", *argv], cwd=REPO, text=True, timeout=120,
                          preexec_fn=limit, **streams)


def assert_clean_process_error(proc: subprocess.CompletedProcess[str]) -> str:
    return assert_one_line_error(proc.returncode, proc.stderr, proc.stdout)


def scenario(tmp_path: Path, body: str, name: str = "s.xml", profile: str = "esx") -> str:
    path = tmp_path / name
    path.write_text(f'<scenario profile="{profile}" blocks="4">\n{body}\n</scenario>\n', encoding="utf-8")
    return str(path)


def chain(n: int, name: str = "s{i}") -> str:
    return "<start/>\n" + "\n".join(f'<write block="{i % 4}" value="v{i}"/><snapshot name="{name.format(i=i)}"/>'
                                    for i in range(n))


# -- drivers for the check and replay tests -----------------------------------------------

HOSTILE_MESSAGE = "refused\nFORGED line \x1b[31m\x85\u202e"


class Refuser(ModelDriver):
    """Refuses every operation with a message full of control characters: diverges at once."""

    name = "refuser"
    profiles = ("esx",)
    setups = 0

    def setup(self, blocks: int, *disks: Any) -> None:
        type(self).setups += 1
        super().setup(blocks, *disks)

    def apply(self, op: ops.Operation) -> Result:
        return Result.error("unsupported", HOSTILE_MESSAGE)


class NoDelete(ModelDriver):
    """Declares no delete (so `check` never asks it for one) and refuses one when asked."""

    name = "no-delete"
    operations = ModelDriver.operations - {"delete"}

    def apply(self, op: ops.Operation) -> Result:
        if isinstance(op, ops.Delete):
            return Result.error("unsupported", "this driver cannot delete")
        return super().apply(op)


class Nameless(ModelDriver):
    name = ""
    profiles = ()


CHECK = ["check", "--database", "none", "--seed", "1", "--examples", "5", "--steps", "2", "--profile", "esx"]


# -- XML attacks and malformed files ------------------------------------------------------

def _xml_attacks(secret: Path) -> dict[str, bytes]:
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    deep = "<expect>" * 10_000 + "</expect>" * 10_000
    return {
        "billion laughs": f'<!DOCTYPE s [<!ENTITY l0 "lol">{laughs}]><scenario profile="esx"><title>&l9;</title>'
                          f'</scenario>'.encode(),
        "external entity": f'<!DOCTYPE s [<!ENTITY x SYSTEM "file://{secret}">]>'
                           f'<scenario profile="esx"><title>&x;</title><snapshot name="&x;"/></scenario>'.encode(),
        "external DTD": f'<!DOCTYPE scenario SYSTEM "file://{secret}"><scenario profile="esx"/>'.encode(),
        "network DTD": b'<!DOCTYPE scenario SYSTEM "http://127.0.0.1:9/x.dtd"><scenario profile="esx"/>',
        "parameter entity": f'<!DOCTYPE s [<!ENTITY % p SYSTEM "file://{secret}"> %p;]><scenario profile="esx"/>'.encode(),
        "XInclude": f'<scenario profile="esx" xmlns:xi="http://www.w3.org/2001/XInclude"><title>'
                    f'<xi:include href="file://{secret}" parse="text"/></title></scenario>'.encode(),
        "XInclude step": f'<scenario profile="esx" xmlns:xi="http://www.w3.org/2001/XInclude">'
                         f'<xi:include href="file://{secret}" parse="text"/></scenario>'.encode(),
        "deep nesting": f'<scenario profile="esx"><start/>{deep}</scenario>'.encode(),
        "binary": bytes(range(256)) * 4,
        "NUL bytes": b'<scenario profile="esx">\0<start/></scenario>',
        "NUL reference": b'<scenario profile="esx"><snapshot name="a&#0;b"/></scenario>',
        "surrogate reference": b'<scenario profile="esx"><snapshot name="a&#xD800;b"/></scenario>',
        "C0 control reference": b'<scenario profile="esx"><snapshot name="a&#x1b;[31m"/></scenario>',
        "unknown encoding": b'<?xml version="1.0" encoding="x-no-such"?><scenario profile="esx"/>',
        "UTF-16 garbage": b"\xff\xfe<\x00s\x00\xd8",
        "empty": b"",
        "not XML": b"hello\nFORGED line\n",
        "truncated": b'<scenario profile="esx"><start/><snaps',
        "wrong root": b'<html profile="esx"/>',
        "unknown step": b'<scenario profile="esx"><format-disk/></scenario>',
        "unknown profile": b'<scenario profile="hyper\nFORGED"/>',
        "blocks zero": b'<scenario profile="esx" blocks="0"/>',
        "blocks of 5000 digits": b'<scenario profile="esx" blocks="' + b"9" * 5000 + b'"/>',
        "block outside": b'<scenario profile="esx" blocks="4"><write block="99999999999999999999" value="a"/>'
                         b'<expect><view of="current"><block n="-1"/></view></expect></scenario>',
        "expect first": b'<scenario profile="esx"><expect error="not-found"/></scenario>',
        "too many steps": b'<scenario profile="esx">' + b"<start/>" * 5001 + b"</scenario>",
        "over the size limit": b'<scenario profile="esx"><title>' + b"x" * (4 * 2**20) + b"</title></scenario>",
    }


ATTACKS = list(_xml_attacks(Path("/secret")))
COMMANDS = {  # each command that reads a scenario file, with the rest of its arguments
    "run": ["run", "{file}"],
    "run json": ["run", "{file}", "--format", "json"],
    "compare": ["compare", "{file}"],
    "show": ["show", "{file}"],
    "show virsh": ["show", "{file}", "--format", "virsh"],
    "dumpxml": ["dumpxml", "{file}", "A"],
    "replay": ["replay", "{file}", "--driver", "model"],
}


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_xml_attack_is_one_clean_line(attack: str, command: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    path = tmp_path / "attack.xml"
    path.write_bytes(_xml_attacks(secret)[attack])
    code, out, err = run_cli(capsys, *(arg.format(file=path) for arg in COMMANDS[command]))
    line = assert_one_line_error(code, err, out)
    assert SECRET not in out + err
    assert str(path) in line, "the message names the file"


def test_xml_attacks_refuse_the_doctype_not_expand_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    for attack in ("billion laughs", "external entity", "external DTD", "network DTD"):
        (tmp_path / "a.xml").write_bytes(_xml_attacks(secret)[attack])
        code, out, err = run_cli(capsys, "run", str(tmp_path / "a.xml"))
        line = assert_one_line_error(code, err, out)
        assert "DOCTYPE" in line or "entit" in line, attack  # libxml2 refuses some entities itself


def test_limits_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    attacks = _xml_attacks(tmp_path)
    for attack, words in (("too many steps", "5000 steps"), ("over the size limit", "4 MiB")):
        (tmp_path / "a.xml").write_bytes(attacks[attack])
        code, out, err = run_cli(capsys, "run", str(tmp_path / "a.xml"))
        assert words in assert_one_line_error(code, err, out)
    # the limit itself is allowed
    path = scenario(tmp_path, "<start/>" * 5000)
    code, out, _ = run_cli(capsys, "run", path, "-q")
    assert code == 0 and "1 passed" in out


def test_unreadable_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in (str(tmp_path), str(tmp_path / "missing.xml"), "/dev/null", "", "/dev/null/x"):
        code, out, err = run_cli(capsys, "run", path)
        assert_one_line_error(code, err, out)


def test_dev_zero_is_refused_in_bounded_memory() -> None:
    """It ate memory at 0.5 GB/s until a MemoryError: now it reads 4 MiB and stops."""
    proc = run_process(["run", "/dev/zero"], limit_memory=1 << 30)
    assert "4 MiB" in assert_clean_process_error(proc)


def test_a_big_file_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A 20 MB scenario needed ~1.6 GB (lxml's tree, then the steps): now it is refused."""
    path = tmp_path / "big.xml"
    with path.open("wb") as file:
        file.write(b'<scenario profile="esx">')
        for _ in range(20):
            file.write(b'<write block="0" value="a"/>' * (2**20 // 28))
        file.write(b"</scenario>")
    proc = run_process(["run", str(path)], limit_memory=1 << 30)
    assert "4 MiB" in assert_clean_process_error(proc)


# -- odd names through every command's text output ----------------------------------------

ODD = {  # what XML can carry (C0 controls other than tab, LF and CR, and NUL, it cannot)
    "newline": "&#10;FORGED line",
    "carriage return": "&#13;FORGED line",
    "tab": "a&#9;b",
    "NEL (C1)": "a&#x85;FORGED line",
    "CSI (C1)": "a&#x9b;31m",
    "bidi override": "evil&#x202e;txt.exe",
    "bidi isolate": "a&#x2066;b",
    "line separator": "a&#x2028;FORGED line",
    "zero width": "a&#x200b;b",
}


def odd_scenario(tmp_path: Path, odd: str) -> str:
    """Every place a user's string reaches text output: title, description, names, values,
    flags, expectation, error message."""
    return scenario(tmp_path, f"""
  <title>t{odd}</title>
  <description>d{odd}</description>
  <start/>
  <write block="0" value="v{odd}"/>
  <snapshot name="A{odd}" description="x{odd}"/>
  <snapshot name="B"/>
  <revert name="nope{odd}"/>
  <delete name="B" flags="f{odd}"/>
  <expect current="c{odd}"/>""")


def assert_printable(text: str) -> None:
    for line in text.split("\n"):
        assert line.isprintable(), f"unescaped character in {line!r}"
        assert not line.lstrip().startswith(FORGED), f"forged line {line!r}"


TEXT_COMMANDS = {
    "run": ["run", "{file}"],
    "run quiet": ["run", "{file}", "-q"],
    "compare": ["compare", "{file}"],
    "show": ["show", "{file}", "--step", "5"],
    "show virsh": ["show", "{file}", "--step", "5", "--format", "virsh", "--profile", "libvirt-test"],
    "dumpxml missing": ["dumpxml", "{file}", "no\nFORGED", "--step", "5"],
}


@pytest.mark.parametrize("odd", list(ODD))
@pytest.mark.parametrize("command", list(TEXT_COMMANDS))
def test_odd_names_are_escaped_in_text_output(odd: str, command: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = odd_scenario(tmp_path, ODD[odd])
    code, out, err = run_cli(capsys, *(arg.format(file=path) for arg in TEXT_COMMANDS[command]))
    assert code in (0, 1, 2) and "Traceback" not in out + err
    assert_printable(out)
    assert_printable(err)
    if code == 2:
        assert_one_line_error(code, err, out)


def test_escaping_keeps_the_tree_aligned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, '<snapshot name="A&#10;X"/><snapshot name="B"/><revert name="A&#10;X"/>'
                              '<snapshot name="C"/>')
    code, out, _ = run_cli(capsys, "show", path)
    assert code == 0
    first, second = out.splitlines()
    assert first == "base <--1-- A\\nX <--2-- B"
    assert second == " " * first.index("A") + "+ <--3-- C <--4-- current"


@pytest.mark.parametrize("odd", list(ODD))
def test_json_and_xml_keep_the_exact_name(odd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = odd_scenario(tmp_path, ODD[odd])
    exact = etree.fromstring(Path(path).read_bytes()).find("snapshot").get("name")
    code, out, _ = run_cli(capsys, "run", path, "--format", "json")
    assert code == 1
    assert exact in [s["name"] for s in json.loads(out)[0]["final"]["snapshots"]]
    code, out, _ = run_cli(capsys, "dumpxml", path, exact, "--step", "5")
    assert code == 0 and etree.fromstring(out.encode()).findtext("name") == exact


def test_an_undecodable_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file name's byte that is not UTF-8 reaches us as a lone surrogate: text shows it
    escaped, JSON as its \\u escape; neither fails to print."""
    raw = os.fsencode(str(tmp_path)) + b"/odd-\xff\nFORGED.xml"
    with open(raw, "wb") as file:
        file.write(b'<scenario profile="esx"><snapshot name="A"/></scenario>')
    name = os.fsdecode(raw)
    for argv in (["run", name], ["compare", name, "--profiles", "esx"], ["show", name, "--format", "virsh"]):
        proc = run_process(argv)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert_printable(proc.stdout)
    proc = run_process(["run", name, "--format", "json"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["file"] == name
    proc = run_process(["show", name + "-missing"])
    assert_printable(assert_clean_process_error(proc))


def test_divergence_report_escapes_what_the_driver_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *CHECK, "--driver", f"{__name__}:Refuser", "--out", str(tmp_path))
    assert code == 1 and "DIVERGES" in out
    assert_printable(out)
    assert "refused\\nFORGED line \\x1b[31m\\x85\\u202e" in out
    scenario_file = next(tmp_path.iterdir())
    code, out, err = run_cli(capsys, "replay", str(scenario_file), "--driver", f"{__name__}:Refuser")
    assert code == 1 and "DIVERGES" in out
    assert_printable(out)


# -- deep and wide trees: every command, 1,000 snapshots ------------------------------------

DEEP = 1000


def test_deep_chain_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A chain of 1,000 snapshots failed with RecursionError after ~45 s in each command."""
    path = scenario(tmp_path, chain(DEEP) + f'<expect snapshots="{DEEP}" current="s{DEEP - 1}">'
                                            f'<view of="s{DEEP - 1}"><block n="3" value="v{DEEP - 1}"/></view></expect>')
    code, out, _ = run_cli(capsys, "show", path)
    assert code == 0
    expected = "base" + "".join(f" <--{i + 1}-- s{i}" for i in range(DEEP)) + f" <--{DEEP + 1}-- current"
    assert out.strip() == expected
    code, out, _ = run_cli(capsys, "run", path)
    assert code == 0 and out.count(expected) == 1  # drawn after every step, shown where it changes
    code, out, _ = run_cli(capsys, "run", path, "--format", "json")
    final = json.loads(out)[0]["final"]
    assert code == 0 and len(final["snapshots"]) == DEEP
    assert final["views"]["snapshots"][final["snapshots"][-1]["id"]] == {str(b): f"v{DEEP - 4 + b}" for b in range(4)}
    code, out, _ = run_cli(capsys, "show", path, "--format", "virsh", "--profile", "libvirt-test")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "s0" and lines[-2] == " " * (4 * DEEP - 6) + "+- s999"
    code, out, _ = run_cli(capsys, "show", path, "--format", "dot")
    assert code == 0 and out.count(" -> ") == DEEP + 1
    code, out, _ = run_cli(capsys, "compare", path, "--profiles", "esx,vbox,libvirt-test")
    assert code == 0 and out.count(expected) == 3
    code, out, _ = run_cli(capsys, "dumpxml", path, f"s{DEEP - 1}")
    assert code == 0 and etree.fromstring(out.encode()).findtext("parent/name") == f"s{DEEP - 2}"


def test_deep_chain_of_one_name_finds_the_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ESX finds a repeated name in pre-order (semantics.md §3): the first is the root, 1,000 deep."""
    path = scenario(tmp_path, chain(DEEP, name="same") + '<revert name="same"/><expect current="1"/>'
                                                      '<delete name="same"/><expect current="none"/>')
    code, out, _ = run_cli(capsys, "run", path, "-q")
    assert code == 0, out


def test_wide_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = '<snapshot name="root"/>' + "".join(f'<snapshot name="c{i}"/><revert name="root"/>' for i in range(DEEP))
    path = scenario(tmp_path, body)
    code, out, _ = run_cli(capsys, "show", path)
    lines = out.splitlines()
    assert code == 0 and len(lines) == DEEP + 1
    assert lines[0] == "base <--1-- root <--2-- c0" and lines[-1] == f"            + <--{DEEP + 2}-- current"


# -- argument abuse, every command ----------------------------------------------------------

SEED = "seed-delete-b-two-children.xml"
ABUSE = [
    [], ["no-such-command"], ["run", "--format", "xml"], ["run", "--profile", ","], ["run", "--profile", "nope"],
    ["run", "--profile", "esx,,nope"], ["run", "--bogus"],
    ["compare", "--profiles", ","], ["compare", "--profiles", " , "], ["compare", SEED, "extra"],
    ["show"], ["show", SEED, "--step", "-1"], ["show", SEED, "--step", "x"], ["show", SEED, "--step", "99999999999999999999"],
    ["show", SEED, "--profile", "esx,vbox"], ["show", SEED, "--profile", ","], ["show", SEED, "--format", "png"],
    ["dumpxml", SEED], ["dumpxml", SEED, "A", "--step", "99"], ["dumpxml", SEED, "A", "--profile", "a,b"],
    ["dumpxml", SEED, "\nFORGED"],
    ["check"], ["check", "--driver", ":"], ["check", "--driver", "x:"], ["check", "--driver", ":Y"],
    ["check", "--driver", "no.such.module:X"], ["check", "--driver", "snaptree.oracle.driver:Driver"],
    ["check", "--driver", "os:path"], ["check", "--driver", "json:JSONDecoder"], ["check", "--driver", "no-such"],
    ["check", "--driver", "..:X"], ["check", "--driver", f"{__name__}:Nameless"],
    ["check", "--driver", "model", "--examples", "0"], ["check", "--driver", "model", "--examples", "x"],
    ["check", "--driver", "model", "--steps", "-1"], ["check", "--driver", "model", "--blocks", "0"],
    ["check", "--driver", "model", "--seed", "x"], ["check", "--driver", "model", "--profile", ","],
    ["check", "--driver", "model", "--profile", "esx,vbox"], ["check", "--driver", "model", "--profile", "nope"],
    ["check", "--driver", "qemu-img", "--profile", "esx"],
    ["check", "--driver", "libvirt", "--uri", "test:///etc/passwd"],
    ["check", "--driver", "libvirt", "--uri", "qemu:///embed?root=relative"],
    ["check", "--driver", "libvirt", "--uri", "qemu:///embed"],
    ["check", "--driver", "model", "--out", "/dev/null/x"], ["check", "--driver", "model", "--junit", "/"],
    ["check", "--driver", "model", "--junit", "/no/such/dir/j.xml"],
    ["check", "--driver", "model", "--database", "/dev/null/db"],
    ["replay"], ["replay", SEED], ["replay", SEED, "--driver", ":"], ["replay", "/no/such.xml", "--driver", "model"],
    ["replay", SEED, "--driver", "model", "--profile", "a,b"], ["replay", SEED, "--driver", "model", "--uri", "test:///x"],
    ["drivers", "--format", "x"], ["profiles", "--format", "x"], ["profiles", "extra"],
]


@pytest.mark.parametrize("argv", ABUSE, ids=lambda argv: " ".join(argv) or "(nothing)")
def test_argument_abuse_is_one_clean_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, out)
    assert "root:x:0:0" not in out + err, "a file's content is never echoed"
    assert_printable(err)


@pytest.mark.parametrize("argv", [["profiles"], ["drivers"], ["run"], ["run", "--format", "json"], ["compare"],
                                  ["show", SEED], ["dumpxml", SEED, "A"]])
def test_output_to_a_full_device(argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = run_process(argv, stdout=full)
    line = assert_one_line_error(proc.returncode, proc.stderr)
    assert "No space left" in line


def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    path = scenario(tmp_path, chain(300))  # megabytes of listing, more than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "snaptree.oracle.cli", "run", path], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == ""


# -- outputs of a check: checked before the work, never lost after it ------------------------

@pytest.fixture
def refuser() -> type[Refuser]:
    Refuser.setups = 0
    return Refuser


def test_bad_outputs_are_refused_before_the_work(refuser: type[Refuser], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    driver = ["--driver", f"{__name__}:Refuser"]
    a_file = tmp_path / "file"
    a_file.write_text("")
    for outputs in (["--out", str(a_file)], ["--out", str(a_file / "sub")], ["--junit", str(tmp_path)],
                    ["--junit", str(tmp_path / "missing" / "j.xml")], ["--database", str(a_file)]):
        code, out, err = run_cli(capsys, *CHECK, *driver, *outputs)
        assert_one_line_error(code, err, out)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snaptree-out").write_text("")  # the default --out, relative, cannot be made here
    code, out, err = run_cli(capsys, *CHECK, *driver)
    assert "snaptree-out" in assert_one_line_error(code, err, out)
    assert refuser.setups == 0, "nothing ran"


def test_default_out_in_an_unwritable_folder(refuser: type[Refuser], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The relative default snaptree-out where the working folder takes no new entry (as
    root every folder is writable, so the answer of access(2) is what is replaced here)."""
    monkeypatch.chdir(tmp_path)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path and access(path, mode))
    code, out, err = run_cli(capsys, *CHECK, "--driver", f"{__name__}:Refuser")
    assert "not writable" in assert_one_line_error(code, err, out)
    assert refuser.setups == 0 and not list(tmp_path.iterdir())


def test_counterexample_that_cannot_be_written_goes_to_stderr(refuser: type[Refuser], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder passed the check before the work, then could not take the file."""
    monkeypatch.setattr(check_commands, "check_writable", lambda *args, **kwargs: None)
    blocker = tmp_path / "file"
    blocker.write_text("")
    junit = tmp_path / "j.xml"
    code, out, err = run_cli(capsys, *CHECK, "--driver", f"{__name__}:Refuser", "--out", str(blocker / "out"),
                             "--junit", str(junit))
    assert code == 2
    assert "DIVERGES" in out and "first difference after step" in out, "the report is kept"
    assert "Traceback" not in err
    xml = err[err.index("<?xml"):err.index("</scenario>") + len("</scenario>")]
    assert cli.main(["run", _write(tmp_path / "kept.xml", xml)]) == 0, "what stderr holds is the counterexample"
    assert 'failures="1"' in junit.read_text()


def test_junit_on_a_full_device_keeps_the_report(refuser: type[Refuser], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *CHECK, "--driver", f"{__name__}:Refuser", "--out", str(tmp_path),
                             "--junit", "/dev/full", "--format", "json")
    assert "No space left" in assert_one_line_error(code, err, "")
    report = json.loads(out)
    assert not report["conforms"] and Path(report["scenario"]).exists(), "the report and the counterexample are kept"


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_counterexamples_of_the_same_second_do_not_overwrite(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Names had one-second resolution: checks ending in the same second overwrote each other's."""
    _, divergence = replay(Refuser("esx"), scenario_format.parse(b'<scenario profile="esx"><snapshot/></scenario>'))
    assert divergence is not None
    monkeypatch.setattr(counterexample_module.time, "strftime", lambda *args: "20260101-000000")
    taken = tmp_path / "counterexample-refuser-esx-20260101-000000.xml"
    taken.write_text("someone else's")
    paths = [counterexample_module.write_counterexample(divergence, "refuser", "esx", 4, str(tmp_path), None) for _ in range(3)]
    assert taken.read_text() == "someone else's"
    assert [p.name if p else None for p in paths] == [taken.name.replace(".xml", f"-{n}.xml") for n in (2, 3, 4)]
    assert all(p.read_bytes() == paths[0].read_bytes() for p in paths if p)


# -- replay: what the driver cannot do is no verdict; run under several profiles -----------

def test_replay_of_a_step_the_driver_does_not_declare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, '<snapshot name="A"/><delete name="A"/>')
    code, out, err = run_cli(capsys, "replay", path, "--driver", f"{__name__}:NoDelete")
    line = assert_one_line_error(code, err, out)
    assert "cannot replay" in line and "step 2" in line and "DIVERGES" not in out
    path = scenario(tmp_path, '<snapshot name="A"/><delete name="A" flags="bogus"/>')  # the model driver passes esx's
    code, out, err = run_cli(capsys, "replay", path, "--driver", "model")
    assert "bogus" in assert_one_line_error(code, err, out)


def test_run_under_several_profiles_runs_each(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", SEED, "-q", "--profile", "esx,vbox")
    assert code == 0
    assert f"PASS {SEED} under esx" in out and f"PASS {SEED} under vbox" in out and "2 passed" in out
