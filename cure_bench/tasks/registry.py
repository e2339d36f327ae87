"""The dataset registry: CURE's Gen-Verse files on the Hugging Face hub, plus the bundled sample.

``--dataset`` accepts a registered name (case-insensitive, aliases included) or a path to a task file.
Registered hub datasets are downloaded once into a user cache (``$CURE_CACHE_DIR/datasets``,
default ``~/.cache/cure/datasets``) as ``<cache>/<name>/<filename>``; a file already there is used without
touching the network, so a warm cache works offline. Contamination windows (``start_date`` /
``end_date``) filter on the date a task was published, for the datasets that carry one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cure_bench.errors import DatasetError
from cure_bench.paths import cache_dir
from cure_bench.tasks.reader import TaskFingerprint, file_sha256, iter_tasks
from cure_bench.types import Task

logger = logging.getLogger(__name__)

__all__ = [
    "DATE_FIELDS",
    "REGISTRY",
    "DatasetSpec",
    "DatasetSummary",
    "ResolvedDataset",
    "cached_path",
    "default_cache_dir",
    "download_dataset",
    "find_spec",
    "load_dataset_tasks",
    "parse_date",
    "resolve_dataset",
    "summarize_tasks",
    "task_date",
]

DATE_FIELDS = ("contest_date", "release_date", "livebench_release_date", "date")
"""Metadata fields read, in this order, for a task's publication date (LiveCodeBench, LiveBench, ...)."""


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset. ``repo_id`` is None for a dataset bundled inside the package."""

    name: str
    repo_id: str | None
    filename: str
    description: str
    aliases: tuple[str, ...] = ()
    approx_size: str = ""
    has_dates: bool = False
    date_fields: tuple[str, ...] = field(default=DATE_FIELDS)

    @property
    def bundled(self) -> bool:
        return self.repo_id is None

    @property
    def source(self) -> str:
        return "bundled with cure" if self.repo_id is None else f"hf://datasets/{self.repo_id}/{self.filename}"

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


REGISTRY: list[DatasetSpec] = [
    DatasetSpec(
        name="sample",
        repo_id=None,
        filename="sample.jsonl",
        description="Small stdio tasks written for this toolkit (smoke tests, demos); some with wrong solutions",
        aliases=("demo",),
        approx_size="38 tasks, 0.4 MB",
    ),
    DatasetSpec(
        name="CodeContests_train",
        repo_id="Gen-Verse/CodeContests_train",
        filename="train/CodeContests_train.json",
        description="CURE's training set (DeepMind CodeContests, stdio)",
        aliases=("codecontests-train", "cc_train"),
        approx_size="4.5k tasks",
    ),
    DatasetSpec(
        name="CodeContests",
        repo_id="Gen-Verse/CodeContests",
        filename="test/CodeContests.json",
        description="CodeContests test split as used in the CURE paper (stdio)",
        aliases=("codecontests_test", "code_contests", "cc"),
        approx_size="239 tasks",
    ),
    DatasetSpec(
        name="CodeForces",
        repo_id="Gen-Verse/CodeForces",
        filename="test/CodeForces.json",
        description="Codeforces problems from open-r1/codeforces as used in the CURE paper (stdio)",
        aliases=("codeforces_test", "cf"),
        approx_size="467 tasks",
    ),
    DatasetSpec(
        name="LiveBench",
        repo_id="Gen-Verse/LiveBench-ReasonFlux",
        filename="test/LiveBench.json",
        description="LiveBench coding tasks converted to stdio (CURE paper)",
        aliases=("LiveBench-ReasonFlux", "livebench_coding"),
        approx_size="128 tasks",
        has_dates=True,
    ),
    DatasetSpec(
        name="LiveCodeBench",
        repo_id="Gen-Verse/LiveCodeBench-ReasonFlux",
        filename="test/LiveCodeBench.json",
        description="LiveCodeBench (v5 window) converted to stdio (CURE paper); streamed, never loaded whole",
        aliases=("LiveCodeBench-ReasonFlux", "livecodebench_v5", "lcb"),
        approx_size="~4 GB",
        has_dates=True,
    ),
    DatasetSpec(
        name="MBPP",
        repo_id="Gen-Verse/MBPP-ReasonFlux",
        filename="test/MBPP.json",
        description="MBPP converted from functional asserts to stdio (CURE paper)",
        aliases=("MBPP-ReasonFlux", "mbpp_test"),
        approx_size="221 tasks",
    ),
]


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset ready to read: its display name, local file, registry entry (None for a plain path), file sha256."""

    name: str
    path: Path
    spec: DatasetSpec | None
    sha256: str

    def describe(self) -> dict[str, Any]:
        """What goes into a run manifest."""
        return {
            "name": self.name,
            "path": str(self.path),
            "source": self.spec.source if self.spec else "local file",
            "sha256": self.sha256,
        }


