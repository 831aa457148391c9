"""The model and a driver side by side: apply one operation to both, compare the outcome,
then compare everything the driver observes.  The first difference is a ``Divergence``."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from snaptree.model import Machine, ModelError, get_profile, observe, ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk
from snaptree.model.profiles.base import Profile
from snaptree.model.step import Outcome
from snaptree.model.step import step as model_step

from . import lifetime
from .differences import Correspondence, Difference, outcome_difference, state_differences
from .driver import Driver, DriverUnavailable, Result
from .driver_checks import observation_problem, own_frame


@dataclass
class LockstepStep:
    op: ops.Operation  # as the model got it (names and ids in the model's terms)
    model: Outcome
    driver: Result
    model_state: dict[str, Any]
    sent: ops.Operation | None = None  # as the driver got it, in its names and ids (None: as ``op``)


class Divergence(AssertionError):
    """The driver and the model part ways at the last step of ``history``."""

    disks: tuple[Disk, ...] = DEFAULT_LAYOUT  # the VM's layout, set by the Lockstep that raised it

    def __init__(self, history: Sequence[LockstepStep], differences: list[Difference], driver_state: dict[str, Any] | None):
        self.history = list(history)
        self.differences = differences
        self.driver_state = driver_state
        super().__init__(f"after step {len(self.history)} ({ops.describe(self.history[-1].op)}): {differences[0]}")

    def __reduce__(self) -> tuple[Any, ...]:
        # an exception pickles its message only: a worker process sends back the whole history
        return (_rebuilt, (type(self), (self.history, self.differences, self.driver_state), self.disks))


class DriverError(Divergence):
    """The driver raised, or observed in a shape its declarations do not allow: its own bug,
    reported like a divergence (the history up to it, a scenario that replays it), never a
    crash of snaptree.  ``phase`` is setup, apply, observe or teardown."""

    def __init__(self, history: Sequence[LockstepStep], phase: str, error: str, frame: str):
        self.phase, self.error, self.frame = phase, error, frame
        what = f"driver error in {phase}: {error.split(':', 1)[0]}"  # the kind the shrinker keeps
        self.history = list(history)
        self.differences = [Difference(what, "no error", error)]
        self.driver_state = None
        where = f"after step {len(self.history)}" if self.history else "before the first step"
        AssertionError.__init__(self, f"{where}: the driver's {phase} failed: {error} ({frame})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (type(self), (self.history, self.phase, self.error, self.frame), self.disks))

    def summary(self) -> str:
        step = f"at step {len(self.history)}" if self.history else "before the first step"
        return f"{self.error} in {self.phase} {step} ({self.frame})"


def _rebuilt(cls: type[Divergence], args: tuple[Any, ...], disks: tuple[Disk, ...]) -> Divergence:
    """A divergence from its pickle, with the layout it happened on."""
    divergence = cls(*args)
    divergence.disks = disks
    return divergence


def named_by_the_system(op: ops.Operation, profile: Profile) -> bool:
    """A create whose name the system chooses (libvirt's epoch second, HMP's date): no name, or
    an empty one where the profile takes it for none."""
    return isinstance(op, ops.CreateSnapshot) and (op.name is None or (op.name == "" and profile.empty_name_is_unnamed))


class Lockstep:
    """One history: a fresh model machine and a freshly set-up driver."""

    def __init__(self, driver: Driver, blocks: int, disks: tuple[Disk, ...] = DEFAULT_LAYOUT):
        self.driver = driver
        profile = get_profile(driver.profile)
        self.disks = profile.own_layout(disks)
        self.model = Machine(profile, blocks, self.disks)
        self.blocks = blocks
        self.match = Correspondence()
        self.history: list[LockstepStep] = []

    def __enter__(self) -> Lockstep:
        with self.driver_code("setup"):
            if self.disks == DEFAULT_LAYOUT:  # a driver of one disk need not know of layouts
                self.driver.setup(self.blocks)
            else:
                setup: Any = self.driver.setup  # setup(blocks, disks): a driver that declares layouts
                setup(self.blocks, self.disks)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # the first failure is the verdict; a teardown failing after it adds nothing
            with contextlib.suppress(Exception):
                self.driver.teardown()
            return
        with self.driver_code("teardown"):
            self.driver.teardown()

    @contextlib.contextmanager
    def driver_code(self, phase: str) -> Iterator[None]:
        """Run the driver's own code: what it raises (an Exception; a set-up failure of the
        machine or a missing component is the driver's DriverUnavailable or EnvironmentFailure,
        and a signal is the signal) becomes a DriverError with the driver's own frame."""
        try:
            yield
        except (DriverUnavailable, DriverError):
            raise
        except Exception as error:
            lifetime.raise_if_terminating()  # a signal in disguise (a SystemError from a C callback)
            message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            failure = DriverError(self.history, phase, message, own_frame(error, self.driver))
            failure.disks = self.disks
            raise failure from error

    def to_driver(self, op: ops.Operation) -> ops.Operation:
        """The same operation in the driver's names and ids, asked before the model takes the
        step.  A name the system chose for an unnamed snapshot is that snapshot's: where several
        share the model's name (ESX's ""), the one the model's lookup finds."""
        if isinstance(op, (ops.Revert, ops.Delete)):
            ref = op.ref
            if ref is not None and ref in self.match.names:
                try:
                    found = self.model.profile.lookup_ref(self.model, ref, op.tag)
                except ModelError:  # the model refuses the lookup itself (VirtualBox with no snapshot)
                    found = None
                ref = self.match.driver_name(ref, None if found is None else found.id)
            return dataclasses.replace(op, ref=ref, id=None if op.id is None else self.match.driver_id(op.id))
        if isinstance(op, ops.Redefine):  # the snapshot and its parent, as the system named them
            return dataclasses.replace(op, name=self.named_by_driver(op.name),
                                       parent=op.parent and self.named_by_driver(op.parent))
        return op

    def named_by_driver(self, name: str) -> str:
        if name not in self.match.names:
            return name
        found = self.model.profile.find_named(self.model, name)
        return self.match.driver_name(name, None if found is None else found.id)

    def step(self, op: ops.Operation) -> LockstepStep:
        try:
            return self._step(op)
        except Divergence as divergence:
            divergence.disks = self.disks
            raise
        except Exception:
            # a signal's Terminated raised inside a callback from C (libvirt's error handler)
            # comes out of the driver as a SystemError: it is the signal, never the driver's failure
            lifetime.raise_if_terminating()
            raise

    def _step(self, op: ops.Operation) -> LockstepStep:
        sent = self.to_driver(op)  # in the tree the step starts from
        model_outcome = model_step(self.model, op)
        state = observe(self.model)
        try:
            with self.driver_code("apply"):
                result = self.driver.apply(sent)
        except DriverError as error:  # the step is part of the history it ends
            self.history.append(LockstepStep(op, model_outcome, Result.error("driver-error", error.error), state))
            raise DriverError(self.history, error.phase, error.error, error.frame) from error.__cause__
        if not isinstance(result, Result):
            wrong = f"apply() returned {type(result).__name__}, not a snaptree Result"
            self.history.append(LockstepStep(op, model_outcome, Result.error("driver-error", wrong), state))
            raise DriverError(self.history, "apply", wrong, "apply()")
        step = LockstepStep(op, model_outcome, result, state, sent)
        self.history.append(step)
        difference = outcome_difference(model_outcome.ok, model_outcome.kind, result.ok, result.kind)
        new_id, new_name = model_outcome.created_id, model_outcome.created_name
        if difference is None and new_id is not None and new_name is not None:
            # an unnamed snapshot's name (libvirt's epoch second, HMP's date) is the system's clock,
            # which the model cannot know: its name and id are matched up, not compared.  Every
            # other snapshot must be listed under the name the profile's rules make of the one asked for.
            auto_named = named_by_the_system(op, self.model.profile)
            if ("ids" in self.driver.observes and not auto_named and result.created_id is not None
                    and result.created_id != new_id):
                difference = Difference("the new snapshot's id", new_id, result.created_id)
            if ("names" in self.driver.observes and not auto_named and result.created_name is not None
                    and result.created_name != new_name):
                difference = Difference("the new snapshot's name", new_name, result.created_name)
            self.match.created(new_id, new_name, result.created_id, result.created_name, auto_named)
        if difference is not None:
            raise Divergence(self.history, [difference], None)
        with self.driver_code("observe"):
            driver_state = self.driver.observe()
        observes = self.driver.observes
        ordered = self.model.profile.sibling_order and {"order", "tree"} <= observes
        problem = observation_problem(driver_state, observes, ordered)
        if problem:
            raise DriverError(self.history, "observe", f"wrong shape: {problem}", "observe()")
        differences = state_differences(state, driver_state, observes, self.match,
                                        self.model.profile.sibling_order)
        if differences:
            raise Divergence(self.history, differences, driver_state)
        return step
