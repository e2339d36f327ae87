"""Traces one execution can leave for the next in a worker's long-lived namespaces (stdlib only: runs inside).

At ``bwrap`` and ``unshare`` a worker keeps its IPC and network namespaces and its scratch tmpfs for its
whole life, and empties them after every execution. Emptying does not undo what a program can still pass
on: the next inode number of a tmpfs and the next SysV id (each advanced by every object created, removed
or not), and sockets that outlive every process (a cycle of unix sockets held in flight by each other, TCP
connections in TIME_WAIT). A later program reading them decodes what an earlier one encoded.

``Traces`` reads those after each execution's cleanup: the inode number a fresh unnamed file gets on each
scratch tmpfs, the id a fresh SysV object of each kind gets, and the socket counters. Only what the worker
itself made since the last check is expected; anything more means a program wrote to a channel, and the
worker retires (worker.py), so the next execution meets fresh namespaces and tmpfs. The check costs a few
system calls per execution; a program that creates files or IPC objects costs a worker restart.

The next pid of the worker's pid namespace is a counter too (every fork and thread advances it), but retiring
on it would restart the worker for every threaded program: ``PidCursor`` instead rewinds it before every
execution, so that each one's first process gets the same pid whatever earlier ones did.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import time

_libc = ctypes.CDLL(None, use_errno=True)
IPC_PRIVATE, IPC_RMID = 0, 0
IPC_MIN_CYCLE = 64
"""With no object in use, Linux (>= 5.x, ipc/util.c) hands out SysV indices cyclically below this, and the
id is seq * IPCMNI + index, seq advancing when the index wraps: the id one creation after ``last`` is
last + 1, or the next seq's index 0 once the index reaches IPC_MIN_CYCLE - 1. IPCMNI (2^15, or 2^24 with
the ipcmni_extend boot option) is learnt at start by creating objects until the index wraps once. Older
kernels advance seq on every creation: a constant step, learnt the same way."""
WORKDIR_INODES = 2
"""Inodes the worker makes per execution in the working root: the working directory and its prog.py."""
SOCKSTAT = "/proc/net/sockstat"
"""Per network namespace: ``sockets: used`` counts every socket of a process (a unix socket held in flight
by a cycle of them included, however long it outlives its processes), ``TCP: inuse`` the TCP sockets still
hashed (an orphan still closing included), ``tw`` those in TIME_WAIT. The worker holds no socket in its
namespace, so after an execution all of them read 0. ``orphan`` (and ``alloc``) on the same line count the
whole host's, so they are not read: a busy host's orphans would retire every worker after every execution.
(A table such as /proc/net/tcp would say more, but reading it walks the host's whole connection hash: ~7 ms
per execution here, against ~20 us for these counters.)"""
SOCKSTAT_ZERO = {"sockets:": ("used",), "TCP:": ("inuse", "tw")}


def _fresh_inode(dir_fd: int | None) -> int | None:
    """The inode number the tmpfs of directory ``dir_fd`` hands out next, taken by an unnamed file that vanishes
    on close."""
    if dir_fd is None:
        return None
    try:
        fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600, dir_fd=dir_fd)
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


SOCKET_GRACE_S = 0.05
"""Netlink and UDP sockets are freed after an RCU grace period, so a program's closed socket may still count
for a few milliseconds: a non-zero count is read again for up to this long before it counts as a trace."""


def _sockets_counted(fd: int | None) -> bool:
    if fd is None:
        return False  # no procfs view of the network: nothing to read, and nothing a program reads either
    try:
        raw = os.pread(fd, 4096, 0)
    except OSError:
        return False
    rows = {line.split()[0]: line.split()[1:] for line in raw.decode("ascii", "replace").splitlines() if line.strip()}
    for row, fields in SOCKSTAT_ZERO.items():
        values = dict(zip(rows.get(row, [])[::2], rows.get(row, [])[1::2], strict=False))
        if any(values.get(name, "0") != "0" for name in fields):
            return True
    return False


def _sockets_left(fd: int | None) -> bool:
    """Whether any socket (or closing TCP connection) is left in this network namespace (see SOCKSTAT)."""
    deadline = time.monotonic() + SOCKET_GRACE_S
    while _sockets_counted(fd):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.002)
    return False


def _open(path: str, flags: int) -> int | None:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        return None


class Traces:
    """Baselines of the counters, taken when the worker starts and after every check. The scratch directories
    and the socket counters are opened once (every execution's child closes the descriptors with the worker's
    others before its program runs), so a check is a few system calls without a path walk."""

    def __init__(self, scratch_dirs: tuple[str, ...], workroot: str) -> None:
        root_dev = os.stat(workroot).st_dev
        self._dirs = [d for d in scratch_dirs if os.path.isdir(d)]
        self._own = {d: WORKDIR_INODES if os.stat(d).st_dev == root_dev else 0 for d in self._dirs}
        self._fds = {d: _open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW) for d in self._dirs}
        self._sockstat = _open(SOCKSTAT, os.O_RDONLY)
        self._inodes = {d: _fresh_inode(self._fds[d]) for d in self._dirs}
        self._ids, self._laws = _learn_sysv()

    def unchanged(self) -> bool:
        """True when the execution since the last call left nothing a later one could read (every process of
        it is dead and its files and IPC objects are removed by now); the baselines move on either way.
        True also means no inode was made on any scratch tmpfs but the working directory and its prog.py:
        the worker then has nothing there to clean (worker.py)."""
        clean = not _sockets_left(self._sockstat)
        for d in self._dirs:
            before, now = self._inodes[d], _fresh_inode(self._fds[d])
            if before is None or now is None or now != before + self._own[d] + 1:
                clean = False
            self._inodes[d] = now
        ids = _fresh_sysv_ids()
        if not all(map(_one_creation_later, self._ids, ids, self._laws)):
            clean = False  # (also once per wrap of the kernel's seq counter: a harmless restart)
        self._ids = ids
        return clean


FIRST_PID = 1000
"""The pid every execution's first process gets where the worker can rewind its pid namespace (PidCursor)."""


