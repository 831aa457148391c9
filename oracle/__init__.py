"""snaptree's oracle: check a real driver against the model.

The public API, for the command line, the pytest plugin, the workers and third parties::

    from snaptree.oracle import CheckConfig, resolve_driver, run_check

    resolved = resolve_driver("qemu-img")             # or "mypkg.mod:MyDriver", a profile, options
    result = run_check(CheckConfig(driver="qemu-img", examples=50, seed=1), resolved)
    result.conforms, result.divergence, result.scenario_path, result.coverage

A driver implements ``Driver`` (``snaptree.oracle.driver``); ``conformance_test`` makes a
unittest/pytest test case of one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checker.config import CheckConfig
    from .checker.counterexample import counterexample, write_counterexample
    from .checker.replay import FindingReplay, ReplayResult, replay_finding, replay_scenario
    from .checker.reports import divergence_report, junit_xml, summary_json, summary_text, verdict_text
    from .checker.results import CheckResult, Stats
    from .checker.run import run_check
    from .driver import Capabilities, Driver, DriverUnavailable, EnvironmentFailure, Result, capabilities_of
    from .errors import UsageError
    from .findings import Finding, findings
    from .kit import conformance_test
    from .lockstep import Divergence, DriverError, Lockstep, LockstepStep
    from .resolve import ResolvedDriver, resolve_driver

# name -> the module that is its home; imported when first asked for, so that `snaptree run`
# and the model commands do not load Hypothesis
_HOMES = {
    "CheckConfig": ".checker.config",
    "counterexample": ".checker.counterexample",
    "write_counterexample": ".checker.counterexample",
    "FindingReplay": ".checker.replay",
    "ReplayResult": ".checker.replay",
    "replay_finding": ".checker.replay",
    "replay_scenario": ".checker.replay",
    "divergence_report": ".checker.reports",
    "junit_xml": ".checker.reports",
    "summary_json": ".checker.reports",
    "summary_text": ".checker.reports",
    "verdict_text": ".checker.reports",
    "CheckResult": ".checker.results",
    "Stats": ".checker.results",
    "run_check": ".checker.run",
    "Capabilities": ".driver",
    "Driver": ".driver",
    "DriverUnavailable": ".driver",
    "EnvironmentFailure": ".driver",
    "Result": ".driver",
    "capabilities_of": ".driver",
    "UsageError": ".errors",
    "Finding": ".findings",
    "findings": ".findings",
    "Divergence": ".lockstep",
    "DriverError": ".lockstep",
    "Lockstep": ".lockstep",
    "LockstepStep": ".lockstep",
    "ResolvedDriver": ".resolve",
    "resolve_driver": ".resolve",
    "conformance_test": ".kit",
}

__all__ = [
    "Capabilities", "CheckConfig", "CheckResult", "Divergence", "Driver", "DriverError", "DriverUnavailable",
    "EnvironmentFailure", "Finding", "FindingReplay", "Lockstep", "LockstepStep", "ReplayResult",
    "ResolvedDriver", "Result", "Stats", "UsageError", "capabilities_of", "conformance_test",
    "counterexample", "divergence_report", "findings", "junit_xml", "replay_finding", "replay_scenario",
    "resolve_driver", "run_check", "summary_json", "summary_text", "verdict_text", "write_counterexample",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'snaptree.oracle' has no attribute '{name}'")
    return getattr(importlib.import_module(home, __name__), name)
