"""The model with one rule broken each: drivers that `snaptree check` must catch.

Each is a ModelDriver whose machine or profile differs from the model in exactly one rule,
so a check that passes them would be a check that cannot see that rule."""

from __future__ import annotations

from typing import Any, ClassVar

from snaptree.model import Machine, get_profile
from snaptree.model.machine import Snapshot
from snaptree.model.profiles.base import Profile
from snaptree.oracle.drivers.model import ModelDriver


class _Mutant(ModelDriver):
    profiles: ClassVar[tuple[str, ...]]
    machine_class: ClassVar[type[Machine]] = Machine

    def make_machine(self, blocks: int) -> Machine:
        profile = self.mutate(get_profile(self.profile))
        return self.machine_class(profile, blocks)

    def mutate(self, profile: Profile) -> Profile:
        return profile


class _DiscardingMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        node.delta = {}  # the deleted snapshot's overlay is dropped, not merged
        super().remove(node, children_last)


class DeleteWithoutMerge(_Mutant):
    """Delete drops the snapshot's overlay instead of merging it into its children."""

    name = "mutant-delete-without-merge"
    profiles = ("esx", "vbox", "libvirt-test")
    machine_class = _DiscardingMachine


class DuplicateNotOverwritten(_Mutant):
    """HMP savevm keeps the old same-named snapshot instead of replacing it."""

    name = "mutant-duplicate-not-overwritten"
    profiles = ("qemu-hmp",)

    def mutate(self, profile: Profile) -> Profile:
        profile.duplicates = "allow"  # type: ignore[misc]
        return profile


class _StuckCurrentMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        was_current: bool = self.current is node  # type: ignore[has-type]
        super().remove(node, children_last)
        if was_current:
            self.current = None  # the pointer is dropped instead of moving to the parent


class CurrentNotMovingToParent(_Mutant):
    """Deleting the current snapshot leaves no current snapshot instead of its parent."""

    name = "mutant-current-not-moving"
    profiles = ("libvirt-test", "esx")
    machine_class = _StuckCurrentMachine


class _KeepingMachine(Machine):
    def restore(self, node: Snapshot) -> None:
        self.current = node  # the running state's writes survive the revert


class RevertKeepsWrites(_Mutant):
    """Revert keeps the running state's unsaved writes."""

    name = "mutant-revert-keeps-writes"
    profiles = ("esx", "libvirt-test", "qemu-img")
    machine_class = _KeepingMachine


class _AmnesiacMachine(Machine):
    def load_memory(self, image: str | None, power: str) -> None:
        super().load_memory(None, power)  # a revert boots afresh instead of restoring RAM


class MemoryNotRestored(_Mutant):
    """Reverting to a snapshot with memory boots the guest instead of restoring its RAM."""

    name = "mutant-memory-not-restored"
    profiles = ("libvirt-test", "qemu-hmp", "esx")
    machine_class = _AmnesiacMachine


class IdsReused(_Mutant):
    """ESX ids come from highest + 1, so a deleted snapshot's id comes back."""

    name = "mutant-ids-reused"
    profiles = ("esx",)

    def mutate(self, profile: Profile) -> Profile:
        profile.ids = "reuse"  # type: ignore[misc]
        return profile


class FailureChangesState(_Mutant):
    """A refused delete has already moved the current pointer."""

    name = "mutant-failure-changes-state"
    profiles = ("vbox",)

    def mutate(self, profile: Profile) -> Profile:
        original = profile.check_delete

        def check_delete(m: Machine, target: Snapshot, flags: Any) -> None:
            try:
                original(m, target, flags)
            except Exception:
                m.current = target.parent
                raise

        profile.check_delete = check_delete  # type: ignore[method-assign]
        return profile


MUTANTS = [DeleteWithoutMerge, DuplicateNotOverwritten, CurrentNotMovingToParent, RevertKeepsWrites,
           MemoryNotRestored, IdsReused, FailureChangesState]
