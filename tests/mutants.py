"""The model with one rule broken each: drivers that `snaptree check` must catch.

Each is a ModelDriver whose machine or profile differs from the model in exactly one rule,
so a check that passes them would be a check that cannot see that rule."""

from __future__ import annotations

from typing import Any, ClassVar

from snaptree.model import Machine, get_profile, ops
from snaptree.model.disks import DEFAULT_LAYOUT, Disk
from snaptree.model.machine import Snapshot
from snaptree.model.profiles.base import Profile
from snaptree.oracle.driver import Result
from snaptree.oracle.drivers.model import ModelDriver


class _Mutant(ModelDriver):
    profiles: ClassVar[tuple[str, ...]]
    machine_class: ClassVar[type[Machine]] = Machine

    def make_machine(self, blocks: int, disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> Machine:
        profile = self.mutate(get_profile(self.profile))
        return self.machine_class(profile, blocks, disks)

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
    def restore(self, node: Snapshot, keep: tuple[int, ...] | None = None) -> None:
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


# -- the blind spots of uniformly random histories (each needs a tree the seed is about) ----------

class _FirstChildMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        others = [(child, dict(child.delta)) for child in node.children[1:]]
        super().remove(node, children_last)
        for child, delta in others:
            child.delta = delta  # the later children get nothing of the deleted overlay


class MergeIntoFirstChildOnly(_Mutant):
    """Delete merges the snapshot's differences into its first child only (the seed: into every child)."""

    name = "mutant-merge-first-child-only"
    profiles = ("esx", "libvirt-test")
    machine_class = _FirstChildMachine


class _ParentWinsMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        for child in node.children:
            child.delta = {**child.delta, **node.delta}  # the older write wins over the child's own
        super().remove(node, children_last)


class MergeLetsParentWin(_Mutant):
    """Merging a deleted snapshot into its child overwrites the blocks the child wrote itself."""

    name = "mutant-merge-parent-wins"
    profiles = ("esx", "libvirt-test")
    machine_class = _ParentWinsMachine


class _LeafIntoParentMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        if not node.children and self.current is not node and node.parent is not None:
            node.parent.delta.update(node.delta)  # a deleted leaf's writes leak into its parent
        super().remove(node, children_last)


class LeafMergedIntoParent(_Mutant):
    """Deleting a leaf merges its overlay into its parent, changing what the parent reads."""

    name = "mutant-leaf-into-parent"
    profiles = ("esx", "libvirt-test")
    machine_class = _LeafIntoParentMachine


class _CurrentToChildMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        heir = node.children[0] if self.current is node and node.children else None
        super().remove(node, children_last)
        if heir is not None:
            self.current = heir  # the current pointer moves down to the first child, not up to the parent


class CurrentMovesToChild(_Mutant):
    """Deleting the current snapshot while it has children makes its first child current."""

    name = "mutant-current-moves-to-child"
    profiles = ("libvirt-test", "esx")
    machine_class = _CurrentToChildMachine


class _NewestParentMachine(Machine):
    def take(self, name: str, snapshot_id: str, memory: bool, state: str, *args: Any) -> Snapshot:
        newest = list(self.snapshots.values())[-1] if self.snapshots else None
        if newest is not None and self.current is not None and self.current is not newest:
            self.current = newest  # after a revert the new snapshot hangs under the newest one
        return super().take(name, snapshot_id, memory, state, *args)


class BranchUnderNewest(_Mutant):
    """A snapshot taken after reverting to an inner snapshot becomes a child of the newest snapshot."""

    name = "mutant-branch-under-newest"
    profiles = ("libvirt-test", "esx")
    machine_class = _NewestParentMachine


class NamesLowerCased(_Mutant):
    """The system lists a snapshot under its name in lower case."""

    name = "mutant-names-lower-cased"
    profiles = ("esx", "libvirt-test")

    def apply(self, op: ops.Operation) -> Result:
        result = super().apply(op)
        if result.created_name is not None:
            result.created_name = result.created_name.lower()
        return result

    def observe(self) -> dict[str, Any]:
        state = super().observe()
        for snap in state["snapshots"]:
            snap["name"] = snap["name"].lower()
        return state


class _PrependingMachine(Machine):
    def take(self, name: str, snapshot_id: str, memory: bool, state: str, *args: Any) -> Snapshot:
        siblings = self.current.children if self.current is not None else self.roots
        node = super().take(name, snapshot_id, memory, state, *args)
        siblings.insert(0, siblings.pop())  # a new child goes first among its siblings
        return node


class NewestChildFirst(_Mutant):
    """A new snapshot is listed before its older siblings (childSnapshotList order reversed)."""

    name = "mutant-newest-child-first"
    profiles = ("esx", "vbox")
    machine_class = _PrependingMachine


class NewestNameWins(_Mutant):
    """A name that several snapshots share finds the newest of them (a name -> snapshot map
    overwritten by every create), not the first in pre-order."""

    name = "mutant-newest-name-wins"
    profiles = ("esx", "vbox")

    def mutate(self, profile: Profile) -> Profile:
        def find_named(m: Machine, name: str) -> Snapshot | None:
            same = m.named(name)
            return same[-1] if same else None

        profile.find_named = find_named  # type: ignore[method-assign]
        return profile


class DescriptionDropped(_Mutant):
    """The snapshot's description is not kept."""

    name = "mutant-description-dropped"
    profiles = ("libvirt-test", "esx")

    def observe(self) -> dict[str, Any]:
        state = super().observe()
        for snap in state["snapshots"]:
            snap["description"] = ""
        return state


class PausedRecordedRunning(_Mutant):
    """A snapshot of a paused VM records the state 'running'."""

    name = "mutant-paused-recorded-running"
    profiles = ("libvirt-test",)

    def mutate(self, profile: Profile) -> Profile:
        original = profile.recorded_state

        def recorded_state(m: Machine, memory: bool, flags: frozenset[str]) -> str:
            state = original(m, memory, flags)
            return "running" if state == "paused" else state

        profile.recorded_state = recorded_state  # type: ignore[method-assign]
        return profile


class ChildrenOnlyMovesCurrentUp(_Mutant):
    """A children-only delete with current inside the subtree makes the target's parent current
    (libvirt: the target itself, the nearest surviving ancestor)."""

    name = "mutant-children-only-current-up"
    profiles = ("libvirt-test",)

    def mutate(self, profile: Profile) -> Profile:
        original = profile.remove

        def remove(m: Machine, target: Snapshot, flags: frozenset[str]) -> None:
            inside = m.current is not None and target in m.current.ancestors()
            original(m, target, flags)
            if "children-only" in flags and inside:
                m.current = target.parent

        profile.remove = remove  # type: ignore[method-assign]
        return profile


class ChildrenDeleteOneLevel(_Mutant):
    """A delete with children removes the target and its children, but keeps the grandchildren
    (re-parented): only a tree of depth >= 3 shows it."""

    name = "mutant-children-delete-one-level"
    profiles = ("libvirt-test",)

    def mutate(self, profile: Profile) -> Profile:
        original = profile.remove

        def remove(m: Machine, target: Snapshot, flags: frozenset[str]) -> None:
            if "children" not in flags:
                return original(m, target, flags)
            for node in [*target.children, target]:
                m.remove(node)
            return None

        profile.remove = remove  # type: ignore[method-assign]
        return profile


class _FirstDiskRevertMachine(Machine):
    def restore(self, node: Snapshot, keep: tuple[int, ...] | None = None) -> None:
        others = tuple(range(1, len(self.disks)))  # every disk but the first keeps what it reads
        super().restore(node, tuple(sorted(set(others) | set(node.left_out()))))


class RevertSkipsSecondDisk(_Mutant):
    """A revert brings back the first disk only; the others keep their unsaved writes."""

    name = "mutant-revert-skips-second-disk"
    profiles = ("esx", "libvirt-test")
    machine_class = _FirstDiskRevertMachine


class _FirstDiskMergeMachine(Machine):
    def remove(self, node: Snapshot, children_last: bool = False) -> None:
        node.delta = {a: v for a, v in node.delta.items() if a < self.blocks}  # the other disks' blocks are lost
        super().remove(node, children_last)


class DeleteMergesFirstDiskOnly(_Mutant):
    """A delete merges the first disk's blocks into the children and drops the other disks'."""

    name = "mutant-delete-merges-first-disk-only"
    profiles = ("esx", "libvirt-test")
    machine_class = _FirstDiskMergeMachine


class _ExcludedRevertedMachine(Machine):
    def restore(self, node: Snapshot, keep: tuple[int, ...] | None = None) -> None:
        super().restore(node, ())  # a disk the snapshot left out goes back too


class ExcludedDiskReverted(_Mutant):
    """A revert also rolls back a disk left out of snapshots (an independent / snapshot='no' disk)."""

    name = "mutant-excluded-disk-reverted"
    profiles = ("libvirt-test", "esx")
    machine_class = _ExcludedRevertedMachine


DISK_MUTANTS = [RevertSkipsSecondDisk, DeleteMergesFirstDiskOnly, ExcludedDiskReverted]

MUTANTS = [DeleteWithoutMerge, DuplicateNotOverwritten, CurrentNotMovingToParent, RevertKeepsWrites,
           MemoryNotRestored, IdsReused, FailureChangesState, MergeIntoFirstChildOnly, MergeLetsParentWin,
           LeafMergedIntoParent, CurrentMovesToChild, BranchUnderNewest, NamesLowerCased, NewestChildFirst,
           NewestNameWins, DescriptionDropped, PausedRecordedRunning, ChildrenOnlyMovesCurrentUp,
           ChildrenDeleteOneLevel, *DISK_MUTANTS]