class PidCursor:
    """ns_last_pid of the worker's pid namespace, set to FIRST_PID - 1 right before every execution's fork: the
    program's own pid, and those of the processes it starts, then depend on nothing an earlier execution did
    (they all are dead and reaped by then, so FIRST_PID is free)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._value = str(FIRST_PID - 1).encode()

    def rewind(self) -> None:
        os.pwrite(self._fd, self._value, 0)

    @classmethod
    def checked(cls, fd: int | None) -> PidCursor | None:
        """The cursor if a rewind really gives the next child FIRST_PID (after the worker's capabilities are
        dropped, which is when it matters); None otherwise, with ``fd`` closed."""
        if fd is None:
            return None
        cursor = cls(fd)
        try:
            cursor.rewind()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        except OSError:
            pid = -1
        if pid != FIRST_PID:
            os.close(fd)
            return None
        return cursor


def _learn_sysv() -> tuple[tuple[int, int, int], tuple[tuple[int, int], ...]]:
    """The last ids handed out, and per kind (step, IPCMNI or 0 where no wrap was seen)."""
    ids = [_fresh_sysv_ids()]
    while len(ids) < IPC_MIN_CYCLE + 3:  # long enough for every kind's index to wrap once
        ids.append(_fresh_sysv_ids())
    laws = []
    for kind in range(3):
        seen = [row[kind] for row in ids]
        deltas = [b - a for a, b in itertools.pairwise(seen)]
        step = min(deltas)
        wraps = [i for i, d in enumerate(deltas) if d != step]
        mni = deltas[wraps[0]] + IPC_MIN_CYCLE - 1 if step == 1 and wraps else 0  # (seq+1)M - (seq M + 63)
        laws.append((step, mni))
    return ids[-1], tuple(laws)


def _one_creation_later(last: int, now: int, law: tuple[int, int]) -> bool:
    """Whether SysV id ``now`` is the one the kernel hands out right after ``last`` (see IPC_MIN_CYCLE)."""
    step, mni = law
    if mni > 0 and last % mni == IPC_MIN_CYCLE - 1:
        return now == (last // mni + 1) * mni
    return now == last + step
