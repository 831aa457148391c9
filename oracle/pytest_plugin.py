"""pytest plugin (registered by installing snaptree): a conformance check as test items, one
per shard, so that pytest's own machinery runs them: ``-n N`` (pytest-xdist) on N workers,
``--junitxml``, ``-x``, ``-k``::

    pytest --snaptree-driver qemu-hmp --snaptree-examples 400 --snaptree-shards 8 --snaptree-seed 1 -n 2

Each shard calls the same ``run_check()`` as `snaptree check --shard K/N`: its share of the
examples, its own seed, its own driver object and real component.  ``--snaptree-shard K/N``
collects only shard K (one runner of N, on another machine).  Without ``--snaptree-driver``
the plugin adds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .checker.config import CheckConfig

OPTIONS = ("uri", "url", "vm", "insecure")  # --snaptree-option KEY=VALUE, as the check command's options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("snaptree", "snaptree conformance check")
    group.addoption("--snaptree-driver", metavar="D", help="check this driver (a name, or module:Class)")
    group.addoption("--snaptree-profile", metavar="P", help="against this profile (default: the driver's first)")
    group.addoption("--snaptree-option", metavar="KEY=VALUE", action="append", default=[],
                    help=f"a driver option ({', '.join(OPTIONS)}), e.g. uri=test:///default")
    group.addoption("--snaptree-examples", metavar="N", type=int, default=100,
                    help="random histories in all, split among the shards (default 100)")
    group.addoption("--snaptree-steps", metavar="N", type=int, default=20, help="operations per history at most (default 20)")
    group.addoption("--snaptree-blocks", metavar="N", type=int, default=8, help="disk size in blocks (default 8)")
    group.addoption("--snaptree-shards", metavar="N", type=int, default=1, help="one test item per shard (default 1)")
    group.addoption("--snaptree-shard", metavar="K/N", help="collect only shard K of N (one runner of N)")
    group.addoption("--snaptree-seed", metavar="S", type=int, help="base seed: each shard's seed derives from it")
    group.addoption("--snaptree-database", metavar="DIR|URL", default=".snaptree/examples",
                    help="example database: a directory, redis://HOST:PORT/DB, or none (default .snaptree/examples)")
    group.addoption("--snaptree-out", metavar="DIR", default="snaptree-out", help="where counterexamples go")


class ShardedCheck:
    """What --snaptree-* asked for, checked once before collection."""

    def __init__(self, config: pytest.Config):
        from .drivers import load
        from .shards import ShardError, check_redis, is_redis, parse_shard

        get = config.getoption
        self.spec: str = get("snaptree_driver")
        self.options: dict[str, Any] = {}
        for item in get("snaptree_option"):
            key, equals, value = item.partition("=")
            if not equals or key not in OPTIONS:
                raise pytest.UsageError(f"--snaptree-option {item}: give KEY=VALUE, KEY one of {', '.join(OPTIONS)}")
            self.options[key] = value.lower() not in ("", "0", "no", "false") if key == "insecure" else value
        for name in ("examples", "steps", "blocks", "shards"):
            if get(f"snaptree_{name}") < 1:
                raise pytest.UsageError(f"--snaptree-{name} must be at least 1")
        self.examples, self.steps, self.blocks = get("snaptree_examples"), get("snaptree_steps"), get("snaptree_blocks")
        self.seed: int | None = get("snaptree_seed")
        self.out: str = get("snaptree_out")
        database = get("snaptree_database")
        self.database: str | None = None if database == "none" else database
        try:
            if get("snaptree_shard"):
                k, n = parse_shard(get("snaptree_shard"))
                self.total, self.shards = n, [k]
            else:
                self.total = get("snaptree_shards")
                self.shards = list(range(1, self.total + 1))
            if self.database is not None and is_redis(self.database):
                check_redis(self.database)  # a server that is down: an error now, not in every shard
        except ShardError as error:
            raise pytest.UsageError(str(error)) from None
        if self.total > self.examples:
            raise pytest.UsageError(f"--snaptree-examples {self.examples} is fewer than the shards: "
                                    "each shard needs one at least")
        try:
            cls = load(self.spec)
        except Exception as error:  # an unknown name, a module that does not import
            raise pytest.UsageError(f"--snaptree-driver {self.spec}: {error}") from None
        self.profile: str | None = get("snaptree_profile")
        self.label = f"{cls.name}/{self.profile or cls.default_profile(self.options)}"

    def config(self, shard: int) -> CheckConfig:
        """Shard ``shard``'s check, as `snaptree check --shard K/N` would run it."""
        from . import CheckConfig

        return CheckConfig(driver=self.spec, profile=self.profile, options={k: v for k, v in self.options.items() if v},
                           examples=self.examples,
                           steps=self.steps, blocks=self.blocks, seed=self.seed, database=self.database, out=self.out,
                           shard=(shard, self.total))


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("snaptree_driver"):
        config.stash[PLAN] = ShardedCheck(config)


PLAN = pytest.StashKey[ShardedCheck]()


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    plan = config.stash.get(PLAN, None)
    if plan is None:
        return
    for k in plan.shards:
        name = f"snaptree[{plan.label} shard {k}/{plan.total}]"
        items.append(ShardItem.from_parent(session, name=name, nodeid=f"snaptree::{name}", plan=plan, shard=k))


class Diverged(Exception):
    def __init__(self, report: str):
        super().__init__(report)
        self.report = report


class ShardItem(pytest.Item):
    def __init__(self, *, plan: ShardedCheck, shard: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan, self.shard = plan, shard

    def runtest(self) -> None:
        from snaptree.model.escape import plural

        from . import DriverUnavailable, EnvironmentFailure, UsageError, divergence_report, resolve_driver, run_check
        from .checker.reports import verdict_text
        from .shards import shard_seed

        plan, k, n = self.plan, self.shard, self.plan.total
        seed = shard_seed(plan.seed, k, n)
        try:
            resolved = resolve_driver(plan.spec, plan.profile, plan.options)
            result = run_check(plan.config(k), resolved, progress=None)
        except (UsageError, DriverUnavailable, EnvironmentFailure) as error:
            pytest.fail(f"snaptree: {error}", pytrace=False)  # a missing component fails, as in the project's tests
        cls = resolved.cls
        s = result.stats
        self.user_properties += [("examples", s.examples), ("steps", s.steps), ("seed", str(seed)),
                                 ("steps_per_second", round(s.steps / max(s.seconds, 1e-9)))]
        if result.divergence is not None:
            lines = [verdict_text(result, f" in shard {k}/{n} (seed {seed}, {plural(s.examples, 'example')})"),
                     divergence_report(result.divergence, cls.name)]
            if result.scenario_path is not None:
                lines += [f"scenario: {result.scenario_path}",
                          f"replay:   snaptree replay {result.scenario_path} --driver {plan.spec}"]
            raise Diverged("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, Diverged):
            return excinfo.value.report
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
