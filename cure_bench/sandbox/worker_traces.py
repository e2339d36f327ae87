"""Traces one execution can leave for the next in a worker's long-lived namespaces (stdlib only: runs inside).

At ``bwrap`` and ``unshare`` a worker keeps its IPC and network namespaces and its scratch tmpfs for its
whole life, and empties them after every execution. Emptying does not undo what a program can still pass
on: the next inode number of a tmpfs and the next SysV id (each advanced by every object created, removed
or not), and sockets that outlive every process (a cycle of unix sockets held in flight by each other, TCP
connections in TIME_WAIT). A later program reading them decodes what an earlier one encoded.

``Traces`` reads those after each execution's cleanup: the inode number a fresh unnamed file gets on each
scratch tmpfs, the id a fresh SysV object of each kind gets, and the socket tables. Only what the worker
itself made since the last check is expected; anything more means a program wrote to a channel, and the
worker retires (worker.py), so the next execution meets fresh namespaces and tmpfs. The check costs a few
system calls per execution; a program that creates files or IPC objects costs a worker restart.

Not closed here: the next pid of the worker's pid namespace (every fork and thread advances it, so
retiring on it would restart the worker for every threaded program); see docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
IPC_PRIVATE, IPC_RMID = 0, 0
WORKDIR_INODES = 2
"""Inodes the worker makes per execution in the working root: the working directory and its prog.py."""
SOCKET_TABLES = ("/proc/net/unix", "/proc/net/tcp", "/proc/net/tcp6")
"""Where sockets without a process show: in-flight unix sockets (any descriptor kept in flight sits in one)
and TCP connections closing (TIME_WAIT, FIN_WAIT). The worker holds no socket of its own in its namespace."""


def _fresh_inode(path: str) -> int | None:
    """The inode number the tmpfs at ``path`` hands out next, taken by an unnamed file that vanishes on close."""
    try:
        fd = os.open(path, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def _fresh_sysv_ids() -> tuple[int, int, int]:
    """The ids a new shared-memory segment, message queue and semaphore set get (each removed at once)."""
    shm = _libc.shmget(IPC_PRIVATE, 1, 0o600)
    _libc.shmctl(shm, IPC_RMID, None)
    msg = _libc.msgget(IPC_PRIVATE, 0o600)
    _libc.msgctl(msg, IPC_RMID, None)
    sem = _libc.semget(IPC_PRIVATE, 1, 0o600)
    _libc.semctl(sem, 0, IPC_RMID)
    return shm, msg, sem


def _sockets_left() -> bool:
    for table in SOCKET_TABLES:
        with contextlib.suppress(OSError), open(table, "rb") as f:
            if len(f.read(4096).splitlines()) > 1:  # a header line, then one line per socket
                return True
    return False


class Traces:
    """Baselines of the counters, taken when the worker starts and after every check."""

    def __init__(self, scratch_dirs: tuple[str, ...], workroot: str) -> None:
        root_dev = os.stat(workroot).st_dev
        self._dirs = [d for d in scratch_dirs if os.path.isdir(d)]
        self._own = {d: WORKDIR_INODES if os.stat(d).st_dev == root_dev else 0 for d in self._dirs}
        self._inodes = {d: _fresh_inode(d) for d in self._dirs}
        first = _fresh_sysv_ids()
        self._ids = _fresh_sysv_ids()
        self._id_step = tuple(b - a for a, b in zip(first, self._ids, strict=True))  # one creation's advance

    def unchanged(self) -> bool:
        """True when the execution since the last call left nothing a later one could read (every process of
        it is dead and its files and IPC objects are removed by now); the baselines move on either way."""
        clean = not _sockets_left()
        for d in self._dirs:
            before, now = self._inodes[d], _fresh_inode(d)
            if before is None or now is None or now != before + self._own[d] + 1:
                clean = False
            self._inodes[d] = now
        ids = _fresh_sysv_ids()
        if any(b != a + step for a, b, step in zip(self._ids, ids, self._id_step, strict=True)):
            clean = False  # (also once per wrap of the kernel's id sequence: a harmless restart)
        self._ids = ids
        return clean
