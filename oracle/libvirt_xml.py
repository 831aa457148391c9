"""libvirt's formats for snapshots: ``<domainsnapshot>`` XML (validated against libvirt 9.0's
``domainsnapshot.rng`` in the tests) and the tree that ``virsh snapshot-list --tree`` prints."""

from __future__ import annotations

from typing import Any

from lxml import etree

from snaptree.model.escape import printable

# Power states of other profiles that libvirt's schema has no word for: libvirt's vbox driver
# calls a Saved machine's snapshot shut off; a suspended ESX VM likewise has no running CPU.
LIBVIRT_STATE = {"saved": "shutoff", "suspended": "shutoff"}


def create_xml(name: str | None, description: str = "", memory: bool | None = None) -> str:
    """The ``<domainsnapshot>`` a create operation sends: no ``<name>`` for an unnamed
    snapshot, ``<memory snapshot='internal'|'no'/>`` only when memory is asked for or refused."""
    root = etree.Element("domainsnapshot")
    if name is not None:
        etree.SubElement(root, "name").text = name
    if description:
        etree.SubElement(root, "description").text = description
    if memory is not None:
        etree.SubElement(root, "memory", snapshot="internal" if memory else "no")
    return etree.tostring(root, encoding="unicode")


def snapshot_xml(record: dict[str, Any], observation: dict[str, Any] | None = None) -> str:
    """libvirt's XML for one snapshot record of an observation (``snaptree.model.observe``).
    Give the whole observation to name the parent (records hold the parent's id, which is
    the name only under libvirt's profiles).  There is no creationTime: records carry none."""
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = record["name"]
    if record.get("description"):
        etree.SubElement(root, "description").text = record["description"]
    state = record["state"]
    etree.SubElement(root, "state").text = LIBVIRT_STATE.get(state, state)
    if record.get("parent") is not None:
        parent = record["parent"]
        if observation is not None:
            parent = next((s["name"] for s in observation["snapshots"] if s["id"] == parent), parent)
        etree.SubElement(etree.SubElement(root, "parent"), "name").text = parent
    if record.get("memory_file"):
        etree.SubElement(root, "memory", snapshot="external", file=record["memory_file"])
    else:
        etree.SubElement(root, "memory", snapshot="internal" if record["memory"] else "no")
    if "disks" in record:  # a VM of several disks: what the snapshot did with each
        disks = etree.SubElement(root, "disks")
        for disk, mode in record["disks"].items():
            etree.SubElement(disks, "disk", name=disk, snapshot=mode)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"


def _virsh_key(name: str) -> bytes:
    # virsh sorts with strcasecmp (tools/virsh-snapshot.c virshSnapSorter): bytes, ASCII folded
    return name.encode().lower()


def virsh_tree(observation: dict[str, Any]) -> str:
    """The tree exactly as ``virsh snapshot-list DOMAIN --tree`` prints it (libvirt 9.0's
    ``vshTreePrintInternal``): roots, and each node's children, in virsh's name order.
    Snapshots are shown by name (escaped, where virsh prints a newline or control as it is);
    parents are looked up by id."""
    snaps = sorted(observation["snapshots"], key=lambda s: _virsh_key(s["name"]))
    names = {s["id"]: s["name"] for s in snaps}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in snaps:
        parent = s["parent"] if s["parent"] in names else None
        children.setdefault(parent, []).append(s)
    lines: list[str] = []
    # (snapshot, indent, last among its siblings, a root): a stack, not recursion, so that a
    # chain 1,000 snapshots deep prints as virsh prints it
    stack = [(s, "", True, True) for s in reversed(children.get(None, []))]  # a root is its own "last device"
    while stack:
        node, indent, last, root = stack.pop()
        lines.append(f"{indent}{'' if root else '+- '}{printable(node['name'])}")
        if not root:
            indent += (" " if last else "|") + " "
        kids = children.get(node["id"], [])
        if kids:
            lines.append(f"{indent}  |")
        elif last:
            lines.append(indent)
        stack.extend((kid, indent + "  ", i == len(kids) - 1, False) for i, kid in reversed(list(enumerate(kids))))
    return "".join(line + "\n" for line in lines)
