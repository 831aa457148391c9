"""The example driver (snaptree.oracle.example_driver) and a deliberately broken copy of it, as
a third party's module: `--driver tests.example_drivers:BrokenTableDriver`, the kit and the
pytest plugin must all find the bug."""

from __future__ import annotations

from snaptree.oracle.example_driver import Entry, TableDriver


class BrokenTableDriver(TableDriver):
    """One bug: a delete by a name two snapshots share removes the newest, not the first in the table."""

    name = "example-table-broken"

    def find(self, ref: str | None, by_id: bool) -> Entry | None:
        if by_id:
            return super().find(ref, by_id)
        same = [e for e in self.table if e.name == ref]
        return same[-1] if same else None
