"""Watching one execution and cleaning up after it: the worker's half that is about processes, not programs.

Like ``worker.py`` this runs inside the isolation and imports only the standard library. On Linux it uses
a pidfd to wait, /proc to read a running child's CPU time, and makes the worker a child subreaper so that
every orphan of an execution comes back to it to be killed. ``portable`` mode (other Unixes, e.g. macOS;
forced on Linux by the tests) polls instead, relies on RLIMIT_CPU for the CPU limit, and kills leftovers
by signalling every process of the execution's dedicated uid.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import select
import signal
import tempfile
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
_libc = ctypes.CDLL(None, use_errno=True)

portable = os.uname().sysname != "Linux"
"""Set by the worker from its config; True wherever Linux-only facilities are missing."""


def prctl(option: int, arg: int) -> None:
    """Linux prctl(2); a no-op where it does not exist (the portable paths do not rely on it)."""
    fn = getattr(_libc, "prctl", None)
    if fn is not None and not portable:
        fn(option, arg, 0, 0, 0)


def memory_file(name: str, directory: str) -> int:
    """An anonymous read/write file for a child's stdio: a memfd, or an unlinked temp file."""
    if not portable and hasattr(os, "memfd_create"):
        return os.memfd_create(name)
    fd, path = tempfile.mkstemp(prefix=f".{name}-", dir=directory)
    os.unlink(path)
    return fd


def cpu_backstop(limit: float) -> int:
    """RLIMIT_CPU seconds: a backstop where the supervisor can see CPU time, the limit itself where not."""
    return max(1, math.ceil(limit)) if portable else int(limit) + 2


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a live child and its reaped children, from /proc (0 where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class _Waiter:
    """Sleep until the child exits or ``timeout`` passes: a pidfd where there is one, else polling."""

    def __init__(self, pid: int):
        self.pid = pid
        self.fd = os.pidfd_open(pid) if not portable and hasattr(os, "pidfd_open") else None
        self.ended: tuple[int, int, object] | None = None

    def poll(self) -> tuple[int, int, object]:
        """``os.wait4(pid, WNOHANG)``, remembered once the child has been reaped."""
        if self.ended is None:
            result = os.wait4(self.pid, os.WNOHANG)
            if result[0]:
                self.ended = result
            return result
        return self.ended

    def wait(self, timeout: float) -> None:
        if self.fd is not None:
            select.select([self.fd], [], [], timeout)
            return
        deadline, nap = time.monotonic() + timeout, 0.0002
        while time.monotonic() < deadline and not self.poll()[0]:
            time.sleep(nap)
            nap = min(nap * 2, 0.005)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def supervise(
    pid: int, limit: float, t0: float, cpu_of: Callable[[int], float] | None = None
) -> tuple[int, object, str | None]:
    """Wait for the child; kill it at ``limit`` CPU seconds or when it idles past the wall backstop.

    CPU time, not wall time, decides the time limit, so verdicts do not depend on machine load. The CPU is
    ``cpu_of(pid)``: the whole execution's (every process of it, see worker_account.py), so work moved to
    unwaited children counts. The wall backstop catches programs that sleep or block: past ``2 x limit + 1``
    s of wall time, an execution whose CPU use over the last second is under 5% is idle (a starved but busy
    one keeps running, up to a hard cap).
    """
    cpu_of = cpu_of or _proc_cpu
    backstop, hard_cap = 2 * limit + 1.0, 20 * limit + 10.0
    waiter = _Waiter(pid)
    history: list[tuple[float, float]] = []
    reason = None
    try:
        waiter.wait(min(limit, 0.25))  # most programs end here: no /proc read needed
        while True:
            done, status, usage = waiter.poll()
            if done:
                return status, usage, reason
            if reason is None:
                now, cpu = time.monotonic() - t0, cpu_of(pid)
                history = [h for h in history if now - h[0] <= 1.5] + [(now, cpu)]
                old_t, old_cpu = history[0]
                idle = now - old_t >= 1.0 and (cpu - old_cpu) < 0.05 * (now - old_t)
                if cpu > limit or (now > backstop and idle) or now > hard_cap:
                    reason = "time"
                    kill_group(pid)
                    continue
                wait = min(max(limit - cpu, 0.01), 0.25)
            else:
                wait = 0.05
            waiter.wait(wait)
    finally:
        waiter.close()


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # before the child's setsid: its group is not its pid yet
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _my_children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # kernel without CONFIG_PROC_CHILDREN: scan every process's parent
        kids = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == me:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return kids


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (the execution's dedicated uid): kill(-1) from a helper running as it.

    kill(-1) reaches every process the caller may signal, itself excepted, in one atomic pass, so even a
    fork bomb cannot outrun it.
    """
    helper = os.fork()
    if helper == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


class _Reaped:
    """CPU seconds of the leftovers the worker reaped (their rusage includes their own reaped children)."""

    cpu = 0.0


def _wait_any(options: int) -> int:
    pid, _, usage = os.wait3(options)
    if pid > 0:
        _Reaped.cpu += usage.ru_utime + usage.ru_stime
    return pid


def _reap() -> bool:
    """Reap finished children; False once there are none left at all."""
    try:
        while _wait_any(os.WNOHANG) > 0:
            pass
    except ChildProcessError:
        return False
    return True


def kill_tree(pgid: int, uid: int) -> float:
    """Kill every process the execution left behind, however it detached; returns the CPU seconds of the
    leftovers reaped (for accounting without a cgroup).

    Linux: the worker is a child subreaper, so any orphaned descendant (a setsid grandchild, a double-forked
    daemon) is re-parented to it; killing and reaping our children until none remain empties the tree.
    Portable: kill the process group, then every process of the execution's uid (when it has its own).
    """
    _Reaped.cpu = 0.0
    _kill_rest(pgid, uid)
    return _Reaped.cpu


def _kill_rest(pgid: int, uid: int) -> None:
    kill_group(pgid)
    if portable:
        if uid >= 0:
            _kill_uid(uid)
        _reap()
        return
    for _ in range(100_000):
        if not _reap():
            return
        kids = _my_children()
        for child in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        if not kids:
            time.sleep(0.001)  # an orphan is being re-parented to us right now
            continue
        try:
            _wait_any(0)  # one of the killed ones; loop to reap the rest and any new orphans
        except ChildProcessError:
            return
