"""The vsphere driver against the real simulator (govmomi 0.24.2's vcsim, built from the project's
own oracle/vcsim/main.go).  These build and start it: without Go, govmomi or pyvmomi they FAIL,
naming the install command (the CI installs them with `bash .ci/setup --real`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from snaptree.model import ops
from snaptree.oracle import cli
from snaptree.oracle.driver import DriverUnavailable
from snaptree.oracle.drivers import vcsim
from snaptree.oracle.drivers.libvirt import LibvirtDriver
from snaptree.oracle.drivers.vsphere import VsphereDriver
from snaptree.oracle.lifetime import processes_using

from ..checks import check


@pytest.fixture(scope="module", autouse=True)
def require_simulator() -> None:
    problem = VsphereDriver.availability() or vcsim.missing()
    if problem:
        pytest.fail(f"the real component is missing: {problem} (or run `bash .ci/setup --real`)")
    vcsim.binary()  # build it once, outside any timing


def leftovers() -> list[str]:
    """Simulators and scratch directories a run could leave behind."""
    return ([f"process {pid}" for pid in processes_using([Path("/tmp/snaptree-vsphere-")])]
            + [str(p) for p in Path("/tmp").glob("snaptree-vsphere-*")])


# -- conformance --------------------------------------------------------------------------------

def test_vcsim_profile_conforms_seed_1(tmp_path: Path) -> None:
    before = set(leftovers())
    result = check(VsphereDriver, "vcsim", examples=100, steps=20, seed=2, database=None, progress=None,
                   out=str(tmp_path))
    assert result.divergence is None, str(result.divergence)
    assert result.stats.examples >= 100
    assert result.stats.operations["snapshot"] > 100 and result.stats.operations["delete"] > 100
    assert set(leftovers()) <= before, "the check left a simulator or its directory behind"


def test_real_vcsim_scenarios_replay_the_same() -> None:
    """Every departure in model/profiles/vcsim.py is shown by a scenario the simulator replays."""
    files = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("real-vcsim-*.xml"))
    assert len(files) >= 5
    for path in files:
        assert cli.main(["replay", str(path), "--driver", "vsphere"]) == 0, path.name


# -- libvirt's ESX driver through the simulator -------------------------------------------------

ESX_URI = "esx://127.0.0.1:PORT/?no_verify=1"


def test_libvirt_esx_driver_conforms_seed_2(tmp_path: Path) -> None:
    before = set(leftovers())
    result = check(LibvirtDriver, "libvirt-esx", examples=50, steps=20, seed=2, database=None, progress=None,
                   out=str(tmp_path), options={"uri": ESX_URI})
    assert result.divergence is None, str(result.divergence)
    assert result.stats.examples >= 50 and result.stats.operations["snapshot"] > 50
    assert set(leftovers()) <= before, "the check left a simulator or its directory behind"


def test_real_libvirt_esx_scenarios_replay_the_same() -> None:
    files = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("real-libvirt-esx-*.xml"))
    assert len(files) >= 2
    for path in files:
        assert cli.main(["replay", str(path), "--driver", "libvirt", "--uri", ESX_URI]) == 0, path.name


def test_libvirt_esx_uri_must_name_the_bundled_simulator() -> None:
    with pytest.raises(DriverUnavailable, match="bundled simulator"):
        LibvirtDriver("libvirt-esx", uri="esx://esx.example.com/?no_verify=1")
    assert LibvirtDriver.default_profile({"uri": ESX_URI}) == "libvirt-esx"


# -- the esx profile: random search finds each of vcsim's departures ----------------------------

def narrowed(operations: set[str], flags: dict[str, frozenset[str]], memory_choice: bool) -> type[VsphereDriver]:
    """The same driver on the same simulator, generating only some operations, so that a search
    for one departure is not always stopped by another, shorter one first."""
    return type("NarrowedVsphere", (VsphereDriver,), {"operations": frozenset(operations), "flags": flags,
                                                       "memory_choice": memory_choice})


SEARCHES: dict[str, tuple[type[VsphereDriver], Any]] = {
    # vcsim keeps the power state; ESX takes the snapshot's
    "revert keeps the power state": (
        narrowed({"start", "shutdown", "snapshot", "revert"}, {}, memory_choice=False),
        lambda d: d.what == "power"),
    # with the VM off, power never differs; no revert, so no current root can be removed
    "current on a removed snapshot": (
        narrowed({"snapshot", "delete", "delete-all"}, {"delete": frozenset({"remove-children"})},
                 memory_choice=False),
        lambda d: d.what == "current snapshot" and d.model != d.driver),
    # no removeChildren, so no stale current: removing the current root crashes
    "a simulator crash": (
        narrowed({"snapshot", "revert", "delete"}, {}, memory_choice=False),
        lambda d: d.what == "outcome" and d.driver == "crashed"),
}


@pytest.mark.parametrize("finding", list(SEARCHES))
@pytest.mark.parametrize("seed", [1, 2])
def test_esx_profile_diverges(finding: str, seed: int, tmp_path: Path) -> None:
    driver, expected = SEARCHES[finding]
    result = check(driver, "esx", examples=200, steps=20, seed=seed, database=None, progress=None, out=str(tmp_path))
    assert result.divergence is not None, f"seed {seed}: no divergence found"
    first = result.divergence.differences[0]
    assert expected(first), f"seed {seed}: found {first} instead"
    assert len(result.divergence.history) <= 8, [ops.describe(s.op) for s in result.divergence.history]
    assert result.scenario_path is not None and result.scenario_path.exists()


# -- bad input: one line, exit 2, nothing left running ------------------------------------------

def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    before = set(leftovers())
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    assert set(leftovers()) <= before, "a simulator or its directory outlived the command"
    return code, err


@pytest.mark.parametrize("argv, message", [
    (["--url", "http://127.0.0.1/sdk", "--vm", "x"], "is not https://USER:PASS@HOST/sdk"),
    (["--url", "https://u:p@127.0.0.1:1/sdk", "--vm", "x"], "cannot reach 127.0.0.1:1"),
    (["--url", "https://u:p@127.0.0.1:1/sdk"], "--url needs --vm NAME"),
    (["--vm", "x"], "--vm and --insecure are for a real host"),
    (["--profile", "vbox"], "follows vcsim, esx, not 'vbox'"),
])
def test_bad_options(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, err = run_cli(capsys, "check", "--driver", "vsphere", "--examples", "1", *argv)
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_refused_credentials_and_missing_vm(capsys: pytest.CaptureFixture[str]) -> None:
    simulator = vcsim.Simulator()  # a real one: it refuses an empty password
    try:
        base = f"127.0.0.1:{simulator.port}/sdk"
        code, err = run_cli(capsys, "check", "--driver", "vsphere", "--url", f"https://user:@{base}", "--vm",
                            "ha-host_VM0", "--insecure")
        assert code == 2 and len(err.splitlines()) == 1 and "login refused" in err, err
        code, err = run_cli(capsys, "replay", "scenarios/real-vcsim-power.xml", "--driver", "vsphere", "--url",
                            f"https://user:pass@{base}", "--vm", "nope", "--insecure")
        assert code == 2 and len(err.splitlines()) == 1 and "no VM named 'nope'" in err, err
    finally:
        simulator.stop()


def test_a_simulator_that_does_not_start(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nwhile read -r line; do :; done\n")  # prints no URL, ends when its stdin closes
    silent.chmod(0o755)
    for program, message in (("/bin/false", "exited at start"), (str(silent), "did not start within")):
        monkeypatch.setenv("SNAPTREE_VCSIM", program)
        monkeypatch.setattr(vcsim, "START_TIMEOUT", 0.5)
        code, err = run_cli(capsys, "check", "--driver", "vsphere", "--examples", "1", "--out", str(tmp_path))
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_real_host_url_keeps_the_vm_and_skips_ids(tmp_path: Path) -> None:
    """--url mode, against a simulator standing in for a host: the named VM is reset, not made."""
    simulator = vcsim.Simulator()
    try:
        options = {"url": f"https://user:pass@127.0.0.1:{simulator.port}/sdk", "vm": "ha-host_VM0", "insecure": True}
        assert VsphereDriver.default_profile(options) == "esx"
        result = check(VsphereDriver, "vcsim", examples=20, steps=12, seed=1, database=None, progress=None,
                       out=str(tmp_path), options=options)
        assert result.divergence is None, str(result.divergence)
        assert "ids" not in VsphereDriver("vcsim", **options).observes
    finally:
        simulator.stop()


# Signals (SIGINT, SIGTERM, SIGHUP, SIGKILL and the next run's sweep) are tests/faults/test_faults.py's,
# for every real driver: the simulator also sees its stdin close and removes its own directory.


def test_build_is_cached_by_source_hash() -> None:
    started = time.monotonic()
    path = vcsim.binary()
    assert time.monotonic() - started < 1, "an unchanged source was rebuilt"
    assert path.parent == vcsim.cache_dir() and path.is_file()
    assert vcsim.SOURCE.parent not in path.parents  # outside the source tree
