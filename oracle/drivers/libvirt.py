"""libvirt's snapshot API (libvirt-python 9.0.0) against two of libvirt's own drivers.

``test:///default`` (profile libvirt-test): the test driver built into libvirt0 runs in this
process.  Each example defines a fresh persistent domain "snaptree" and undefines it with its
snapshot metadata afterwards.  It has no disk: names, tree, current, power, recorded state,
memory (has-memory only) and descriptions are compared; nothing is written.

``qemu:///embed?root=DIR`` (profile libvirt-qemu, or libvirt-qemu-11.3 for libvirt 11.3): libvirt's
QEMU driver embedded in a process,
a TCG domain (type 'qemu', no OS) with one qcow2 disk, a fresh embed root per example (under
DIR when the URI names one; it must be reachable by ``nobody``, e.g. under /tmp).

How it runs as root: it does not, directly.  As root the embedded driver refuses to start
("Failed to parse user 'libvirt-qemu'"): root makes it "privileged", and a privileged QEMU
driver resolves its compiled-in user when its configuration object is built, before any
qemu.conf under the root is read, so ``user = "root"`` in DIR/etc/qemu.conf cannot help
(tried).  Creating that system user would change the machine.  So each example forks a helper
process that drops to ``nobody`` (setgroups/setgid/setuid), registers libvirt's default event
loop, opens the embedded connection in the example's directory and answers calls over a pipe
(:class:`EmbedHelper`).  Forking, not exec'ing, means ``nobody`` needs no access to the
virtualenv or the source tree (a CI clone under /root works).  libvirt's probe of QEMU's
capabilities (1-2 s) is copied from the first example's root into the next ones.

Lifetime (see ``snaptree.oracle.lifetime``): the root is a workspace named after the checker's
pid, under /tmp when TMPDIR is too deep for libvirt's sockets.  The helper sets its death
signal after it becomes nobody (a change of credentials clears it) and closes the checker's
end of the pipe, so the checker's death reaches it as SIGTERM or as the end of the pipe; either
way it kills its QEMU (which libvirt daemonised, so nothing else would) and exits.  Teardown
kills a QEMU left behind by its pid file, and a later run's sweep whatever a SIGKILL of both
left.  ``stdio_handler = "file"`` in the root's qemu.conf: QEMU writes its log itself, rather
than through a virtlogd that libvirt would start per root and that lingers 120 s.

Block data is written through QEMU itself while the domain runs (HMP ``qemu-io -d
/machine/peripheral/virtio-disk0/virtio-backend`` via ``virDomainQemuMonitorCommand``, then a
qemu-io ``flush``: without it QEMU keeps new qcow2 mappings in its metadata cache), and with
``qemu-io`` on the file while it is off.  Points in time are read with ``qemu-img convert -U``
(force-share), internal snapshots by name (``-l snapshot.name=``) from the file named in the
snapshot's own ``<domain>``: HMP qemu-io prints what it reads to QEMU's stdout, not to the
monitor.  A snapshot libvirt lists but QEMU never took reads '?' in every block.

Unnamed snapshots are named after the epoch second by libvirt, so a second unnamed snapshot
in the same second is refused as a duplicate (seen on 9.0.0).  The model's clock ticks once
per operation, so the driver waits for the next second when the current second already names
a snapshot, rather than report a clash the model cannot express.  For the same reason "ids" is
not declared: ids are names, and an unnamed snapshot's name is the checker's to map.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from lxml import etree

from snaptree.model import ops
from snaptree.model.profiles import PROFILES
from snaptree.model.profiles.libvirt import CREATE_BITS, DELETE_BITS, REVERT_BITS
from snaptree.model.profiles.libvirt_esx import UNNAMED_CURRENT

from .. import lifetime
from ..driver import Driver, DriverUnavailable, EnvironmentFailure, Result
from ..libvirt_xml import create_xml
from ..lifetime import Workspace
from . import qemu_common as qc

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
CALL_TIMEOUT = 120.0  # seconds for one call into the embedded QEMU driver
NOBODY = 65534
DISK_QDEV = "/machine/peripheral/virtio-disk0/virtio-backend"  # the disk's BlockBackend, for HMP qemu-io
POWER = {1: "running", 2: "running", 3: "paused", 5: "shutoff"}  # virDomainState
# bytes of the longest socket path libvirt 9.0 binds below the example's directory (measured:
# "/libvirt/lib/qemu/domain-1-snaptree/monitor.sock", 48), with room for domain-999
SOCKET_ROOM = 52
PIDFILE = "libvirt/run/qemu/snaptree.pid"
QEMU_CONF = 'stdio_handler = "file"\n'  # no virtlogd per root: QEMU writes its own log

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
    if code == 1 and re.search(r"not running|not paused|already running", message):  # test driver
        return "invalid-state"
    if code == 1 and "does not exist in one or more devices" in message:  # QEMU's -loadvm failed
        return "not-found"
    if code == 1 and "Not a migration stream" in message:  # -loadvm found a disk but no memory
        return "disk-only"
    if code == 9 and "while loading VM state" in message:  # the same, by 11.3's QMP snapshot-load job
        return "disk-only"
    if code == 1 and "Invalid job ID" in message:  # 11.3: QEMU refuses the name in a QMP job id
        return "invalid-argument"
    if code == 1 and "unable to save metadata" in message:  # a name too long for NAME.xml.new
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


def kill_qemu(root: Path) -> None:
    """SIGKILL the QEMU libvirt started in this root, by libvirt's pid file."""
    try:
        pid = int((root / PIDFILE).read_text().strip())
        if b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes():  # not a reused pid
            os.kill(pid, signal.SIGKILL)
    except (ValueError, OSError):
        pass


