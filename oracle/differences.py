"""Comparing what the model and a driver observe.

Systems name things their own way: VirtualBox gives UUIDs, libvirt names an unnamed snapshot
after the clock, a real guest's memory is a counter value, not a token.  A ``Correspondence``
learns, as the history goes on, which driver id, name and memory image stand for which of the
model's, and the comparison speaks in the model's terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Difference:
    what: str  # e.g. "snapshot B: parent", "outcome", "view of C, block 3"
    model: Any
    driver: Any

    def __str__(self) -> str:
        return f"{self.what}: model {_show(self.model)}, driver {_show(self.driver)}"


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, str) or value == "" else f"'{value}'"


@dataclass
class Correspondence:
    ids: dict[str, str] = field(default_factory=dict)  # model id -> driver id
    names: dict[str, str] = field(default_factory=dict)  # model name -> driver name (auto-named snapshots)
    images: dict[str, str] = field(default_factory=dict)  # model memory image -> driver's
    images_back: dict[str, str] = field(default_factory=dict)

    def created(self, model_id: str, model_name: str, driver_id: str | None, driver_name: str | None,
                auto_named: bool) -> None:
        """Record a new snapshot's driver id; its name only where the system chose it (an
        unnamed snapshot named after the clock): a name the user gave must come back as is."""
        if driver_id is not None:
            self.ids[model_id] = driver_id
        if auto_named and driver_name is not None and driver_name != model_name:
            self.names[model_name] = driver_name

    def driver_id(self, model_id: str) -> str:
        return self.ids.get(model_id, model_id)

    def driver_name(self, model_name: str) -> str:
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
    for missing in model_snaps.keys() - driver_snaps.keys():
        diffs.append(Difference(f"snapshot {_label(model_snaps[missing])}", "exists", "absent"))
    for extra in driver_snaps.keys() - model_snaps.keys():
        diffs.append(Difference(f"snapshot {_label(driver_snaps[extra])}", "absent", "exists"))

    def translate(driver_id: str | None) -> str | None:
        return None if driver_id is None else to_model.get(driver_id, driver_id)

    if "current" in observes and model["current"] != translate(driver["current"]):
        diffs.append(Difference("current snapshot", _name(model_snaps, model["current"]),
                                _name(driver_snaps, translate(driver["current"]))))
    ordered = sibling_order and "order" in observes and "tree" in observes

    def in_order(ids: list[str], snaps: dict[str, dict[str, Any]]) -> list[str | None]:
        return [_name(snaps, i) for i in ids]

    if ordered and model["roots"] != [translate(i) for i in driver["roots"]]:
        diffs.append(Difference("order of the root snapshots", in_order(model["roots"], model_snaps),
                                in_order([translate(i) or "" for i in driver["roots"]], driver_snaps)))
    if "ram" in observes and not match.same_image(model.get("ram"), driver.get("ram")):
        diffs.append(Difference("memory image the RAM came from", model.get("ram"), driver.get("ram")))
    for sid in sorted(model_snaps.keys() & driver_snaps.keys(), key=lambda i: list(model_snaps).index(i)):
        ms, ds = model_snaps[sid], driver_snaps[sid]
        label = f"snapshot {_label(ms)}"
        if "names" in observes and match.driver_name(ms["name"]) != ds["name"]:
            diffs.append(Difference(f"{label}: name", ms["name"], ds["name"]))
        if "tree" in observes and ms["parent"] != translate(ds["parent"]):
            diffs.append(Difference(f"{label}: parent", _name(model_snaps, ms["parent"]),
                                    _name(driver_snaps, translate(ds["parent"]))))
        if ordered and ms["children"] != [translate(i) for i in ds["children"]]:
            diffs.append(Difference(f"{label}: order of its children", in_order(ms["children"], model_snaps),
                                    in_order([translate(i) or "" for i in ds["children"]], driver_snaps)))
        if "state" in observes and ms["state"] != ds["state"]:
            diffs.append(Difference(f"{label}: recorded state", ms["state"], ds["state"]))
        if "memory" in observes and ms["memory"] != ds["memory"]:
            diffs.append(Difference(f"{label}: has memory", ms["memory"], ds["memory"]))
        if ("ram" in observes and ms["memory"] and ds["memory"]
                and not match.same_image(ms["memory_image"], ds["memory_image"])):
            diffs.append(Difference(f"{label}: memory image", ms["memory_image"], ds["memory_image"]))
        if "description" in observes and ms["description"] != ds["description"]:
            diffs.append(Difference(f"{label}: description", ms["description"], ds["description"]))
        if "views" in observes:
            diffs.extend(_views(f"view of {_label(ms)}", model["views"]["snapshots"][sid],
                                driver["views"]["snapshots"][ds["id"]]))
    if "views" in observes:
        diffs.extend(_views("view of the current state", model["views"]["current"], driver["views"]["current"]))
    return diffs


def _views(label: str, model: dict[str, str], driver: dict[str, str]) -> list[Difference]:
    blocks = sorted(model.keys() | driver.keys(), key=int)
    return [Difference(f"{label}, block {b}", model.get(b, ""), driver.get(b, ""))
            for b in blocks if model.get(b, "") != driver.get(b, "")]


def _label(snapshot: dict[str, Any]) -> str:
    return snapshot["name"] if snapshot["name"] == snapshot["id"] else f"{snapshot['name']} (id {snapshot['id']})"


def _name(snapshots: dict[str, dict[str, Any]], sid: str | None) -> str | None:
    return None if sid is None else _label(snapshots[sid]) if sid in snapshots else sid
