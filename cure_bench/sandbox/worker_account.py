"""What one execution used, all processes together (runs inside the isolation; standard library only).

With the slot's cgroups (directory fds from the parent, see cgroups.py): CPU is the cgroup's usage counter
across the execution, memory its peak, a memory-limit hit its failure/OOM counters, and pids.max caps the
process count. Without them (not root, portable mode): CPU is the sum over every process of the execution,
which are all descendants of the worker since it is a child subreaper: live ones and zombies from /proc
(their own time plus that of children they reaped), and the ones the worker reaps from their rusage.
"""

from __future__ import annotations

import contextlib
import os

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(dir_fd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


def _write(dir_fd: int, name: str, value: str) -> bool:
    try:
        fd = os.open(name, os.O_WRONLY, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        os.write(fd, value.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _stat_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of one process (a zombie keeps its stat until reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def tree_cpu(root: int) -> float:
    """CPU seconds of every live or unreaped process below ``root`` (the worker)."""
    total, frontier = 0.0, _children(root)
    while frontier:
        pid = frontier.pop()
        total += _stat_cpu(pid)
        frontier += _children(pid)
    return total


class Accounting:
    """One slot's counters; ``begin`` before each execution, then ``cpu``/``memory`` read its share."""

    def __init__(self, cgroups: dict[str, list[object]] | None, nproc: int):
        self.fds = {name: int(v[0]) for name, v in (cgroups or {}).items()}  # type: ignore[call-overload]
        self.kinds = {name: str(v[1]) for name, v in (cgroups or {}).items()}
        self.cpu0 = 0.0
        self.oom0 = 0
        self._limit = -1
        self._base = 0  # bytes charged to the slot when the execution began (begin)
        if "pids" in self.fds:
            _write(self.fds["pids"], "pids.max", str(nproc))

    @property
    def cgroup(self) -> bool:
        return "cpu" in self.fds

    def _cgroup_cpu(self) -> float:
        if self.kinds["cpu"] == "v2":
            for line in _read(self.fds["cpu"], "cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
            return 0.0
        return int(_read(self.fds["cpu"], "cpuacct.usage")) / 1e9

    def _oom_count(self) -> int:
        if "memory" not in self.fds:
            return 0
        name = "memory.oom_control" if self.kinds["memory"] == "v1" else "memory.events"
        for line in _read(self.fds["memory"], name).splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def begin(self, memory_limit_bytes: int) -> None:
        """Set the execution's memory cap and reset its peak. The counters' starting values are those at the
        end of the previous execution (``end``): nothing runs in the slot between executions.

        What earlier executions left charged to the slot (the page cache of the files they read) is not this
        one's: resetting the peak only sets it to the current usage, so a program that read ~limit worth of
        files made every later failing execution of the slot ``memory_limit``, with a peak it never used. The
        peak is therefore counted from the usage here (``_base``), and a leftover above an eighth of the limit
        is reclaimed first (only then: reclaiming evicts cached files, e.g. an allowed package, that the next
        program would read again)."""
        mem = self.fds.get("memory")
        if mem is None:
            return
        v1 = self.kinds["memory"] == "v1"
        self._base = self._usage()
        if self._base > memory_limit_bytes // 8:
            if v1:
                _write(mem, "memory.force_empty", "0")
            else:
                _write(mem, "memory.reclaim", str(self._base))
            self._base = self._usage()
        limit_file = "memory.limit_in_bytes" if v1 else "memory.max"
        if memory_limit_bytes != self._limit and _write(mem, limit_file, str(memory_limit_bytes)):
            self._limit = memory_limit_bytes  # else (usage above it) tried again before the next execution
        _write(mem, "memory.max_usage_in_bytes" if v1 else "memory.peak", "0")

    def _usage(self) -> int:
        name = "memory.usage_in_bytes" if self.kinds["memory"] == "v1" else "memory.current"
        try:
            return int(_read(self.fds["memory"], name))
        except (OSError, ValueError):
            return 0

    def start(self) -> None:
        """Take the starting values once, when the worker starts."""
        if self.cgroup:
            self.cpu0 = self._cgroup_cpu()
        self.oom0 = self._oom_count()

    def join(self, pid: int) -> None:
        """Put ``pid`` (the freshly forked child, before it runs anything) into every slot cgroup."""
        for fd in self.fds.values():
            if not _write(fd, "cgroup.procs", str(pid)):
                raise OSError(f"cannot join the execution's cgroup ({pid})")

    def cpu(self, worker_pid: int, main_pid: int) -> float:
        """CPU seconds of the whole execution so far."""
        if self.cgroup:
            return self._cgroup_cpu() - self.cpu0
        return tree_cpu(worker_pid)

    def end(self) -> tuple[float, float | None, bool]:
        """After the execution (all its processes gone): (its CPU seconds, its peak MiB or None without a
        memory cgroup, whether the kernel killed one of its processes for memory). Needs a cgroup."""
        total = self._cgroup_cpu()
        cpu, self.cpu0 = total - self.cpu0, total
        mem = self.fds.get("memory")
        if mem is None:
            return cpu, None, False
        name = "memory.max_usage_in_bytes" if self.kinds["memory"] == "v1" else "memory.peak"
        peak = None
        with contextlib.suppress(OSError, ValueError):
            peak = max(0, int(_read(mem, name)) - self._base) / 2**20
        oom = self._oom_count()
        hit, self.oom0 = oom > self.oom0, oom
        return cpu, peak, hit