def _serve(uri: str, home: str, channel: Any, checkers_end: Any) -> None:
    """The helper's life: become nobody, run libvirt's event loop, answer calls until closed,
    or until the checker dies; then end its QEMU too."""
    checkers_end.close()  # else the checker's death would never close the pipe
    checker = os.getppid()

    def end(*_: object) -> None:
        kill_qemu(Path(home))
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGHUP, end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the checker's to handle
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    lifetime.die_with_parent(signal.SIGTERM)  # after setuid, which clears it
    if os.getppid() != checker:  # the checker died before that
        end()
    os.environ.update(HOME=home, XDG_RUNTIME_DIR=home, XDG_CACHE_HOME=home, XDG_CONFIG_HOME=home)
    log = os.open(os.path.join(home, "libvirt.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)  # libvirt's own log lines (e.g. "tainted: custom-monitor") stay out of the report
    libvirt.registerErrorHandler(lambda *_: None, None)
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()
    try:
        session = Session(uri)
    except libvirt.libvirtError as error:
        channel.send(("err", error.get_error_code() or 0, str(error)))
        return
    channel.send(("ok", None))
    while True:
        try:
            method, args = channel.recv()
        except (EOFError, OSError):  # the checker is gone
            end()
        try:
            channel.send(("ok", session.call(method, *args)))
        except LibvirtFailure as failure:
            channel.send(("err", failure.code, failure.message))
        if method == "close":
            return


class HelperCrashed(Exception):
    """The embedded QEMU driver took its process down (libvirt 9.0.0 segfaults on some deletes:
    scenarios/findings/libvirt-qemu-delete-children-segfault.xml)."""

    def __init__(self, exitcode: int | None, log: Path):
        how = (f"signal {signal.Signals(-exitcode).name}" if exitcode is not None and exitcode < 0
               else f"exit status {exitcode}")
        # the helper's stderr (a Python traceback, libvirt's last words) went to its log
        with contextlib.suppress(OSError):
            last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
            how += f"; its log ends: {last[0].strip()}" if last else ""
        super().__init__(f"libvirt's embedded QEMU driver crashed: its process died ({how})")


class EmbedHelper:
    """A forked helper process, running as nobody, that owns the embedded QEMU connection."""

    def __init__(self, root: Path):
        self.root = root
        context = multiprocessing.get_context("fork")
        self.channel, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(f"qemu:///embed?root={root / 'libvirt'}", str(root),
                                                            child, self.channel), daemon=True)
        try:
            self.process.start()
            child.close()
            self._answer()
        except BaseException:  # e.g. a signal while libvirt starts: the helper must not go on alone
            self.kill()
            raise

    def call(self, method: str, *args: Any) -> Any:
        try:
            self.channel.send((method, args))
        except (BrokenPipeError, ConnectionResetError):  # it died after its last answer
            self.process.join(5)
            raise HelperCrashed(self.process.exitcode, self.root / "libvirt.log") from None
        return self._answer()

    def _answer(self) -> Any:
        if not self.channel.poll(CALL_TIMEOUT):
            self.kill()
            raise TimeoutError(f"the embedded QEMU driver did not answer within {CALL_TIMEOUT:.0f} s")
        try:
            reply = self.channel.recv()
        except (EOFError, ConnectionResetError):  # the helper died inside libvirt: a crash of libvirt's
            self.process.join(5)
            raise HelperCrashed(self.process.exitcode, self.root / "libvirt.log") from None
        if reply[0] == "err":
            raise LibvirtFailure(reply[1], reply[2])
        return reply[1]

    def kill(self) -> None:
        """End the helper and every QEMU it started (libvirt keeps their pid files)."""
        try:
            if self.process.is_alive():
                self.channel.send(("close", ()))
                self.process.join(10)
        except OSError:
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        kill_qemu(self.root)
        self.channel.close()


# -- the driver -------------------------------------------------------------------------------


def _uri_profile(uri: str) -> str | None:
    if uri.startswith("test:"):
        return "libvirt-test"
    if uri.startswith("esx:"):
        return "libvirt-esx"
    if uri.startswith("qemu:///embed"):
        return "libvirt-qemu"
    return None


def _family(profile: str | None) -> str | None:
    """The profile's family: libvirt-qemu-11.3 is driven as libvirt-qemu is."""
    return None if profile is None else (PROFILES[profile].family or profile) if profile in PROFILES else profile


class LibvirtDriver(Driver):
    name = "libvirt"
    description = "libvirt snapshots: the test driver (test:///default) or the embedded QEMU driver (9.0 or 11.3)"
    profiles = ("libvirt-test", "libvirt-qemu", "libvirt-qemu-11.3", "libvirt-esx")
    takes_uri = True
    by_id = False
    memory_choice = True
    # the test driver's abilities; the QEMU profile's are set per instance
    observes = frozenset({"names", "tree", "current", "power", "state", "memory", "description"})
    operations = frozenset({"start", "pause", "resume", "shutdown", "snapshot", "revert", "delete"})
    flags = {"snapshot": frozenset(CREATE_BITS) - {"redefine"}, "revert": frozenset(REVERT_BITS),
             "delete": frozenset(DELETE_BITS)}

    def __init__(self, profile: str | None = None, **options: Any):
        uri = options.get("uri")
        if profile is None and uri:
            profile = _uri_profile(uri)
        super().__init__(profile, **options)
        if libvirt is None:
            raise DriverUnavailable(f"libvirt-python is not installed: {INSTALL}")
        if uri and _uri_profile(uri) != _family(self.profile):
            raise DriverUnavailable(f"URI '{uri}' does not fit profile {self.profile}: use test:///default for "
                                    "libvirt-test, qemu:///embed?root=DIR for libvirt-qemu, "
                                    f"{ESX_URI} for libvirt-esx")
        self.qemu = _family(self.profile) == "libvirt-qemu"
        self.esx: EsxSimulator | None = None
        if self.profile == "libvirt-esx":
            if uri and "PORT" not in uri:
                raise DriverUnavailable(f"URI '{uri}': the ESX driver runs against the bundled simulator, {ESX_URI} "
                                        "(the check fills in PORT and the credentials)")
            self.esx = EsxSimulator(uri or ESX_URI)
            # libvirt's ESX snapshot XML has no memory element; the simulator keeps no disk
            self.observes = frozenset({"names", "tree", "current", "power", "state", "description"})  # type: ignore[misc]
            self.memory_choice = False  # type: ignore[misc]
            self.flags = {"snapshot": frozenset({"disk-only", "quiesce", "no-metadata", "validate", "live", "atomic",
                                                 "halt"}),
                          "revert": frozenset({"running", "paused", "force"}),
                          "delete": frozenset({"children", "children-only", "metadata-only"})}
        if self.qemu:
            qc.require("qemu-system-x86_64", "qemu-img", "qemu-io")
            if uri and not parse_qs(urlparse(uri).query).get("root"):
                raise DriverUnavailable(f"URI '{uri}' names no embed root: qemu:///embed?root=DIR")
            # the embed root is the example's own directory, under DIR when the URI gives one
            self.base = parse_qs(urlparse(uri).query)["root"][0] if uri else None
            self.observes = frozenset({"names", "tree", "current", "power", "state", "memory",  # type: ignore[misc]
                                       "views", "description"})
            self.operations = frozenset({"write", "start", "pause", "resume",  # type: ignore[misc]
                                         "shutdown", "snapshot", "revert", "delete"})
            self.flags = {"snapshot": frozenset({"halt", "disk-only", "quiesce", "atomic", "live"}),
                          "revert": frozenset({"running", "paused", "force"}),
                          "delete": frozenset({"children", "children-only", "metadata-only"})}
        else:
            self.uri = uri or "test:///default"
        self.session: Any = None  # Session (test) or EmbedHelper (QEMU)
        self.space: Workspace | None = None
        self.blocks = 0
        self.capabilities: dict[str, bytes] = {}
        if self.qemu:
            atexit.register(self.close)  # a QEMU outlives its helper: never leave one running

    @classmethod
    def default_profile(cls, options: dict[str, Any]) -> str:
        return _uri_profile(options.get("uri") or "") or cls.profiles[0]

    @classmethod
    def availability(cls) -> str | None:
        if libvirt is None:
            return f"libvirt-python is not installed: {INSTALL}"
        return None

    @classmethod
    def installed_versions(cls, options: dict[str, Any]) -> dict[str, str]:
        if libvirt is None:
            return {}
        number = libvirt.getVersion()  # major * 1,000,000 + minor * 1,000 + release
        found = {"libvirt": f"{number // 1_000_000}.{number // 1_000 % 1_000}.{number % 1_000}"}
        profile = _uri_profile(options.get("uri") or "") or options.get("profile") or ""
        if profile.startswith("libvirt-qemu"):
            found |= qc.versions("qemu-system-x86_64")  # the QEMU the embedded driver starts
        elif profile == "libvirt-esx":
            from . import vcsim

            found |= vcsim.govmomi_version()  # the simulator the ESX driver talks to
        return found

    # -- life of an example ------------------------------------------------------------------

    @property
    def workdir(self) -> Path | None:
        return None if self.space is None else self.space.path

    def setup(self, blocks: int) -> None:
        if self.space is not None or (not self.qemu and self.session is not None and self.session.dom is not None):
            self.teardown()  # the previous example was not torn down: never leak its domain or files
        self.blocks = blocks
        self.values_on_disk = qc.BlockValues()
        if self.esx is not None:
            self.session = self.esx.new_domain()
            return
        if not self.qemu:
            if self.session is None:
                libvirt.registerErrorHandler(lambda *_: None, None)
                self.session = Session(self.uri)
            self.session.call("define", "<domain type='test'><name>snaptree</name><memory unit='MiB'>8</memory>"
                                        "<os><type>hvm</type></os></domain>")
            return
        if self.base is not None:  # nobody must be able to reach it: e.g. under /tmp, not /root
            with lifetime.machine_failures():
                os.makedirs(self.base, exist_ok=True)
        self.space = lifetime.workspace("libvirt", room=SOCKET_ROOM, base=self.base)
        workdir = self.space.path
        try:
            disk = workdir / "disk.qcow2"
            qc.create_image(disk, blocks)
            with lifetime.machine_failures():
                (workdir / "libvirt/etc").mkdir(parents=True)
                (workdir / "libvirt/etc/qemu.conf").write_text(QEMU_CONF)
                for path in (workdir, disk, workdir / "libvirt", workdir / "libvirt/etc"):
                    os.chown(path, NOBODY, NOBODY)
                self._restore_capabilities()
            self.session = EmbedHelper(workdir)
            self.session.call("define", _qemu_domain(disk))
            self._keep_capabilities()
        except LibvirtFailure as failure:  # no domain to check: a set-up error, not an outcome
            self.teardown()
            raise EnvironmentFailure(f"libvirt could not set up the example's domain: {failure.message.strip()}"
                                     f"{lifetime.full_disk_note(workdir)}") from None
        except BaseException:
            self.teardown()
            raise

    # libvirt probes QEMU's capabilities (1-2 s) into a fresh root's cache: reuse the first probe
    CAPS = Path("libvirt/cache/qemu/capabilities")

    def _keep_capabilities(self) -> None:
        if not self.capabilities:
            assert self.workdir is not None
            self.capabilities = {p.name: p.read_bytes() for p in (self.workdir / self.CAPS).glob("*.xml")}

    def _restore_capabilities(self) -> None:
        assert self.workdir is not None
        if not self.capabilities:
            return
        folder = self.workdir
        for part in self.CAPS.parts:
            folder = folder / part
            folder.mkdir(exist_ok=True)
            os.chown(folder, NOBODY, NOBODY)
        for name, data in self.capabilities.items():
            (folder / name).write_bytes(data)
            os.chown(folder / name, NOBODY, NOBODY)

    def teardown(self) -> None:
        if self.esx is not None:
            self.esx.drop_domain()
            return
        if not self.qemu:
            if self.session is not None:
                self.session.call("undefine")
            return
        try:
            if self.session is not None:
                with contextlib.suppress(LibvirtFailure, HelperCrashed, TimeoutError, OSError):
                    self.session.call("undefine")
                self.session.kill()
        finally:
            self.session = None
            lifetime.release(self.space, processes=True)  # a QEMU that is still exiting, a helper
            self.space = None

    def close(self) -> None:
        if self.esx is not None:
            self.esx.close()
            self.session = None
        elif not self.qemu and self.session is not None:
            self.session.close()
            self.session = None
        elif self.qemu:
            self.teardown()

    # -- operations --------------------------------------------------------------------------

    def apply(self, op: ops.Operation) -> Result:
        try:
            result = self._apply(op)
        except HelperCrashed as crash:  # an outcome of its own, not a traceback: the model never crashes
            result = Result.error("crashed", str(crash))
        except LibvirtFailure as failure:
            lifetime.raise_if_machine_failure(failure.message, "libvirt")  # a full disk is no answer of libvirt's
            result = Result.error(error_kind(failure.code, failure.message), failure.message)
        except qc.QemuCallFailed as failure:  # a write QEMU refused
            lifetime.raise_if_machine_failure(failure.message, "qemu-io")
            result = Result.error(qc.write_refusal(failure.message, "qemu-io-failed"), failure.message)
        if self.workdir is not None:
            lifetime.raise_if_full(self.workdir, op, result)
        return result

    def _apply(self, op: ops.Operation) -> Result:
        call = self.session.call
        if isinstance(op, ops.Write):
            if not self.qemu:
                return Result.error("unsupported", "libvirt's test driver has no disk data to write")
            self._write(op.block, op.value)
        elif isinstance(op, ops.POWER_OPS):
            call("power", op.tag)
        elif isinstance(op, ops.CreateSnapshot):
            if not op.name:  # libvirt names it after the epoch second (an empty name too)
                self._avoid_second_clash()
            name = call("create", create_xml(op.name, op.description, op.memory), _bits(op.flags, CREATE_BITS))
            return Result(True, created_id=name, created_name=name)
        elif isinstance(op, ops.Revert):
            if self.qemu:
                self._avoid_file_clash()
            call("revert", op.ref if op.ref is not None else op.id, _bits(op.flags, REVERT_BITS))
        elif isinstance(op, ops.Delete):
            call("delete", op.ref if op.ref is not None else op.id, _bits(op.flags, DELETE_BITS))
        else:
            return Result.error("unsupported", f"{op.tag} is not a libvirt operation")
        return Result(True)

    def _avoid_second_clash(self) -> None:
        names = set(self.session.call("names"))
        while str(int(time.time())) in names:
            time.sleep(1.0 - time.time() % 1.0 + 0.001)
        if self.qemu:
            self._avoid_file_clash()

    def _avoid_file_clash(self) -> None:
        """libvirt 11.3 names the overlay of a revert to an external snapshot after the epoch
        second, <image>.<second> (as an unnamed external snapshot's is): a second one in the
        same second fails ("external snapshot file for disk vda already exists", seen).  The
        model's clock cannot express that clash, so wait for a second no file is named after."""
        assert self.workdir is not None
        while any(path.suffix == f".{int(time.time())}" for path in self.workdir.iterdir()):
            time.sleep(1.0 - time.time() % 1.0 + 0.001)

    # -- block data (QEMU only) ---------------------------------------------------------------

    def _write(self, block: int, value: str) -> None:
        state, _, _, domain_xml = self.session.call("listing")
        words = qc.qemu_io_writes([(block, self.values_on_disk.stored(value))])
        if POWER.get(state) == "shutoff":
            qc.call(["qemu-io", "-f", "qcow2", *words, _disk_source(domain_xml)])
            return
        assert self.workdir is not None
        log = self.workdir / "libvirt/log/qemu/snaptree.log"  # QEMU's stdout, where HMP qemu-io reports
        for command in words[1::2]:
            before = qc.size(log)
            _hmp_ok(self.session.call("hmp", f'qemu-io -d {DISK_QDEV} "{command}"') or qc.refusals(log, before))
        # qcow2 keeps new mappings in QEMU's metadata cache: flush so the file holds them
        _hmp_ok(self.session.call("hmp", f'qemu-io -d {DISK_QDEV} "flush"'))

    def _file_view(self, path: str, snapshot: str | None = None) -> dict[str, str]:
        assert self.workdir is not None
        view = qc.read_view(Path(path), self.blocks, self.workdir / "view", force_share=True, snapshot_name=snapshot)
        return self.values_on_disk.read(view)

    def _qcow2_names(self, path: str) -> set[str]:
        return {entry["name"] for entry in qc.snapshot_table(Path(path), force_share=True)}

    # -- observation -------------------------------------------------------------------------

    def observe(self) -> dict[str, Any]:
        if self.esx is not None:
            state, snapshot_xmls, current = self.session.call("listing_by_name")
            domain_xml = ""
        else:
            state, snapshot_xmls, current, domain_xml = self.session.call("listing")
        power = POWER.get(state, f"state-{state}")
        records = [parse_snapshot(text) for text in snapshot_xmls]
        by_parent: dict[str | None, list[str]] = {}
        for r in records:
            by_parent.setdefault(r["parent"], []).append(r["id"])
        for r in records:
            r["children"] = by_parent.get(r["id"], [])
        result: dict[str, Any] = {"current": current, "power": power, "ram": None,
                                  "snapshots": [{k: v for k, v in r.items() if k not in ("file", "external")}
                                                for r in records]}
        if self.qemu:
            # QEMU's HMP qemu-io prints reads to its stdout, not to the monitor; every write
            # was flushed, so the file holds it
            live = self._file_view(_disk_source(domain_xml))
            points = {}
            unreadable = {str(block): "?" for block in range(self.blocks)}
            for r in records:
                internal = not r["external"]
                if not Path(r["file"]).exists():  # libvirt lists it, but its file is gone
                    points[r["id"]] = unreadable
                elif internal and r["name"] not in self._qcow2_names(r["file"]):
                    # libvirt 9.0 lists it, but QEMU never took it (a '"' in the name breaks HMP
                    # savevm, whose error libvirt does not recognise): every block is unreadable
                    points[r["id"]] = unreadable
                else:
                    points[r["id"]] = self._file_view(r["file"], r["name"] if internal else None)
            result["views"] = {"current": live, "snapshots": points}
        return result


ESX_URI = "esx://127.0.0.1:PORT/?no_verify=1"


class EsxSimulator:
    """libvirt's ESX driver against the bundled vSphere simulator: one simulator and one
    connection for the whole check, a fresh VM per example (made and destroyed through pyvmomi;
    libvirt's ESX driver defines VMs only from a full .vmx)."""

    def __init__(self, uri: str):
        from . import vcsim, vsphere

        if vsphere.vim is None:
            raise DriverUnavailable(f"pyvmomi is not installed: {vsphere.INSTALL}")
        self.uri, self.vcsim, self.vsphere = uri, vcsim, vsphere
        self.simulator: Any = None
        self.vsphere_session: Any = None
        self.vm: Any = None
        self.session: Session | None = None
        self.examples = 0

    def new_domain(self) -> Session:
        if self.simulator is None or not self.simulator.alive():
            self.close()
            self.simulator = sim = self.vcsim.Simulator()
            self.vsphere_session = self.vsphere.Session(sim.host, sim.port, sim.user, sim.password, insecure=True)
            libvirt.registerErrorHandler(lambda *_: None, None)
            self.session = Session(self.uri.replace("PORT", str(sim.port)), sim.user, sim.password)
        assert self.session is not None
        self.examples += 1
        self.vm = self.vsphere_session.new_vm(f"snaptree-{self.examples}")
        self.session.call("lookup", f"snaptree-{self.examples}")
        return self.session

    def drop_domain(self) -> None:
        if self.vm is not None and not self.vsphere_session.destroy_vm(self.vm):
            self.close()  # the next example gets a fresh simulator
        self.vm = None

    def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
            self.session = None
        if self.vsphere_session is not None:
            self.vsphere_session.close()
            self.vsphere_session = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None


def _bits(flags: tuple[str, ...], table: dict[str, int]) -> int:
    return sum(table[flag] for flag in set(flags))


def _hmp_ok(output: str) -> None:
    if output.strip():  # success prints to QEMU's stdout; the monitor only hears errors
        raise qc.QemuCallFailed(["qemu-io (HMP)"], 1, output)


def _disk_source(domain_xml: str) -> str:
    """The file the domain's disk is now (or was, in a snapshot's <domain>)."""
    source = etree.fromstring(domain_xml.encode()).find("devices/disk/source")
    if source is None or source.get("file") is None:
        raise qc.QemuCallFailed(["libvirt"], 1, "the domain's disk has no file source")
    return str(source.get("file"))


def parse_snapshot(text: str) -> dict[str, Any]:
    """One ``getXMLDesc`` as a record of the observation shape (plus the disk's file)."""
    root = etree.fromstring(text.encode())
    memory = root.find("memory")
    domain_disk = root.find("domain/devices/disk/source")
    return {
        "name": root.findtext("name"),
        "id": root.findtext("name"),
        "parent": root.findtext("parent/name"),
        "children": [],
        "memory": memory is not None and memory.get("snapshot") in ("internal", "external"),
        "memory_image": None,
        "state": root.findtext("state"),
        "description": root.findtext("description") or "",
        "file": domain_disk.get("file") if domain_disk is not None else None,
        "external": root.find("disks/disk[@snapshot='external']") is not None,
    }


def _qemu_domain(disk: Path) -> str:
    """A tiny TCG domain with no OS: SeaBIOS finds nothing to boot and waits."""
    return f"""<domain type='qemu'>
  <name>snaptree</name>
  <memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>"""
