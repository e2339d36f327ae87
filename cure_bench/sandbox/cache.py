"""On-disk cache of execution results, so re-running a benchmark or re-scoring samples never re-executes.

Keyed by a hash of everything that can change what a program prints: the program, its stdin, the limits,
the output cap, the engine version and the isolation level (a program that opens a socket behaves
differently with and without a network). Sandbox errors are never stored: they say nothing about the program.
One SQLite file in WAL mode, safe for several threads (one lock) and several processes (SQLite's locking).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

from cure_bench.errors import SandboxError
from cure_bench.paths import cache_dir
from cure_bench.types import ExecJob, ExecResult, ExecStatus

ENGINE_VERSION = "5"
"""Bump when a change to the worker can change any result: old cache entries then stop matching.
2: CPU and memory of every process of an execution charged (cgroups), allow-list filesystem view.
3: programs compiled without the worker's __future__ flags; python3's stdio (no universal newlines), signals,
   __main__ globals, shutdown order (__del__ at exit) and exit statuses (docs/sandbox.md, "Judge semantics").
4: an execution's memory peak counts from its slot's usage at its start (an earlier program's page cache made
   later failing programs memory_limit), and a failed run within max(5%, 32 MB) of the limit is memory_limit;
   a worker whose cleanup leaves anything retires (was sandbox_error).
5: every execution's first process has the same pid at bwrap/unshare as root (the pid namespace rewound before
   each fork), so what a program prints of its pids no longer depends on earlier programs."""


def default_cache_dir() -> Path:
    """``exec/`` under the cache root (``$CURE_CACHE_DIR``, default ``~/.cache/cure``)."""
    return cache_dir("exec")


def job_key(job: ExecJob, isolation: str, max_output_bytes: int, compat: tuple[str, ...] = ()) -> str:
    """Stable identity of an execution: identical keys within a run are deduplicated, across runs cached.
    Judge compatibility options enter the key only when set, so python3-semantics keys stay as they were."""
    payload = json.dumps(
        [
            ENGINE_VERSION,
            *([list(compat)] if compat else []),
            isolation,
            max_output_bytes,
            job.program,
            job.stdin,
            float(job.time_limit_s),
            int(job.memory_limit_mb),
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def _check_owned(path: Path, what: str) -> None:
    """Refuse ``path`` unless it is this user's and nobody else may write it: a cache another user (or a
    program run earlier) could write would let it plant verdicts for later runs."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        raise SandboxError(f"exec cache {what} {path} is a symbolic link; remove it or pass another --cache-dir")
    if st.st_uid != os.geteuid():
        raise SandboxError(
            f"exec cache {what} {path} belongs to uid {st.st_uid}, not to this user ({os.geteuid()}); "
            "remove it or pass another cache directory"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SandboxError(
            f"exec cache {what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"remove it (its results cannot be trusted) or pass another cache directory"
        )


def secure_cache_dir(directory: str | Path) -> Path:
    """Create the cache directory 0700 if missing, then check it and its database files (``_check_owned``).
    Called before any worker starts, so no program can have made it first."""
    path = Path(directory)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    _check_owned(path, "directory")
    for name in ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm"):
        if (path / name).exists() or (path / name).is_symlink():
            _check_owned(path / name, "file")
    return path


class ResultCache:
    """A key -> ExecResult store; ``get_many``/``put`` are thread-safe. The directory must pass
    ``secure_cache_dir`` (checked here)."""

    def __init__(self, directory: str | Path):
        self.path = secure_cache_dir(directory) / "results.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        for name in ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm"):
            with contextlib.suppress(OSError):
                (self.path.parent / name).chmod(0o600)

    def get_many(self, keys: Iterable[str]) -> dict[str, ExecResult]:
        keys = list(keys)
        found: dict[str, ExecResult] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, value FROM results WHERE key IN ({marks})", chunk)
                for key, value in rows:
                    found[key] = _decode(value)
        return found

    def iter_many(self, keys: Iterable[str]) -> Iterator[tuple[str, ExecResult]]:
        """The cached results among ``keys``, fetched one at a time (never all in memory at once)."""
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                present = [k for (k,) in self._db.execute(f"SELECT key FROM results WHERE key IN ({marks})", chunk)]
            for key in present:
                with self._lock:
                    row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    yield key, _decode(row[0])

    def put(self, key: str, result: ExecResult) -> None:
        if result.status is ExecStatus.SANDBOX_ERROR:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (key, _encode(result)))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _encode(result: ExecResult) -> bytes:
    data = asdict(result)
    data["status"] = result.status.value
    data.pop("cached")
    return zlib.compress(json.dumps(data).encode())


def _decode(blob: bytes) -> ExecResult:
    data = json.loads(zlib.decompress(blob))
    data["status"] = ExecStatus(data["status"])
    return ExecResult(**data, cached=True)
