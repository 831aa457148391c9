"""Honest outputs everywhere: every output that cannot be written, and every path too long,
is one line and exit 2; no output is written through a symbolic link; a URL's password is never
printed; a non-Unicode, closed or abandoned stdout keeps the command and its exit status;
`findings --replay` says what it could not replay; scenario files name a bad value and the values
allowed, and a write outside the disk is an error (README "Commands", "Scenario files").
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from snaptree.oracle import outputs
from snaptree.oracle.checker import replay as replay_module
from snaptree.oracle.cli import explore_commands
from snaptree.oracle.driver import DriverUnavailable
from snaptree.oracle.errors import hide_secrets
from snaptree.oracle.findings import findings

from .test_cli import SECRET, assert_one_line_error, run_cli
from .test_hostile_inputs import REPO, assert_clean_process_error, chain, run_process, scenario

CHECK = ["check", "--driver", "model", "--database", "none", "--seed", "1", "--examples", "2", "--steps", "2"]
DIFF = ["diff", "esx", "vbox", "--depth", "3"]
EXPLORE = ["explore", "--profile", "esx", "--depth", "2"]
LONG = "a" * 300  # one path component over the 255 bytes a file name may have


# -- outputs that cannot be written -----------------------------------------------------------

@pytest.mark.parametrize("argv", [[*DIFF, "--html", "/proc/x.html"], [*DIFF, "--out", "/proc/w"],
                                  [*EXPLORE, "--graph", "/proc/g.dot"], [*CHECK, "--junit", "/proc/j.xml"],
                                  [*CHECK, "--out", "/proc/w"]], ids=lambda argv: " ".join(argv[-2:]))
def test_an_output_that_cannot_be_made_is_refused_before_the_work(argv: list[str],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """access(2) tells root that /proc is writable: these ran, then ended in a traceback (exit 1)."""
    code, out, err = run_cli(capsys, *argv)
    line = assert_one_line_error(code, err, out)
    assert argv[-1] in line and out == "", "refused before the work"


@pytest.mark.parametrize("option", ["--html", "--out", "--graph"])
def test_an_output_that_fails_after_the_work_keeps_the_report(option: str, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The output passed the check before the work and could not be written after it."""
    monkeypatch.setattr(explore_commands, "check_writable", lambda *args, **kwargs: None)
    argv = [*EXPLORE, "--graph", "/proc/g.dot"] if option == "--graph" else [*DIFF, option, "/proc/x"]
    code, out, err = run_cli(capsys, *argv)
    line = assert_one_line_error(code, err, "")
    assert line.startswith(f"snaptree: cannot write {option} /proc/")
    assert "states" in out or "differs" in out, "the report is printed before the error"


@pytest.mark.parametrize("argv", [[*CHECK, "--junit", f"/tmp/{LONG}.xml"], [*CHECK, "--out", f"/tmp/{LONG}/x"],
                                  [*CHECK, "--database", f"/tmp/{LONG}"], ["run", f"/tmp/{LONG}.xml"],
                                  ["compare", f"/tmp/{LONG}.xml"], ["replay", f"/tmp/{LONG}.xml", "--driver", "model"],
                                  [*DIFF, "--out", f"/tmp/{LONG}"], [*DIFF, "--html", f"/tmp/{LONG}.html"],
                                  [*EXPLORE, "--graph", f"/tmp/{LONG}.dot"]], ids=lambda argv: f"{argv[0]} {argv[-2]}")
def test_a_name_over_255_bytes_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert "File name too long" in assert_one_line_error(code, err, out)


# -- never through a symbolic link ------------------------------------------------------------

