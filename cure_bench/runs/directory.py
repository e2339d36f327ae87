"""Where a run's files live, and how a re-run finds the interrupted run it should resume.

A run directory holds ``run.json`` (written first: the settings that decide what is generated, hashed into
``resume_key``), the generation cache, the execution cache, and at the end ``samples.jsonl`` and
``summary.json``. With the default ``runs/<model>-<dataset>-<timestamp>`` name, re-running the same command
looks for the newest unfinished directory with the same ``resume_key`` and continues it, so Ctrl-C and re-run
loses nothing and asks the server for nothing twice; re-running a *finished* command reports that run instead
of starting another (``--rerun`` starts again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.fileio import atomic_write_json

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
SAMPLES_FILE = "samples.jsonl"
GENERATION_CACHE = "generations.sqlite"
EXEC_CACHE_DIR = "exec_cache"


def slug(text: str) -> str:
    """A file-name-safe version of a model or dataset name (``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``).

    Never starts with ``-`` or ``.``: ``ls``, ``rm`` and ``cure report`` would take such a name for an option
    (or hide it).
    """
    text = text.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_").lstrip("-.") or "run"


def model_basename(model: str) -> str:
    """The readable part of a model name for a directory: ``/tmp/x/tiny`` -> ``tiny``, ``Qwen/Qwen2.5-7B`` ->
    ``Qwen2.5-7B``, ``gpt-4o-mini`` unchanged (the manifest keeps the full name)."""
    parts = [p for p in model.replace("\\", "/").split("/") if p and p not in (".", "..")]
    return slug(parts[-1] if parts else model)


def check_output_dir(path: Path) -> None:
    """``-o`` must be a directory we can write (or create): checked before anything costly starts."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"-o {path}: is a file, not a directory; give a directory for the run's files")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"-o {path}: {existing} is not writable; choose another output directory")


def finished_settings(run_dir: Path) -> tuple[str | None, dict[str, Any]] | None:
    """(resume key, settings) of a finished run in ``run_dir``; None when it holds no finished run."""
    if not (run_dir / SUMMARY_FILE).is_file():
        return None
    try:
        data = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, {}
    return data.get("resume_key"), data.get("settings") or {}


def settings_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``k_code 4 -> 16, sampling`` : which settings two runs disagree on, for error messages."""
    parts = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a != b:
            simple = all(isinstance(v, int | float | str | type(None)) for v in (a, b))
            parts.append(f"{name} {a} -> {b}" if simple else name)
    return ", ".join(parts) or "unknown settings"


def find_finished(runs_root: Path, prefix: str, key: str) -> Path | None:
    """Newest ``<prefix>-*`` directory holding a finished run with ``key``: re-running it reports it."""
    if not runs_root.is_dir():
        return None
    candidates = [
        path
        for path in runs_root.glob(f"{glob_escape(prefix)}-*")
        if (found := finished_settings(path)) is not None and found[0] == key
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def resume_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_run_dir(
    output_dir: Path | None,
    prefix: str,
    key: str,
    resume: bool,
    runs_root: Path = Path("runs"),
    *,
    settings: dict[str, Any] | None = None,
    rerun: bool = False,
) -> Path:
    """The directory for this run: the one given, an unfinished one to resume, or a new timestamped one.

    A finished run given with ``-o`` is never overwritten by a run with other settings (that would silently
    replace its summary.json and samples.jsonl); ``rerun`` replaces it on purpose.
    """
    if output_dir is not None:
        output_dir = Path(output_dir)
        check_output_dir(output_dir)
        finished = finished_settings(output_dir)
        if finished is not None and finished[0] != key and not rerun:
            raise ConfigError(
                f"-o {output_dir}: holds a finished run with other settings "
                f"({settings_difference(finished[1], settings or {})}); choose another -o, "
                "or pass --rerun to replace it"
            )
        if rerun and finished is not None:
            _forget_finished_run(output_dir)
        elif not resume:
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


def _forget_finished_run(run_dir: Path) -> None:
    """--rerun over a finished run: its results go first, so an interrupted rerun never looks finished."""
    for name in (SUMMARY_FILE, SAMPLES_FILE):
        (run_dir / name).unlink(missing_ok=True)
    _forget_previous_generations(run_dir)


def start_run(run_dir: Path, key: str, settings: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / RUN_FILE, {"resume_key": key, "settings": settings, "started_at": _now()})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
