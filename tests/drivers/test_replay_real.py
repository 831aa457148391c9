"""Every shipped scenario replays on every real driver that follows its profile, without a
crash.  The replay is SAME, or diverges at a step that asks for what the driver does not
declare (an operation or a flag: the libvirt test driver has no disk to write, qcow2-chain no
VM to start), never at one it declares, never with a traceback.  Needs the real components
(`bash .ci/setup --real`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snaptree.model import ops
from snaptree.oracle.checker.replay import replay
from snaptree.oracle.driver import Driver
from snaptree.oracle.drivers import load
from snaptree.oracle.scenario_format import load as load_scenario

from ..fault_kit import CHECKS, require

SCENARIOS = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("*.xml"))


def real_drivers(profile: str) -> list[str]:
    """The fault kit's real drivers (by name) that follow ``profile``."""
    chosen = []
    for name, argv in CHECKS.items():
        cls = load(argv[1])
        if name == "vsphere" and profile != "vcsim":
            continue  # the simulator departs from ESX on purpose: test_driver_vsphere.py shows where
        if profile in cls.profiles and (cls.name != "libvirt" or name == profile):
            chosen.append(name)
    return chosen


CASES = [(path, name) for path in SCENARIOS for name in real_drivers(load_scenario(str(path)).profile)]


def performable(driver: Driver, op: ops.Operation) -> bool:
    flags = set(getattr(op, "flags", ()))
    return op.tag in driver.operations and flags <= driver.flags.get(op.tag, frozenset())


@pytest.mark.parametrize("path, name", CASES, ids=[f"{p.stem}-{n}" for p, n in CASES])
def test_shipped_scenario_replays_on_its_real_driver(path: Path, name: str) -> None:
    require(name)
    scenario = load_scenario(str(path))
    options = {"uri": "test:///default"} if name == "libvirt-test" else {}
    driver = load(CHECKS[name][1])(scenario.profile, **options)
    problem = driver.capabilities().cannot_have(scenario.profile, scenario.disks)
    if problem:  # e.g. ESX's independent disks: the qcow2-chain driver builds one disk
        driver.close()
        pytest.skip(f"{path.name} on {name}: {problem}")
    try:
        lockstep, divergence = replay(driver, scenario)
    finally:
        driver.close()
    # a driver may perform more than it declares (libvirt passes any flag, e.g. disk-only): a
    # replay never diverges at a step the driver declares it can perform
    if divergence is not None:
        last = divergence.history[-1].op
        assert not performable(driver, last), f"{path.name} on {name} diverges at a step it can perform: {divergence}"
    print(f"{path.name} on {name}: " + ("SAME" if divergence is None else f"DIVERGES at {ops.describe(last)}"))
