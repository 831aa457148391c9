"""Errors of the oracle's library that are the caller's input, not a verdict."""

from __future__ import annotations

import re


class UsageError(Exception):
    """Bad input (an unknown driver or profile, an option the driver does not take, a scenario a
    driver cannot replay): the command line prints it as one line and exits 2."""


# a URL's password (scheme://USER:PASSWORD@HOST: up to the last @ before a space, as it may hold
# an unescaped one) and a password given as a query parameter (redis://HOST/0?password=...)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://(?!USER:PASS@HOST/)[^\s:/@]*):\S*@")  # not the placeholder of --help
_QUERY = re.compile(r"([?&](?:password|passwd|pass|pwd|token|secret)=)[^&\s'\"]*", re.IGNORECASE)


def hide_secrets(text: str) -> str:
    """``text`` with every password of a URL in it written as ``***``: for anything printed or
    stored that quotes a URL a user gave (--database redis://:PASS@HOST, --url https://USER:PASS@HOST)."""
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
