"""A Hypothesis state machine that drives the model and a driver in lockstep (the kit for
driver authors, ``snaptree.oracle.conformance_test``, runs it through ``run_check``).

Operations come from the profile's vocabulary and the driver's declared abilities
(``snaptree.oracle.generate``): histories grow a tree and work on it, with a small share of
operations that must fail (unknown names, bad flags, the wrong power state) and names with
spaces, quotes, unicode and over 255 bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from snaptree.model import ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk

from . import situations
from .driver import Driver
from .findings import Guard
from .generate import HistoryGenerator, chance
from .lockstep import Divergence, Lockstep, LockstepStep


class Listener(Protocol):
    def stepped(self, step: LockstepStep, situations: set[str]) -> None: ...
    def example_done(self, history: list[LockstepStep]) -> None: ...
    def diverged(self) -> None: ...


class SnapshotConformance(RuleBasedStateMachine):
    """Subclass with ``make_driver`` (a callable returning a Driver); ``blocks`` sets the disk.

    One rule draws every step from ``HistoryGenerator``, which looks at the model's state; so
    Hypothesis' swarm testing cannot switch snapshots off for a whole history (the generator
    varies the mix itself)."""

    make_driver: ClassVar[Callable[[], Driver]]
    blocks: ClassVar[int] = 8
    disks: ClassVar[tuple[Disk, ...] | None] = None  # every history on this layout (None: drawn)
    listener: ClassVar[Listener | None] = None
    _driver: ClassVar[Driver | None] = None  # one driver object serves every example
    guards: ClassVar[tuple[Guard, ...]] = ()  # known findings left out (snaptree.oracle.findings)
    excluded: ClassVar[Counter[str] | None] = None  # how many candidates each guard left out

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        if cls._driver is None:
            cls._driver = cls.make_driver()
        self.driver: Driver = cls._driver
        self.lockstep: Lockstep | None = None  # set up once the history's layout is drawn

    def teardown(self) -> None:
        if self.lockstep is None:
            return
        self.lockstep.__exit__(None, None, None)
        if self.listener is not None:
            self.listener.example_done(self.lockstep.history)

    def do(self, op: ops.Operation) -> None:
        assert self.lockstep is not None
        facts = situations.before(self.lockstep.model, op) if self.listener is not None else None
        try:
            step = self.lockstep.step(op)
        except Divergence:
            if self.listener is not None:
                self.listener.diverged()
            raise
        if self.listener is not None and facts is not None:
            self.listener.stepped(step, situations.reached(facts, step.model, self.lockstep.model))

    @initialize(data=st.data())
    def begin(self, data: st.DataObject) -> None:
        """Draw the VM's layout (60% of histories on one qcow2 disk, the others on the driver's
        other layouts) and the history's mix; most histories start with a running VM,
        where the profile has one."""
        layouts = self.driver.capabilities().layouts
        disks = self.disks or (data.draw(st.sampled_from(layouts), label="layout")
                               if layouts and chance(data, 0.4, "several disks") else DEFAULT_LAYOUT)
        self.lockstep = Lockstep(self.driver, self.blocks, disks).__enter__()
        self.generator = HistoryGenerator(self.driver, self.lockstep.model, self.guards, self.excluded)
        self.generator.draw_mix(data)
        if self.generator.can("start") and self.lockstep.model.profile.transitions.get("start"):
            self.do(ops.Start())

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        self.do(self.generator.next_op(data))


def conformance_machine(make_driver: Callable[[], Driver], blocks: int = 8,
                        listener: Listener | None = None, label: str = "", guards: tuple[Guard, ...] = (),
                        excluded: Counter[str] | None = None,
                        disks: tuple[Disk, ...] | None = None) -> type[SnapshotConformance]:
    """A state machine class for one driver (each class has its own driver object); ``disks``
    puts every history on that layout."""
    attrs: dict[str, Any] = {"make_driver": staticmethod(make_driver), "blocks": blocks, "listener": listener,
                             "_driver": None, "guards": guards, "excluded": excluded, "disks": disks}
    return type(f"Conformance_{label or 'driver'}", (SnapshotConformance,), attrs)
