"""libvirt's QEMU driver embedded in a process (``qemu:///embed?root=DIR``), run as ``nobody``.

How it runs as root: it does not, directly.  As root the embedded driver refuses to start
("Failed to parse user 'libvirt-qemu'"): root makes it "privileged", and a privileged QEMU
driver resolves its compiled-in user when its configuration object is built, before any
qemu.conf under the root is read, so ``user = "root"`` in DIR/etc/qemu.conf cannot help
(tried).  Creating that system user would change the machine.  So each example forks a helper
process that drops to ``nobody`` (setgroups/setgid/setuid), registers libvirt's default event
loop, opens the embedded connection in the example's directory and answers calls over a pipe
(:class:`EmbedHelper`).  Forking, not exec'ing, means ``nobody`` needs no access to the
virtualenv or the source tree (a CI clone under /root works).  libvirt's probe of QEMU's
capabilities (1-2 s) is copied from the first example's root into the next ones.

Lifetime (see ``snaptree.oracle.lifetime``): the root is a workspace named after the checker's
pid, under /tmp when TMPDIR is too deep for libvirt's sockets.  The helper sets its death
signal after it becomes nobody (a change of credentials clears it) and closes the checker's
end of the pipe, so the checker's death reaches it as SIGTERM or as the end of the pipe; either
way it kills its QEMU (which libvirt daemonised, so nothing else would) and exits.  Teardown
kills a QEMU left behind by its pid file, and a later run's sweep whatever a SIGKILL of both
left.  ``stdio_handler = "file"`` in the root's qemu.conf: QEMU writes its log itself, rather
than through a virtlogd that libvirt would start per root and that lingers 120 s.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ... import lifetime
from ...driver import EnvironmentFailure
from .session import LibvirtFailure, Session, libvirt

CALL_TIMEOUT = 120.0  # seconds for one call into the embedded QEMU driver
NOBODY = 65534
# bytes of the longest socket path libvirt 9.0 binds below the example's directory (measured:
# "/libvirt/lib/qemu/domain-1-snaptree/monitor.sock", 48), with room for domain-999
SOCKET_ROOM = 52
PIDFILE = "libvirt/run/qemu/snaptree.pid"
QEMU_CONF = 'stdio_handler = "file"\n'  # no virtlogd per root: QEMU writes its own log
# libvirt probes QEMU's capabilities (1-2 s) into a fresh root's cache: reuse the first probe
CAPABILITIES = Path("libvirt/cache/qemu/capabilities")


def kill_qemu(root: Path) -> None:
    """SIGKILL the QEMU libvirt started in this root, by libvirt's pid file."""
    try:
        pid = int((root / PIDFILE).read_text().strip())
        if b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes():  # not a reused pid
            os.kill(pid, signal.SIGKILL)
    except (ValueError, OSError):
        pass


def base_problem(base: str) -> str | None:
    """Why the examples' roots cannot go under ``base`` (the URI's root=), or None: it must be a
    directory, or one that can be made, and nobody, whom the helper runs as, must be able to
    enter it and every folder above it."""
    folder = Path(base)
    try:
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            return f"{folder} is not a directory"
        for place in (folder, *folder.parents):
            found = place.stat()
            mode = found.st_mode
            if not (mode & 0o001 or (found.st_uid == NOBODY and mode & 0o100) or (found.st_gid == NOBODY and mode & 0o010)):
                return (f"{place} (mode {mode & 0o7777:04o}) does not let nobody enter it, and libvirt runs as nobody "
                        "here: choose a directory every user can enter, e.g. under /tmp")
    except OSError as error:  # a name too long, a loop of links
        return f"{error.strerror or error}"
    return None


def make_base(base: str) -> None:
    """Make ``base``, with its parents, for the examples' roots; EnvironmentFailure when it cannot
    be made or nobody cannot enter it (a umask of 077 makes it 0700)."""
    try:
        with lifetime.machine_failures():
            os.makedirs(base, exist_ok=True)
    except OSError as error:
        raise EnvironmentFailure(f"the embed root {base}: {error.strerror or error}") from None
    problem = base_problem(base)
    if problem:
        raise EnvironmentFailure(f"the embed root {base}: {problem}")


def prepare_root(workdir: Path, disk: Path, capabilities: dict[str, bytes], others: tuple[Path, ...] = ()) -> None:
    """The example's embed root, reachable by nobody: its qemu.conf, and the kept capabilities.
    ``others``: the VM's other disk files (and NVRAM), which nobody must own too."""
    (workdir / "libvirt/etc").mkdir(parents=True)
    (workdir / "libvirt/etc/qemu.conf").write_text(QEMU_CONF)
    for path in (workdir, disk, *others, workdir / "libvirt", workdir / "libvirt/etc"):
        os.chown(path, NOBODY, NOBODY)
    restore_capabilities(workdir, capabilities)


def kept_capabilities(workdir: Path) -> dict[str, bytes]:
    """The capabilities libvirt probed into this root, to copy into the next ones."""
    return {p.name: p.read_bytes() for p in (workdir / CAPABILITIES).glob("*.xml")}


def restore_capabilities(workdir: Path, capabilities: dict[str, bytes]) -> None:
    if not capabilities:
        return
    folder = workdir
    for part in CAPABILITIES.parts:
        folder = folder / part
        folder.mkdir(exist_ok=True)
        os.chown(folder, NOBODY, NOBODY)
    for name, data in capabilities.items():
        (folder / name).write_bytes(data)
        os.chown(folder / name, NOBODY, NOBODY)


