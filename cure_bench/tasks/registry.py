"""The dataset registry: CURE's Gen-Verse files on the Hugging Face hub, plus the bundled sample.

``--dataset`` accepts a registered name (case-insensitive, aliases included) or a path to a task file.
Registered hub datasets are downloaded once into a user cache (``$CURE_CACHE_DIR/datasets``,
default ``~/.cache/cure/datasets``) as ``<cache>/<name>/<filename>`` beside a ``source.json`` that records the hub
location and commit used (:mod:`cure_bench.tasks.hub` tries the old and new names of each); a file already
there is used without touching the network, so a warm cache works offline. ``NAME@REVISION`` pins a hub
revision (cached apart, as ``<cache>/<name>@<revision>/``). Contamination windows (``start_date`` /
``end_date``) filter on the date a task was published, for the datasets that carry one. Rows upstream's
evaluation skips are left out and recorded on the :class:`ResolvedDataset` (refused when ``strict``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from cure_bench.errors import DatasetError
from cure_bench.paths import cache_dir
from cure_bench.tasks import hub
from cure_bench.tasks.dates import DATE_FIELDS, date_of, flag_date, parse_date, task_date, within
from cure_bench.tasks.hub import HubCandidate, HubSource
from cure_bench.tasks.reader import SkippedRow, TaskFingerprint, file_sha256, iter_tasks
from cure_bench.tasks.schema import skip_summary
from cure_bench.types import Task

logger = logging.getLogger(__name__)

__all__ = [
    "DATE_FIELDS",
    "REGISTRY",
    "DatasetSpec",
    "DatasetSummary",
    "HubCandidate",
    "HubSource",
    "ResolvedDataset",
    "cached_path",
    "default_cache_dir",
    "download_dataset",
    "fetch_dataset",
    "find_spec",
    "load_dataset_tasks",
    "parse_date",
    "resolve_dataset",
    "split_revision",
    "summarize_tasks",
    "task_date",
]


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset. ``repo_id`` is None for a dataset bundled inside the package.

    ``repo_id``/``filename`` is the first hub location tried; ``fallbacks`` are the others, in order (the
    names the authors used before or after a rename). The first that exists on the hub wins.
    """

    name: str
    repo_id: str | None
    filename: str
    description: str
    aliases: tuple[str, ...] = ()
    approx_size: str = ""
    has_dates: bool = False
    date_fields: tuple[str, ...] = field(default=DATE_FIELDS)
    fallbacks: tuple[HubCandidate, ...] = ()

    @property
    def bundled(self) -> bool:
        return self.repo_id is None

    @property
    def candidates(self) -> tuple[HubCandidate, ...]:
        """Every hub location of the file, in the order they are tried."""
        return () if self.repo_id is None else (HubCandidate(self.repo_id, self.filename), *self.fallbacks)

    @property
    def source(self) -> str:
        if self.repo_id is None:
            return "bundled with cure"
        n = len(self.fallbacks)
        return f"{self.candidates[0]}" + (f" (or {n} other name{'s' if n > 1 else ''})" if n else "")

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _renamed(old: str, new: str) -> dict[str, Any]:
    """Hub locations of a dataset the authors renamed from ``old`` to ``new`` (upstream data/readme.md).

    Tried in order: the new repo with the file named as upstream's download script would name it for the
    new name; the new repo with the file under its old name; the old repo with the old file.
    """
    return {
        "repo_id": f"Gen-Verse/{new}",
        "filename": f"test/{new}.json",
        "fallbacks": (
            HubCandidate(f"Gen-Verse/{new}", f"test/{old}.json"),
            HubCandidate(f"Gen-Verse/{old}", f"test/{old}.json"),
        ),
    }


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
        **_renamed("LiveBench", "LiveBench-ReasonFlux"),
        description="LiveBench coding tasks converted to stdio (CURE paper)",
        aliases=("LiveBench-ReasonFlux", "livebench_coding"),
        approx_size="128 tasks",
        has_dates=True,
    ),
    DatasetSpec(
        name="LiveCodeBench",
        **_renamed("LiveCodeBench", "LiveCodeBench-ReasonFlux"),
        description="LiveCodeBench (v5 window) converted to stdio (CURE paper); streamed, never loaded whole",
        aliases=("LiveCodeBench-ReasonFlux", "livecodebench_v5", "lcb"),
        approx_size="~4 GB",
        has_dates=True,
    ),
    DatasetSpec(
        name="MBPP",
        **_renamed("MBPP", "MBPP-ReasonFlux"),
        description="MBPP converted from functional asserts to stdio (CURE paper)",
        aliases=("MBPP-ReasonFlux", "mbpp_test"),
        approx_size="221 tasks",
    ),
]


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset ready to read: display name, local file, registry entry (None for a plain path), file sha256.

    ``hub`` says where a downloaded file came from (repo id, file, commit); ``skipped`` lists the rows
    :func:`load_dataset_tasks` left out because upstream's evaluation leaves them out.
    """

    name: str
    path: Path
    spec: DatasetSpec | None
    sha256: str
    hub: HubSource | None = None
    skipped: tuple[SkippedRow, ...] = ()

    def describe(self) -> dict[str, Any]:
        """What goes into a run manifest."""
        source = "local file" if self.spec is None else self.spec.source
        if self.hub is not None:
            source = self.hub.url
        return {
            "name": self.name,
            "path": str(self.path),
            "source": source,
            "hub": None if self.hub is None else self.hub.to_json(),
            "sha256": self.sha256,
        }

    def skip_counts(self) -> dict[str, Any]:
        """The ``counts`` entries of summary.json about rows left out (empty when none were)."""
        if not self.skipped:
            return {}
        reasons: dict[str, int] = {}
        for row in self.skipped:
            reasons[row.reason] = reasons.get(row.reason, 0) + 1
        return {"skipped_tasks": [s.to_json() for s in self.skipped], "skipped_tasks_by_reason": reasons}


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


def cached_path(spec: DatasetSpec, cache_dir: str | Path | None = None, *, revision: str | None = None) -> Path:
    """Where ``spec``'s file lives locally: the cached file if there is one, else where the first candidate goes."""
    if spec.bundled:
        return Path(str(resources.files("cure_bench") / "data" / spec.filename))
    folder = hub.cache_folder(_cache_root(cache_dir), spec.name, revision)
    hit = hub.cached_file(folder, spec.candidates, revision)
    return hit[0] if hit else folder / spec.filename


