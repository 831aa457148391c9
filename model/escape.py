"""What text output shows of a string that came from a user: names, titles, values, paths.

Every text renderer (the notation, `run` and `compare` listings, the check's divergence report,
error messages) passes such strings through :func:`printable`, so that a newline in a
snapshot name cannot forge an output line and a control or bidi character cannot act on the
terminal.  JSON and XML output keep the exact string: their own escaping is exact.
"""

from __future__ import annotations

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
