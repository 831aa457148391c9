"""The bundled vSphere simulator: govmomi 0.24.2's vcsim (Debian's golang-github-vmware-govmomi-dev)
started from the project's own Go program, ``oracle/vcsim/main.go`` [semantics.md §2].

The binary is built in GOPATH mode into a cache directory outside the source tree, named after
the source's hash, so it is rebuilt only when the source changed.  A running simulator lives in
a scratch directory of its own (``lifetime.workspace``, its datastore is under it): it stops,
removing that directory, when this process closes its stdin (a normal end, or any death of this
process, SIGKILL included), on SIGINT and on SIGTERM; a directory left by a simulator killed
together with its parent is swept by the next run.

``python -m snaptree.oracle.drivers.vcsim`` builds it and prints its path (``.ci/setup --real``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from .. import lifetime
from ..driver import DriverUnavailable

SOURCE = Path(__file__).resolve().parent.parent / "vcsim" / "main.go"
GOPATH = "/usr/share/gocode"
GOVMOMI = Path(GOPATH) / "src/github.com/vmware/govmomi/simulator"
INSTALL = "apt-get install golang-go golang-github-vmware-govmomi-dev"
START_TIMEOUT = 30.0  # seconds for the simulator to print its URL
BUILD_TIMEOUT = 600.0


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "snaptree"


def missing() -> str | None:
    """Why the simulator cannot be built here, or None."""
    if shutil.which("go") is None:
        return f"the Go compiler is not installed: {INSTALL}"
    if not GOVMOMI.is_dir():
        return f"govmomi's simulator library is not installed ({GOVMOMI}): {INSTALL}"
    if not SOURCE.is_file():
        return f"the simulator's source is missing: {SOURCE}"
    return None


@functools.cache
def govmomi_version() -> dict[str, str]:
    """{"govmomi": "0.24.2"}: the version of the library the simulator is built from ({} without it)."""
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "golang-github-vmware-govmomi-dev"],
                          capture_output=True, text=True, check=False)
    version = done.stdout.strip().split("-")[0]
    return {"govmomi": version} if done.returncode == 0 and version else {}


def binary() -> Path:
    """The built simulator, building it first when its source changed (SNAPTREE_VCSIM: run
    that program instead)."""
    if os.environ.get("SNAPTREE_VCSIM"):
        return Path(os.environ["SNAPTREE_VCSIM"])
    source = SOURCE.read_bytes()
    target = cache_dir() / f"vcsim-{hashlib.sha256(source).hexdigest()[:16]}"
    if target.is_file():
        return target
    problem = missing()
    if problem:
        raise DriverUnavailable(problem)
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="", GOCACHE=str(cache_dir() / "go-build"))
    partial = Path(tempfile.mkdtemp(prefix="vcsim-build-", dir=target.parent)) / "vcsim"
    try:
        done = subprocess.run(["go", "build", "-o", str(partial), str(SOURCE)], env=env, capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise DriverUnavailable(f"building the simulator failed: {done.stderr.strip().splitlines()[-1:]}")
        os.replace(partial, target)  # atomic: a concurrent build of the same source is harmless
    finally:
        shutil.rmtree(partial.parent, ignore_errors=True)
    for old in target.parent.glob("vcsim-*"):  # binaries of older sources
        if old != target and old.is_file():
            old.unlink(missing_ok=True)
    return target


class Simulator:
    """One running simulator; ``url`` is https://user:pass@127.0.0.1:PORT/sdk."""

    def __init__(self, program: Path | None = None):
        program = program or binary()
        self.space = lifetime.workspace("vsphere")
        self.log = self.space.file("vcsim.log")
        try:
            with open(self.log, "wb") as log:
                self.process = subprocess.Popen(
                    [str(program), str(self.space.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
            self.url = self._read_url()
        except BaseException:
            self.stop()
            raise
        parts = urlparse(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.user, self.password = parts.username or "", parts.password or ""

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                raise DriverUnavailable(f"the simulator did not start within {START_TIMEOUT:.0f} s")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                reason = self.log.read_text(errors="replace").strip().splitlines()[-1:] if self.log.exists() else []
                raise DriverUnavailable(f"the simulator exited at start: {' '.join(reason) or 'no message'}")
            line += chunk
        return line.decode().strip()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        process = getattr(self, "process", None)
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()  # the simulator's signal to stop and clean up
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        lifetime.release(self.space)


if __name__ == "__main__":
    try:
        started = time.monotonic()
        path = binary()
        print(f"{path} ({time.monotonic() - started:.1f} s)")
    except DriverUnavailable as error:
        print(f"vcsim: {error}", file=sys.stderr)
        sys.exit(2)
