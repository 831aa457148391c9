"""The driver protocol: what an adapter for a real system implements so that the oracle can
drive it in lockstep with the model (in the spirit of a Jepsen client).

A driver's life for one example: ``setup(blocks)`` makes a fresh VM and disk; ``apply(op)``
performs one operation through the real interface and says what happened; ``observe()``
reports what can be seen, in the model's observation shape (see ``snaptree.model.observe``);
``teardown()`` removes every process and file, also after a failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from snaptree.model import Machine, ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk, layout_spec
from snaptree.model.profiles import get_profile

# What a driver may be able to observe; the checker compares exactly these.
OBSERVATIONS = frozenset({
    "names",  # the snapshots' names
    "ids",  # the snapshots' ids as the system assigns them
    "tree",  # each snapshot's parent and children
    "order",  # the order of each snapshot's children and of the roots (compared where the profile defines it)
    "current",  # the current snapshot
    "power",  # the VM's power state
    "state",  # the power state recorded in each snapshot
    "memory",  # which snapshots own a memory image
    "ram",  # which memory image each snapshot holds and which one the live RAM was loaded from
    "views",  # the blocks each snapshot and the current state read
    "disks",  # what each snapshot did with each disk, and where its memory file went (several disks)
    "description",
})


class DriverUnavailable(Exception):
    """The real component is missing or cannot start; the message says how to install it."""


class EnvironmentFailure(BaseException):
    """The machine under the driver failed (a full disk, a disk size qcow2 cannot hold): a
    set-up error, never a verdict on the driver.  Not an ``Exception``, so that Hypothesis does
    not take it for a failing example (and shrink and replay it) and no driver's ``except
    Exception`` turns it into an outcome; `snaptree check` and `replay` report it in one line
    and exit 2."""


@dataclass
class Result:
    """One operation's outcome on a driver: ok, or an error kind with the real message.
    A successful create reports the new snapshot's id and name as the system assigned them."""

    ok: bool
    kind: str | None = None
    message: str | None = None
    created_id: str | None = None
    created_name: str | None = None

    @classmethod
    def error(cls, kind: str, message: str) -> Result:
        return cls(False, kind, message)

    def brief(self) -> str:
        return "ok" if self.ok else f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class Capabilities:
    """What a driver declares it can do, asked in one place by the generator, the cover plan,
    `replay` and the CLI (``Driver.capabilities()``)."""

    operations: frozenset[str]
    flags: dict[str, frozenset[str]]
    by_id: frozenset[str]  # the operation tags that can address a snapshot by its id
    memory_choice: bool
    values: tuple[str, ...]
    observes: frozenset[str]
    layouts: tuple[tuple[Disk, ...], ...] = ()  # VMs it can build besides one qcow2 disk
    disk_modes: frozenset[str] = frozenset()  # per-disk modes it can pass to a create
    memory_files: bool = False  # a create can put the memory image in a file of its own
    nvram_writes_while_on: bool = True  # it writes the NVRAM of a running VM as its firmware would
    # it writes a disk that a migration left inactive and outside the overlays (libvirt 9.0: an
    # external memory snapshot of a paused domain that left the disk out; a paused guest writes nothing)
    writes_migrated_left_out: bool = True

    def performs(self, tag: str) -> bool:
        return tag in self.operations

    def flags_for(self, tag: str) -> frozenset[str]:
        return self.flags.get(tag, frozenset())

    def has_flags(self) -> bool:
        return any(self.flags.values())

    def addresses_by_id(self, tag: str | None = None) -> bool:
        """Whether ``tag`` (or, with None, any operation) can address a snapshot by its id."""
        return bool(self.by_id) if tag is None else tag in self.by_id

    def cannot_perform(self, op: ops.Operation) -> str | None:
        """Why the driver cannot perform ``op`` as given (what a check never draws for it), or None."""
        if op.tag not in self.operations:
            return f"it does not perform {op.tag}"
        unknown = [flag for flag in getattr(op, "flags", ()) if flag not in self.flags_for(op.tag)]
        if unknown:
            return f"it does not pass {' '.join(unknown)} to {op.tag}"
        if isinstance(op, (ops.Revert, ops.Delete)) and op.id is not None and not self.addresses_by_id(op.tag):
            return f"it does not address a snapshot by id in {op.tag}"
        if isinstance(op, ops.CreateSnapshot) and op.memory is not None and not self.memory_choice:
            return "it cannot choose between a memory and a disk-only snapshot"
        if isinstance(op, ops.CreateSnapshot) and any(mode not in self.disk_modes for _, mode in op.disks):
            return "it cannot pass per-disk snapshot modes " + " ".join(f"{d}:{m}" for d, m in op.disks)
        if isinstance(op, ops.CreateSnapshot) and op.memory_file is not None and not self.memory_files:
            return "it cannot put a memory image in a file of its own"
        return None

    def cannot_now(self, machine: Machine, op: ops.Operation) -> bool:
        """An operation the driver cannot perform as the system would in the model's present
        state: a write to a running VM's NVRAM, where only the firmware writes it."""
        if not isinstance(op, ops.Write) or op.disk is None or machine.power == "shutoff":
            return False
        index = machine.disk_index.get(op.disk)
        if index is None:
            return False
        state = machine.profile_state
        if not self.writes_migrated_left_out and getattr(state, "migration_paused", False) \
                and index in state.migration_left_out:
            return True
        return not self.nvram_writes_while_on and machine.disks[index].role == "nvram"

    def builds(self, disks: tuple[Disk, ...]) -> bool:
        """Whether the driver can build a VM of this layout."""
        return disks == DEFAULT_LAYOUT or disks in self.layouts

    def cannot_have(self, profile: str, disks: tuple[Disk, ...]) -> str | None:
        """Why a VM of these disks cannot be checked under ``profile`` with this driver, or None."""
        system = get_profile(profile)
        problem = system.layout_problem(disks)
        if problem is None and not self.builds(system.own_layout(disks)):
            problem = f"the driver does not build a VM of disks {layout_spec(disks)}"
        return problem

    def draws(self, op: ops.Operation) -> bool:
        """Whether a test plan may draw ``op`` for this driver: one it can perform, writing one
        of the values it declares (a replay writes any value)."""
        return self.cannot_perform(op) is None and (not isinstance(op, ops.Write) or op.value in self.values)