def default_cache_dir() -> Path:
    """``datasets/`` under the cache root (``$CURE_CACHE_DIR``, default ``~/.cache/cure``; old ``$CURE_CACHE``)."""
    return cache_dir("datasets")


def find_spec(name: str) -> DatasetSpec | None:
    """The registry entry whose name or alias equals ``name`` ignoring case and '-'/'_' differences."""
    key = _norm(name)
    for spec in REGISTRY:
        if any(_norm(n) == key for n in spec.names()):
            return spec
    return None


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def cached_path(spec: DatasetSpec, cache_dir: str | Path | None = None) -> Path:
    """Where ``spec``'s file lives locally (whether or not it is there yet)."""
    if spec.bundled:
        return Path(str(resources.files("cure_bench") / "data" / spec.filename))
    return _cache_root(cache_dir) / spec.name / spec.filename


def _cache_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def download_dataset(spec: DatasetSpec, cache_dir: str | Path | None = None, *, force: bool = False) -> Path:
    """Fetch ``spec``'s file from the hub into the cache (no network when it is already there).

    Every failure (offline mode, no route to the hub, unknown repo or file, gated repo) becomes one
    :class:`DatasetError` line that says what to do; huggingface_hub writes to a temporary file and
    renames it, so an interrupted download leaves nothing half-written at the final path.
    """
    target = cached_path(spec, cache_dir)
    if spec.bundled:
        if not target.is_file():
            raise DatasetError(f"bundled dataset '{spec.name}' is missing from the installation ({target})")
        return target
    if target.is_file() and not force:
        return target
    assert spec.repo_id is not None
    from huggingface_hub import hf_hub_download

    local_dir = _cache_root(cache_dir) / spec.name
    logger.info("downloading %s from the Hugging Face hub into %s", spec.source, local_dir)
    try:
        _check_hub_resolves()
        with _quiet_hub_logs():
            path = hf_hub_download(
                repo_id=spec.repo_id,
                filename=spec.filename,
                repo_type="dataset",
                local_dir=local_dir,
                force_download=force,
            )
    except Exception as exc:  # the hub raises many types (HTTP, offline, OS); all end the same way
        logger.debug("download of %s failed", spec.source, exc_info=True)
        raise DatasetError(_download_error(spec, exc, target)) from None
    return Path(path)


def _check_hub_resolves() -> None:
    """Fail in milliseconds, not after the hub client's ~20 s of retries, when the hub's name does not resolve.

    Skipped in offline mode (the client refuses by itself) and behind a proxy (the proxy resolves names).
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in _PROXY_VARS):
        return
    host = urlsplit(constants.ENDPOINT).hostname
    if host:
        try:
            socket.getaddrinfo(host, 443)
        except socket.gaierror as exc:
            raise ConnectionError(f"cannot resolve {host} ({exc.strerror or exc})") from None


_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """The hub client logs each retry as a warning; our one-line error says it better."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def _download_error(spec: DatasetSpec, exc: Exception, target: Path) -> str:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    head = f"cannot download dataset '{spec.name}' ({spec.source})"
    hint = f"download it on a connected machine with `cure data download {spec.name}` and copy it to {target}"
    if isinstance(exc, ConnectionError):
        return f"{head}: the hub is unreachable: {exc}; {hint}"
    if isinstance(exc, OfflineModeIsEnabled | LocalEntryNotFoundError):
        return f"{head}: the hub is unreachable or offline mode is on (HF_HUB_OFFLINE); {hint}"
    if isinstance(exc, GatedRepoError):
        return f"{head}: the repository is gated; accept its terms on the hub and log in (`hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError | EntryNotFoundError):
        return f"{head}: not found on the hub (404); the registry entry may be out of date, pass a file path"
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{head}: {type(exc).__name__}: {first_line}; {hint}"


