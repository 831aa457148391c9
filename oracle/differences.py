"""Comparing what the model and a driver observe.

Systems name things their own way: VirtualBox gives UUIDs, libvirt names an unnamed snapshot
after the clock, a real guest's memory is a counter value, not a token.  A ``Correspondence``
learns, as the history goes on, which driver id, name and memory image stand for which of the
model's; the comparison is made in the model's terms, and a difference names each snapshot
the one way all text output does (``escape.snapshot_labels``), by the system's names and ids:
the name the system lists (which is the one asked for, unless the system chose it), ``#id``
where names repeat, ``""`` for the empty name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snaptree.model.disks import view_key_order
from snaptree.model.escape import shown, snapshot_labels


@dataclass
class Difference:
    what: str  # e.g. "snapshot B: parent", "outcome", "view of C, block 3"
    model: Any
    driver: Any

    def __str__(self) -> str:
        return f"{self.what}: model {_show(self.model)}, driver {_show(self.driver)}"


class Label(str):
    """A snapshot's label, already in the form text output shows (not quoted again)."""


def _show(value: Any) -> str:
    """A compared value in words: no Python reprs (``none``, ``yes``, ``""``, ``[A, B]``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Label):
        return str(value)
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


@dataclass
class Correspondence:
    ids: dict[str, str] = field(default_factory=dict)  # model id -> driver id
    names: dict[str, str] = field(default_factory=dict)  # model name -> driver name (auto-named snapshots)
    images: dict[str, str] = field(default_factory=dict)  # model memory image -> driver's
    images_back: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)  # model id -> the name the system chose for it

    def created(self, model_id: str, model_name: str, driver_id: str | None, driver_name: str | None,
                auto_named: bool) -> None:
        """Record a new snapshot's driver id; its name only where the system chose it (an
        unnamed snapshot named after the clock): a name the user gave must come back as is."""
        if driver_id is not None:
            self.ids[model_id] = driver_id
        if auto_named and driver_name is not None and driver_name != model_name:
            self.names[model_name] = driver_name
            self.chosen[model_id] = driver_name
        else:  # ids are reused (qemu's): what the system chose for a deleted snapshot is not this one's name
            self.chosen.pop(model_id, None)

    def driver_id(self, model_id: str) -> str:
        return self.ids.get(model_id, model_id)

    def driver_name(self, model_name: str, model_id: str | None = None) -> str:
        """The name the driver knows a snapshot by: for ``model_id``, the name the system chose
        for that snapshot if it chose one; without it, the name it chose last for a snapshot the
        model calls ``model_name`` (unnamed snapshots can share the model's name: ESX's "")."""
        if model_id is not None:
            return self.chosen.get(model_id, model_name)
        return self.names.get(model_name, model_name)

    def same_image(self, model_image: str | None, driver_image: str | None) -> bool:
        """Memory images correspond one to one; the first pairing of each fixes it."""
        if model_image is None or driver_image is None:
            return model_image is None and driver_image is None
        known = self.images.get(model_image)
        back = self.images_back.get(driver_image)
        if known is None and back is None:
            self.images[model_image], self.images_back[driver_image] = driver_image, model_image
            return True
        return known == driver_image and back == model_image


def outcome_difference(model_ok: bool, model_kind: str | None, driver_ok: bool, driver_kind: str | None) -> Difference | None:
    model_side = "ok" if model_ok else model_kind
    driver_side = "ok" if driver_ok else driver_kind
    return None if model_side == driver_side else Difference("outcome", model_side, driver_side)


def state_differences(model: dict[str, Any], driver: dict[str, Any], observes: frozenset[str],
                   match: Correspondence, sibling_order: bool = False) -> list[Difference]:
    """Every difference between two observations, in the model's terms, restricted to what
    the driver observes; the order of siblings only where the profile defines it."""
    diffs: list[Difference] = []
    if "power" in observes and model["power"] != driver["power"]:
        diffs.append(Difference("power", model["power"], driver["power"]))
    model_snaps = {s["id"]: s for s in model["snapshots"]}
    to_model = {driver_id: model_id for model_id, driver_id in match.ids.items()}
    driver_snaps = {to_model.get(s["id"], s["id"]): s for s in driver["snapshots"]}
    label = _labels(model_snaps, driver_snaps, match)
    for missing in model_snaps.keys() - driver_snaps.keys():
        diffs.append(Difference(f"snapshot {label[missing]}", "exists", "absent"))
    for extra in driver_snaps.keys() - model_snaps.keys():
        diffs.append(Difference(f"snapshot {label[extra]}", "absent", "exists"))

    def translate(driver_id: str | None) -> str | None:
        return None if driver_id is None else to_model.get(driver_id, driver_id)

    if "current" in observes and model["current"] != translate(driver["current"]):
        diffs.append(Difference("current snapshot", _name(label, model["current"]),
                                _name(label, translate(driver["current"]))))
    ordered = sibling_order and "order" in observes and "tree" in observes

    def in_order(ids: list[str]) -> list[str | None]:
        return [_name(label, i) for i in ids]

    if ordered and model["roots"] != [translate(i) for i in driver["roots"]]:
        diffs.append(Difference("order of the root snapshots", in_order(model["roots"]),
                                in_order([translate(i) or "" for i in driver["roots"]])))
    if "ram" in observes and not match.same_image(model.get("ram"), driver.get("ram")):
        diffs.append(Difference("memory image the RAM came from", model.get("ram"), driver.get("ram")))
    for sid in sorted(model_snaps.keys() & driver_snaps.keys(), key=lambda i: list(model_snaps).index(i)):
        ms, ds = model_snaps[sid], driver_snaps[sid]
        what = f"snapshot {label[sid]}"
        if "names" in observes and match.driver_name(ms["name"], sid) != ds["name"]:  # the model's side as compared
            diffs.append(Difference(f"{what}: name", match.driver_name(ms["name"], sid), ds["name"]))
        if "tree" in observes and ms["parent"] != translate(ds["parent"]):
            diffs.append(Difference(f"{what}: parent", _name(label, ms["parent"]),
                                    _name(label, translate(ds["parent"]))))
        if ordered and ms["children"] != [translate(i) for i in ds["children"]]:
            diffs.append(Difference(f"{what}: order of its children", in_order(ms["children"]),
                                    in_order([translate(i) or "" for i in ds["children"]])))
        if "state" in observes and ms["state"] != ds["state"]:
            diffs.append(Difference(f"{what}: recorded state", ms["state"], ds["state"]))
        if "memory" in observes and ms["memory"] != ds["memory"]:
            diffs.append(Difference(f"{what}: has memory", ms["memory"], ds["memory"]))
        if ("ram" in observes and ms["memory"] and ds["memory"]
                and not match.same_image(ms["memory_image"], ds["memory_image"])):
            diffs.append(Difference(f"{what}: memory image", ms["memory_image"], ds["memory_image"]))
        if "description" in observes and ms["description"] != ds["description"]:
            diffs.append(Difference(f"{what}: description", ms["description"], ds["description"]))
        if "disks" in observes:
            for key, words in (("disks", "what it did with each disk"), ("memory_file", "memory file")):
                if ms.get(key) != ds.get(key):
                    diffs.append(Difference(f"{what}: {words}", ms.get(key), ds.get(key)))
        if "views" in observes:
            diffs.extend(_views(f"view of {label[sid]}", model["views"]["snapshots"][sid],
                                driver["views"]["snapshots"][ds["id"]]))
    if "views" in observes:
        diffs.extend(_views("view of the current state", model["views"]["current"], driver["views"]["current"]))
    return diffs


def _views(label: str, model: dict[str, str], driver: dict[str, str]) -> list[Difference]:
    blocks = sorted(model.keys() | driver.keys(), key=view_key_order)
    return [Difference(f"{label}, block {b}", model.get(b, ""), driver.get(b, ""))
            for b in blocks if model.get(b, "") != driver.get(b, "")]


def _labels(model_snaps: dict[str, dict[str, Any]], driver_snaps: dict[str, dict[str, Any]],
            match: Correspondence) -> dict[str, Label]:
    """Every snapshot either side lists, by model id, labelled in the system's names and ids:
    one label for one snapshot on both sides of a difference."""
    named = {key: (match.driver_id(key), match.driver_name(s["name"], key)) for key, s in model_snaps.items()}
    named.update({key: (s["id"], s["name"]) for key, s in driver_snaps.items() if key not in named})
    return {key: Label(text) for key, text in snapshot_labels(named).items()}


def _name(labels: dict[str, Label], sid: str | None) -> str | None:
    """A snapshot reference as a difference shows it (an id neither side lists stays an id)."""
    return None if sid is None else labels.get(sid, sid)