class Driver(ABC):
    """Subclass this for a real system.  Class attributes declare what it can do; the oracle
    reads them through ``capabilities()``."""

    name: ClassVar[str]  # how `snaptree check --driver NAME` finds it
    description: ClassVar[str] = ""
    profiles: ClassVar[tuple[str, ...]]  # the profiles it can claim; the first is the default
    observes: ClassVar[frozenset[str]] = frozenset()
    # operation tags it can perform (see snaptree.model.ops); others are never generated
    operations: ClassVar[frozenset[str]] = frozenset()
    # flags it can pass, per operation tag ("snapshot", "revert", "delete")
    flags: dict[str, frozenset[str]] = {}
    # revert and delete can address a snapshot by its id: True for both, or the operation tags
    by_id: ClassVar[bool | frozenset[str]] = False
    memory_choice: ClassVar[bool] = True  # create can ask for memory or a disk-only snapshot
    values: ClassVar[tuple[str, ...]] = ("", "a", "b", "c", "d")  # block values it can store
    # VMs it can build besides one qcow2 disk (setup(blocks, disks) gets one of them); what a
    # create can say per disk (disks=), and whether it can put memory in a file of its own
    layouts: tuple[tuple[Disk, ...], ...] = ()
    disk_modes: frozenset[str] = frozenset()
    memory_files: bool = False
    # False: a running VM's firmware owns its NVRAM (the flash lives in QEMU's memory), so checks
    # write the NVRAM only while the VM is off
    nvram_writes_while_on: bool = True
    writes_migrated_left_out: bool = True  # Capabilities.writes_migrated_left_out
    takes_uri: ClassVar[bool] = False  # `--uri` is an option of this driver

    def __init__(self, profile: str | None = None, **options: Any):
        chosen = profile or self.profiles[0]
        if chosen not in self.profiles:
            raise DriverUnavailable(f"driver '{self.name}' follows {', '.join(self.profiles)}, not '{chosen}'")
        self.profile = chosen
        self.options = options

    def capabilities(self) -> Capabilities:
        """What this driver, set for its profile and options, can do."""
        return capabilities_of(self)

    @classmethod
    def default_profile(cls, options: dict[str, Any]) -> str:
        """The profile to check when none is named (a driver may choose by its options, e.g. a URI)."""
        return cls.profiles[0]

    @classmethod
    def availability(cls) -> str | None:
        """None when the real component is here; otherwise why not and how to install it."""
        return None

    @classmethod
    def installed_versions(cls, options: dict[str, Any]) -> dict[str, str]:
        """The versions of the real components this driver talks to with these options, by
        component, e.g. ``{"libvirt": "11.3.0", "QEMU": "10.0.2"}``: a check's summary names
        what its verdict was reached on.  ``options`` are the driver's, with "profile" when one
        is chosen.  Empty for a driver with no real component."""
        return {}

    @classmethod
    def preflight(cls, profile: str, options: dict[str, Any]) -> None:  # noqa: B027 - most drivers need none
        """Raise DriverUnavailable, before any example runs, when the options cannot work
        (an unreachable host, refused credentials); the CLI reports it as one line."""
        return None

    @abstractmethod
    def setup(self, blocks: int) -> None:
        """A fresh VM of ``blocks`` blocks per disk; a driver that declares ``layouts`` takes
        ``setup(blocks, disks)`` as well, with the layout (a tuple of ``snaptree.model.disks.Disk``)."""

    @abstractmethod
    def apply(self, op: ops.Operation) -> Result: ...

    @abstractmethod
    def observe(self) -> dict[str, Any]: ...

    def teardown(self) -> None:  # noqa: B027 - a driver with nothing to clean up need not override
        pass

    def close(self) -> None:  # noqa: B027
        """Called once after the last example: end anything kept across examples."""


def capabilities_of(driver: Driver | type[Driver]) -> Capabilities:
    """A driver's declarations as one object; for a class, what it declares before a profile
    or options set anything (a driver may narrow or widen them per profile in ``__init__``)."""
    declared = driver.by_id
    by_id = declared if not isinstance(declared, bool) else (
        frozenset({"revert", "delete"}) if declared else frozenset())
    return Capabilities(frozenset(driver.operations), {tag: frozenset(f) for tag, f in driver.flags.items()},
                        frozenset(by_id), driver.memory_choice, tuple(driver.values), frozenset(driver.observes),
                        tuple(driver.layouts), frozenset(driver.disk_modes), driver.memory_files,
                        driver.nvram_writes_while_on, driver.writes_migrated_left_out)