def resolve_dataset(
    name_or_path: str | Path, *, cache_dir: str | Path | None = None, download: bool = True
) -> ResolvedDataset:
    """Turn a ``--dataset`` value into a local file: an existing path wins, then a registered name.

    With ``download=False`` a registered hub dataset must already be in the cache.
    """
    candidate = Path(str(name_or_path)).expanduser()
    if candidate.is_file():
        return ResolvedDataset(candidate.stem, candidate, None, file_sha256(candidate))
    spec = find_spec(str(name_or_path))
    if spec is None and candidate.is_dir():
        raise DatasetError(f"--dataset {name_or_path}: is a directory; pass a JSON/JSONL task file or a dataset name")
    if spec is None:
        known = ", ".join(s.name for s in REGISTRY)
        raise DatasetError(
            f"unknown dataset '{name_or_path}': not a registered name ({known}) and no such file "
            f"(a path must point to an existing JSON/JSONL task file)"
        )
    path = cached_path(spec, cache_dir)
    if not path.is_file():
        if not download:
            raise DatasetError(
                f"dataset '{spec.name}' is not in the cache ({path}); run `cure data download {spec.name}`"
            )
        path = download_dataset(spec, cache_dir)
    return ResolvedDataset(spec.name, path, spec, file_sha256(path))


# --------------------------------------------------------------------------------------------------
# Dates (contamination windows)
# --------------------------------------------------------------------------------------------------


def parse_date(value: Any) -> date | None:
    """A date from an ISO string ('2024-05-01', '2024-05-01T12:00:00'), a date, or a Unix time (s or ms)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value.strip()) >= 10:
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def task_date(task: Task, fields: tuple[str, ...] = DATE_FIELDS) -> date | None:
    """The publication date in a task's metadata, from the first of ``fields`` that parses."""
    for name in fields:
        if name in task.metadata:
            parsed = parse_date(task.metadata[name])
            if parsed is not None:
                return parsed
    return None


