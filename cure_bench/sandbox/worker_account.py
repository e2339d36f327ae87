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
OOM_MARGIN_BYTES = 16 * 2**20
"""A memory cgroup's OOM kill follows a charge that would pass its limit; one charge is at most a huge page
(2 MiB) or a batch, so an execution whose peak stayed this far below the limit had none (``end`` then skips
reading the OOM counter)."""


class _Files:
    """The cgroup files one slot reads and writes around every execution, each opened once and then read with
    ``pread`` at offset 0 (a cgroup file regenerates its text on every read from the start) and written with
    ``pwrite``: no path walk, open or close per execution (a few of them per execution were ~10% of the
    worker's per-execution CPU)."""

    def __init__(self, dir_fds: dict[str, int]) -> None:
        self._dirs = dir_fds
        self._open: dict[tuple[str, str, int], int] = {}

    def fd(self, resource: str, name: str, flags: int) -> int:
        key = (resource, name, flags)
        if key not in self._open:
            self._open[key] = os.open(name, flags | os.O_CLOEXEC, dir_fd=self._dirs[resource])
        return self._open[key]

    def read(self, resource: str, name: str, flags: int = os.O_RDONLY) -> str:
        return os.pread(self.fd(resource, name, flags), 4096, 0).decode()

    def write(self, resource: str, name: str, value: str, flags: int = os.O_WRONLY) -> bool:
        try:
            os.pwrite(self.fd(resource, name, flags), value.encode(), 0)
        except OSError:
            return False
        return True


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
        self.files = _Files(self.fds)
        self.cpu0 = 0.0
        self.oom0 = 0
        self._limit = -1
        self._base = 0  # bytes charged to the slot when the execution began (begin)
        if "pids" in self.fds:
            self.files.write("pids", "pids.max", str(nproc))

    @property
    def cgroup(self) -> bool:
        return "cpu" in self.fds

    def _cgroup_cpu(self) -> float:
        if self.kinds["cpu"] == "v2":
            for line in self.files.read("cpu", "cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
            return 0.0
        return int(self.files.read("cpu", "cpuacct.usage")) / 1e9

    def _oom_count(self) -> int:
        if "memory" not in self.fds:
            return 0
        name = "memory.oom_control" if self.kinds["memory"] == "v1" else "memory.events"
        for line in self.files.read("memory", name).splitlines():
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
        if "memory" not in self.fds:
            return
        v1 = self.kinds["memory"] == "v1"
        self._base = self._usage()
        if self._base > memory_limit_bytes // 8:
            if v1:
                self.files.write("memory", "memory.force_empty", "0")
            else:
                self.files.write("memory", "memory.reclaim", str(self._base))
            self._base = self._usage()
        limit_file = "memory.limit_in_bytes" if v1 else "memory.max"
        if memory_limit_bytes != self._limit and self.files.write("memory", limit_file, str(memory_limit_bytes)):
            self._limit = memory_limit_bytes  # else (usage above it) tried again before the next execution
        if v1:
            self.files.write("memory", "memory.max_usage_in_bytes", "0")
        else:  # v2 resets the peak for reads through the descriptor written to (Linux >= 6.12): one for both
            self.files.write("memory", "memory.peak", "reset", os.O_RDWR)

    def _usage(self) -> int:
        name = "memory.usage_in_bytes" if self.kinds["memory"] == "v1" else "memory.current"
        try:
            return int(self.files.read("memory", name))
        except (OSError, ValueError):
            return 0

    def start(self) -> None:
        """Take the starting values once, when the worker starts."""
        if self.cgroup:
            self.cpu0 = self._cgroup_cpu()
        self.oom0 = self._oom_count()
        for resource in self.fds:  # opened now, so that a child only writes (join); a failure shows there
            with contextlib.suppress(OSError):
                self.files.fd(resource, "cgroup.procs", os.O_WRONLY)

    def join(self) -> None:
        """Put the calling process (the freshly forked child, before it runs anything) into every slot cgroup:
        "0" written to each ``cgroup.procs``, through descriptors the worker opened once (``start``); the child
        closes them with every other worker descriptor before the program runs."""
        for resource in self.fds:
            if not self.files.write(resource, "cgroup.procs", "0"):
                raise OSError(f"cannot join the execution's {resource} cgroup")

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
        if "memory" not in self.fds:
            return cpu, None, False
        v1 = self.kinds["memory"] == "v1"
        peak, used = None, None
        with contextlib.suppress(OSError, ValueError):
            used = int(
                self.files.read("memory", "memory.max_usage_in_bytes")
                if v1
                else self.files.read("memory", "memory.peak", os.O_RDWR)
            )
            peak = max(0, used - self._base) / 2**20
        if used is not None and self._limit > 0 and used < self._limit - OOM_MARGIN_BYTES:
            return cpu, peak, False  # the kernel kills for memory only at the limit: the counter has not moved
        oom = self._oom_count()
        hit, self.oom0 = oom > self.oom0, oom
        return cpu, peak, hit
