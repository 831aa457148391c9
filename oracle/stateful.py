"""A Hypothesis state machine that drives the model and a driver in lockstep.

It is also the kit for driver authors (in the spirit of zarr-python's
``zarr/testing/stateful.py``): a few lines in your own pytest suite check your adapter::

    from snaptree.oracle.stateful import conformance_test
    from mypackage.snapdriver import MyDriver

    TestMyDriver = conformance_test(MyDriver, profile="libvirt-test", max_examples=50)

Operations come from the profile's vocabulary and the driver's declared abilities, including
the ones that must fail: unknown and duplicate names, deleting with children, reverting while
running, bad flag combinations, names with spaces, quotes, unicode and over 255 bytes.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from snaptree.model import ops

from .driver import Driver
from .lockstep import Lockstep, Step

POWER_TAGS = ("start", "pause", "resume", "shutdown", "suspend")
# Mostly a few plain names, so that duplicates and lookups happen; then the awkward ones.
PLAIN_NAMES = ("A", "B", "C", "D")
AWKWARD_NAMES = ("with space", "quo'te\"s", "semi;colon", "ünïcødé ✓", "-dash", "bad/name", "", "1", "2",
                 "x" * 300, "é" * 150)  # 300 bytes: cut at 255, inside a UTF-8 character
NAMES = st.one_of(st.sampled_from(PLAIN_NAMES), st.sampled_from(AWKWARD_NAMES))
TARGET_WAY = st.integers(0, 9)  # 0-6 an existing name, 7 any name, 8-9 an existing id


class Listener(Protocol):
    def stepped(self, step: Step) -> None: ...
    def example_done(self, steps: int) -> None: ...


class SnapshotConformance(RuleBasedStateMachine):
    """Subclass with ``make_driver`` (a callable returning a Driver); ``blocks`` sets the disk."""

    make_driver: ClassVar[Callable[[], Driver]]
    blocks: ClassVar[int] = 8
    listener: ClassVar[Listener | None] = None
    _driver: ClassVar[Driver | None] = None  # one driver object serves every example

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        if cls._driver is None:
            cls._driver = cls.make_driver()
        self.driver: Driver = cls._driver
        self.lockstep = Lockstep(self.driver, self.blocks).__enter__()

    def teardown(self) -> None:
        self.lockstep.__exit__(None, None, None)
        if self.listener is not None:
            self.listener.example_done(len(self.lockstep.history))

    def do(self, op: ops.Operation) -> None:
        step = self.lockstep.step(op)
        if self.listener is not None:
            self.listener.stepped(step)

    # -- drawing arguments -----------------------------------------------------------------

    def can(self, tag: str) -> bool:
        return tag in self.driver.operations

    def flags(self, data: st.DataObject, tag: str) -> tuple[str, ...]:
        available = sorted(self.driver.flags.get(tag, ()))
        if not available:
            return ()
        chosen = data.draw(st.lists(st.sampled_from(available), max_size=2, unique=True), label=f"{tag} flags")
        return tuple(chosen)

    def target(self, data: st.DataObject, tag: str) -> dict[str, str | None]:
        """A snapshot to revert to or delete: mostly an existing one by name, sometimes by id
        (where the driver can address one so), sometimes a name that may not exist."""
        model = self.lockstep.model
        names = sorted(model.by_name)
        by_id = self.driver.by_id is True or (not isinstance(self.driver.by_id, bool) and tag in self.driver.by_id)
        # the strategies are the same few each time (Hypothesis caches them): only indexes vary
        way = data.draw(TARGET_WAY, label="target by")
        if way < 7 and names:
            return {"ref": names[data.draw(st.integers(0, len(names) - 1), label="existing name")], "id": None}
        if way >= 8 and by_id and model.snapshots:
            ids = list(model.snapshots)
            return {"ref": None, "id": ids[data.draw(st.integers(0, len(ids) - 1), label="existing id")]}
        return {"ref": data.draw(NAMES, label="any name"), "id": None}

    # -- rules -------------------------------------------------------------------------------

    @initialize()
    def begin(self) -> None:
        """Most histories start with a running VM, where the profile has one."""
        if self.can("start") and self.lockstep.model.profile.transitions.get("start"):
            self.do(ops.Start())

    @precondition(lambda self: self.can("write"))
    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        block = data.draw(st.integers(0, self.blocks - 1), label="block")
        value = data.draw(st.sampled_from(self.driver.values[1:] + self.driver.values[:1]), label="value")
        self.do(ops.Write(block, value))

    @precondition(lambda self: any(self.can(tag) for tag in POWER_TAGS))
    @rule(data=st.data())
    def power(self, data: st.DataObject) -> None:
        tag = data.draw(st.sampled_from([t for t in POWER_TAGS if self.can(t)]), label="power")
        self.do({cls.tag: cls for cls in ops.POWER_OPS}[tag]())

    @precondition(lambda self: self.can("snapshot"))
    @rule(data=st.data(), name=st.one_of(NAMES, st.none()))
    def snapshot(self, data: st.DataObject, name: str | None) -> None:
        memory = data.draw(st.sampled_from([None, True, False]), label="memory") if self.driver.memory_choice else None
        self.do(ops.CreateSnapshot(name=name, memory=memory, flags=self.flags(data, "snapshot")))

    @precondition(lambda self: self.can("revert"))
    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        self.do(ops.Revert(**self.target(data, "revert"), flags=self.flags(data, "revert")))

    @precondition(lambda self: self.can("delete"))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.do(ops.Delete(**self.target(data, "delete"), flags=self.flags(data, "delete")))

    # emptying the tree as often as any other step would leave little to test: only a bigger tree
    @precondition(lambda self: self.can("delete-all") and len(self.lockstep.model.snapshots) >= 3)
    @rule()
    def delete_all(self) -> None:
        self.do(ops.DeleteAll())


def conformance_machine(make_driver: Callable[[], Driver], blocks: int = 8,
                        listener: Listener | None = None, label: str = "") -> type[SnapshotConformance]:
    """A state machine class for one driver (each class has its own driver object)."""
    attrs: dict[str, Any] = {"make_driver": staticmethod(make_driver), "blocks": blocks, "listener": listener,
                             "_driver": None}
    return type(f"Conformance_{label or 'driver'}", (SnapshotConformance,), attrs)


def conformance_test(driver: type[Driver], profile: str | None = None, blocks: int = 8, max_examples: int = 50,
                     steps: int = 20, **options: Any) -> type[unittest.TestCase]:
    """A TestCase (pytest collects it) that checks ``driver`` against ``profile``."""
    machine = conformance_machine(lambda: driver(profile, **options), blocks, label=driver.__name__)
    machine.TestCase.settings = settings(
        max_examples=max_examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    test_case: type[unittest.TestCase] = machine.TestCase
    return test_case
