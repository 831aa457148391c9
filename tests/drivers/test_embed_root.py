"""`--uri 'qemu:///embed?root=DIR'` with the real libvirt and QEMU: a DIR that cannot hold the
examples' roots is one line and exit 2 before any example runs, and the root a SIGKILLed run
left under DIR is swept by the next run, as its roots under TMPDIR are.  Without the real
components these FAIL (`bash .ci/setup --real`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snaptree.oracle import lifetime

from ..fault_kit import SNAPTREE, Check, one_line, require


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder that nobody, whom libvirt runs as, can enter (pytest's tmp_path is under a 0700
    folder of root's)."""
    folder = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))  # short: libvirt binds sockets below it
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def check(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SNAPTREE), "check", "--driver", "libvirt", "--uri", f"qemu:///embed?root={root}",
                           "--examples", "1", "--database", "none", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)


def test_an_embed_root_that_is_a_file_is_one_line(reachable: Path, tmp_path: Path) -> None:
    """It was the first example's "driver error" (FileExistsError), reported as a divergence."""
    require("libvirt-qemu")
    a_file = reachable / "file"
    a_file.write_text("")
    for root in (a_file, a_file / "below"):
        done = check(root, tmp_path / "out")
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"{a_file} is not a directory" in one_line(done.stderr)
    assert not (tmp_path / "out").exists(), "no example ran: no counterexample"


def test_an_embed_root_nobody_can_enter_is_one_line(reachable: Path, tmp_path: Path) -> None:
    """Under a 0700 folder the helper (as nobody) died at once: "libvirt's embedded QEMU driver
    crashed", a divergence."""
    require("libvirt-qemu")
    private = reachable / "p"  # short, so that the root is not too deep for libvirt's sockets
    private.mkdir(mode=0o700)
    done = check(private / "r", tmp_path / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_line(done.stderr)
    assert f"{private} (mode 0700) does not let nobody enter it" in line
    assert not (tmp_path / "out").exists() and not (private / "r").exists()


def test_sigkill_leaves_an_embed_root_the_next_run_sweeps(reachable: Path, tmp_path: Path) -> None:
    """The first run's sweep looked in TMPDIR and /tmp only: an embed root under DIR stayed."""
    require("libvirt-qemu")
    uri = ("--uri", f"qemu:///embed?root={reachable}")
    killed = Check("libvirt-qemu", tmp_path, tmp_path / "out", extra=uri)
    pattern = f"snaptree-libvirt-{killed.proc.pid}-*"
    deadline = time.monotonic() + 90
    while not list(reachable.glob(pattern)):
        assert killed.proc.poll() is None, killed.finish()[2]
        assert time.monotonic() < deadline, "no embed root under DIR within 90 s"
        time.sleep(0.02)
    killed.proc.kill()
    killed.finish()
    left = list(reachable.glob(pattern))
    assert left, "SIGKILL leaves the root for the next run"
    following = Check("libvirt-qemu", tmp_path, tmp_path / "out", examples=1, seed=1, extra=uri)
    status, out, err = following.finish(timeout=300)
    assert status == 0, out + err
    assert not any(p.exists() for p in left), "the next run did not sweep the killed run's embed root"
    assert lifetime.processes_using(left) == []