def _cache_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def download_dataset(
    spec: DatasetSpec, cache_dir: str | Path | None = None, *, force: bool = False, revision: str | None = None
) -> Path:
    """Fetch ``spec``'s file from the hub into the cache (no network when it is already there)."""
    return fetch_dataset(spec, cache_dir, force=force, revision=revision)[0]


def fetch_dataset(
    spec: DatasetSpec, cache_dir: str | Path | None = None, *, force: bool = False, revision: str | None = None
) -> tuple[Path, HubSource | None]:
    """:func:`download_dataset`, also telling which hub location and commit the file came from (None: bundled)."""
    if spec.bundled:
        target = cached_path(spec)
        if revision is not None:
            raise DatasetError(f"dataset '{spec.name}' is bundled with cure; a revision applies to hub datasets only")
        if not target.is_file():
            raise DatasetError(f"bundled dataset '{spec.name}' is missing from the installation ({target})")
        return target, None
    folder = hub.cache_folder(_cache_root(cache_dir), spec.name, revision)
    return hub.fetch(spec.name, spec.candidates, folder, revision=revision, force=force)


def split_revision(name_or_path: str) -> tuple[str, str | None]:
    """``"MBPP@v1"`` -> ``("MBPP", "v1")`` when the part before '@' is a registered name; else unchanged."""
    name, at, revision = str(name_or_path).rpartition("@")
    if at and name and revision and find_spec(name) is not None:
        return name, revision
    return str(name_or_path), None


