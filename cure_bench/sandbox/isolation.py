"""Isolation levels: how a worker process is wrapped, and what each level contains.

Levels, strongest first (``auto`` takes the first that starts):

- ``bwrap``: bubblewrap namespaces (network, pid, ipc, uts, mount). The filesystem is the allow-list view
  of ``view.py``: read-only /usr (site-packages masked), the interpreter and its standard library, the
  judge's allowed packages, a minimal /etc, private size-capped tmpfs for the scratch directories. The
  repository, the toolkit's package, datasets, caches, run directories and $HOME are simply not there.
- ``unshare``: util-linux ``unshare`` namespaces (network, pid, ipc, uts, mount); the worker builds the same
  allow-list view itself and pivot_roots into it (``worker_mounts.build_view``).
- ``rlimits``: no namespaces (e.g. macOS, containers without user namespaces): rlimits, an unprivileged uid
  when we run as root, a private working directory; network and world-readable files are reachable, so
  the start-up probe refuses to run if the caller's explicit must-hide paths are readable.
- ``none``: rlimits for judge semantics (time/memory/output limits) and nothing else. Only when asked.

In every level programs get a minimal environment (``ENV_ALLOWLIST``), never the caller's variables.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cure_bench.errors import SandboxError
from cure_bench.sandbox import view
from cure_bench.sandbox.view import real_python as real_python

LEVELS = ("bwrap", "unshare", "rlimits", "none")
AUTO_ORDER = ("bwrap", "unshare", "rlimits")
UID_BASE = int(os.environ.get("CURE_SANDBOX_UID_BASE", "60000"))
UID_BLOCK = 1024
"""Each live Sandbox claims its own block of UID_BLOCK uids from UID_BASE up (only when the parent is root),
and worker slot i runs programs as block start + i: one uid per slot keeps RLIMIT_NPROC per execution,
stops programs in different slots (or different Sandboxes on the machine) from signalling each other."""
WORKER_SOURCE = Path(__file__).with_name("worker.py")
WORKER_FILES = (
    "worker.py",
    "worker_supervise.py",
    "worker_mounts.py",
    "worker_account.py",
    "worker_traces.py",
)  # stdlib-only files the worker runs from
PORTABLE = os.environ.get("CURE_SANDBOX_PORTABLE") == "1" or not sys.platform.startswith("linux")
"""Workers avoid Linux-only facilities (memfd, pidfd, /proc, subreaper); forced on Linux by tests."""

CONTAINS = {
    "bwrap": {
        "network": "none",
        "filesystem": "allow-list: /usr, interpreter + stdlib, judge packages, minimal /etc; private tmpfs scratch",
        "pid_namespace": True,
    },
    "unshare": {
        "network": "none",
        "filesystem": "allow-list (pivot_root): /usr, interpreter + stdlib, judge packages, minimal /etc; "
        "private tmpfs scratch",
        "pid_namespace": True,
    },
    "rlimits": {"network": "host", "filesystem": "host (unprivileged uid permissions only)", "pid_namespace": False},
    "none": {"network": "host", "filesystem": "host", "pid_namespace": False},
}


class UidBlock:
    """A block of uids held for this process's lifetime of one Sandbox, via an flock on a file in the
    system temp directory: two Sandboxes on one machine never share program uids. The kernel drops the
    lock if the process dies, so a crash never leaks a block."""

    def __init__(self, workers: int):
        if workers > UID_BLOCK:
            raise SandboxError(f"--workers {workers} is more than {UID_BLOCK}, the uids one sandbox may use")
        locks = Path(tempfile.gettempdir()) / "cure-sandbox-uids"
        locks.mkdir(mode=0o755, exist_ok=True)
        for block in range(64):
            fd = os.open(locks / f"block-{block}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.base, self._fd = UID_BASE + block * UID_BLOCK, fd
            return
        raise SandboxError(f"all 64 uid blocks under {locks} are held by running sandboxes")

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def env_allowlist() -> dict[str, str]:
    """The whole environment a program sees: nothing from the caller (no API keys, tokens, paths)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def available(level: str) -> bool:
    """Cheap precondition for a level (the real test is whether a worker starts under it)."""
    if level == "bwrap":
        return shutil.which("bwrap") is not None and sys.platform.startswith("linux")
    if level == "unshare":
        return shutil.which("unshare") is not None and sys.platform.startswith("linux")
    return level in ("rlimits", "none")


