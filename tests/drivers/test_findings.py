"""The library of findings (scenarios/findings/): each is a real component's bug with the
model's expectations, still reproduces where it says so, and its guard keeps random checks off
it and says how much it left out.  When an upstream fix lands, the reproduction test turns red
and the finding is updated."""

from __future__ import annotations

import json

import pytest

from snaptree.model import ops
from snaptree.oracle import cli
from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.findings import GUARDS, findings, guards_for

from ..checks import check
from .test_libvirt import require_qemu
from .test_vsphere import ESX_URI


def require_simulator() -> None:
    from snaptree.oracle.drivers import vcsim
    from snaptree.oracle.drivers.vsphere import VsphereDriver

    problem = VsphereDriver.availability() or vcsim.missing()
    if problem:
        pytest.fail(f"the real component is missing: {problem} (or run `bash .ci/setup --real`)")


def test_every_finding_passes_the_model_and_names_a_known_guard() -> None:
    found = findings()
    assert len(found) >= 3
    for finding in found:
        assert cli.main(["run", finding.path]) == 0, finding.path
        # no guard: its departure is a rule of the profile of the system itself (vcsim's bugs)
        assert finding.guard is None or finding.guard.name in GUARDS


def test_a_guard_leaves_its_operations_out_and_counts_them() -> None:
    result = check(ModelDriver, "libvirt-esx", examples=60, seed=1, database=None, progress=None)
    assert result.conforms
    names = {guard.name for guard, _ in result.guarded}
    assert names == {"unescaped-xml", "delete-current-root"}
    assert result.stats.excluded["unescaped-xml"] > 0
    unguarded = check(ModelDriver, "libvirt-esx", examples=60, seed=1, database=None, progress=None, guards=False)
    assert not unguarded.guarded and not unguarded.stats.excluded


def test_the_unescaped_xml_guard_matches_markup_only() -> None:
    guard = GUARDS["unescaped-xml"]
    from snaptree.model import Machine, get_profile

    m = Machine(get_profile("libvirt-esx"))
    assert guard.excludes(m, ops.CreateSnapshot(name="A", description="a & b"))
    assert guard.excludes(m, ops.CreateSnapshot(name="x<y"))
    assert not guard.excludes(m, ops.CreateSnapshot(name="quo'te\"s", description="ünïcødé"))
    assert [g.name for g, _ in guards_for("esx")] == []


def test_libvirt_esx_unescaped_xml_still_reproduces(capsys: pytest.CaptureFixture[str]) -> None:
    require_simulator()
    code = cli.main(["replay", "findings/libvirt-9.0-esx-unescaped-xml.xml", "--driver", "libvirt", "--uri", ESX_URI])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "description: model a &amp; b, driver a & b" in out


def test_libvirt_qemu_delete_children_segfault_still_reproduces(capsys: pytest.CaptureFixture[str]) -> None:
    require_qemu()
    code = cli.main(["replay", "findings/libvirt-qemu-delete-children-segfault.xml", "--driver", "libvirt",
                     "--profile", "libvirt-qemu"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "delete P [children]" in out and "crashed" in out


def test_libvirt_qemu_internal_revert_data_loss_still_reproduces(capsys: pytest.CaptureFixture[str]) -> None:
    require_qemu()
    code = cli.main(["replay", "findings/libvirt-qemu-internal-revert-rewrites-external-base.xml",
                     "--driver", "libvirt"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "view of E, block 0: model b, driver a" in out


def test_every_finding_behaves_as_it_says_on_the_installed_versions(capsys: pytest.CaptureFixture[str]) -> None:
    """Each finding seen on the installed versions still diverges; one that diverges on versions
    it does not list says so (CI runs this on Debian 12's and on bookworm-backports' versions)."""
    require_qemu()
    require_simulator()
    code = cli.main(["findings", "--replay", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    verdicts = {row["path"]: (row["verdict"], row["installed"], row["detail"]) for row in rows}
    assert code == 0, verdicts
    assert all(verdict in ("reproduces", "same") for verdict, _, _ in verdicts.values()), verdicts
    assert any(verdict == "reproduces" for verdict, _, _ in verdicts.values()), verdicts


def test_a_finding_follows_its_family_at_the_versions_it_was_seen_on() -> None:
    libvirt_qemu = [f.path for _, f in guards_for("libvirt-qemu")]
    assert "findings/libvirt-qemu-internal-revert-rewrites-external-base.xml" in libvirt_qemu
    assert not [f.path for _, f in guards_for("libvirt-test")]
    finding = next(f for f in findings() if f.path.endswith("internal-revert-rewrites-external-base.xml"))
    assert finding.seen_on({"libvirt": "11.3.0", "QEMU": "10.0.2"}) and finding.seen_on({"libvirt": "9.0.0"})
    assert not finding.seen_on({"libvirt": "10.0.0"}) and not finding.seen_on({"QEMU": "9.0.0"})