@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file that a link planted in a shared folder points at (as root: /etc/shadow)."""
    path = tmp_path / "victim"
    path.write_text(SECRET)
    return path


@pytest.mark.parametrize("option", ["--junit", "--html", "--graph"])
def test_an_output_that_is_a_symlink_is_refused(option: str, victim: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    planted = tmp_path / "shared" / "report.dot"
    planted.parent.mkdir()
    planted.symlink_to(victim)
    argv = {"--junit": CHECK, "--html": DIFF, "--graph": EXPLORE}[option]
    code, out, err = run_cli(capsys, *argv, option, str(planted))
    assert "symbolic link" in assert_one_line_error(code, err, out)
    assert victim.read_text() == SECRET and planted.is_symlink()


def test_diff_witnesses_are_not_written_through_planted_symlinks(victim: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """diff --out opened predictable names with open(): a link planted in a shared DIR made it
    (as root) overwrite the link's target.  Now a link is refused by name before any witness is
    written, and a witness replaces an older file."""
    clean, shared = tmp_path / "clean", tmp_path / "shared"
    assert run_cli(capsys, *DIFF, "--out", str(clean))[0] == 0
    names = sorted(p.name for p in clean.iterdir())
    assert len(names) > 1
    shared.mkdir()
    for name in names:
        (shared / name).write_text("an older witness")
    (shared / names[-1]).unlink()
    (shared / names[-1]).symlink_to(victim)
    code, out, err = run_cli(capsys, *DIFF, "--out", str(shared))
    assert f"{names[-1]} is a symbolic link" in assert_one_line_error(code, err, "")
    assert victim.read_text() == SECRET and (shared / names[-1]).is_symlink()
    assert sorted(p.name for p in shared.iterdir()) == names, "no temporary file left behind"
    assert all((shared / name).read_text() == "an older witness" for name in names[:-1]), "none written"
    (shared / names[-1]).unlink()
    assert run_cli(capsys, *DIFF, "--out", str(shared))[0] == 0
    assert all((shared / name).read_bytes() == (clean / name).read_bytes() for name in names)


def test_write_output_follows_no_link_and_writes_all_or_nothing(victim: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        outputs.write_output(link, b"x")  # a link that appeared after the check before the work
    assert victim.read_text() == SECRET
    kept = tmp_path / "kept"
    kept.write_text("old")
    kept.chmod(0o640)
    outputs.write_output(kept, b"new")
    assert kept.read_bytes() == b"new" and stat.S_IMODE(kept.stat().st_mode) == 0o640
    with pytest.raises(IsADirectoryError):
        outputs.write_output(tmp_path, b"x")
    outputs.write_output("/dev/null", b"x")  # a device is written in place, not replaced
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(OSError, match="No space left"):
        outputs.write_output("/dev/full", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "link", "victim"], "no partial file is left"


# -- secrets in URLs ------------------------------------------------------------------------------

def test_a_redis_password_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    for url in (f"redis://:{SECRET}@127.0.0.1:1/0", f"redis://user:{SECRET}@127.0.0.1:1/0",
                f"redis://127.0.0.1:1/0?password={SECRET}"):
        code, out, err = run_cli(capsys, *CHECK, "--database", url)
        line = assert_one_line_error(code, err, out)
        assert SECRET not in out + err and "***" in line and "127.0.0.1:1" in line


@pytest.mark.parametrize(("url", "words"), [("redis://127.0.0.1:0/0", "port"), ("redis://127.0.0.1:99999/0", "port"),
                                            ("redis://127.0.0.1:x/0", "port"), ("redis://127.0.0.1:6379/abc", "'abc'"),
                                            ("redis://127.0.0.1:6379/0?db=x", "'x'"), ("unix:///tmp/r.sock?db=1x", "'1x'")])
def test_a_bad_redis_port_or_db_is_not_replaced(url: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """redis-py took port 0 as 6379 and DB 'abc' as 0, without a word."""
    code, out, err = run_cli(capsys, *CHECK, "--database", url)
    assert words in assert_one_line_error(code, err, out)


def test_a_vsphere_password_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "check", "--driver", "vsphere", "--url", f"http://root:{SECRET}@127.0.0.1/sdk",
                             "--vm", "x")
    line = assert_one_line_error(code, err, out)
    assert SECRET not in out + err and "root:***@127.0.0.1" in line


def test_hide_secrets() -> None:
    assert hide_secrets(f"a redis://:{SECRET}@h:1/0 b") == "a redis://:***@h:1/0 b"
    assert hide_secrets(f"'https://u:{SECRET}/x@y@host/sdk'") == "'https://u:***@host/sdk'"  # an unescaped / and @
    assert hide_secrets(f"redis://h/0?db=1&password={SECRET}") == "redis://h/0?db=1&password=***"
    assert hide_secrets("https://USER:PASS@HOST/sdk and host:port a:b@c") == "https://USER:PASS@HOST/sdk and host:port a:b@c"


# -- stdout: not Unicode, closed, abandoned -------------------------------------------------------

@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_stdout_that_is_not_unicode(encoding: str, tmp_path: Path) -> None:
    """Every text command failed on the tool's own "—" (UnicodeEncodeError, exit 1)."""
    env = dict(os.environ, PYTHONIOENCODING=encoding)
    odd = scenario(tmp_path, '<title>ünïcødé ✓</title><snapshot name="é"/><expect current="é"/>')
    for argv in (["run"], ["run", odd], ["compare"], ["show", odd], ["profiles"], ["drivers"], ["findings"],
                 [*DIFF], [*EXPLORE]):
        proc = run_process(argv, env=env, encoding=encoding)
        assert proc.returncode == 0 and proc.stderr == "", (argv, proc.stderr)
    proc = run_process(["run", odd], env=env, encoding=encoding)
    if encoding == "ascii":  # the tool's own dash and mark in ASCII, a user's letters escaped
        assert "s.xml -- \\xfcn\\xefc\\xf8d\\xe9 +" in proc.stdout
    proc = run_process(["run", odd, "--format", "json"], env=env, encoding=encoding)
    exact = json.loads(run_process(["run", odd, "--format", "json"]).stdout)
    assert proc.returncode == 0 and json.loads(proc.stdout) == exact, "JSON stays exact"


