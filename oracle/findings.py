"""Known bugs of real components, and the guards that keep random checks off them.

Each finding is a scenario file in ``scenarios/findings/``: the steps that show the bug, the
model's (correct) expectations, and in its description what was seen and which versions are
affected.  ``snaptree replay FINDING --driver ...`` shows the divergence.  Its ``guard``
attribute names one of the guards below: while a finding exists, a random check under its
profile draws no operation the guard matches (and says how many it left out), so that a bug
already known does not end every check, while everything else is still checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from snaptree.model import Machine, ops
from snaptree.model.profiles import PROFILES, follows, version_key
from snaptree.model.profiles.libvirt_qemu_state import QemuDriverState

from . import scenario_format
from .scenario_format import parse_xml
from .situations import target_of


@dataclass(frozen=True)
class Guard:
    name: str
    what: str  # the operations it leaves out
    excludes: Callable[[Machine, ops.Operation], bool]


def _xml_special(m: Machine, op: ops.Operation) -> bool:
    return isinstance(op, ops.CreateSnapshot) and any(c in text for text in (op.name or "", op.description)
                                                      for c in "<&")


def _children_delete_over_a_branch(m: Machine, op: ops.Operation) -> bool:
    """CHILDREN or CHILDREN_ONLY over a subtree where a snapshot has two children or more, one of
    them with children of its own (a branch of leaves only is deleted fine)."""
    if not (isinstance(op, ops.Delete) and {"children", "children-only"} & set(op.flags)):
        return False
    target = target_of(m, op)
    return target is not None and any(len(node.children) >= 2 and any(c.children for c in node.children)
                                       for node in m.subtree(target))


def _delete_current_root(m: Machine, op: ops.Operation) -> bool:
    if not isinstance(op, ops.Delete) or m.current is None or m.current.parent is not None or len(m.snapshots) < 2:
        return False
    return target_of(m, op) is m.current


def _qemu_state(m: Machine) -> QemuDriverState:
    """libvirt-qemu's records of the machine (its files, its qcow2 tables), read and never made:
    a guard must not change the machine; an empty record where there is none yet."""
    state = m.profile_state
    return state if isinstance(state, QemuDriverState) else QemuDriverState()


def _internal_revert_over_external_base(m: Machine, op: ops.Operation) -> bool:
    """A revert to an internal snapshot in a file that an external snapshot uses as its base:
    the revert applies it to that file in place (the model follows which file is which, also
    of overlays whose metadata a METADATA_ONLY delete or NO_METADATA left out)."""
    if not isinstance(op, ops.Revert):
        return False
    target, state = target_of(m, op), _qemu_state(m)
    if target is None or target.id in state.external:
        return False
    return state.file_of.get(target.id, state.live) in state.base_of.values()


def _external_delete_over_internal_children(m: Machine, op: ops.Operation) -> bool:
    """A plain delete of an external snapshot with an internal child: the child lives in the
    external snapshot's overlay, which the delete commits into its base and removes."""
    if not isinstance(op, ops.Delete) or op.flags:
        return False
    target, external = target_of(m, op), _qemu_state(m).external
    return target is not None and target.id in external and any(c.id not in external for c in target.children)


def _metadata_only_delete_of_external_parent(m: Machine, op: ops.Operation) -> bool:
    """libvirt rewrites the children's definitions to name the deleted snapshot's base image."""
    if not isinstance(op, ops.Delete) or "metadata-only" not in op.flags:
        return False
    target = target_of(m, op)
    return target is not None and target.id in _qemu_state(m).external and bool(target.children)


def _revert_to_external_without_current(m: Machine, op: ops.Operation) -> bool:
    """A revert to an external snapshot while no snapshot is current (a failed create's, or a
    deleted current root's doing)."""
    if not isinstance(op, ops.Revert) or m.current is not None:
        return False
    target = target_of(m, op)
    return target is not None and target.id in _qemu_state(m).external


def _internal_create_over_a_leftover_tag(m: Machine, op: ops.Operation) -> bool:
    """A shut-off domain's internal snapshot under a name its image already has (left by a
    METADATA_ONLY delete): qemu-img adds a second tag, and lookups find the first."""
    if not (isinstance(op, ops.CreateSnapshot) and m.power == "shutoff" and "disk-only" not in op.flags and op.name):
        return False
    state = _qemu_state(m)
    return any(entry.name == op.name and entry.file == state.live for entry in state.qcow2)


def _revert_to_external_over_internal(m: Machine, op: ops.Operation) -> bool:
    """A revert to an external snapshot while an internal snapshot lives in one of the snapshot's
    overlays (its own, or one a revert to it made): after an internal snapshot of that overlay
    was deleted, or on a second revert, 11.3 deletes the overlay with the others' data."""
    if not isinstance(op, ops.Revert):
        return False
    target, state = target_of(m, op), _qemu_state(m)
    if target is None or target.id not in state.external:
        return False
    overlays = (f"overlay-{target.id}-", f"revert-{target.id}-")
    return any(state.file_of.get(s.id, "").startswith(overlays) for s in m.snapshots.values())


