"""Shared by every layer of the tests: a marker per layer (its folder), so that
`pytest -m "model or profiles or oracle"` runs the layers that need no real component."""

from __future__ import annotations

from pathlib import Path

import pytest

LAYERS = ("model", "profiles", "oracle", "drivers", "cli", "faults")


def pytest_configure(config: pytest.Config) -> None:
    for layer in LAYERS:
        config.addinivalue_line("markers", f"{layer}: a test of the {layer} layer (tests/{layer}/)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        parts = Path(item.path).relative_to(here).parts if Path(item.path).is_relative_to(here) else ()
        if parts and parts[0] in LAYERS:
            item.add_marker(parts[0])
