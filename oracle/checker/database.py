"""A check's example database, which can be lost while the run goes on (a Redis server killed,
a full disk).  Hypothesis would raise the backend's error from inside the run, and what the
run had found would be lost with a traceback; so the first failure is kept instead, the run
ends before its next example (``lost`` is what ``run_machine``'s ``enough`` asks), a
divergence found is shrunk and written as always, and the caller reports the loss after it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hypothesis.database import ExampleDatabase


class LosableDatabase(ExampleDatabase):
    def __init__(self, db: ExampleDatabase, label: str):
        super().__init__()
        self.db, self.label = db, label
        self.lost: str | None = None  # one line naming the database and its failure

    def _failed(self, error: Exception) -> None:
        if self.lost is None:
            said = " ".join(str(error).split()) or type(error).__name__
            self.lost = f"{self.label}: the example database was lost during the run: {said}"

    def save(self, key: bytes, value: bytes) -> None:
        if self.lost is None:
            try:
                self.db.save(key, value)
            except Exception as error:  # noqa: BLE001 - any backend's failure (redis, OSError, ...)
                self._failed(error)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self._fetched(key) if self.lost is None else iter(())

    def _fetched(self, key: bytes) -> Iterator[bytes]:
        try:
            found = list(self.db.fetch(key))  # a failure while iterating, too
        except Exception as error:  # noqa: BLE001
            self._failed(error)
            return
        yield from found

    def delete(self, key: bytes, value: bytes) -> None:
        if self.lost is None:
            try:
                self.db.delete(key, value)
            except Exception as error:  # noqa: BLE001
                self._failed(error)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        if self.lost is None:
            try:
                self.db.move(src, dest, value)
            except Exception as error:  # noqa: BLE001
                self._failed(error)