PR_SET_CHILD_SUBREAPER = 36
REAP_QEMU = True  # False: leave the QEMU to the machine's init, as before (benchmarks/real_check_speed.py)


def _reap_qemu() -> None:
    """Reap at once the QEMU processes of this helper's libvirt, which daemonizes them (the
    domain's, and its capabilities probes): after a destroy (and in a revert, which restarts
    QEMU) libvirt polls until the pid is gone, a zombie counts as alive, and the machine's init
    may take seconds to reap it (1.2-1.8 s per destroy, seen on this project's build machine).
    As the subreaper of its orphans the helper gets them; libvirt's own children, whose status
    libvirt waits for, it leaves to libvirt."""
    own_session = os.getsid(0)
    while True:
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:  # no child yet
            time.sleep(0.05)
            continue
        if found is None:
            continue
        try:
            with open(f"/proc/{found.si_pid}/stat", "rb") as stat:
                name, fields = stat.read().split(b"(", 1)[1].rsplit(b")", 1)
            session = int(fields.split()[3])
        except (OSError, IndexError, ValueError):
            name, session = b"", own_session
        # daemonized (by libvirt or by QEMU's -daemonize): in a session of its own; a QEMU that
        # libvirt runs and waits for (a capabilities probe's first process) is in the helper's
        if name.startswith(b"qemu-system") and session != own_session:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(found.si_pid, 0)
        else:
            time.sleep(0.005)  # libvirt's: it waits for it


def _serve(uri: str, home: str, channel: Any, checkers_end: Any) -> None:
    """The helper's life: become nobody, run libvirt's event loop, answer calls until closed,
    or until the checker dies; then end its QEMU too."""
    checkers_end.close()  # else the checker's death would never close the pipe
    checker = os.getppid()

    def end(*_: object) -> None:
        kill_qemu(Path(home))
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGHUP, end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the checker's to handle
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    lifetime.die_with_parent(signal.SIGTERM)  # after setuid, which clears it
    if os.getppid() != checker:  # the checker died before that
        end()
    os.environ.update(HOME=home, XDG_RUNTIME_DIR=home, XDG_CACHE_HOME=home, XDG_CONFIG_HOME=home)
    log = os.open(os.path.join(home, "libvirt.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)  # libvirt's own log lines (e.g. "tainted: custom-monitor") stay out of the report
    libvirt.registerErrorHandler(lambda *_: None, None)
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()
    if REAP_QEMU and ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
        threading.Thread(target=_reap_qemu, daemon=True).start()
    try:
        session = Session(uri)
    except libvirt.libvirtError as error:
        channel.send(("err", error.get_error_code() or 0, str(error)))
        return
    channel.send(("ok", None))
    while True:
        try:
            method, args = channel.recv()
        except (EOFError, OSError):  # the checker is gone
            end()
        try:
            channel.send(("ok", session.call(method, *args)))
        except LibvirtFailure as failure:
            channel.send(("err", failure.code, failure.message))
        if method == "close":
            return


class HelperCrashed(Exception):
    """The embedded QEMU driver took its process down (libvirt 9.0.0 segfaults on some deletes:
    scenarios/findings/libvirt-qemu-delete-children-segfault.xml)."""

    def __init__(self, exitcode: int | None, log: Path):
        how = (f"signal {signal.Signals(-exitcode).name}" if exitcode is not None and exitcode < 0
               else f"exit status {exitcode}")
        # the helper's stderr (a Python traceback, libvirt's last words) went to its log
        with contextlib.suppress(OSError):
            last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
            how += f"; its log ends: {last[0].strip()}" if last else ""
        super().__init__(f"libvirt's embedded QEMU driver crashed: its process died ({how})")


class EmbedHelper:
    """A forked helper process, running as nobody, that owns the embedded QEMU connection."""

    def __init__(self, root: Path):
        self.root = root
        context = multiprocessing.get_context("fork")
        self.channel, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(f"qemu:///embed?root={root / 'libvirt'}", str(root),
                                                            child, self.channel), daemon=True)
        try:
            self.process.start()
            child.close()
            self._answer()
        except BaseException:  # e.g. a signal while libvirt starts: the helper must not go on alone
            self.kill()
            raise

    def call(self, method: str, *args: Any) -> Any:
        try:
            self.channel.send((method, args))
        except (BrokenPipeError, ConnectionResetError):  # it died after its last answer
            self.process.join(5)
            raise HelperCrashed(self.process.exitcode, self.root / "libvirt.log") from None
        return self._answer()

    def _answer(self) -> Any:
        if not self.channel.poll(CALL_TIMEOUT):
            self.kill()
            raise TimeoutError(f"the embedded QEMU driver did not answer within {CALL_TIMEOUT:.0f} s")
        try:
            reply = self.channel.recv()
        except (EOFError, ConnectionResetError):  # the helper died inside libvirt: a crash of libvirt's
            self.process.join(5)
            raise HelperCrashed(self.process.exitcode, self.root / "libvirt.log") from None
        if reply[0] == "err":
            raise LibvirtFailure(reply[1], reply[2])
        return reply[1]

    def kill(self) -> None:
        """End the helper and every QEMU it started (libvirt keeps their pid files)."""
        try:
            if self.process.is_alive():
                self.channel.send(("close", ()))
                self.process.join(10)
        except OSError:
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        kill_qemu(self.root)
        self.channel.close()