def test_a_closed_stdout_keeps_the_exit_status(tmp_path: Path) -> None:
    """`snaptree run >&-` ended in an AttributeError."""
    failing = scenario(tmp_path, '<snapshot name="A"/><expect current="B"/>')
    for argv, status in ((["run"], 0), (["run", failing], 1), (["show", "seed-delete-b-two-children.xml"], 0)):
        proc = subprocess.run([sys.executable, "-m", "snaptree.oracle.cli", *argv], cwd=REPO, stderr=subprocess.PIPE,
                              text=True, timeout=120, preexec_fn=lambda: os.close(1))
        assert proc.returncode == status and proc.stderr == "", (argv, proc.stderr)


def test_a_closed_pipe_keeps_the_exit_status(tmp_path: Path) -> None:
    """`snaptree run FILES | head -1` exited 0 after a scenario failed."""
    big = scenario(tmp_path, chain(300), name="big.xml")  # more output than a pipe holds
    failing = scenario(tmp_path, '<snapshot name="A"/><expect current="B"/>', name="z-fails.xml")
    proc = subprocess.Popen([sys.executable, "-m", "snaptree.oracle.cli", "run", big, failing], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1 and err == ""


def test_a_closed_pipe_on_stderr_keeps_the_verdict(tmp_path: Path) -> None:
    """`snaptree check ... 2>&1 | head -1`: the progress on stderr hit the closed pipe in the
    middle of an example, and the check ended with exit 0 although the driver diverges."""
    proc = subprocess.Popen([sys.executable, "-m", "snaptree.oracle.cli", "check", "--driver",
                             "tests.cli.test_hostile_inputs:Refuser", "--profile", "esx", "--database", "none",
                             "--seed", "1", "--examples", "50", "--out", str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 1
    assert len(list(tmp_path.iterdir())) == 1, "the counterexample is written"


# -- findings --replay that replays nothing ----------------------------------------------------------

def test_findings_replay_that_replays_none_fails(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the components every finding was "cannot", and the command passed (exit 0)."""
    def missing(*args: object, **kwargs: object) -> None:
        raise DriverUnavailable("qemu-img not found")

    monkeypatch.setattr(replay_module, "resolve_driver", missing)
    total = len(findings())
    code, out, err = run_cli(capsys, "findings", "--replay")
    assert "no finding could be replayed here: qemu-img not found" in assert_one_line_error(code, err)
    assert out.splitlines()[-1] == f"replayed 0 of {total} findings here; {total} could not be replayed: " \
                                   f"qemu-img not found ({total})"
    code, out, err = run_cli(capsys, "findings", "--replay", "--format", "json")
    assert_one_line_error(code, err)
    assert {row["verdict"] for row in json.loads(out)} == {"cannot"}


def test_findings_replay_says_how_many_it_could_not(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def some(finding: object) -> replay_module.FindingReplay:
        if "vcsim" in str(getattr(finding, "path", "")):
            return replay_module.FindingReplay(finding, "cannot", "", "no simulator")  # type: ignore[arg-type]
        return replay_module.FindingReplay(finding, "same", "here", "not seen on these versions")  # type: ignore[arg-type]

    monkeypatch.setattr(replay_module, "replay_finding", some)
    vcsim = sum("vcsim" in f.path for f in findings())
    code, out, err = run_cli(capsys, "findings", "--replay")
    assert code == 0 and err == ""
    assert out.splitlines()[-1] == f"replayed {len(findings()) - vcsim} of {len(findings())} findings here; " \
                                   f"{vcsim} could not be replayed: no simulator ({vcsim})"


# -- scenario files ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "words"), [
    ('<start/><expect power="runing"/>', "power='runing' is not one of: shutoff, running, paused"),
    ('<start/><expect error="gone"/>', "error='gone' is not one of: not-found, duplicate-name"),
    ('<snapshot name="A"/><expect><snapshot name="A" memory="maybe"/></expect>', "memory='maybe' is not one of: yes, no"),
    ('<start/><expect powr="running"/>', "<expect> has no attribute powr= (it takes: profile, error, current, power"),
    ('<write block="1"/>', "<write> needs value="),
    ('<snapshot name="A"/><expect snapshots="-1"/>', "snapshots='-1' must be a whole number from 0"),
])
def test_a_schema_error_names_the_value_and_what_is_allowed(body: str, words: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """libxml2 said only "Invalid attribute power for element expect"."""
    code, out, err = run_cli(capsys, "run", scenario(tmp_path, body))
    assert words in assert_one_line_error(code, err, out)


def test_a_race_attribute_names_its_one_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "race.xml"
    path.write_text('<scenario profile="esx" race="no"><start/></scenario>')
    code, out, err = run_cli(capsys, "run", str(path))
    assert "race='no' is not one of: yes" in assert_one_line_error(code, err, out)


def test_a_write_outside_the_disk_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A write to block 5 of a 4-block disk was refused by the model, and the scenario passed."""
    code, out, err = run_cli(capsys, "run", scenario(tmp_path, '<start/><write block="5" value="a"/>'))
    line = assert_one_line_error(code, err, out)
    assert "line 2: block 5 is outside the disk (0..3)" in line and 'expect error="invalid-argument"' in line
    # the refusal itself may be what a scenario shows
    code, out, _ = run_cli(capsys, "run", scenario(tmp_path, '<write block="5" value="a"/><expect error="invalid-argument"/>'))
    assert code == 0, out
    code, out, err = run_cli(capsys, "run", scenario(tmp_path, '<start/><expect><view of="current"><block n="4" value=""/>'
                                                               '</view></expect>'))
    assert "block 4 is outside the disk (0..3)" in assert_one_line_error(code, err, out)


def test_a_process_sees_one_line_too(tmp_path: Path) -> None:
    proc = run_process(["run", scenario(tmp_path, '<start/><expect power="runing"/>')])
    assert "'runing'" in assert_clean_process_error(proc)


@pytest.mark.parametrize(("profile", "body", "words"), [
    ("esx", '<disk name="vda"/><write disk="vdc" block="0" value="a"/>', "line 2: the VM has no disk 'vdc' (it has: vda)"),
    ("libvirt-qemu", '<disk name="vda"/><disk name="vdb"/><snapshot name="A" disks="vdc:no"/>',
     "the VM has no disk 'vdc' (it has: vda, vdb)"),
    ("esx", '<disk name="vda"/><disk name="vdb"/><snapshot name="A" disks="vdb:no"/>',
     "esx cannot snapshot a disk as 'no' (per-disk modes it knows: none)"),
    ("qemu-qmp", '<disk name="vda"/><disk name="vdb"/><snapshot name="A" disks="vdb:external"/>',
     "qemu-qmp cannot snapshot a disk as 'external' (per-disk modes it knows: internal, no)"),
    ("esx", '<disk name="vda"/><disk name="vdb" mode="writethrough"/>', "esx knows no disk mode 'writethrough'"),
    ("qemu-img", '<disk name="vda"/><disk name="vdb"/>', "qemu-img works on one image: a VM of 2 disks is not one"),
    ("esx", '<disk name="vda"/><disk name="vda"/>', "two disks are named 'vda'"),
    ("esx", '<disk name="vda" format="vmdk"/>', "line 2: disk vda: format 'vmdk' is not one of: qcow2, raw"),
    ("esx", '<start/><disk name="vda"/>', "<disk> must come before the first step"),
    ("libvirt-qemu", '<disk name="vda"/><snapshot name="A" disks="vda"/>', "disks= takes disk:mode words (vdb:no), not 'vda'"),
    ("esx", '<disk name="vda"/><snapshot name="A"/><expect><view of="A" disk="vdb"/></expect>', "the VM has no disk 'vdb'"),
    # a malformed redefine step
    ("libvirt-test", '<redefine/>', "<redefine> needs name="),
    ("libvirt-test", '<redefine name="A" state="bogus"/>', "<redefine> state='bogus' is not one of: running, paused"),
    ("libvirt-test", '<redefine name="A" disks="vda"/>', "disks= takes disk:mode words (vdb:no), not 'vda'"),
    ("libvirt-test", '<redefine name="A" disks="vda:sideways"/>', "a snapshot's XML has no disk mode 'sideways'"),
    ("libvirt-qemu", '<redefine name="A" memory="maybe"/>', "memory='maybe' must be yes or no"),
])
def test_a_disk_the_vm_lacks_or_a_mode_the_profile_does_not_know_is_one_line(
        profile: str, body: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", scenario(tmp_path, body, profile=profile))
    assert words in assert_one_line_error(code, err, out)
