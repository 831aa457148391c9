"""The libvirt connection: one :class:`Session` per connection and domain, in the checker's
process (test and ESX drivers) or in the embedded QEMU driver's helper (``embedded``), and
libvirt's errors as the model's error kinds."""

from __future__ import annotations

import os
import re
from typing import Any

from snaptree.model import ops
from snaptree.model.disks import Disk
from snaptree.model.profiles.libvirt_esx import UNNAMED_CURRENT

from ...transfer import transfer
from .domain_xml import redefine_xml

# the ESX driver logs a warning for every property of a newer vSphere API it does not know,
# dozens a call against the simulator: its errors only (a user's own setting wins)
os.environ.setdefault("LIBVIRT_LOG_FILTERS", "4:esx")
try:
    import libvirt
    import libvirt_qemu  # here, before the helper forks: as nobody it may not read the virtual environment
except ImportError:  # reported by availability()
    libvirt = None
    libvirt_qemu = None

INSTALL = "apt-get install libvirt-dev pkg-config qemu-system-x86 qemu-utils && .venv/bin/pip install libvirt-python==9.0.0"
POWER = {1: "running", 2: "running", 3: "paused", 5: "shutoff"}  # virDomainState

# -- errors -------------------------------------------------------------------------------------


class LibvirtFailure(Exception):
    """A libvirtError, picklable across the helper's pipe."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code, self.message = code, message


def error_kind(code: int, message: str) -> str:
    """libvirt's error code (and words, where a code covers several cases) as a model kind."""
    if code == 72:  # VIR_ERR_NO_DOMAIN_SNAPSHOT
        return "not-found"
    if "already exists" in message:
        return "duplicate-name"
    if code == 8:  # VIR_ERR_INVALID_ARG: virCheckFlags, or the public API's flag rules
        return "unsupported" if message.startswith("unsupported flags") else "invalid-argument"
    if code in (55, 77):  # VIR_ERR_OPERATION_INVALID, VIR_ERR_SNAPSHOT_REVERT_RISKY
        return "invalid-state"
    if "does not support snapshots" in message:  # QEMU's, through a snapshot-save job [semantics.md §9.22]
        return "unsupported"
    if re.search(r"paused due to previous migration|Block node is read-only|can't be a backing child of active",
                 message):
        return "invalid-state"  # a domain paused by an external memory snapshot (9.0.0) [semantics.md §9.22]
    if code == 1 and re.search(r"not running|not paused|already running", message):  # test driver
        return "invalid-state"
    if code == 1 and "does not exist in one or more devices" in message:  # QEMU's -loadvm failed
        return "not-found"
    if code == 1 and "Could not apply snapshot" in message:  # 9.0's qemu-img snapshot -a: no such tag
        return "not-found"
    if code == 9 and "disk source and parent disk source are not the same" in message:
        return "invalid-state"  # 11.3: a delete of a snapshot current by metadata, not by its files
    if code == 9 and "does not have internal snapshot" in message:  # 11.3's revert: no such tag
        return "not-found"
    if code == 1 and message == "An error occurred, but the cause is unknown":
        return "not-found"  # 11.3's revert of a shut-off snapshot QEMU has no tag of: qemu-img's error is lost
    if code == 1 and "Not a migration stream" in message:  # -loadvm found a disk but no memory
        return "disk-only"
    if code == 9 and "while loading VM state" in message:  # the same, by 11.3's QMP snapshot-load job
        return "disk-only"
    if code == 1 and "Invalid job ID" in message:  # 11.3: QEMU refuses the name in a QMP job id
        return "invalid-argument"
    if code == 1 and "unable to save metadata" in message:  # a name too long for NAME.xml.new
        return "invalid-argument"
    if code == 38 and "Cannot access storage file" in message:  # a file the snapshot's definition names is gone
        return "not-found"
    if code == 38 and "File name too long" in message:  # a name too long for a default overlay, DISK.NAME
        return "invalid-argument"
    # the ESX driver's server dropped the request: libcurl says so in one of two ways, depending
    # on whether the reset came before or after the request was sent (seen with vcsim 0.24.2)
    if code == 1 and ("Server returned nothing" in message or "Connection died" in message):
        return "crashed"
    if code in (3, 67, 74, 84):  # NO_SUPPORT, CONFIG_UNSUPPORTED, ARGUMENT_UNSUPPORTED, OPERATION_UNSUPPORTED
        return "unsupported"
    if code in (27, 35):  # XML_ERROR, XML_DETAIL: e.g. "invalid snapshot name"
        return "invalid-argument"
    return f"libvirt-error-{code}"


