"""The `snaptree` command line, run in-process through ``snaptree.oracle.cli.main``.

Exit status (oracle/cli/main.py): 0 every expectation holds, 1 one does not, 2 bad input; bad input is
reported as ONE line on stderr, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from snaptree.model import PROFILES
from snaptree.oracle import cli, scenario_format

SECRET = "TOPSECRET-snaptree-7f3a"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, out: str = "") -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith("snaptree: ")
    assert "Traceback" not in err and "Traceback" not in out
    return lines[0]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


SEED_STEPS = """
  <write block="0" value="a"/>
  <snapshot name="A"/>
  <write block="1" value="b"/>
  <snapshot name="B"/>
"""


# -- profiles -------------------------------------------------------------------------------

def test_profiles_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "profiles")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(PROFILES)
    assert [line.split()[0] for line in lines] == list(PROFILES)


def test_profiles_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "profiles", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [p["name"] for p in data] == list(PROFILES)
    assert all(set(p) >= {"name", "system", "summary", "tree"} for p in data)


# -- compare --------------------------------------------------------------------------------

def test_compare_default_shows_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's "delete B" (semantics.md §1) under every profile; its expectations hold."""
    code, out, err = run_cli(capsys, "compare")
    assert code == 0, out + err
    assert err == ""
    header = next(line for line in out.splitlines() if line.startswith("step"))
    for name in PROFILES:
        assert name in header
        assert f"== {name}" in out


def test_compare_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "compare", "--format", "json", "--profiles", "esx,vbox")
    assert code == 0
    data = json.loads(out)
    assert list(data["profiles"]) == ["esx", "vbox"]
    assert data["file"] == scenario_format.SEED_EXAMPLE
    # §3: VirtualBox refuses to delete B, which has two children
    last = data["profiles"]["vbox"]["steps"][-1]
    assert last["op"] == "delete" and last["ok"] is False and last["error"]["kind"] == "has-children"


def test_compare_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "compare", "--profiles", "esx,hyperv")
    line = assert_one_line_error(code, err, out)
    assert "unknown profile 'hyperv'" in line


# -- run ------------------------------------------------------------------------------------

def test_run_shipped_library_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", "-q")
    shipped = scenario_format.embedded()
    assert len(shipped) >= 1
    assert code == 0, out + err
    assert out.splitlines()[-1] == f"{len(shipped)} passed, 0 failed"


def test_run_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """The documented shape (model/observe.py, oracle/render.py)."""
    code, out, _ = run_cli(capsys, "run", scenario_format.SEED_EXAMPLE, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 1
    result = data[0]
    assert result["passed"] is True and result["profile"] == "esx"
    steps = result["steps"]
    assert steps
    for step in steps:
        assert {"op", "ok", "error"} <= set(step)
        assert isinstance(step["ok"], bool)
        assert (step["error"] is None) == step["ok"]
        if step["error"] is not None:
            assert {"kind", "message"} <= set(step["error"])
    final: dict[str, Any] = result["final"]
    assert {"current", "power", "snapshots", "views"} <= set(final)
    ids = {s["id"] for s in final["snapshots"]}
    for s in final["snapshots"]:
        assert {"name", "id", "parent", "children", "memory", "state"} <= set(s)
        assert isinstance(s["memory"], bool) and isinstance(s["children"], list)
        assert s["parent"] is None or s["parent"] in ids
    assert final["current"] is None or final["current"] in ids
    assert set(final["views"]) == {"current", "snapshots"}
    assert set(final["views"]["snapshots"]) == ids
    # seed-delete-b-two-children under esx: after "delete B", C reads a, b, c (§1)
    by_name = {s["name"]: s["id"] for s in final["snapshots"]}
    assert final["views"]["snapshots"][by_name["C"]] == {"0": "a", "1": "b", "2": "c"}
    assert final["views"]["current"] == {"0": "a", "1": "b", "2": "c", "3": "x"}


def test_run_json_failed_step_has_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "refused.xml", '<scenario profile="vbox"><start/><snapshot name="A"/>'
                                          '<revert name="A"/><expect error="invalid-state"/></scenario>')
    code, out, _ = run_cli(capsys, "run", path, "--format", "json")
    assert code == 0
    step = json.loads(out)[0]["steps"][-1]
    assert step["op"] == "revert" and step["ok"] is False
    assert step["error"]["kind"] == "invalid-state" and "running machine" in step["error"]["message"]


