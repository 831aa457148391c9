"""The kit for driver authors (in the spirit of zarr-python's ``zarr/testing/stateful.py``): a
test case for your own suite, under pytest or unittest, that runs the same check as
`snaptree check` -- the same generator, shrinker and side-by-side report::

    from snaptree.oracle import conformance_test
    from mypackage.snapdriver import MyDriver

    TestMyDriver = conformance_test(MyDriver, profile="libvirt-test", max_examples=50)

It writes nothing into the working directory: no example database, and a counterexample goes
to ``out`` (default: a ``snaptree-out`` folder in the system's temporary directory), whose path
the failure names with the command that replays it."""

from __future__ import annotations

import os
import tempfile
import unittest
from typing import Any

from snaptree.model.escape import printable

from .checker.config import CheckConfig
from .checker.reports import divergence_report, verdict_text
from .checker.run import run_check
from .driver import Driver

__unittest = True  # unittest leaves this module's frames out of a failure: the report is the message


def conformance_test(driver: type[Driver], profile: str | None = None, blocks: int = 8, max_examples: int = 50,
                     steps: int = 20, seed: int | None = None, out: str | None = None,
                     **options: Any) -> type[unittest.TestCase]:
    """A TestCase class (pytest collects it too) with one test: ``driver`` follows ``profile``
    over ``max_examples`` random histories of up to ``steps`` operations."""
    config = CheckConfig(driver=driver, profile=profile, options=options, examples=max_examples, steps=steps,
                         blocks=blocks, seed=seed, database=None,
                         out=out or os.path.join(tempfile.gettempdir(), "snaptree-out"))

    def test_conforms(self: unittest.TestCase) -> None:
        __tracebackhide__ = True  # and so does pytest
        result = run_check(config, progress=None)
        if result.divergence is None:
            return
        lines = [verdict_text(result), divergence_report(result.divergence, result.driver)]
        if result.scenario_path is not None:
            spec = f"{driver.__module__}:{driver.__qualname__}"
            lines += [printable(f"scenario: {result.scenario_path}"),
                      printable(f"replay:   snaptree replay {result.scenario_path} --driver {spec}")]
        self.fail("\n".join(lines))

    name = f"Test{driver.__name__}Conformance"
    return type(name, (unittest.TestCase,), {"test_conforms": test_conforms, "__module__": driver.__module__})
