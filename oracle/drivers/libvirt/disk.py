"""Block data of the embedded QEMU domain's disk (profile libvirt-qemu).

Block data is written through QEMU itself while the domain runs (HMP ``qemu-io -d
/machine/peripheral/virtio-disk0/virtio-backend`` via ``virDomainQemuMonitorCommand``, then a
qemu-io ``flush``: without it QEMU keeps new qcow2 mappings in its metadata cache), and with
``qemu-io`` on the file while it is off.  Points in time are read with ``qemu-img convert -U``
(force-share), internal snapshots by name (``-l snapshot.name=``) from the file named in the
snapshot's own ``<domain>``: HMP qemu-io prints what it reads to QEMU's stdout, not to the
monitor.  A snapshot libvirt lists but QEMU never took reads '?' in every block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import qemu_common as qc
from .domain_xml import disk_source
from .session import POWER

DISK_QDEV = "/machine/peripheral/virtio-disk0/virtio-backend"  # the disk's BlockBackend, for HMP qemu-io


def write(session: Any, workdir: Path | None, values_on_disk: qc.BlockValues, block: int, value: str) -> None:
    """Write one block: through the running QEMU's monitor, or with qemu-io while it is off."""
    state, _, _, domain_xml = session.call("listing")
    words = qc.qemu_io_writes([(block, values_on_disk.stored(value))])
    if POWER.get(state) == "shutoff":
        qc.call(["qemu-io", "-f", "qcow2", *words, disk_source(domain_xml)])
        return
    assert workdir is not None
    log = workdir / "libvirt/log/qemu/snaptree.log"  # QEMU's stdout, where HMP qemu-io reports
    for command in words[1::2]:
        before = qc.size(log)
        hmp_ok(session.call("hmp", f'qemu-io -d {DISK_QDEV} "{command}"') or qc.refusals(log, before))
    # qcow2 keeps new mappings in QEMU's metadata cache: flush so the file holds them
    hmp_ok(session.call("hmp", f'qemu-io -d {DISK_QDEV} "flush"'))


def hmp_ok(output: str) -> None:
    if output.strip():  # success prints to QEMU's stdout; the monitor only hears errors
        raise qc.QemuCallFailed(["qemu-io (HMP)"], 1, output)


def views(records: list[dict[str, Any]], domain_xml: str, blocks: int, workdir: Path | None,
          values_on_disk: qc.BlockValues) -> dict[str, Any]:
    """The disk's blocks now and at each snapshot in ``records`` (``parse_snapshot``'s)."""

    def file_view(path: str, snapshot: str | None = None) -> dict[str, str]:
        assert workdir is not None
        view = qc.read_view(Path(path), blocks, workdir / "view", force_share=True, snapshot_name=snapshot)
        return values_on_disk.read(view)

    # QEMU's HMP qemu-io prints reads to its stdout, not to the monitor; every write
    # was flushed, so the file holds it
    live = file_view(disk_source(domain_xml))
    points = {}
    unreadable = {str(block): "?" for block in range(blocks)}
    for r in records:
        internal = not r["external"]
        if not Path(r["file"]).exists():  # libvirt lists it, but its file is gone
            points[r["id"]] = unreadable
        elif internal and r["name"] not in qcow2_names(r["file"]):
            # libvirt 9.0 lists it, but QEMU never took it (a '"' in the name breaks HMP
            # savevm, whose error libvirt does not recognise): every block is unreadable
            points[r["id"]] = unreadable
        else:
            points[r["id"]] = file_view(r["file"], r["name"] if internal else None)
    return {"current": live, "snapshots": points}


def qcow2_names(path: str) -> set[str]:
    return {entry["name"] for entry in qc.snapshot_table(Path(path), force_share=True)}