def test_run_failing_expectation_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "fails.xml", f'<scenario profile="esx">{SEED_STEPS}<expect snapshots="5"/></scenario>')
    code, out, err = run_cli(capsys, "run", path)
    assert code == 1, out + err
    assert "expected 5 snapshots, there are 2" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_run_expected_error_not_raised_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "fails.xml", f'<scenario profile="esx">{SEED_STEPS}'
                                        '<delete name="A"/><expect error="has-children"/></scenario>')
    code, out, _ = run_cli(capsys, "run", path, "--format", "json")
    assert code == 1
    result = json.loads(out)[0]
    assert result["passed"] is False
    assert result["steps"][-1]["expectations"][0]["passed"] is False


def test_run_under_another_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "dup.xml", '<scenario profile="esx"><snapshot name="s"/><snapshot name="s"/>'
                                      '<expect snapshots="2"/></scenario>')
    assert run_cli(capsys, "run", path)[0] == 0
    code, out, _ = run_cli(capsys, "run", path, "--profile", "libvirt-test")  # §7: duplicates refused
    assert code == 1 and "duplicate-name" in out


# -- bad input: exit 2, one line, no traceback ------------------------------------------------

def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", str(tmp_path / "nope.xml"))
    line = assert_one_line_error(code, err, out)
    assert "nope.xml" in line


@pytest.mark.parametrize("text", [
    '<scenario profile="esx"><write block="0" value="a"/>',  # unterminated
    '<scenario profile="esx"><write block="0" value="a"></scenario>',  # mismatched tag
    "",  # empty file
    "\x00\x01 not xml at all",
])
def test_malformed_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    code, out, err = run_cli(capsys, "run", write(tmp_path, "bad.xml", text))
    assert "not well-formed" in assert_one_line_error(code, err, out)


@pytest.mark.parametrize("text, words", [
    ('<scenario profile="esx"><bogus/></scenario>', "bogus"),
    ('<scenario profile="esx"><write value="a"/></scenario>', "line 1"),  # block= missing
    ('<scenario profile="esx"><write block="0" value="a"/><expect power="flying"/></scenario>', "line 1"),
    ('<scenario profile="esx"><snapshot name="A" memory="maybe"/></scenario>', "line 1"),
    ('<scenario profile="esx"><expect snapshots="0"/></scenario>', "line 1"),  # <expect> before any step
    ('<notascenario profile="esx"/>', "line 1"),
])
def test_schema_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str) -> None:
    code, out, err = run_cli(capsys, "run", write(tmp_path, "invalid.xml", text))
    assert words in assert_one_line_error(code, err, out)


def test_unknown_profile_in_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.xml", '<scenario profile="hyperv"><write block="0" value="a"/></scenario>')
    code, out, err = run_cli(capsys, "run", path)
    assert "hyperv" in assert_one_line_error(code, err, out)


def test_unknown_profile_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", scenario_format.SEED_EXAMPLE, "--profile", "hyperv")
    assert "unknown profile 'hyperv'" in assert_one_line_error(code, err, out)


@pytest.mark.parametrize("command", ["check", "replay"])
def test_uri_for_a_driver_that_takes_none(capsys: pytest.CaptureFixture[str], command: str) -> None:
    where = [scenario_format.SEED_EXAMPLE] if command == "replay" else []
    code, out, err = run_cli(capsys, command, *where, "--driver", "model", "--profile", "esx", "--uri", "test:///default")
    assert "driver 'model' takes no --uri" in assert_one_line_error(code, err, out)


def test_bad_files_are_refused_before_any_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.xml", f'<scenario profile="esx">{SEED_STEPS}</scenario>')
    code, out, err = run_cli(capsys, "run", good, str(tmp_path / "missing.xml"))
    assert_one_line_error(code, err, out)
    assert out == ""


def _entity_files(tmp_path: Path) -> dict[str, str]:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "{secret.as_uri()}">')
    doctype = f'<!DOCTYPE scenario [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
    return {
        "external entity in an attribute":
            f'{doctype}<scenario profile="esx"><write block="0" value="&xxe;"/></scenario>',
        "external entity in text":
            f'{doctype}<scenario profile="esx"><title>&xxe;</title><write block="0" value="a"/></scenario>',
        "external entity as content":
            f'{doctype}<scenario profile="esx"><write block="0" value="a"/>&xxe;</scenario>',
        "external DTD":
            f'<!DOCTYPE scenario SYSTEM "{dtd.as_uri()}"><scenario profile="esx"><title>&leak;</title>'
            '<write block="0" value="a"/></scenario>',
        "parameter entity":
            f'<!DOCTYPE scenario [<!ENTITY % p SYSTEM "{dtd.as_uri()}"> %p;]>'
            '<scenario profile="esx"><title>&leak;</title><write block="0" value="a"/></scenario>',
        "internal entity expansion":
            '<!DOCTYPE scenario [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<scenario profile="esx"><title>&b;</title><write block="0" value="a"/></scenario>',
    }


