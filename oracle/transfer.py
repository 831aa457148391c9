"""The transfer check: how oVirt and other managers move a VM and its snapshots to another host
with libvirt.  Dump every snapshot's XML, define the domain afresh without its snapshot
metadata, redefine each snapshot from its XML, parents before children, the current one with
CURRENT; the tree, the current snapshot and every snapshot's XML must come back as they were
(semantics.md §7.18)."""

from __future__ import annotations

from typing import Any

from lxml import etree

REDEFINE, CURRENT = 1, 2  # virDomainSnapshotCreateFlags
SECURE = 1  # VIR_DOMAIN_SNAPSHOT_XML_SECURE
UNDEFINE_SNAPSHOTS_METADATA, UNDEFINE_KEEP_NVRAM = 2, 8  # virDomainUndefineFlagsValues


def snapshot_state(dom: Any) -> tuple[dict[str, str], str | None]:
    """Every snapshot's XML by name, and the current snapshot's name."""
    xmls = {s.getName(): s.getXMLDesc(SECURE) for s in dom.listAllSnapshots()}
    return xmls, dom.snapshotCurrent().getName() if dom.hasCurrentSnapshot() else None


def parents_first(xmls: dict[str, str]) -> list[str]:
    """The names in an order where each snapshot's parent comes before it."""
    parent = {name: etree.fromstring(xml.encode()).findtext("parent/name") for name, xml in xmls.items()}
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(xmls):
        ready = sorted(n for n in xmls if n not in placed and (parent[n] is None or parent[n] in placed))
        if not ready:
            raise ValueError(f"the snapshots' parents form no tree: {sorted(set(xmls) - placed)}")
        order += ready
        placed.update(ready)
    return order


def transfer(conn: Any, dom: Any) -> tuple[Any, list[str]]:
    """Move ``dom``'s snapshots through their XML onto the domain defined afresh; the new domain
    and what differs afterwards (empty: the transfer kept everything)."""
    xmls, current = snapshot_state(dom)
    domain_xml = dom.XMLDesc(2 | 1)  # VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE
    if dom.isActive():
        dom.destroy()
    # the firmware's variable store stays with the disks: it is part of what moves
    nvram = etree.fromstring(domain_xml.encode()).find("os/nvram") is not None
    dom.undefineFlags(UNDEFINE_SNAPSHOTS_METADATA | (UNDEFINE_KEEP_NVRAM if nvram else 0))
    fresh = conn.defineXML(domain_xml)
    for name in parents_first(xmls):
        fresh.snapshotCreateXML(xmls[name], REDEFINE | (CURRENT if name == current else 0))
    after, current_after = snapshot_state(fresh)
    differences = [f"current: {current} before, {current_after} after"] if current != current_after else []
    differences += [f"snapshot {name}: {'missing' if name not in after else 'XML differs'}"
                    for name in xmls if after.get(name) != xmls[name]]
    differences += [f"snapshot {name}: appeared" for name in after if name not in xmls]
    return fresh, differences