def drops_uid(level: str) -> bool:
    """Whether programs run under a dedicated unprivileged uid (possible only when the parent is root)."""
    return level != "none" and hasattr(os, "geteuid") and os.geteuid() == 0


BWRAP_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_SYS_ADMIN",
)
"""CAP_SETPCAP only so that the worker can empty its bounding set at start (PR_CAPBSET_DROP needs it; without it the
bounding set of the worker and of every program stayed full); CAP_SYS_ADMIN only to mount a private procfs at start
and open its ns_last_pid (worker_mounts.open_pid_cursor); the worker's capset drops both before any program runs.
CAP_CHECKPOINT_RESTORE (added where this bubblewrap knows its name, see _bwrap_knows) the worker keeps to rewind
its pid namespace before every execution (worker_traces.PidCursor); without it that channel stays open."""
PID_REWIND_CAP = "CAP_CHECKPOINT_RESTORE"


@functools.lru_cache(maxsize=8)
def _bwrap_knows(cap: str) -> bool:
    """Whether bubblewrap (as root) accepts ``--cap-add cap``: older libcap builds do not know the newer names,
    and an unknown one would stop every worker from starting."""
    try:
        done = subprocess.run(
            ["bwrap", "--ro-bind", "/", "/", "--cap-drop", "ALL", "--cap-add", cap, "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.lru_cache(maxsize=1)
def _bwrap_version() -> tuple[int, ...]:
    try:
        out = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=10).stdout
        return tuple(int(x) for x in out.split()[-1].split("."))
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return (0,)


def _bwrap_args(ops: Sequence[view.MountOp]) -> list[str]:
    args = [
        "bwrap",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]
    if os.geteuid() != 0:
        args.append("--unshare-user")  # unprivileged bubblewrap needs a user namespace
        if _bwrap_version() >= (0, 8):
            args.append("--disable-userns")  # and programs may not make further ones (seccomp denies it too)
    else:  # root: bubblewrap would keep every capability; the worker needs these only (worker_mounts.py)
        args += ["--cap-drop", "ALL"]
        for cap in BWRAP_CAPS + ((PID_REWIND_CAP,) if _bwrap_knows(PID_REWIND_CAP) else ()):
            args += ["--cap-add", cap]
    args += view.bwrap_args(ops)
    args += ["--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for key, value in {**env_allowlist(), "PYTHONHASHSEED": "0"}.items():
        args += ["--setenv", key, value]
    return [*args, "--"]


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker: its argv, environment, where it makes per-execution directories, and
    (``unshare`` level) the view it builds for itself before running anything."""

    argv: list[str]
    env: dict[str, str]
    workroot: str
    uid: int
    view: tuple[view.MountOp, ...] = ()  # unshare level: the worker builds this view itself, then pivots into it
    site: str | None = None  # the judge's site-packages inside the view (None: the host interpreter's own)
    portable: bool = False
    cgroups: dict[str, list[object]] | None = None  # resource -> [directory fd, "v1"/"v2"] (cgroups.py)


def worker_spec(level: str, slot: int, private_dir: Path, env: view.JudgeEnv, uid_base: int = UID_BASE) -> WorkerSpec:
    """Command line for worker ``slot`` under ``level``; ``private_dir`` is a parent-owned 0711 directory,
    ``env`` the judge environment, ``uid_base`` the start of this sandbox's uid block."""
    python = [env.python, "-s", "-B"]
    environ = {**env_allowlist(), "PYTHONHASHSEED": "0"}  # same set/dict order in every worker: load-independent
    uid = uid_base + slot if drops_uid(level) else -1
    files = [WORKER_SOURCE.with_name(name) for name in WORKER_FILES]
    worker = str(Path(view.WORKER_DIR) / WORKER_SOURCE.name)
    if level == "bwrap":
        ops = view.view_ops(env, files)
        argv = [*_bwrap_args(ops), *python, worker]
        return WorkerSpec(argv, environ, "/tmp", uid, site=view.JUDGE_SITE, portable=PORTABLE)
    workroot = str(private_dir / f"worker-{slot}")
    if level == "unshare":
        wrap = ["unshare", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]
        if os.geteuid() != 0:
            wrap[1:1] = ["--user", "--map-root-user"]
        argv = [*wrap, *python, str(WORKER_SOURCE)]
        return WorkerSpec(argv, environ, workroot, uid, tuple(view.view_ops(env, files)), view.JUDGE_SITE, PORTABLE)
    return WorkerSpec([*python, str(WORKER_SOURCE)], environ, workroot, uid, portable=PORTABLE)
