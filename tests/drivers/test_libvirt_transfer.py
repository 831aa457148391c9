"""The transfer check on the real libvirt test driver (README's second command runs it on 9.0,
`.ci/run` on 11.3 too): random histories with redefines, then every snapshot moved through its
XML to the domain defined afresh; the tree, current and XML come back unchanged."""

from __future__ import annotations

import random

import pytest

from snaptree.model import ops
from snaptree.model.disks import DEFAULT_LAYOUT
from snaptree.oracle.drivers import load
from snaptree.oracle.transfer import parents_first, transfer

from ..fault_kit import require

NAMES = ("A", "B", "C", "D", "E")


def random_history(rng: random.Random, steps: int) -> list[ops.Operation]:
    history: list[ops.Operation] = [ops.Start()]
    for _ in range(steps):
        name = rng.choice(NAMES)
        history.append(rng.choice([
            ops.CreateSnapshot(name), ops.CreateSnapshot(name), ops.Revert(name), ops.Delete(name),
            ops.Delete(name, flags=("children",)), ops.Redefine(name, parent=rng.choice(["", *NAMES])),
            ops.Redefine(name, flags=("current",)), ops.Shutdown(), ops.Start(),
        ]))
    return history


@pytest.mark.parametrize("seed", range(8))
def test_a_transfer_keeps_the_tree_current_and_xml(seed: int) -> None:
    require("libvirt-test")
    driver = load("libvirt")("libvirt-test", uri="test:///default")
    driver.setup(4, DEFAULT_LAYOUT)
    try:
        for op in random_history(random.Random(seed), 25):
            driver.apply(op)  # a refused step is part of the history too
        session = driver.session
        names = set(session.dom.snapshotListNames())
        session.dom, differences = transfer(session.conn, session.dom)
        assert differences == [], differences
        assert set(session.dom.snapshotListNames()) == names
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
