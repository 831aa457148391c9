"""A Redis example database killed while a check runs: the run ends cleanly -- the divergence
it found shrunk and written as a scenario, the report, then one line naming the database,
exit 2 (README, "Commands") -- alone and on two workers; a run that finds nothing needs no
database.  Needs redis-server and the redis
package (`pip install 'snaptree[redis]'`): without them these FAIL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snaptree.model.machine import Machine
from snaptree.oracle.drivers.model import ModelDriver

from ..fault_kit import SNAPTREE
from ..mutants import IdsReused

KILL = "SNAPTREE_TEST_KILL_REDIS"  # the pid of the server the driver kills


def _kill_the_database() -> None:
    with contextlib.suppress(ProcessLookupError, KeyError, ValueError):
        os.kill(int(os.environ[KILL]), signal.SIGKILL)


class DatabaseDies(ModelDriver):
    """Conforms; the example database dies as its first example starts."""

    def make_machine(self, blocks: int, *disks: Any) -> Machine:
        _kill_the_database()
        return super().make_machine(blocks, *disks)


class DatabaseDiesThenDiverges(IdsReused):
    """Diverges within a few examples (ids reused after a delete), after the database died."""

    def make_machine(self, blocks: int, *disks: Any) -> Machine:
        _kill_the_database()
        return super().make_machine(blocks, *disks)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    server = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.fail("the redis package is missing: pip install 'snaptree[redis]'")
    if server is None:
        pytest.fail("redis-server is missing: apt-get install redis-server (or run `bash .ci/setup --real`)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.kill()
        proc.wait()


def check(driver: type, url: str, server: subprocess.Popen[bytes], tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), **{KILL: str(server.pid)})
    done = subprocess.run([str(SNAPTREE), "check", "--driver", f"{__name__}:{driver.__name__}", "--profile", "esx",
                           "--examples", "40", "--seed", "1", "--database", url, "--format", "json",
                           "--out", str(tmp_path / "out"), *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert server.wait(timeout=10) is not None, "the driver killed the database"
    return done.returncode, done.stdout, done.stderr


def lost_line(stderr: str, url: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"snaptree: --database {url}: the example database was lost during the run: ")
    assert "Connection refused" in lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_divergence_found_before_the_database_died_is_written_first(
        workers: str, redis_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    url, server = redis_server
    status, out, err = check(DatabaseDiesThenDiverges, url, server, tmp_path, "--workers", workers)
    assert status == 2, err
    lost_line(err, url)
    report = json.loads(out)
    assert report["verdict"] == "diverges"
    scenarios = sorted((tmp_path / "out").iterdir())
    assert scenarios and report["scenario"] in map(str, scenarios)
    assert "snapshot" in scenarios[0].read_text()  # a history that replays, shrunk


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_conforming_run_does_not_need_its_database(workers: str, redis_server: tuple[str, subprocess.Popen[bytes]],
                                                     tmp_path: Path) -> None:
    """A run that finds nothing writes nothing to the database: its loss loses nothing."""
    url, server = redis_server
    status, out, err = check(DatabaseDies, url, server, tmp_path, "--workers", workers)
    assert (status, err) == (0, "")
    report = json.loads(out)
    assert report["verdict"] == "conforms" and report["examples"] == 40
