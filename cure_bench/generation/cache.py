"""The on-disk generation cache: one SQLite row per sample, committed the moment the sample arrives.

Why SQLite (WAL mode) rather than a JSONL file: a sample is a few KB and arrives at any time from any
request; an append-only file could be torn by Ctrl-C or a crash mid-line, while an SQLite commit is
atomic and durable, so a killed run leaves either the whole sample or nothing. WAL lets a reader (a
report command, a second process) look at the cache while a run is writing it.

Rows are keyed by (request key, sample index). The request key is the sha256 of a canonical JSON of
(backend, model, messages, sampling params): change any of those and the cache misses on purpose,
because samples drawn under other settings are not samples of this run. The sample index is *not* in
the request key, so asking for k=16 after a k=8 run reuses the first 8 samples and draws 8 more.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

from cure_bench.errors import ConfigError
from cure_bench.types import ChatMessages, Completion, SamplingParams

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    text TEXT NOT NULL,
    tokens INTEGER,
    finish_reason TEXT,
    created REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    PRIMARY KEY (key, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_ADDED_LATER = ("top_k", "min_p", "stop")


def _params_key(params: SamplingParams) -> dict[str, object]:
    """The params as keyed: fields added after schema 1 are left out while unset, so old caches still hit."""
    out = asdict(params)
    for name in _ADDED_LATER:
        if out.get(name) is None:
            out.pop(name, None)
    if out.get("stop") is not None:
        out["stop"] = list(out["stop"])
    return out


class GenerationCache:
    """Samples already generated, by request key and sample index; safe to reopen after a crash.

    One connection per cache object, used from the thread that created it (the generation driver
    calls ``put`` from the caller's thread, as the Generator protocol promises).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against process death (Ctrl-C, kill -9); FULL only adds OS-crash safety.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{self.path}: cannot open the generation cache ({exc}); delete the file or choose "
                "another --output-dir (or pass --no-resume)"
            ) from exc

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta (name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path}: generation cache schema {row[0]} is not {SCHEMA_VERSION} (written by another "
                "version of cure-toolkit); use another --output-dir or pass --no-resume"
            )

    @staticmethod
    def request_key(
        backend: str,
        model: str,
        messages: ChatMessages,
        params: SamplingParams,
        context: dict[str, object] | None = None,
    ) -> str:
        """sha256 of the canonical JSON of everything that changes what a sample means.

        ``context``: engine settings that change the samples beyond the params (vLLM's ``max_model_len`` lowers
        the effective ``max_tokens`` of long prompts); left out of the payload when None so older keys still hit.
        """
        payload: dict[str, object] = {
            "backend": backend,
            "model": model,
            "messages": [[role, content] for role, content in messages],
            "params": _params_key(params),
        }
        if context:
            payload["context"] = context
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[int, Completion]:
        """Sample index -> completion, for every sample stored under ``key``."""
        rows = self._db.execute("SELECT idx, text, tokens, finish_reason FROM samples WHERE key = ?", (key,)).fetchall()
        return {int(i): Completion(text=t, tokens=tok, finish_reason=fr) for i, t, tok, fr in rows}

    def put(self, key: str, index: int, completion: Completion) -> None:
        """Store one sample and commit at once (a later sample with the same index replaces it)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO samples (key, idx, text, tokens, finish_reason) VALUES (?, ?, ?, ?, ?)",
                (key, int(index), completion.text, completion.tokens, completion.finish_reason),
            )

    def count(self) -> int:
        """Number of samples stored (all keys)."""
        return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close; idempotent."""
        if self._db is None:
            return
        # Another process may hold the database: then the WAL stays, which is still consistent.
        with contextlib.suppress(sqlite3.DatabaseError):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self._db = None  # type: ignore[assignment]

    def __enter__(self) -> GenerationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
