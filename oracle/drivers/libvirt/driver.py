"""libvirt's snapshot API (libvirt-python 9.0.0) against two of libvirt's own drivers.

``test:///default`` (profile libvirt-test): the test driver built into libvirt0 runs in this
process.  Each example defines a fresh persistent domain "snaptree" and undefines it with its
snapshot metadata afterwards.  It has no disk: names, tree, current, power, recorded state,
memory (has-memory only) and descriptions are compared; nothing is written.

``qemu:///embed?root=DIR`` (profile libvirt-qemu, or libvirt-qemu-11.3 for libvirt 11.3): libvirt's
QEMU driver embedded in a process,
a TCG domain (type 'qemu', no OS) with one qcow2 disk, a fresh embed root per example (under
DIR when the URI names one; it must be reachable by ``nobody``, e.g. under /tmp).  How it runs
as root, and its lifetime, are in ``embedded``; how block data is written and read, in ``disk``;
the VMs of several disks it builds, in ``layouts``.

Unnamed snapshots are named after the epoch second by libvirt, so a second unnamed snapshot
in the same second is refused as a duplicate (seen on 9.0.0).  The model's clock ticks once
per operation, so the driver waits for the next second when the current second already names
a snapshot, rather than report a clash the model cannot express.  For the same reason "ids" is
not declared: ids are names, and an unnamed snapshot's name is the checker's to map.
"""

from __future__ import annotations

import atexit
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from snaptree.model import get_profile, ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk
from snaptree.model.profiles import PROFILES
from snaptree.model.profiles.libvirt import CREATE_BITS, DELETE_BITS, REVERT_BITS

