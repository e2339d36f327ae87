"""On-disk cache of execution results, so re-running a benchmark or re-scoring samples never re-executes.

Keyed by a hash of everything that can change what a program prints: the program, its stdin, the limits,
the output cap, the engine version and the isolation level (a program that opens a socket behaves
differently with and without a network). Sandbox errors are never stored: they say nothing about the program.
One SQLite file in WAL mode, safe for several threads (one lock) and several processes (SQLite's locking).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from cure_bench.paths import cache_dir
from cure_bench.types import ExecJob, ExecResult, ExecStatus

ENGINE_VERSION = "1"
"""Bump when a change to the worker can change any result: old cache entries then stop matching."""


def default_cache_dir() -> Path:
    """``exec/`` under the cache root (``$CURE_CACHE_DIR``, default ``~/.cache/cure``)."""
    return cache_dir("exec")


def job_key(job: ExecJob, isolation: str, max_output_bytes: int) -> str:
    """Stable identity of an execution: identical keys within a run are deduplicated, across runs cached."""
    payload = json.dumps(
        [
            ENGINE_VERSION,
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


class ResultCache:
    """A key -> ExecResult store; ``get_many``/``put`` are thread-safe."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / "results.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

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
