"""The libvirt driver against the real libvirt 9.0: the test driver (test:///default) and the
embedded QEMU driver (qemu:///embed).  These need the real components: when they are missing
the tests FAIL, naming the install command (the CI installs them with `bash .ci/setup --real`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from lxml import etree

from snaptree.model import Machine, ModelError, get_profile, observe, ops
from snaptree.oracle.driver import DriverUnavailable
from snaptree.oracle.drivers.libvirt import LibvirtDriver
from snaptree.oracle.drivers.libvirt.domain_xml import parse_snapshot
from snaptree.oracle.drivers.libvirt.session import INSTALL, error_kind, libvirt
from snaptree.oracle.libvirt_xml import create_xml, snapshot_xml, virsh_tree

from ..checks import check

SCHEMA = Path("/usr/share/libvirt/schemas/domainsnapshot.rng")


def require_libvirt() -> None:
    problem = LibvirtDriver.availability()
    if problem:
        pytest.fail(problem)


def require_qemu() -> None:
    require_libvirt()
    for program in ("qemu-system-x86_64", "qemu-img", "qemu-io"):
        if shutil.which(program) is None:
            pytest.fail(f"{program} not found: {INSTALL}")


def leftovers() -> list[str]:
    """Processes and directories an embedded-QEMU example could leave behind."""
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    mine = f"snaptree-libvirt-{os.getpid()}-"  # this process's examples, not another run's
    found = [line for line in ps.splitlines() if mine in line and "qemu-system" in line]
    return found + [str(p) for p in Path("/tmp").glob(mine + "*")]


# -- conformance --------------------------------------------------------------------------------

def test_test_driver_conforms_seed_2() -> None:
    require_libvirt()
    result = check(LibvirtDriver, "libvirt-test", examples=50, steps=20, seed=2, database=None, progress=None,
                   options={"uri": "test:///default"})
    assert result.divergence is None, str(result.divergence)
    assert result.stats.examples >= 50 and result.stats.operations["snapshot"] > 0


def test_embedded_qemu_driver_conforms_seed_2() -> None:
    require_qemu()
    before = set(leftovers())
    started = time.monotonic()
    result = check(LibvirtDriver, "libvirt-qemu", examples=15, steps=20, seed=2, database=None, progress=None)
    seconds = time.monotonic() - started
    assert result.divergence is None, str(result.divergence)
    assert result.stats.examples >= 15 and result.stats.operations["write"] > 0
    print(f"libvirt-qemu: {result.stats.examples} examples, {result.stats.steps} steps in {seconds:.0f} s")
    assert set(leftovers()) <= before, "an example left a QEMU process or directory behind"


def test_embedded_qemu_phantom_snapshot_is_libvirt_9_0_behaviour() -> None:
    """A '"' in a name breaks HMP savevm; libvirt 9.0 lists the snapshot anyway, QEMU has no
    data for it, and a revert to it fails and shuts the domain off (as the profile models)."""
    require_qemu()
    driver = LibvirtDriver("libvirt-qemu")
    driver.setup(4)
    try:
        assert driver.apply(ops.Start()).ok
        assert driver.apply(ops.Write(0, "a")).ok
        assert driver.apply(ops.CreateSnapshot('q"')).ok
        seen = driver.observe()
        assert [s["name"] for s in seen["snapshots"]] == ['q"']
        assert seen["views"]["snapshots"]['q"'] == {str(b): "?" for b in range(4)}
        assert seen["views"]["current"] == {"0": "a"}
        failed = driver.apply(ops.Revert('q"'))
        assert (failed.ok, failed.kind) == (False, "not-found")
        assert driver.observe()["power"] == "shutoff"
    finally:
        driver.teardown()
        driver.close()


def test_embedded_qemu_revert_past_an_external_snapshot_rewrites_its_base() -> None:
    """Why the checker never generates DISK_ONLY: libvirt 9.0 reverts to an internal snapshot
    taken before an external one in the external snapshot's base file, so the external snapshot
    (and every later point in time) reads differently afterwards; the model keeps them intact."""
    require_qemu()
    driver = LibvirtDriver("libvirt-qemu")
    driver.setup(4)
    try:
        for op in (ops.Start(), ops.Write(0, "a"), ops.CreateSnapshot("A"), ops.Write(1, "b"),
                   ops.CreateSnapshot("E", flags=("disk-only",)), ops.Write(2, "c")):
            assert driver.apply(op).ok, ops.describe(op)
        assert driver.observe()["views"]["snapshots"]["E"] == {"0": "a", "1": "b"}
        assert driver.apply(ops.Revert("A")).ok
        assert driver.observe()["views"]["snapshots"]["E"] == {"0": "a"}  # block 1 is gone from E
    finally:
        driver.teardown()
        driver.close()


# -- the driver's own parts ----------------------------------------------------------------------

def test_uri_chooses_and_must_fit_the_profile() -> None:
    require_libvirt()
    assert LibvirtDriver.default_profile({"uri": "test:///default"}) == "libvirt-test"
    assert LibvirtDriver.default_profile({"uri": "qemu:///embed?root=/tmp/x"}) == "libvirt-qemu"
    assert LibvirtDriver(uri="qemu:///embed?root=/tmp/x").profile == "libvirt-qemu"
    with pytest.raises(DriverUnavailable, match="does not fit profile libvirt-test"):
        LibvirtDriver("libvirt-test", uri="qemu:///embed?root=/tmp/x")
    with pytest.raises(DriverUnavailable, match="does not fit profile libvirt-qemu"):
        LibvirtDriver("libvirt-qemu", uri="test:///default")


def test_versions_name_libvirt_and_the_embedded_drivers_qemu() -> None:
    require_libvirt()
    require_qemu()
    library = libvirt.getVersion()  # major * 1,000,000 + minor * 1,000 + release
    dotted = f"{library // 1_000_000}.{library // 1_000 % 1_000}.{library % 1_000}"
    assert LibvirtDriver.installed_versions({"uri": "test:///default"}) == {"libvirt": dotted}
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split()[3]
    for options in ({"uri": "qemu:///embed?root=/tmp/x"}, {"profile": "libvirt-qemu"}):
        assert LibvirtDriver.installed_versions(options) == {"libvirt": dotted, "QEMU": qemu}


@pytest.mark.parametrize("code, message, kind", [
    (72, "Domain snapshot not found: no domain snapshot with matching name 'zz'", "not-found"),
    (9, "operation failed: domain moment s1 already exists", "duplicate-name"),
    (8, "unsupported flags (0x2) in function testDomainSnapshotDelete", "unsupported"),
    (8, "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive",
     "invalid-argument"),
    (55, "Requested operation is not valid: domain is not running", "invalid-state"),
    (1, "internal error: domain 'snaptree' not paused", "invalid-state"),
    (67, "unsupported configuration: revert to external snapshot not supported yet", "unsupported"),
    (1, "internal error: something new", "libvirt-error-1"),
])
def test_error_kinds(code: int, message: str, kind: str) -> None:
    assert error_kind(code, message) == kind


def test_parse_snapshot_reads_libvirts_xml() -> None:
    text = """<domainsnapshot><name>B</name><description>d</description><state>paused</state>
      <parent><name>A</name></parent><creationTime>1</creationTime><memory snapshot='internal'/>
      <domain type='qemu'><devices><disk><source file='/x/disk.qcow2'/></disk></devices></domain>
    </domainsnapshot>"""
    record = parse_snapshot(text)
    assert record == {"name": "B", "id": "B", "parent": "A", "children": [], "memory": True, "memory_image": None,
                      "state": "paused", "description": "d", "file": "/x/disk.qcow2", "external": False}


# -- XML -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: apt-get install libvirt0")
    return etree.RelaxNG(etree.parse(str(SCHEMA)))  # loaded from its path: it includes its neighbours


def _validates(schema: etree.RelaxNG, text: str) -> None:
    assert schema.validate(etree.fromstring(text.encode())), schema.error_log.last_error


@pytest.mark.parametrize("args", [(None, "", None), ("A", "", None), ("", "x", True), ("quo'te\"s <&>", "d", False)])
def test_create_xml_validates(schema: etree.RelaxNG, args: tuple) -> None:
    _validates(schema, create_xml(*args))


@pytest.mark.parametrize("profile", ["libvirt-test", "libvirt-qemu", "esx", "vbox", "qemu-hmp"])
def test_snapshot_xml_validates_for_every_state(schema: etree.RelaxNG, profile: str) -> None:
    m = Machine(get_profile(profile), 4)
    for op in (ops.CreateSnapshot("off", description="first <one>"), ops.Start(), ops.CreateSnapshot("on"),
               ops.Pause(), ops.CreateSnapshot("paused"), ops.Suspend(), ops.CreateSnapshot("saved")):
        with contextlib.suppress(ModelError):  # a profile may refuse some; the others still make records
            m.perform(op)
    seen = observe(m)
    assert seen["snapshots"]
    for record in seen["snapshots"]:
        text = snapshot_xml(record, seen)
        _validates(schema, text)
        root = etree.fromstring(text.encode())
        assert root.findtext("name") == record["name"]
        if record["parent"] is not None:
            assert root.findtext("parent/name") in {s["name"] for s in seen["snapshots"]}


def test_real_libvirt_reads_back_what_create_xml_sends() -> None:
    require_libvirt()
    driver = LibvirtDriver("libvirt-test")
    driver.setup(4)
    try:
        assert driver.apply(ops.CreateSnapshot("A", description="why <not>")).ok
        record = next(s for s in driver.observe()["snapshots"] if s["name"] == "A")
        assert (record["description"], record["state"], record["memory"]) == ("why <not>", "shutoff", False)
    finally:
        driver.teardown()
        driver.close()


# -- virsh's tree --------------------------------------------------------------------------------

STEPS = [("create", "A"), ("create", "b"), ("create", "C"), ("revert", "A"), ("create", "with space"),
         ("create", "D"), ("revert", "b"), ("create", "e"), ("revert", "with space"), ("create", "a2"),
         ("create", "Z"), ("delete", "Z")]


@pytest.mark.parametrize("steps", [STEPS, STEPS + [("delete", "A")]], ids=["one root", "two roots"])
def test_virsh_tree_matches_real_virsh(steps: list[tuple[str, str]]) -> None:
    require_libvirt()
    if shutil.which("virsh") is None:
        pytest.fail("virsh not found: apt-get install libvirt-clients")
    commands = []
    driver = LibvirtDriver("libvirt-test")
    driver.setup(4)
    try:
        for what, name in steps:
            commands.append(f'snapshot-{"create-as" if what == "create" else what} test "{name}"')
            op = {"create": ops.CreateSnapshot(name), "revert": ops.Revert(name), "delete": ops.Delete(name)}[what]
            assert driver.apply(op).ok
        ours = virsh_tree(driver.observe())
    finally:
        driver.teardown()
        driver.close()
    commands += ["echo MARK", "snapshot-list test --tree"]
    out = subprocess.run(["virsh", "-q", "-c", "test:///default", "; ".join(commands)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    real = out.split("MARK", 1)[1].removeprefix("\n")  # virsh -q prints echo without a newline
    assert ours == real
