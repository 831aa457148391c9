"""`snaptree check --workers N`: the shards of a check as processes of snaptree itself, N at
a time.  A worker (``python -m snaptree.oracle.workers CONFIG RESULT``) receives its shard's
``CheckConfig`` as a pickle and runs it as any check does, with its own signal handling,
scratch directories and real components (named after its own pid), so the run's lifetime
rules hold in each; it sends its result back as a pickle in the run's own scratch directory.

A signal to the run is passed on to every worker, which unwinds and cleans up as any check
does; the run waits for them before it ends.  A worker also gets SIGTERM when the run dies
by SIGKILL (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from snaptree.model.escape import plural, printable

from . import lifetime
from .checker.config import CheckConfig
from .checker.results import CheckResult
from .driver import DriverUnavailable, EnvironmentFailure
from .errors import UsageError, hide_secrets

STOP_TIMEOUT = 60  # seconds a worker has to clean up after the run's signal, then SIGKILL


@dataclass
class Worker:
    shard: int
    proc: subprocess.Popen[bytes]
    result: Path
    stderr: Path


def run_shards(config: CheckConfig, shards: int, workers: int, progress: IO[str] | None = None) -> list[CheckResult]:
    """Run shards 1..``shards`` of ``config``, ``workers`` at a time.  Returns their results in
    shard order."""
    space = lifetime.workspace("check")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # the same imports as here
    pending = list(range(1, shards + 1))
    running: list[Worker] = []
    results: dict[int, CheckResult] = {}
    signum = signal.SIGTERM
    try:
        while pending or running:
            while pending and len(running) < workers:
                k = pending.pop(0)
                result, stderr = space.file(f"shard-{k}.pickle"), space.file(f"shard-{k}.stderr")
                given = space.file(f"shard-{k}.config")
                with open(given, "wb") as file:
                    pickle.dump(replace(config, shard=(k, shards)), file)
                with open(stderr, "wb") as err:
                    proc = subprocess.Popen([sys.executable, "-m", "snaptree.oracle.workers", str(given), str(result)],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                            preexec_fn=lambda: lifetime.die_with_parent(signal.SIGTERM))
                running.append(Worker(k, proc, result, stderr))
            for worker in [w for w in running if w.proc.poll() is not None]:
                running.remove(worker)
                results[worker.shard] = _collect(worker, shards)
                if progress is not None:
                    r = results[worker.shard]
                    progress.write(f"shard {worker.shard}/{shards}: {plural(r.stats.examples, 'example')}, "
                                   f"{plural(r.stats.steps, 'step')} "
                                   f"in {r.stats.seconds:.1f} s, {'conforms' if r.conforms else 'DIVERGES'}\n")
                    progress.flush()
            time.sleep(0.05)
    except lifetime.Terminated as signalled:
        signum = signal.Signals(signalled.signum)
        _stop(running, signum)
        for worker in running:  # a worker the signal stopped saved what it had run
            if worker.result.exists():
                results[worker.shard] = _load(worker.result)
        running.clear()
        signalled.partial = [results[k] for k in sorted(results)]
        raise
    finally:
        _stop(running, signum)
        lifetime.release(space)
    return [results[k] for k in sorted(results)]


def _load(path: Path) -> CheckResult:
    with open(path, "rb") as file:
        result: CheckResult = pickle.load(file)
    return result


def _collect(worker: Worker, shards: int) -> CheckResult:
    code = worker.proc.returncode
    if code in (0, 1) and worker.result.exists():
        return _load(worker.result)
    lifetime.raise_if_terminating()  # the run's own signal reached the worker first
    lines = worker.stderr.read_text(errors="replace").strip().splitlines()
    said = lines[-1].removeprefix("snaptree: ") if lines else "no message"
    why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    raise EnvironmentFailure(f"shard {worker.shard}/{shards} failed ({why}): {said}")


def _stop(running: list[Worker], signum: int) -> None:
    """Pass the signal on, and wait for each worker's cleanup (then SIGKILL it)."""
    for worker in running:
        with contextlib.suppress(OSError):
            worker.proc.send_signal(signum)
    deadline = time.monotonic() + STOP_TIMEOUT
    for worker in running:
        while True:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                worker.proc.kill()
            except KeyboardInterrupt:  # a second signal: the workers are already told; keep waiting
                continue


def save_result(result: CheckResult, path: str) -> None:
    """In a worker: what the run merges (the situations and guards it knows itself)."""
    result.situations, result.guarded, result.coverage = [], [], None
    tmp = Path(path).with_suffix(".partial")
    with open(tmp, "wb") as file:
        pickle.dump(result, file)
    tmp.replace(path)


def worker_main(argv: Sequence[str]) -> int:
    """One shard: 0 or 1 with its result saved, else one line on stderr and exit 2 (or 128 +
    the signal that ended it), as `snaptree check` would."""
    from .checker.run import run_check

    config_path, result_path = argv
    lifetime.skip_final_collection()
    with open(config_path, "rb") as file:
        config: CheckConfig = pickle.load(file)
    try:
        with lifetime.signals_handled():
            result = run_check(config, progress=None)
            save_result(result, result_path)
        return 0 if result.conforms else 1
    except (UsageError, DriverUnavailable, EnvironmentFailure) as error:
        print(f"snaptree: {printable(hide_secrets(str(error)))}", file=sys.stderr)
        return 2
    except lifetime.Terminated as signalled:
        if isinstance(signalled.partial, CheckResult):  # for the run's summary of what ran so far
            save_result(signalled.partial, result_path)
        print(f"snaptree: {signalled}", file=sys.stderr)
        return signalled.exit_status


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
