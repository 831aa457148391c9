"""The vSphere API through pyvmomi: the bundled simulator (govmomi 0.24.2's vcsim, profile vcsim),
or a real ESX host or vCenter (``url=https://USER:PASS@HOST/sdk``, ``vm=NAME``, ``insecure``;
profile esx).

Against the simulator one simulator serves the whole check, and every example gets a VM of its
own (CreateVM_Task, destroyed at teardown), so snapshot ids start at 1 each time; a simulator that
a crash left unreachable is replaced before the next example.  Against a real host the named VM
is used as it is: setup powers it off and removes all its snapshots, and snapshot ids are then
the host's (not compared, since they never restart).

Everything is read through the property collector (RetrievePropertiesEx): pyvmomi's attribute
access (``Fetch``) of an unset property crashes vcsim 0.24.2's request, and a task whose entity
is a snapshot breaks pyvmomi 9.1's ``task.info``, so tasks are polled by ``info.state``
[semantics.md §2].  A request the server drops (vcsim's handler panicked: the connection is
reset) is the outcome ``crashed``.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import time
from typing import Any
from urllib.parse import unquote, urlparse

from snaptree.model import ops

from .. import lifetime
from ..driver import Driver, DriverUnavailable, Result
from ..errors import hide_secrets
from . import vcsim

try:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl
except ImportError:  # reported by availability()
    vim = vmodl = None  # type: ignore[assignment]

INSTALL = ".venv/bin/pip install pyvmomi"
TASK_TIMEOUT = 60.0
CALL_TIMEOUT = 30  # seconds for one SOAP request: a simulator wedged by a crash must not hang the check
POWER = {"poweredOn": "running", "poweredOff": "shutoff", "suspended": "suspended"}
CRASHED = "crashed"  # the server dropped the request (model.errors.ErrorKind.CRASHED)
# connection failures that mean the server dropped the request
DROPPED = (ConnectionError, http.client.HTTPException, TimeoutError, ssl.SSLError)


class Crashed(Exception):
    pass


def error_kind(fault: Any) -> str:
    """A vSphere fault as a model error kind."""
    if isinstance(fault, (vim.fault.InvalidPowerState, vim.fault.InvalidState)):
        return "invalid-state"
    if isinstance(fault, (vim.fault.NotFound, vmodl.fault.ManagedObjectNotFound)):
        return "not-found"
    if isinstance(fault, vmodl.fault.InvalidArgument):
        return "invalid-argument"
    if isinstance(fault, vmodl.fault.NotSupported):
        return "unsupported"
    return f"vsphere-{type(fault).__name__}"


def fault_message(fault: Any) -> str:
    return str(getattr(fault, "msg", "") or getattr(fault, "localizedMessage", "") or type(fault).__name__)


class Session:
    """One login and the property collector; every vSphere call the driver makes."""

    def __init__(self, host: str, port: int, user: str, password: str, insecure: bool):
        try:
            self.si = SmartConnect(host=host, port=port, user=user, pwd=password, disableSslCertValidation=insecure,
                                   connectionPoolTimeout=CALL_TIMEOUT)
        except vim.fault.InvalidLogin as fault:
            raise DriverUnavailable(f"login refused at {host}:{port}: {fault_message(fault)}") from None
        except (OSError, http.client.HTTPException) as error:
            raise DriverUnavailable(f"cannot reach {host}:{port}: {error}") from None
        self.content = self.si.RetrieveContent()
        self.collector = self.content.propertyCollector

    def read(self, obj: Any, *paths: str) -> dict[str, Any]:
        """Properties of one object; an unset property is absent."""
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=list(paths))])
        found = self.collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        return {p.name: p.val for o in (found.objects if found else []) for p in (o.propSet or [])}

    def wait(self, task: Any) -> Any:
        """A task's result; its fault raised as a vmodl.MethodFault."""
        deadline = time.monotonic() + TASK_TIMEOUT
        while True:
            info = self.read(task, "info.state", "info.error", "info.result")
            state = info.get("info.state")
            if state == "success":
                return info.get("info.result")
            if state == "error":
                raise info["info.error"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"a vSphere task stayed {state} for {TASK_TIMEOUT:.0f} s")
            time.sleep(0.005)

    def find_vm(self, name: str) -> Any:
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [vim.VirtualMachine], True)
        try:
            for vm in self.read(view, "view").get("view", []):
                if self.read(vm, "name").get("name") == name:
                    return vm
        finally:
            view.DestroyView()
        return None

    def new_vm(self, name: str) -> Any:
        """A powered-off VM of its own on the simulator's one host."""
        datacenter = self.content.rootFolder.childEntity[0]
        places = self.read(datacenter, "vmFolder", "hostFolder")
        compute = self.read(self.read(places["hostFolder"], "childEntity")["childEntity"][0], "resourcePool",
                            "datastore")
        pool = compute["resourcePool"]
        datastore = self.read(compute["datastore"][0], "name")["name"]
        spec = vim.vm.ConfigSpec(name=name, memoryMB=32, numCPUs=1, guestId="otherGuest",
                                 files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"))
        return self.wait(places["vmFolder"].CreateVM_Task(config=spec, pool=pool))

    def destroy_vm(self, vm: Any) -> bool:
        """Power off and destroy a VM; False when that failed (the simulator is not to be trusted)."""
        try:
            if self.read(vm, "runtime.powerState").get("runtime.powerState") != "poweredOff":
                self.wait(vm.PowerOffVM_Task())
            self.wait(vm.Destroy_Task())
        except Exception:  # noqa: BLE001 - whatever went wrong, the answer is the same
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            Disconnect(self.si)


def snapshot_records(info: Any, known: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """The snapshot tree as observation records in creation (id) order, the snapshot objects
    by id, and the current snapshot's id.  ``known`` maps every snapshot object seen so far to
    its id: vcsim can leave current on a removed snapshot, which is then reported by that id."""
    records: list[dict[str, Any]] = []
    objects: dict[str, Any] = {}
    current_ref = getattr(info, "currentSnapshot", None) if info is not None else None
    current = None

    def walk(trees: Any, parent: str | None) -> None:
        nonlocal current
        for tree in trees or []:
            sid = str(tree.id)
            objects[sid] = tree.snapshot
            known[tree.snapshot._moId] = sid
            if current_ref is not None and tree.snapshot._moId == current_ref._moId:
                current = sid
            children = list(tree.childSnapshotList or [])
            records.append({"name": tree.name, "id": sid, "parent": parent, "children": [str(c.id) for c in children],
                            "memory": None, "memory_image": None, "state": POWER.get(str(tree.state), str(tree.state)),
                            "description": tree.description or "", "order": len(records)})
            walk(children, sid)

    walk(getattr(info, "rootSnapshotList", None) if info is not None else None, None)
    if current is None and current_ref is not None:
        current = known.get(current_ref._moId, f"(unknown {current_ref._moId})")
    records.sort(key=lambda r: int(r["id"]))
    return records, objects, current


def preorder_named(info: Any, name: str) -> Any:
    """The first snapshot with this name in a depth-first, pre-order walk (libvirt's ESX lookup)."""
    stack = list(reversed(getattr(info, "rootSnapshotList", None) or [])) if info is not None else []
    while stack:
        tree = stack.pop()
        if tree.name == name:
            return tree.snapshot
        stack.extend(reversed(tree.childSnapshotList or []))
    return None


class VsphereDriver(Driver):
    name = "vsphere"
    description = "vSphere API via pyvmomi: the bundled vcsim (govmomi 0.24.2), or an ESX host / vCenter (--url)"
    profiles = ("vcsim", "esx")
    observes = frozenset({"names", "ids", "tree", "current", "power", "state", "description"})
    operations = frozenset({"start", "shutdown", "suspend", "snapshot", "revert", "delete", "delete-all"})
    flags = {"snapshot": frozenset({"quiesce"}), "revert": frozenset({"suppress-power-on"}),
             "delete": frozenset({"remove-children"})}
    by_id = True
    memory_choice = True
    values = ("",)  # vSphere's API carries no disk data

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        if vim is None:
            raise DriverUnavailable(f"pyvmomi is not installed: {INSTALL}")
        self.url = options.get("url")
        self.vm_name = options.get("vm")
        self.insecure = bool(options.get("insecure"))
        if self.url:
            parts = urlparse(self.url)
            if parts.scheme != "https" or not parts.hostname:
                raise DriverUnavailable(f"--url '{hide_secrets(self.url)}' is not https://USER:PASS@HOST/sdk")
            if not self.vm_name:
                raise DriverUnavailable("--url needs --vm NAME: the VM whose snapshots are checked")
            self.target = (parts.hostname, parts.port or 443, unquote(parts.username or ""),
                           unquote(parts.password or ""))
            self.observes = self.observes - {"ids"}  # type: ignore[misc]  # the VM's counter never restarts
        elif self.vm_name or self.insecure:
            raise DriverUnavailable("--vm and --insecure are for a real host, with --url")
        else:
            problem = vcsim.missing()
            if problem and not vcsim.SOURCE.is_file():
                raise DriverUnavailable(problem)
        self.simulator: vcsim.Simulator | None = None
        self.session: Session | None = None
        self.vm: Any = None
        self.broken = False  # the simulator is in doubt: a fresh one for the next example
        self.examples = 0
        self.known: dict[str, str] = {}  # snapshot object -> id, for a current snapshot removed since
        self.crashed: dict[str, Any] | None = None  # after a crash: the last observation made before it
        self.last: dict[str, Any] = {}
        # the VM's power state and snapshot info as last read, while no task has run since: the
        # next lookup of a snapshot, or the observation after a create, need not read them again
        self.fresh: dict[str, Any] | None = None

    @classmethod
    def default_profile(cls, options: dict[str, Any]) -> str:
        return "esx" if options.get("url") else "vcsim"

    @classmethod
    def availability(cls) -> str | None:
        if vim is None:
            return f"pyvmomi is not installed: {INSTALL}"
        return None

    @classmethod
    def installed_versions(cls, options: dict[str, Any]) -> dict[str, str]:
        # the bundled simulator's library; a real host's version is its own business (about.version)
        return {} if options.get("url") else vcsim.govmomi_version()

    @classmethod
    def preflight(cls, profile: str, options: dict[str, Any]) -> None:
        """Connect once (and find the VM), so that a bad URL, refused credentials, a missing VM or
        a simulator that does not start are reported before the check begins."""
        driver = cls(profile, **options)
        try:
            session = driver.connect()
            if driver.url and session.find_vm(str(driver.vm_name)) is None:
                raise DriverUnavailable(f"no VM named '{driver.vm_name}' at {driver.target[0]}")
        finally:
            driver.close()

    # -- life of an example ------------------------------------------------------------------

    def connect(self) -> Session:
        if self.session is not None and not self.broken:
            return self.session
        self.close()
        if self.url:
            host, port, user, password = self.target
            self.session = Session(host, port, user, password, self.insecure)
        else:
            self.simulator = vcsim.Simulator()
            sim = self.simulator
            self.session = Session(sim.host, sim.port, sim.user, sim.password, insecure=True)
        self.broken = False
        return self.session

    def setup(self, blocks: int) -> None:
        if self.vm is not None:
            self.teardown()
        session = self.connect()
        self.examples += 1
        self.known, self.crashed, self.fresh = {}, None, None
        if self.url:
            self.vm = session.find_vm(str(self.vm_name))
            if self.vm is None:
                raise DriverUnavailable(f"no VM named '{self.vm_name}' at {self.target[0]}")  # gone since preflight
            self._reset_real_vm()
        else:
            self.vm = session.new_vm(f"snaptree-{self.examples}")
        self.observe()

    def _reset_real_vm(self) -> None:
        assert self.session is not None
        if self.session.read(self.vm, "runtime.powerState").get("runtime.powerState") != "poweredOff":
            self.session.wait(self.vm.PowerOffVM_Task())
        self.session.wait(self.vm.RemoveAllSnapshots_Task())

    def teardown(self) -> None:
        if self.vm is None or self.session is None:
            return
        vm, self.vm = self.vm, None
        if self.url or self.broken or lifetime.terminating():
            # a real VM stays; a simulator in doubt is replaced, VMs and all; after a signal the
            # simulator is stopped with its VMs, and a call now may hang on the interrupted one's lock
            return
        if self.crashed is not None and not (self.simulator and self.simulator.alive()):
            self.broken = True
            return
        if not self.session.destroy_vm(vm):
            self.broken = True

    def close(self) -> None:
        if self.session is not None and not (lifetime.terminating() and self.simulator is not None):
            self.session.close()
            self.session = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None

    # -- operations --------------------------------------------------------------------------

    def apply(self, op: ops.Operation) -> Result:
        if self.crashed is not None:
            return Result.error(CRASHED, "the simulator crashed earlier in this history: nothing more is sent")
        try:
            return self._apply(op)
        except vmodl.MethodFault as fault:
            return Result.error(error_kind(fault), fault_message(fault))
        except DROPPED as error:
            self.crashed = dict(self.last, power=CRASHED)
            return Result.error(CRASHED, f"the server dropped the request: {type(error).__name__}: {error}")

    def _read_vm(self) -> dict[str, Any]:
        if self.fresh is None:
            assert self.session is not None
            self.fresh = self.session.read(self.vm, "runtime.powerState", "snapshot")
        return self.fresh

    def _snapshot_info(self) -> Any:
        return self._read_vm().get("snapshot")

    def _target(self, op: ops.Revert | ops.Delete) -> Any:
        info = self._snapshot_info()
        if op.id is not None:
            _, objects, _ = snapshot_records(info, self.known)
            found = objects.get(op.id)
            ref = op.id
        else:
            found = preorder_named(info, op.ref or "")
            ref = op.ref or ""
        if found is None:
            raise vim.fault.NotFound(msg=f"Could not find snapshot with name '{ref}'")
        return found

    def _apply(self, op: ops.Operation) -> Result:
        session, vm = self.session, self.vm
        assert session is not None
        # the snapshot a revert or delete names, found in what the last observation read
        target: Any = None
        if isinstance(op, ops.Revert | ops.Delete) and (op.ref is not None or op.id is not None):
            target = self._target(op)
        self.fresh = None  # a task changes what the VM holds
        if isinstance(op, ops.Start):
            session.wait(vm.PowerOnVM_Task())
        elif isinstance(op, ops.Shutdown):
            session.wait(vm.PowerOffVM_Task())
        elif isinstance(op, ops.Suspend):
            session.wait(vm.SuspendVM_Task())
        elif isinstance(op, ops.CreateSnapshot):
            # vSphere needs a name; an unnamed snapshot is named "" (the model names it by its clock)
            memory = op.memory if op.memory is not None else True
            snap = session.wait(vm.CreateSnapshot_Task(name=op.name or "", description=op.description,
                                                       memory=memory, quiesce="quiesce" in op.flags))
            records, objects, _ = snapshot_records(self._snapshot_info(), self.known)
            sid = next((i for i, s in objects.items() if s._moId == snap._moId), None)
            name = next((r["name"] for r in records if r["id"] == sid), None)
            return Result(True, created_id=sid, created_name=name)
        elif isinstance(op, ops.Revert):
            if op.ref is None and op.id is None:
                session.wait(vm.RevertToCurrentSnapshot_Task(suppressPowerOn="suppress-power-on" in op.flags))
            else:
                session.wait(target.RevertToSnapshot_Task(suppressPowerOn="suppress-power-on" in op.flags))
        elif isinstance(op, ops.Delete):
            session.wait(target.RemoveSnapshot_Task(removeChildren="remove-children" in op.flags))
        elif isinstance(op, ops.DeleteAll):
            session.wait(vm.RemoveAllSnapshots_Task())
        else:
            return Result.error("unsupported", f"{op.tag} is not a vSphere operation")
        return Result(True)

    # -- observation -------------------------------------------------------------------------

    def observe(self) -> dict[str, Any]:
        if self.crashed is not None:
            return self.crashed  # what a crashed server holds is not observed (see model/profiles/vcsim.py)
        found = self._read_vm()
        records, _, current = snapshot_records(found.get("snapshot"), self.known)
        for r in records:
            del r["order"]
        power = str(found.get("runtime.powerState"))
        self.last = {"current": current, "power": POWER.get(power, power), "ram": None, "snapshots": records}
        return self.last
