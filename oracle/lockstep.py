"""The model and a driver side by side: apply one operation to both, compare the outcome,
then compare everything the driver observes.  The first difference is a ``Divergence``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from snaptree.model import Machine, get_profile, observe, ops
from snaptree.model.step import Outcome
from snaptree.model.step import step as model_step

from . import lifetime
from .differences import Correspondence, Difference, outcome_difference, state_differences
from .driver import Driver, Result


@dataclass
class LockstepStep:
    op: ops.Operation  # as the model got it (names and ids in the model's terms)
    model: Outcome
    driver: Result
    model_state: dict[str, Any]


class Divergence(AssertionError):
    """The driver and the model part ways at the last step of ``history``."""

    def __init__(self, history: Sequence[LockstepStep], differences: list[Difference], driver_state: dict[str, Any] | None):
        self.history = list(history)
        self.differences = differences
        self.driver_state = driver_state
        super().__init__(f"after step {len(self.history)} ({ops.describe(self.history[-1].op)}): {differences[0]}")

    def __reduce__(self) -> tuple[Any, ...]:
        # an exception pickles its message only: a worker process sends back the whole history
        return (type(self), (self.history, self.differences, self.driver_state))


class Lockstep:
    """One history: a fresh model machine and a freshly set-up driver."""

    def __init__(self, driver: Driver, blocks: int):
        self.driver = driver
        self.model = Machine(get_profile(driver.profile), blocks)
        self.blocks = blocks
        self.match = Correspondence()
        self.history: list[LockstepStep] = []

    def __enter__(self) -> Lockstep:
        self.driver.setup(self.blocks)
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.teardown()

    def to_driver(self, op: ops.Operation) -> ops.Operation:
        """The same operation in the driver's names and ids."""
        if isinstance(op, (ops.Revert, ops.Delete)):
            return dataclasses.replace(
                op, ref=None if op.ref is None else self.match.driver_name(op.ref),
                id=None if op.id is None else self.match.driver_id(op.id))
        return op

    def step(self, op: ops.Operation) -> LockstepStep:
        try:
            return self._step(op)
        except Exception:
            # a signal's Terminated raised inside a callback from C (libvirt's error handler)
            # comes out of the driver as a SystemError: it is the signal, never the driver's failure
            lifetime.raise_if_terminating()
            raise

    def _step(self, op: ops.Operation) -> LockstepStep:
        model_outcome = model_step(self.model, op)
        result = self.driver.apply(self.to_driver(op))
        state = observe(self.model)
        step = LockstepStep(op, model_outcome, result, state)
        self.history.append(step)
        difference = outcome_difference(model_outcome.ok, model_outcome.kind, result.ok, result.kind)
        new_id, new_name = model_outcome.created_id, model_outcome.created_name
        if difference is None and new_id is not None and new_name is not None:
            # an unnamed snapshot's name (libvirt's epoch second, HMP's date) is the system's clock,
            # which the model cannot know: its name and id are matched up, not compared.  Every
            # other snapshot must be listed under the name the profile's rules make of the one asked for.
            auto_named = isinstance(op, ops.CreateSnapshot) and (
                op.name is None or (op.name == "" and self.model.profile.empty_name_is_unnamed))
            if ("ids" in self.driver.observes and not auto_named and result.created_id is not None
                    and result.created_id != new_id):
                difference = Difference("the new snapshot's id", new_id, result.created_id)
            if ("names" in self.driver.observes and not auto_named and result.created_name is not None
                    and result.created_name != new_name):
                difference = Difference("the new snapshot's name", new_name, result.created_name)
            self.match.created(new_id, new_name, result.created_id, result.created_name, auto_named)
        if difference is not None:
            raise Divergence(self.history, [difference], None)
        driver_state = self.driver.observe()
        differences = state_differences(state, driver_state, self.driver.observes, self.match,
                                     self.model.profile.sibling_order)
        if differences:
            raise Divergence(self.history, differences, driver_state)
        return step
