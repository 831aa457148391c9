"""The model itself as a driver: for self-checks, demos, and as the base of test mutants."""

from __future__ import annotations

from typing import Any

from snaptree.model import PROFILES, Machine, ModelError, get_profile, observe, ops
from snaptree.model.disks import DEFAULT_LAYOUT, SAMPLE_LAYOUTS, Disk

from ..driver import OBSERVATIONS, Driver, Result


class ModelDriver(Driver):
    name = "model"
    description = "snaptree's own model (no real component)"
    profiles = tuple(PROFILES)
    observes = OBSERVATIONS
    operations = frozenset({"write", "start", "pause", "resume", "shutdown", "suspend", "snapshot", "revert",
                            "delete", "delete-all", "redefine"})
    by_id = True
    layouts = SAMPLE_LAYOUTS  # narrowed per profile in __init__
    memory_files = True

    def __init__(self, profile: str | None = None, **options: Any):
        super().__init__(profile, **options)
        p = get_profile(self.profile)
        # a redefine is an operation of its own (libvirt's CREATE_REDEFINE), not a create's flag
        self.flags = {"snapshot": p.create_flags - {"redefine"}, "revert": p.revert_flags, "delete": p.delete_flags,
                      "redefine": p.create_flags - {"redefine"}}
        self.layouts = tuple(p.own_layout(layout) for layout in SAMPLE_LAYOUTS if p.layout_problem(layout) is None)
        self.disk_modes, self.memory_files = p.create_disk_modes, p.external_memory
        self.machine: Machine | None = None

    def make_machine(self, blocks: int, disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> Machine:
        return Machine(get_profile(self.profile), blocks, disks)

    def setup(self, blocks: int, disks: tuple[Disk, ...] = DEFAULT_LAYOUT) -> None:
        self.machine = self.make_machine(blocks, disks)

    def apply(self, op: ops.Operation) -> Result:
        assert self.machine is not None
        try:
            created = self.machine.perform(op)
        except ModelError as error:
            return Result.error(error.kind.value, error.message)
        if created is None:
            return Result(True)
        return Result(True, created_id=created.id, created_name=created.name)

    def observe(self) -> dict[str, Any]:
        assert self.machine is not None
        return observe(self.machine)
