"""The transfer check on the real libvirt (the test driver and the embedded QEMU driver; `.ci/run`
runs it on 9.0 and, in the chroot, on 11.3): random histories with redefines, then every
snapshot moved through its XML to the domain defined afresh.  The tree, current, each snapshot's
XML and, on the QEMU driver, what every snapshot reads come back unchanged."""

from __future__ import annotations

import random
from typing import Any

import pytest

from snaptree.model import ops
from snaptree.model.disks import DEFAULT_LAYOUT
from snaptree.oracle.drivers import load
from snaptree.oracle.transfer import parents_first

from ..fault_kit import require

NAMES = ("A", "B", "C", "D", "E")
SNAPSHOT_FIELDS = ("name", "parent", "state", "memory", "description")


def random_history(rng: random.Random, steps: int, qemu: bool) -> list[ops.Operation]:
    history: list[ops.Operation] = [ops.Start()]
    for _ in range(steps):
        name = rng.choice(NAMES)
        choices: list[ops.Operation] = [
            ops.CreateSnapshot(name), ops.CreateSnapshot(name), ops.Revert(name), ops.Delete(name),
            ops.Delete(name, flags=("children",)), ops.Redefine(name, parent=rng.choice(["", *NAMES])),
            ops.Redefine(name, flags=("current",)), ops.Shutdown(), ops.Start(),
        ]
        if qemu:  # data, and the tags a METADATA_ONLY delete leaves
            choices += [ops.Write(rng.randrange(4), rng.choice("abc")), ops.Write(0, "d"),
                        ops.Delete(name, flags=("metadata-only",)), ops.Redefine(name, state="shutoff")]
        history.append(rng.choice(choices))
    return history


def kept(observation: dict[str, Any]) -> dict[str, Any]:
    """What a transfer must keep: each snapshot's fields, current, and what every snapshot reads."""
    return {"current": observation["current"],
            "snapshots": sorted(tuple(s[f] for f in SNAPSHOT_FIELDS) for s in observation["snapshots"]),
            "views": observation.get("views", {}).get("snapshots")}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["libvirt-test", "libvirt-qemu"])
def test_a_transfer_keeps_the_tree_current_xml_and_points_in_time(name: str, seed: int) -> None:
    require(name)
    driver = load("libvirt")(name, uri="test:///default") if name == "libvirt-test" else load("libvirt")(name)
    driver.setup(4, DEFAULT_LAYOUT)
    try:
        for op in random_history(random.Random(seed), 25, qemu=name == "libvirt-qemu"):
            driver.apply(op)  # a refused step is part of the history too
        before = driver.observe()
        assert driver.session.call("transfer") == []
        after = driver.observe()
        assert kept(after) == kept(before)
        assert before["snapshots"] or seed, "the first history leaves some snapshots to move"
    finally:
        driver.teardown()


def test_children_before_parents_cannot_be_redefined() -> None:
    """The order is libvirt's rule: "parent A for moment B not found" (snapshot-redefine.out)."""
    xml = "<domainsnapshot><name>{}</name>{}</domainsnapshot>"
    xmls = {"B": xml.format("B", "<parent><name>A</name></parent>"), "A": xml.format("A", ""),
            "C": xml.format("C", "<parent><name>B</name></parent>")}
    assert parents_first(xmls) == ["A", "B", "C"]
    with pytest.raises(ValueError, match="no tree"):
        parents_first({"B": xmls["B"]})
