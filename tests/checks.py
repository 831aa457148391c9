"""A check in one call, as the tests write it: the driver class, the profile, and the
configuration's fields (``snaptree.oracle.CheckConfig``)."""

from __future__ import annotations

from typing import IO, Any

from snaptree.oracle import CheckConfig, CheckResult, run_check
from snaptree.oracle.driver import Driver


def check(driver: type[Driver], profile: str | None, progress: IO[str] | None = None, **fields: Any) -> CheckResult:
    return run_check(CheckConfig(driver=driver, profile=profile, **fields), progress=progress)
