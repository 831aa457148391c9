"""What text output shows of a string that came from a user: names, titles, values, paths.

Every text renderer (the notation, `run` and `compare` listings, the check's divergence report,
error messages) passes such strings through :func:`printable`, so that a newline in a
snapshot name cannot forge an output line and a control or bidi character cannot act on the
terminal.  JSON and XML output keep the exact string: their own escaping is exact.

Text output also has one way to show a name or a value (:func:`shown`: ``""`` for the empty
one, never a Python repr) and counts with nouns that agree (:func:`plural`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, C0 and C1 controls,
    bidi overrides and other format characters, lone surrogates, unusual spaces) written as a
    Python-style escape: ``\\n``, ``\\x85``, ``\\u202e``.  Printable text comes back as it
    is, so escaping twice changes nothing."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if c in _SHORT:
        return _SHORT[c]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: str) -> str:
    """A name or a value as text output shows it: as it is, or in double quotes where bare it
    could not be seen or could be misread (``""``, ``" A"``, ``"say \\"hi\\""``): empty, with
    whitespace at either end, or holding a double quote.  Not escaped: pass the line it goes
    into through :func:`printable`."""
    if text and text.strip() == text and '"' not in text:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plural(count: int, word: str, words: str | None = None) -> str:
    """A count and its noun, agreeing: ``1 group``, ``2 groups``, ``1,207 steps``, ``2 pairs of states``
    (``words``: the plural where it is not ``word`` + s)."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def snapshot_labels(snapshots: dict[Any, tuple[str, str]], short_ids: bool = False) -> dict[Any, str]:
    """The one way text output names a snapshot, by key, from its ``(id, name)``: the name as
    :func:`shown` shows it (``""`` when empty), followed by ``#id`` where names repeat (or
    would be read as ``base`` or ``current``); with ``short_ids``, ids as a drawing shows them
    (:func:`short_ids_of`)."""
    counts = Counter(name for _, name in snapshots.values())

    def plain(name: str) -> bool:
        return counts[name] == 1 and name not in ("base", "current")

    tagged = [sid for sid, name in snapshots.values() if not plain(name)]
    ids = short_ids_of(tagged) if short_ids else {sid: sid for sid in tagged}
    return {key: shown(name) if plain(name) else f"{shown(name)}#{ids[sid]}" for key, (sid, name) in snapshots.items()}


def short_ids_of(ids: list[str], keep: int = 8) -> dict[str, str]:
    """Ids short enough for a drawing, each still told apart from the others: one of at most
    ``keep`` characters as it is; a longer one (a UUID) by its first ``keep`` characters where
    no other id starts with them (random UUIDs), else by ``…`` and the shortest ending of 4 or
    more characters no other id has (a counter in the last digits: VirtualBox's in the model)."""
    starts = Counter(sid[:keep] for sid in ids)
    short = {}
    for sid in ids:
        if len(sid) <= keep or starts[sid[:keep]] == 1:
            short[sid] = sid[:keep]
            continue
        others = [other for other in ids if other != sid]
        n = next((n for n in range(4, len(sid)) if not any(other.endswith(sid[-n:]) for other in others)), len(sid))
        short[sid] = sid if n == len(sid) else "…" + sid[-n:]
    return short