def _revert_to_external_leaving_a_disk_out(m: Machine, op: ops.Operation) -> bool:
    """A revert to an external snapshot that left a disk (not the NVRAM) out."""
    if not isinstance(op, ops.Revert):
        return False
    target = target_of(m, op)
    return (target is not None and target.id in _qemu_state(m).external
            and any(m.disks[i].role == "disk" for i in target.left_out()))


def _revert_to_redefined_over_a_removed_file(m: Machine, op: ops.Operation) -> bool:
    """A revert to a redefined snapshot QEMU has no tag of, whose definition names a file a
    delete has since removed: the failed revert leaves the domain defined on that file."""
    if not isinstance(op, ops.Revert):
        return False
    target = target_of(m, op)
    return target is not None and _qemu_state(m).removed_file(target.id) is not None


def _failed_revert_with_pflash(m: Machine, op: ops.Operation) -> bool:
    """A revert to a snapshot that does not exist, on a VM with a pflash NVRAM: QEMU's failed
    load leaves a state in which two more loads and a `cont` crash it."""
    return (isinstance(op, ops.Revert) and target_of(m, op) is None
            and any(d.role == "nvram" for d in m.disks))


GUARDS = {g.name: g for g in (
    Guard("unescaped-xml", "creates whose name or description holds '<' or '&'", _xml_special),
    Guard("children-delete-over-a-branch", "CHILDREN and CHILDREN_ONLY deletes over a branch that goes on below",
          _children_delete_over_a_branch),
    Guard("delete-current-root", "deletes of the current snapshot while it is a root and others remain",
          _delete_current_root),
    Guard("internal-revert-over-external-base", "reverts to an internal snapshot whose image file an external "
          "snapshot uses as its base", _internal_revert_over_external_base),
    Guard("metadata-only-delete-of-external-parent", "METADATA_ONLY deletes of an external snapshot with children",
          _metadata_only_delete_of_external_parent),
    Guard("revert-to-external-without-current", "reverts to an external snapshot while no snapshot is current",
          _revert_to_external_without_current),
    Guard("internal-create-over-a-leftover-tag", "shut-off internal snapshots under a name the image already "
          "has", _internal_create_over_a_leftover_tag),
    Guard("external-delete-over-internal-children", "deletes of an external snapshot that has an internal child",
          _external_delete_over_internal_children),
    Guard("revert-to-external-over-internal", "reverts to an external snapshot while an internal snapshot lives "
          "in one of its overlays", _revert_to_external_over_internal),
    Guard("revert-to-redefined-over-a-removed-file", "reverts to a redefined snapshot without a tag whose "
          "definition names a file a delete removed", _revert_to_redefined_over_a_removed_file),
    Guard("failed-revert-with-pflash", "reverts to a missing snapshot on a VM with a pflash NVRAM",
          _failed_revert_with_pflash),
    Guard("revert-to-external-leaving-a-disk-out", "reverts to an external snapshot that left a disk out",
          _revert_to_external_leaving_a_disk_out),
)}


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the scenario library
    profile: str
    guard: Guard | None
    title: str
    affects: tuple[tuple[str, str], ...] = ()  # (component, version) seen affected
    driver: str = ""  # the driver (and URI) that replays it
    uri: str = ""
    race: bool = False  # a replay may take the common path and agree

    def replay_args(self) -> list[str]:
        return ["replay", self.path, "--driver", self.driver, *(["--uri", self.uri] if self.uri else [])]

    def seen_on(self, installed: dict[str, str]) -> bool:
        """Whether an installed version is one this finding was seen on (and must reproduce on)."""
        return any(component in installed and version_key(installed[component]) == version_key(version)
                   for component, version in self.affects)


@cache
def findings() -> tuple[Finding, ...]:
    folder = scenario_format.library().joinpath("findings")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda f: f.name) if folder.is_dir() else []:
        if entry.name.endswith(".xml"):
            root = parse_xml(entry.read_bytes())
            guard = root.get("guard")
            if guard is not None and guard not in GUARDS:
                raise KeyError(f"findings/{entry.name} names an unknown guard '{guard}' (known: {', '.join(GUARDS)})")
            affects = tuple(tuple(item.split(None, 1)) for item in root.get("affects", "").split(",") if item.strip())
            found.append(Finding(f"findings/{entry.name}", root.get("profile", ""), GUARDS.get(guard or ""),
                                 " ".join(root.findtext("title", "").split()),
                                 affects, root.get("driver", ""), root.get("uri", ""),  # type: ignore[arg-type]
                                 root.get("race") == "yes"))
    return tuple(found)


def guards_for(profile: str) -> list[tuple[Guard, Finding]]:
    """The guards of the known findings of this profile's family, at a version it follows."""
    checked = PROFILES[profile]

    def applies(finding: Finding) -> bool:
        own = PROFILES[finding.profile]
        return ((own.family or own.name) == (checked.family or checked.name)
                and (not finding.affects or any(follows(checked, {c: v}) for c, v in finding.affects)))

    return [(f.guard, f) for f in findings() if f.guard is not None and applies(f)]