def resolve_dataset(
    name_or_path: str | Path,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
    revision: str | None = None,
) -> ResolvedDataset:
    """Turn a ``--dataset`` value into a local file: an existing path wins, then a registered name.

    ``NAME@REVISION`` (or ``revision``) pins a hub revision. With ``download=False`` a registered hub
    dataset must already be in the cache.
    """
    candidate = Path(str(name_or_path)).expanduser()
    if candidate.is_file():
        if revision is not None:
            raise DatasetError(f"--dataset {name_or_path}: a revision applies to registered hub datasets, not files")
        return ResolvedDataset(candidate.stem, candidate, None, file_sha256(candidate))
    name, pinned = split_revision(str(name_or_path))
    revision = revision or pinned
    spec = find_spec(name)
    if spec is None and candidate.is_dir():
        raise DatasetError(f"--dataset {name_or_path}: is a directory; pass a JSON/JSONL task file or a dataset name")
    if spec is None:
        known = ", ".join(s.name for s in REGISTRY)
        raise DatasetError(
            f"unknown dataset '{name_or_path}': not a registered name ({known}) and no such file "
            f"(a path must point to an existing JSON/JSONL task file)"
        )
    if not download and not spec.bundled:
        folder = hub.cache_folder(_cache_root(cache_dir), spec.name, revision)
        hit = hub.cached_file(folder, spec.candidates, revision)
        if hit is None:
            pin = f"@{revision}" if revision else ""
            raise DatasetError(
                f"dataset '{spec.name}{pin}' is not in the cache ({folder}); run `cure data download {spec.name}{pin}`"
            )
        path, source = hit
        return ResolvedDataset(_pinned_name(spec, revision), path, spec, file_sha256(path), hub=source)
    fetched, fetched_source = fetch_dataset(spec, cache_dir, revision=revision)
    return ResolvedDataset(_pinned_name(spec, revision), fetched, spec, file_sha256(fetched), hub=fetched_source)


def _pinned_name(spec: DatasetSpec, revision: str | None) -> str:
    """``MBPP@v1`` for a pinned revision, so run names, manifests and re-scoring keep the pin."""
    return spec.name if revision is None else f"{spec.name}@{revision}"


# --------------------------------------------------------------------------------------------------
# Loading (contamination windows, rows upstream skips)
# --------------------------------------------------------------------------------------------------


def _in_window(tasks: Iterator[Task], start: date | None, end: date | None, fields: tuple[str, ...]) -> Iterator[Task]:
    return (task for task in tasks if within(task_date(task, fields), start, end))


def load_dataset_tasks(
    name_or_path: str | Path,
    *,
    limit: int | None = None,
    start_date: str | date | None = None,
    end_date: str | date | None = None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
) -> tuple[list[Task], ResolvedDataset]:
    """Resolve a dataset and load its tasks; dates (inclusive) filter first, then ``limit`` keeps the first N.

    A dataset without dates refuses ``--start-date``/``--end-date`` rather than silently running on
    nothing; tasks with no parsable date are left out of a window (and counted in the log). Rows upstream's
    evaluation skips are left out, listed in the returned dataset's ``skipped`` and summed up in one
    warning line (only those inside the date window and before the limit); ``strict`` refuses the file.
    """
    start, end = flag_date(start_date, "--start-date"), flag_date(end_date, "--end-date")
    if start and end and start > end:
        raise DatasetError(f"--start-date {start} is after --end-date {end}")
    if limit is not None and limit < 0:
        raise DatasetError(f"--limit must be >= 0, got {limit}")
    resolved = resolve_dataset(name_or_path, cache_dir=cache_dir)
    windowed = start is not None or end is not None
    fields = resolved.spec.date_fields if resolved.spec else DATE_FIELDS
    if windowed and resolved.spec is not None and not resolved.spec.has_dates:
        raise DatasetError(_no_dates_message(resolved, start, end))
    skipped: list[SkippedRow] = []

    def on_skip(row: SkippedRow, data: dict[str, Any]) -> None:
        if not windowed or within(date_of(data, fields), start, end):
            skipped.append(row)

    stream: Iterator[Task] = iter_tasks(resolved.path, strict=strict, on_skip=on_skip)
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
    if skipped:
        logger.warning(skip_summary(resolved.name, skipped))
    return tasks, dataclasses.replace(resolved, skipped=tuple(skipped))


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