# -- the connection: in this process (test driver) or in the helper (embedded QEMU) -------------


class Session:
    """One connection and the domain "snaptree"; every libvirt call the driver makes."""

    def __init__(self, uri: str, user: str | None = None, password: str | None = None):
        if user is None:
            self.conn = libvirt.open(uri)
        else:  # the ESX driver asks for credentials
            def answer(credentials: list[list[Any]], _: Any) -> int:
                for credential in credentials:
                    credential[4] = user if credential[0] == libvirt.VIR_CRED_AUTHNAME else password
                return 0
            self.conn = libvirt.openAuth(uri, [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], answer, None], 0)
        self.dom: Any = None

    def call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self, method)(*args)
        except libvirt.libvirtError as error:
            raise LibvirtFailure(error.get_error_code() or 0, error.get_error_message() or str(error)) from None

    def define(self, xml: str) -> None:
        self.dom = self.conn.defineXML(xml)

    def undefine(self) -> None:
        if self.dom is None:
            return
        if self.dom.isActive():
            self.dom.destroy()
        self.dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        self.dom = None

    def power(self, tag: str) -> None:
        {"start": self.dom.create, "pause": self.dom.suspend, "resume": self.dom.resume,
         "shutdown": self.dom.destroy}[tag]()

    def create(self, xml: str, flags: int) -> str:
        return self.dom.snapshotCreateXML(xml, flags).getName()

    def redefine(self, op: ops.Redefine, disks: tuple[Disk, ...], flags: int) -> tuple[str, bool]:
        """A redefine of the snapshot's own XML as ``virsh snapshot-current NAME`` reads it
        (secure: with what a redefine needs), or of a new one made of the domain's XML; its name,
        and whether it is new."""
        dumped = None
        try:
            dumped = self.dom.snapshotLookupByName(op.name).getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                raise
        domain = self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        return self.create(redefine_xml(op, dumped, domain, disks), flags), dumped is None

    def transfer(self) -> list[str]:
        """Every snapshot moved through its XML to this domain defined afresh (the transfer
        check); what differs afterwards."""
        self.dom, differences = transfer(self.conn, self.dom)
        return differences

    def revert(self, name: str, flags: int) -> None:
        # the API needs the snapshot object first: a missing name fails before any flag check
        self.dom.revertToSnapshot(self.dom.snapshotLookupByName(name), flags)

    def delete(self, name: str, flags: int) -> None:
        self.dom.snapshotLookupByName(name).delete(flags)

    def names(self) -> list[str]:
        return self.dom.snapshotListNames()

    def lookup(self, name: str) -> None:
        self.dom = self.conn.lookupByName(name)

    def listing_by_name(self) -> tuple[int, list[str], str | None]:
        """As ``listing``, for the ESX driver, which has no virDomainListAllSnapshots; a current
        snapshot it cannot look up (vcsim left it on a removed one) is UNNAMED_CURRENT."""
        snaps = [self.dom.snapshotLookupByName(name).getXMLDesc() for name in self.dom.snapshotListNames()]
        try:
            current = self.dom.snapshotCurrent().getName() if self.dom.hasCurrentSnapshot() else None
        except libvirt.libvirtError as error:  # either call can fail so
            if error.get_error_code() != 72:  # VIR_ERR_NO_DOMAIN_SNAPSHOT
                raise
            current = UNNAMED_CURRENT
        return self.dom.state()[0], snaps, current

    def listing(self) -> tuple[int, list[str], str | None, str]:
        """Domain state, every snapshot's XML, the current snapshot, the domain's XML."""
        snaps = [s.getXMLDesc() for s in self.dom.listAllSnapshots()]
        current = self.dom.snapshotCurrent().getName() if self.dom.hasCurrentSnapshot() else None
        return self.dom.state()[0], snaps, current, self.dom.XMLDesc()

    def hmp(self, command: str) -> str:
        return libvirt_qemu.qemuMonitorCommand(self.dom, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)

    def close(self) -> None:
        self.conn.close()
