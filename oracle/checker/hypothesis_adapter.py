"""The Hypothesis internals a check relies on, in one place.  They are not public API, so
pyproject.toml pins Hypothesis to the range they were tested on (TESTED), and
tests/oracle/test_hypothesis_adapter.py fails when the installed version leaves it or an
internal has gone."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis
from hypothesis import statistics
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument
from hypothesis.internal.conjecture import providers
from hypothesis.stateful import run_state_machine_as_test

TESTED = ((6, 170), (6, 171))  # from, before: keep in step with pyproject.toml


def installed_in_tested_range() -> bool:
    return TESTED[0] <= hypothesis.__version_info__[:2] < TESTED[1]


def tag_examples(factory: Callable[[], Any], digest: bytes) -> None:
    """Tell the example database which driver and profile a state machine's examples belong to
    (a state machine test has no function of its own whose name could)."""
    factory._hypothesis_internal_add_digest = digest  # type: ignore[attr-defined]


class _Enough(KeyboardInterrupt):
    """Ends a run that has run the examples asked for: Hypothesis passes a KeyboardInterrupt
    through untouched (no replay, nothing saved), as it does a signal's ``Terminated``."""


def run_machine(factory: Callable[[], Any], settings: hypothesis.settings, min_steps: int,
                enough: Callable[[], bool] = lambda: False) -> str:
    """Run a state machine; Hypothesis's mutations sometimes end a history after a step or two,
    which tests nothing, so every history takes ``min_steps`` at least.

    ``max_examples`` counts only the examples Hypothesis calls valid, not those that overran
    its buffer of choices (cut short, yet run on the driver: 6 more in 50), so the run stops
    before a new example once ``enough()``; Hypothesis' final replay of a failing example is
    no new one.  Returns why Hypothesis ended the run itself ("" when ``enough`` did)."""
    stopped: list[str] = []

    @functools.wraps(factory)  # the same example database key (its source) and seed
    def counted() -> Any:
        if enough() and not current_build_context().is_final:
            raise _Enough
        return factory()

    try:
        noted = statistics.collector.with_value(lambda stats: stopped.append(stats.get("stopped-because", "")))  # type: ignore[arg-type]
        with noted:
            run_state_machine_as_test(counted, settings=settings, _min_steps=min_steps)  # type: ignore[arg-type]
    except _Enough:
        return ""
    return stopped[-1] if stopped else ""


def replaying() -> bool:
    """Whether this example is Hypothesis' final replay of a failing one, which runs it again."""
    try:
        return bool(current_build_context().is_final)
    except InvalidArgument:  # outside a run of Hypothesis
        return False


@contextmanager
def no_local_constants() -> Iterator[None]:
    """Hypothesis mixes literals from every local module in ``sys.modules`` into what it draws
    (and caches them in ``.hypothesis/constants``), so the same --seed would give other
    histories depending on what happens to be imported.  The generator's choices need no
    such hints: switch them off while a check runs."""
    saved = providers._get_local_constants
    providers._get_local_constants = lambda: _NO_CONSTANTS
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


_NO_CONSTANTS = providers.Constants()
