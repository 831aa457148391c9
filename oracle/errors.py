"""Errors of the oracle's library that are the caller's input, not a verdict."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input (an unknown driver or profile, an option the driver does not take, a scenario a
    driver cannot replay): the command line prints it as one line and exits 2."""