ENTITY_CASES = ["external entity in an attribute", "external entity in text", "external entity as content",
                "external DTD", "parameter entity", "internal entity expansion"]


@pytest.mark.parametrize("case", ENTITY_CASES)
@pytest.mark.parametrize("command", ["run", "show", "compare"])
def test_entities_are_never_resolved(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                     command: str) -> None:
    """Scenario files may come from anyone: no entity, DTD or network access is resolved."""
    path = write(tmp_path, "evil.xml", '<?xml version="1.0"?>\n' + _entity_files(tmp_path)[case])
    argv = [command, path] + (["--format", "json"] if command != "show" else [])
    code, out, err = run_cli(capsys, *argv)
    assert SECRET not in out and SECRET not in err
    assert "a" * 100 not in out  # no expansion of the internal entities either
    assert "Traceback" not in err
    assert code in (0, 2)


@pytest.mark.parametrize("case", ["external entity in an attribute", "external entity in text",
                                  "external entity as content", "external DTD", "parameter entity",
                                  "internal entity expansion"])
def test_dtd_and_entities_are_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    """An XML file with an external entity or a DTD is bad input: exit 2, one line (the brief)."""
    path = write(tmp_path, "evil.xml", '<?xml version="1.0"?>\n' + _entity_files(tmp_path)[case])
    code, out, err = run_cli(capsys, "run", path)
    assert_one_line_error(code, err, out)
    assert SECRET not in err


# -- show -----------------------------------------------------------------------------------

def test_show_dot_prints_a_digraph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", scenario_format.SEED_EXAMPLE, "--format", "dot")
    assert code == 0 and err == ""
    assert out.startswith("digraph ") and out.rstrip().endswith("}")
    for name in ("A", "C", "D", "current", "base"):
        assert f'label="{name}"' in out
    assert 'label="B"' not in out  # deleted in the last step


def test_show_text_at_a_step(capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's notation (semantics.md intro): arrows from child to parent, numbered overlays."""
    code, out, _ = run_cli(capsys, "show", scenario_format.SEED_EXAMPLE, "--step", "0")
    assert code == 0 and out.strip() == "base <--1-- current"
    code, out, _ = run_cli(capsys, "show", scenario_format.SEED_EXAMPLE, "--step", "5")
    assert code == 0 and out.strip() == "base <--1-- A <--2-- B <--3-- current"


def test_show_step_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", scenario_format.SEED_EXAMPLE, "--step", "999")
    assert "out of range" in assert_one_line_error(code, err, out)


def test_show_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", str(tmp_path / "nope.xml"), "--format", "dot")
    assert_one_line_error(code, err, out)


# -- help -----------------------------------------------------------------------------------

def _subcommands() -> list[str]:
    import argparse

    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_the_documented_subcommands_exist() -> None:
    assert {"run", "compare", "show", "profiles"} <= set(_subcommands())


@pytest.mark.parametrize("command", _subcommands())
def test_subcommand_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out.lower()
    assert f"snaptree {command}" in out


def test_top_level_help_points_to_compare(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "snaptree compare" in out
    for command in ("run", "compare", "show", "profiles"):
        assert command in out


def test_dumpxml_is_libvirt_snapshot_xml(capsys: pytest.CaptureFixture[str]) -> None:
    """`snaptree dumpxml` prints XML that libvirt 9.0's own schema accepts (package libvirt0)."""
    from lxml import etree

    schema_path = Path("/usr/share/libvirt/schemas/domainsnapshot.rng")
    assert schema_path.exists(), "libvirt's schemas are missing: apt-get install libvirt0 (bash .ci/setup --real)"
    schema = etree.RelaxNG(etree.parse(str(schema_path)))
    for name in ("A", "C", "D"):
        assert cli.main(["dumpxml", "seed-delete-b-two-children.xml", name, "--profile", "libvirt-test"]) == 0
        xml = etree.fromstring(capsys.readouterr().out.encode())
        assert schema.validate(xml), schema.error_log
        assert xml.findtext("name") == name
    assert cli.main(["dumpxml", "seed-delete-b-two-children.xml", "C", "--profile", "libvirt-test"]) == 0
    assert etree.fromstring(capsys.readouterr().out.encode()).findtext("parent/name") == "A"
    assert cli.main(["dumpxml", "seed-delete-b-two-children.xml", "nope"]) == 2


def test_show_virsh_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", "seed-delete-b-two-children.xml", "--format", "virsh", "--profile", "libvirt-test",
                 "--step", "11"]) == 0
    assert capsys.readouterr().out.splitlines()[:6] == ["A", "  |", "  +- B", "      |", "      +- C", "      +- D"]
