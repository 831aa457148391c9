"""libvirt's QEMU driver on a VM of several disks [semantics.md §9.14-§9.22]: which disks a
snapshot takes and how, raw and left-out disks, mixed modes, the firmware's NVRAM, and what an
external memory snapshot of a paused domain leaves behind (9.0)."""

from __future__ import annotations

from .. import ops
from ..disks import Disk
from ..errors import ModelError
from ..machine import Machine
from .base import INVALID_STATE, UNSUPPORTED, Profile
from .libvirt_qemu_state import QemuDriverState

MIXING = "unsupported configuration: mixing internal and external targets for a snapshot is not yet supported"


class QemuDriverDisks(Profile):
    """The disk rules of ``LibvirtQemu`` (9.0's; ``LibvirtQemu113`` overrides the hooks where 11.3 differs)."""

    def modes_for(self, machine: Machine, op: ops.CreateSnapshot, flags: frozenset[str]) -> tuple[str, ...]:
        """A disk-only snapshot, or one whose memory goes to a file, is external by default on every
        disk (virsh's --disk-only, --memspec); a read-only disk or one the domain marks snapshot='no'
        is left out [§9.14]; the NVRAM is in a snapshot when its qcow2 file takes the tag or the
        memory state carries the flash [§9.17, §9.18]."""
        external = "disk-only" in flags or op.memory_file is not None
        if op.memory_file is not None and self.migration_paused(machine):  # [§9.22]
            raise ModelError(INVALID_STATE, "operation failed: Can't migrate the vm that was paused due to previous "
                                            "migration")
        modes = list(super().modes_for(machine, op, flags))
        asked = dict(op.disks)
        nvram = next((d.name for d in machine.disks if d.role == "nvram" and d.name in asked), None)
        if nvram is not None:  # the NVRAM is no <disk> of the domain (9.0.0, 11.3.0, seen) [§9.17]
            raise self.nvram_named(nvram)
        if op.memory_file is not None and "internal" in asked.values():
            raise ModelError(UNSUPPORTED, MIXING)
        external = external or self.defaults_follow_external(asked)
        for index, disk in enumerate(machine.disks):
            if disk.name in asked:
                continue
            if disk.role == "nvram":
                modes[index] = self.nvram_mode(disk, external)
            elif disk.readonly or disk.mode == "no":
                modes[index] = "no"
            else:
                modes[index] = "external" if external else "internal"
        return tuple(modes)

    pauses_for_migration = True  # 9.0.0 and 11.3.0 alike [§9.22]
    # a shut-off domain's snapshot of external disks only is external without DISK_ONLY (11.3.0);
    # 9.0.0 takes it for an internal one and refuses the external disks (seen) [§9.16]
    external_without_memory = False

    @staticmethod
    def migration_paused(machine: Machine) -> bool:
        state = machine.profile_state
        return isinstance(state, QemuDriverState) and state.migration_paused

    def power(self, machine: Machine, operation: str) -> None:
        super().power(machine, operation)
        state = machine.profile_state
        if operation != "pause" and isinstance(state, QemuDriverState):
            state.migration_paused = False
            if state.pending_flash is not None and machine.power == "running":  # written back as it runs
                machine.put_back(state.pending_flash, tuple(i for i, d in enumerate(machine.disks) if d.role == "nvram"))
            state.pending_flash = None

    def nvram_named(self, name: str) -> ModelError:
        return ModelError(UNSUPPORTED, f"unsupported configuration: no disk named '{name}'")

    def defaults_follow_external(self, asked: dict[str, str]) -> bool:
        """Whether a disk the snapshot does not name becomes external when another is (11.3.0)."""
        return False

    def nvram_mode(self, nvram: Disk, external: bool) -> str:
        """The NVRAM in a snapshot without memory (with memory, QEMU's migration stream carries
        the flash, which a load writes back to the file [§9.18]): 9.0 takes a shut-off domain's
        internal snapshot of vda only (firmware='efi'); an external one leaves the NVRAM alone [§9.17]."""
        return "no"

    def layout_problem(self, disks: tuple[Disk, ...]) -> str | None:
        if self.name == "libvirt-qemu" and any(d.role == "nvram" and d.format == "qcow2" for d in disks):
            return "libvirt 9.0 has no qcow2 NVRAM: it drops <nvram format=...> and QEMU gets the file as raw [§9.17]"
        return super().layout_problem(disks)

    def check_disks(self, machine: Machine, op: ops.CreateSnapshot, modes: tuple[str, ...], memory: bool,
                    flags: frozenset[str]) -> None:
        running = machine.power != "shutoff"
        disks = list(zip(machine.disks, modes, strict=True))
        internal = [d for d, mode in disks if mode == "internal" and d.role == "disk"]
        external = [d for d, mode in disks if mode == "external"]
        # external: disk-only, or every disk external with the memory in a file (11.3: or with no memory)
        if "disk-only" in flags or (external and not internal and (
                op.memory_file is not None or (not memory and self.external_without_memory))):
            if running and internal:  # [§9.15]
                raise ModelError(UNSUPPORTED, "unsupported configuration: active qemu domains require external disk "
                                              f"snapshots; disk {internal[0].name} requested internal")
            if internal and external:  # 9.0.0 and 11.3.0 alike (seen) [§9.16]
                raise ModelError(UNSUPPORTED, MIXING)
            if not internal and not external:  # every disk left out (11.3.0, seen) [§9.15]
                raise ModelError(UNSUPPORTED, "unsupported configuration: nothing selected for snapshot")
            return
        if external:  # an internal or full system snapshot names an external disk [§9.16]
            # 9.0 names the first disk that is not internal as the domain would have it
            first = next(d for d, mode in disks if d.role == "disk" and mode != "internal"
                         and not (mode == "no" and (d.mode == "no" or d.readonly)))
            raise self.mixed_refusal(first) if not running else \
                ModelError(UNSUPPORTED, f"unsupported configuration: disk '{external[0].name}' must use snapshot mode "
                                        "'internal'")
        for disk, mode in disks:
            if mode == "no" and disk.role == "disk" and not disk.readonly:  # [§9.14]
                raise ModelError(UNSUPPORTED, "unsupported configuration: internal and full system snapshots require "
                                              "all disks to be selected for snapshot" if disk.mode == "no" else
                                 f"unsupported configuration: disk '{disk.name}' must use snapshot mode 'internal'")
        self.check_pflash(machine, running)
        chain = [s for s in (machine.current, *(machine.current.ancestors() if machine.current else ()))
                 if s is not None]
        for disk in internal:
            # a raw disk that runs on an external snapshot's qcow2 overlay takes internal snapshots (seen)
            index = machine.disk_index[disk.name]
            on_overlay = any(s.modes[index] == "external" for s in chain)
            if disk.format == "raw" and not on_overlay:  # [§9.14]
                raise ModelError(UNSUPPORTED, f"unsupported configuration: internal snapshot for disk {disk.name} "
                                              "unsupported for storage type raw")

    def mixed_refusal(self, external: Disk) -> ModelError:
        # 9.0 names the first disk that is not internal [§9.16]
        return ModelError(UNSUPPORTED, f"unsupported configuration: disk '{external.name}' must use snapshot mode "
                                       "'internal'")

    def check_pflash(self, machine: Machine, running: bool) -> None:
        if running and any(d.role == "nvram" for d in machine.disks):  # [§9.17]
            raise ModelError(UNSUPPORTED, "Operation not supported: internal snapshots of a VM with pflash based "
                                          "firmware are not supported")