def _flag_date(value: str | date | None, flag: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    parsed = parse_date(value) if len(value.strip()) >= 10 else None
    if parsed is None:
        raise DatasetError(f"{flag} {value!r}: expected a date as YYYY-MM-DD")
    return parsed


def _in_window(tasks: Iterator[Task], start: date | None, end: date | None, fields: tuple[str, ...]) -> Iterator[Task]:
    for task in tasks:
        when = task_date(task, fields)
        if when is None:
            continue
        if (start is None or when >= start) and (end is None or when <= end):
            yield task


def load_dataset_tasks(
    name_or_path: str | Path,
    *,
    limit: int | None = None,
    start_date: str | date | None = None,
    end_date: str | date | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[list[Task], ResolvedDataset]:
    """Resolve a dataset and load its tasks; dates (inclusive) filter first, then ``limit`` keeps the first N.

    A dataset without dates refuses ``--start-date``/``--end-date`` rather than silently running on
    nothing; tasks with no parsable date are left out of a window (and counted in the log).
    """
    start, end = _flag_date(start_date, "--start-date"), _flag_date(end_date, "--end-date")
    if start and end and start > end:
        raise DatasetError(f"--start-date {start} is after --end-date {end}")
    if limit is not None and limit < 0:
        raise DatasetError(f"--limit must be >= 0, got {limit}")
    resolved = resolve_dataset(name_or_path, cache_dir=cache_dir)
    windowed = start is not None or end is not None
    fields = resolved.spec.date_fields if resolved.spec else DATE_FIELDS
    if windowed and resolved.spec is not None and not resolved.spec.has_dates:
        raise DatasetError(_no_dates_message(resolved, start, end))
    stream: Iterator[Task] = iter_tasks(resolved.path)
    if windowed:
        seen = _Counter(stream, fields)
        stream = _in_window(iter(seen), start, end, fields)
    tasks: list[Task] = []
    if limit != 0:
        for task in stream:
            tasks.append(task)
            if limit is not None and len(tasks) >= limit:
                break
    if windowed and not tasks and seen.n and not seen.dated:
        raise DatasetError(_no_dates_message(resolved, start, end))
    if windowed:
        logger.info("%s: %d tasks in the date window [%s, %s]", resolved.name, len(tasks), start, end)
    return tasks, resolved


def _no_dates_message(resolved: ResolvedDataset, start: date | None, end: date | None) -> str:
    flag = "--start-date" if start is not None else "--end-date"
    return (
        f"{flag}: dataset '{resolved.name}' has no task dates (looked for {', '.join(DATE_FIELDS)} in the "
        "metadata); drop the date flags or use a dataset with dates (LiveCodeBench, LiveBench)"
    )


class _Counter:
    """Pass tasks through while remembering whether any carried a date (to tell 'no dates' from 'none in window')."""

    def __init__(self, tasks: Iterator[Task], fields: tuple[str, ...]):
        self._tasks, self._fields = tasks, fields
        self.n, self.dated = 0, False

    def __iter__(self) -> Iterator[Task]:
        for task in self._tasks:
            self.n += 1
            if not self.dated and task_date(task, self._fields) is not None:
                self.dated = True
            yield task


# --------------------------------------------------------------------------------------------------
# Summary (`cure data info`)
# --------------------------------------------------------------------------------------------------


@dataclass
class DatasetSummary:
    """Counts and fingerprint of a task list, computed in one streaming pass."""

    n_tasks: int = 0
    n_example_tests: int = 0
    n_hidden_tests: int = 0
    hidden_per_task: dict[int, int] = field(default_factory=dict)  # tests per task -> number of tasks
    time_limits: dict[float, int] = field(default_factory=dict)  # seconds -> number of tasks
    difficulties: dict[str, int] = field(default_factory=dict)
    first_date: date | None = None
    last_date: date | None = None
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "n_tasks": self.n_tasks,
            "n_example_tests": self.n_example_tests,
            "n_hidden_tests": self.n_hidden_tests,
            "hidden_per_task": {str(k): v for k, v in sorted(self.hidden_per_task.items())},
            "time_limits": {str(k): v for k, v in sorted(self.time_limits.items())},
            "difficulties": dict(sorted(self.difficulties.items())),
            "first_date": self.first_date.isoformat() if self.first_date else None,
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "fingerprint": self.fingerprint,
        }


def summarize_tasks(tasks: Iterable[Task]) -> DatasetSummary:
    """Counts, tests-per-task and time-limit histograms, date range and fingerprint, in one pass."""
    summary = DatasetSummary()
    fingerprint = TaskFingerprint()
    for task in tasks:
        fingerprint.update(task)
        summary.n_tasks += 1
        summary.n_example_tests += len(task.example_tests)
        summary.n_hidden_tests += len(task.hidden_tests)
        n = len(task.hidden_tests)
        summary.hidden_per_task[n] = summary.hidden_per_task.get(n, 0) + 1
        summary.time_limits[task.time_limit] = summary.time_limits.get(task.time_limit, 0) + 1
        difficulty = task.metadata.get("difficulty")
        if isinstance(difficulty, str) and difficulty:
            summary.difficulties[difficulty] = summary.difficulties.get(difficulty, 0) + 1
        when = task_date(task)
        if when is not None:
            summary.first_date = min(summary.first_date or when, when)
            summary.last_date = max(summary.last_date or when, when)
    summary.fingerprint = fingerprint.hexdigest()
    return summary
