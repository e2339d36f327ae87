"""Per-worker-slot control groups, so that all CPU and memory of an execution is charged to it.

Why: a program's main process is not the whole program. Work done in unwaited children, or in a chain of
processes each forking its successor, escapes per-process accounting (``RLIMIT_CPU``, ``wait4``), and the
memory of 16 processes, tmpfs files, memfds and SysV segments escapes ``RLIMIT_AS``. A cgroup counts all
of it, whatever the processes do, and its pids controller caps their number.

One cgroup per worker slot and resource, created by the parent (as root) under the parent's own cgroup in
each hierarchy; the parent passes open directory fds to the worker, which never needs cgroupfs mounted in
its view. A slot runs one execution at a time and kills everything of it before the next, so the slot's
cgroup is that execution's: the worker charges an execution the difference of the counters across it and
resets the memory peak. cgroup v2 is used for a resource where its controller is available (``cpu.stat``
always is), v1 otherwise (this host: v1 memory and pids). Without root or cgroupfs, ``available()`` is
False and the worker accounts every process of the execution from /proc instead (worker_supervise.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field

ROOT = "/sys/fs/cgroup"


def _own_cgroups() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path in that hierarchy."""
    found: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                found[name] = path
    return found


def _mounts() -> dict[str, str]:
    """controller (or "" for the v2 hierarchy) -> its mount point."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _, options = right.split()[:3]
            point = left.split()[4]
            if fstype == "cgroup2":
                found.setdefault("", point)
            elif fstype == "cgroup":
                for opt in options.split(","):
                    if opt in ("cpuacct", "memory", "pids"):
                        found.setdefault(opt, point)
    return found


def _plan() -> dict[str, tuple[str, str]]:
    """resource -> (kind "v1"/"v2", directory of this process's cgroup in the hierarchy that counts it)."""
    own, mounts = _own_cgroups(), _mounts()
    plan: dict[str, tuple[str, str]] = {}
    v2 = os.path.join(mounts[""], own.get("", "/").lstrip("/")) if "" in mounts and "" in own else None
    v2_controllers: set[str] = set()
    if v2 is not None:
        with contextlib.suppress(OSError), open(os.path.join(v2, "cgroup.controllers")) as f:
            v2_controllers = set(f.read().split())
    for resource, v1_name in (("cpu", "cpuacct"), ("memory", "memory"), ("pids", "pids")):
        if v2 is not None and (resource == "cpu" or resource in v2_controllers):
            plan[resource] = ("v2", v2)
        elif v1_name in mounts and v1_name in own:
            plan[resource] = ("v1", os.path.join(mounts[v1_name], own[v1_name].lstrip("/")))
    return plan


@dataclass
class SlotCgroups:
    """The cgroups of every worker slot of one Sandbox; ``fds(slot)`` goes into the worker's config."""

    plan: dict[str, tuple[str, str]]
    base: dict[str, str] = field(default_factory=dict)  # resource -> this sandbox's directory
    _fds: dict[int, dict[str, int]] = field(default_factory=dict)

    def fds(self, slot: int) -> dict[str, list[object]]:
        """resource -> [directory fd, kind] for ``slot``; fds stay open (inheritable) until ``close``."""
        if slot not in self._fds:
            opened = {}
            for resource, base in self.base.items():
                path = os.path.join(base, f"slot-{slot}")
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path, 0o755)
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
                os.set_inheritable(fd, True)
                opened[resource] = fd
            self._fds[slot] = opened
        return {r: [fd, self.plan[r][0]] for r, fd in self._fds[slot].items()}

    def pass_fds(self) -> tuple[int, ...]:
        return tuple(fd for slot in self._fds.values() for fd in slot.values())

    def describe(self) -> dict[str, str]:
        return {resource: f"{kind} {self.base[resource]}" for resource, (kind, _) in self.plan.items()}

    def close(self) -> None:
        """Remove the slot cgroups (their processes are gone by now) and this sandbox's directories."""
        for slot in self._fds.values():
            for fd in slot.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds.clear()
        for base in self.base.values():
            with contextlib.suppress(OSError):
                for entry in os.listdir(base):
                    if entry.startswith("slot-"):
                        with contextlib.suppress(OSError):
                            os.rmdir(os.path.join(base, entry))
                os.rmdir(base)


def _remove_stale(directory: str) -> None:
    """Remove the cgroups of sandboxes whose process is gone (a crash or SIGKILL skips ``close``)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(directory):
            parts = entry.split("-")
            ours = entry.startswith("cure-sandbox-") and len(parts) == 4 and parts[2].isdigit()
            if ours and not os.path.exists(f"/proc/{parts[2]}"):
                SlotCgroups({}, {"x": os.path.join(directory, entry)}).close()


def available() -> bool:
    """Whether this process can give a sandbox its cgroups (for tests and diagnostics)."""
    groups = create(False)
    if groups is None:
        return False
    groups.close()
    return True


def create(portable: bool) -> SlotCgroups | None:
    """This sandbox's cgroups, or None where they cannot be made (not root, no cgroupfs, portable mode)."""
    if portable or not os.path.isdir(ROOT) or os.geteuid() != 0:
        return None
    try:
        plan = _plan()
    except (OSError, ValueError):
        return None
    if "cpu" not in plan:
        return None
    groups = SlotCgroups(plan)
    name = f"cure-sandbox-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        for resource, (kind, directory) in plan.items():
            _remove_stale(directory)
            path = os.path.join(directory, name)
            if path not in groups.base.values():
                os.mkdir(path, 0o755)
            groups.base[resource] = path
            if kind == "v2" and resource in ("memory", "pids"):
                with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                    f.write(f"+{resource}")
    except OSError:
        groups.close()
        return None
    return groups