from ... import lifetime
from ...driver import Driver, DriverUnavailable, EnvironmentFailure, Result
from ...libvirt_xml import create_xml
from ...lifetime import Workspace
from .. import qemu_common as qc
from . import disk, embedded
from . import domain_xml as dxml
from .domain_xml import parse_snapshot, qemu_domain
from .embedded import SOCKET_ROOM, EmbedHelper, HelperCrashed
from .esx import ESX_URI, EsxSimulator
from .layouts import LAYOUTS_9_0, LAYOUTS_11_3, make_disks, nvram_named
from .session import INSTALL, POWER, LibvirtFailure, Session, error_kind, libvirt


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
    operations = frozenset({"start", "pause", "resume", "shutdown", "snapshot", "revert", "delete", "redefine"})
    flags = {"snapshot": frozenset(CREATE_BITS) - {"redefine"}, "revert": frozenset(REVERT_BITS),
             "delete": frozenset(DELETE_BITS), "redefine": frozenset(CREATE_BITS) - {"redefine"}}

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
            self.operations = LibvirtDriver.operations - {"redefine"}  # type: ignore[misc]  # not drawn here yet
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
            problem = embedded.base_problem(self.base) if self.base else None
            if problem:  # before any example, not as the first example's "driver error"
                raise DriverUnavailable(f"URI '{uri}': the embed root {self.base}: {problem}")
            self.observes = frozenset({"names", "tree", "current", "power", "state", "memory",  # type: ignore[misc]
                                       "views", "description", "disks"})
            declared = LAYOUTS_11_3 if self.profile == "libvirt-qemu-11.3" else LAYOUTS_9_0
            self.layouts = tuple(layout for layout in declared  # type: ignore[misc]
                                 if get_profile(self.profile).layout_problem(layout) is None)
            self.disk_modes = frozenset({"internal", "external", "no"})  # type: ignore[misc]
            self.memory_files = True  # type: ignore[misc]
            self.nvram_writes_while_on = False  # the firmware alone writes a running VM's NVRAM
            self.writes_migrated_left_out = self.profile != "libvirt-qemu"  # 9.0: "Block node is read-only"
            self.operations = frozenset({"write", "start", "pause", "resume",  # type: ignore[misc]
                                         "shutdown", "snapshot", "revert", "delete", "redefine"})
            self.flags = {"snapshot": frozenset({"halt", "disk-only", "quiesce", "atomic", "live", "no-metadata"}),
                          "revert": frozenset({"running", "paused", "force"}),
                          "delete": frozenset({"children", "children-only", "metadata-only"}),
                          "redefine": frozenset({"current"})}
        else:
            self.uri = uri or "test:///default"
        self.session: Any = None  # Session (test) or EmbedHelper (QEMU)
        self.space: Workspace | None = None
        self.blocks = 0
        self.disks: tuple[Disk, ...] = DEFAULT_LAYOUT
        self.files = 0  # external overlays and memory files named so far in this example
        # libvirt 9.0, QEMU 7.2: an external memory snapshot of a paused domain leaves QEMU paused in
        # "postmigrate", its devices without write permission; HMP qemu-io then aborts QEMU
        # through the device ("bdrv_co_write_req_prepare: Assertion `child->perm & BLK_PERM_WRITE'
        # failed", seen; QEMU 10.0 likewise): until it resumes or stops, writes go through the
        # disk's format node on 7.2 and to the file, whose lock 10.0 lets go of, on 10.0
        self._inactive = False
        self.qemu_capabilities: dict[str, bytes] = {}  # libvirt's probe, kept for the next roots
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
            from .. import vcsim

            found |= vcsim.govmomi_version()  # the simulator the ESX driver talks to
        return found

    # -- life of an example ------------------------------------------------------------------

    @property
    def workdir(self) -> Path | None:
        return None if self.space is None else self.space.path

    def setup(self, blocks: int, disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> None:
        if disks != DEFAULT_LAYOUT and (not self.qemu or nvram_named(disks) not in self.layouts):
            raise DriverUnavailable(f"the libvirt driver ({self.profile}) cannot build a VM of "
                                    f"{', '.join(d.describe() for d in disks)}")
        if self.space is not None or (not self.qemu and self.session is not None and self.session.dom is not None):
            self.teardown()  # the previous example was not torn down: never leak its domain or files
        self.blocks, self.disks, self.files, self._inactive = blocks, disks, 0, False
        self.values_on_disk = qc.BlockValues()
        if self.esx is not None:
            self.session = self.esx.new_domain()
            return
        if not self.qemu:
            if self.session is None:
                libvirt.registerErrorHandler(lambda *_: None, None)
                self.session = Session(self.uri)
            self.session.call("define", dxml.TEST_DOMAIN)
            return
        if self.base is not None:  # nobody must be able to reach it: e.g. under /tmp, not /root
            embedded.make_base(self.base)
        self.space = lifetime.workspace("libvirt", room=SOCKET_ROOM, base=self.base)
        workdir = self.space.path
        try:
            if disks == DEFAULT_LAYOUT:
                image = workdir / "disk.qcow2"
                qc.create_image(image, blocks)
                others: tuple[Path, ...] = ()
                domain = qemu_domain(image)
            else:
                image, others, domain = make_disks(workdir, blocks, disks)
            with lifetime.machine_failures():
                embedded.prepare_root(workdir, image, self.qemu_capabilities, others)
            self.session = EmbedHelper(workdir)
            self.session.call("define", domain)
            if not self.qemu_capabilities:
                self.qemu_capabilities = embedded.kept_capabilities(workdir)
        except LibvirtFailure as failure:  # no domain to check: a set-up error, not an outcome
            self.teardown()
            raise EnvironmentFailure(f"libvirt could not set up the example's domain: {failure.message.strip()}"
                                     f"{lifetime.full_disk_note(workdir)}") from None
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        if self.esx is not None:
            self.esx.drop_domain()
            return
        if not self.qemu:
            if self.session is not None:
                self.session.call("undefine")
            return
        try:
            if self.session is not None:  # no undefine: its graceful destroy waited 1.4 s for QEMU
                self.session.kill()  # closes libvirt, SIGKILLs the QEMU; the root goes with its metadata
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
            if self.disks == DEFAULT_LAYOUT and op.disk in (None, "vda"):
                disk.write(self.session, self.workdir, self.values_on_disk, op.block, op.value, self._inactive_write())
            else:
                return self._write_disk(op)
        elif isinstance(op, ops.POWER_OPS):
            call("power", op.tag)
            self._inactive = self._inactive and op.tag == "pause"
        elif isinstance(op, ops.CreateSnapshot):
            if not op.name:  # libvirt names it after the epoch second (an empty name too)
                self._avoid_second_clash()
            xml = create_xml(op.name, op.description, op.memory)
            if self.qemu and (op.disks or op.memory_file is not None or "disk-only" in op.flags):
                disks = op.disks
                if op.memory_file is not None or "disk-only" in op.flags:  # a default external disk gets a file of
                    # ours too: libvirt's DISK.NAME would pass 255 bytes for a long name
                    named = dict(op.disks)
                    disks += tuple((d.name, "external") for d in self.disks if d.name not in named
                                   and d.role == "disk" and not d.readonly and d.mode != "no")
                xml = dxml.snapshot_create_xml(xml, disks, self._new_file(op.memory_file), self._overlay)
            paused = (op.memory_file is not None and self.qemu
                      and POWER.get(call("listing")[0]) == "paused")
            name = call("create", xml, _bits(op.flags, CREATE_BITS))
            self._inactive = self._inactive or paused
            return Result(True, created_id=name, created_name=name)
        elif isinstance(op, ops.Revert):
            if self.qemu:
                self._avoid_file_clash()
            call("revert", op.ref if op.ref is not None else op.id, _bits(op.flags, REVERT_BITS))
            self._inactive = self.qemu and self._paused_from_a_memory_file()
        elif isinstance(op, ops.Delete):
            call("delete", op.ref if op.ref is not None else op.id, _bits(op.flags, DELETE_BITS))
        elif isinstance(op, ops.Redefine):
            name, new = call("redefine", op, self.disks, _bits(("redefine", *op.flags), CREATE_BITS))
            return Result(True, created_id=name, created_name=name) if new else Result(True)
        else:
            return Result.error("unsupported", f"{op.tag} is not a libvirt operation")
        return Result(True)

    def _write_disk(self, op: ops.Write) -> Result:
        target = next((d for d in self.disks if d.name == (op.disk or self.disks[0].name)), None)
        if target is None:
            return Result.error("invalid-argument", f"the VM has no disk '{op.disk}'")
        if target.role == "nvram" and not 0 <= op.block < self.blocks:  # qemu-io would write the rest of the store
            return Result.error("invalid-argument", f"block {op.block} is outside the NVRAM's {self.blocks} blocks")
        assert self.workdir is not None
        disk.write_disk(self.session, self.workdir, self.values_on_disk, target, op.block, op.value,
                        self._inactive_write())
        return Result(True)

    def _paused_from_a_memory_file(self) -> bool:
        """The domain came back paused from an external memory file (11.3): as after the create,
        QEMU holds its block nodes inactive until it runs (seen: a write through the device aborts it)."""
        state, snaps, current, _ = self.session.call("listing")
        if POWER.get(state) != "paused" or current is None:
            return False
        record = next((dxml.parse_snapshot_disks(xml) for xml in snaps if parse_snapshot(xml)["name"] == current), None)
        return record is not None and record["memory_path"] is not None

    def _inactive_write(self) -> str | None:
        """How a write reaches a disk whose nodes QEMU let go of (``disk.write``): None while they are active."""
        return None if not self._inactive else "node" if self.profile == "libvirt-qemu" else "file"

    def _new_file(self, name: str | None) -> Path | None:
        """Where a memory file the operation names goes: in the example's directory."""
        assert self.workdir is not None
        return None if name is None else self.workdir / name

    def _overlay(self, disk_name: str) -> Path:
        """A fresh file for a disk a create makes external (libvirt's default, DISK.NAME, would
        clash for an unnamed snapshot, and go past 255 bytes for a long name)."""
        assert self.workdir is not None
        self.files += 1
        return self.workdir / f"{disk_name}.ext{self.files}"

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
        if self.qemu and self.disks == DEFAULT_LAYOUT:
            result["views"] = disk.views(records, domain_xml, self.blocks, self.workdir, self.values_on_disk)
        elif self.qemu:
            assert self.workdir is not None
            for r, text in zip(records, snapshot_xmls, strict=True):
                r |= dxml.parse_snapshot_disks(text)
            result["views"] = disk.disk_views(records, domain_xml, self.disks, self.blocks, self.workdir,
                                              self.values_on_disk)
            for r, shown in zip(records, result["snapshots"], strict=True):
                shown["disks"] = r["disks"]
                shown["memory_file"] = self._memory_name(r["memory_path"])
        return result

    def _memory_name(self, path: str | None) -> str | None:
        """A memory file as the create named it (a path in the example's directory)."""
        if path is None or self.workdir is None:
            return path
        return path[len(str(self.workdir)) + 1:] if path.startswith(f"{self.workdir}/") else path



def _bits(flags: tuple[str, ...], table: dict[str, int]) -> int:
    return sum(table[flag] for flag in set(flags))
