"""Where a run's files live, and how a re-run finds the interrupted run it should resume.

A run directory holds ``run.json`` (written first: the settings that decide what is generated, hashed into
``resume_key``), the generation cache, the execution cache, and at the end ``samples.jsonl`` and
``summary.json``. With the default ``runs/<model>-<dataset>-<timestamp>`` name, re-running the same command
looks for the newest unfinished directory with the same ``resume_key`` and continues it, so Ctrl-C and re-run
loses nothing and asks the server for nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

from cure_bench.fileio import atomic_write_json

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
SAMPLES_FILE = "samples.jsonl"
GENERATION_CACHE = "generations.sqlite"
EXEC_CACHE_DIR = "exec_cache"


def slug(text: str) -> str:
    """A file-name-safe version of a model or dataset name (``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``)."""
    text = text.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "run"


def resume_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_run_dir(
    output_dir: Path | None, prefix: str, key: str, resume: bool, runs_root: Path = Path("runs")
) -> Path:
    """The directory for this run: the one given, an unfinished one to resume, or a new timestamped one."""
    if output_dir is not None:
        output_dir = Path(output_dir)
        if not resume:
            _forget_previous_generations(output_dir)
        return output_dir
    if resume:
        previous = find_unfinished(runs_root, prefix, key)
        if previous is not None:
            log.info("resuming the unfinished run in %s", previous)
            return previous
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = runs_root / f"{prefix}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = runs_root / f"{prefix}-{stamp}-{suffix}"
    return candidate


def find_unfinished(runs_root: Path, prefix: str, key: str) -> Path | None:
    """Newest ``<prefix>-*`` directory whose run.json has ``key`` and that has no summary.json yet."""
    if not runs_root.is_dir():
        return None
    candidates = []
    for path in runs_root.glob(f"{glob_escape(prefix)}-*"):
        run_file = path / RUN_FILE
        if not run_file.is_file() or (path / SUMMARY_FILE).exists():
            continue
        try:
            if json.loads(run_file.read_text(encoding="utf-8")).get("resume_key") == key:
                candidates.append(path)
        except (OSError, json.JSONDecodeError):
            continue
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _forget_previous_generations(run_dir: Path) -> None:
    """--no-resume with an explicit -o: previous generations and verdicts there must not be reused."""
    cache = run_dir / GENERATION_CACHE
    for path in (cache, Path(f"{cache}-wal"), Path(f"{cache}-shm")):
        if path.exists():
            log.info("--no-resume: removing %s", path)
            path.unlink()
    if (run_dir / EXEC_CACHE_DIR).is_dir():
        shutil.rmtree(run_dir / EXEC_CACHE_DIR)


def start_run(run_dir: Path, key: str, settings: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / RUN_FILE, {"resume_key": key, "settings": settings, "started_at": _now()})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
