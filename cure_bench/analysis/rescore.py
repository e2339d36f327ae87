"""`cure rescore`: judge a finished run's saved programs and tests again, generating nothing.

Use it when the judge changed, not the model: a different time limit, another output comparison, a fixed
sandbox. Hidden tests are not stored in the run (they can be huge), so they are reloaded from the dataset
named in the manifest, and the file's sha256 (and the task-list fingerprint) must match what the run used;
otherwise the "rescored" numbers would silently measure other tests.

The result goes *beside* the original, never over it: ``summary.rescore-<name>.json`` (same layout as
summary.json, plus a ``run.rescore`` section saying what changed) and ``tables.rescore-<name>.jsonl`` (the new
verdict tables), which ``cure report RUN_DIR/summary.rescore-<name>.json`` reads like a run.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError, DatasetError
from cure_bench.fileio import atomic_write_json, atomic_write_jsonl
from cure_bench.runs.directory import EXEC_CACHE_DIR
from cure_bench.runs.reader import RunData, RunDirError, load_run, rescore_paths
from cure_bench.runs.schema import Manifest, Summary
from cure_bench.types import CompareMode, Task, TaskTable

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class RescoreOptions:
    """What to change when judging again; None keeps what the run used."""

    time_limit: float | None = None  # seconds per execution, for every task (None: each task's own)
    compare: CompareMode | str | None = None
    name: str | None = None  # suffix of the output files; derived from the options when None
    dataset: str | None = None  # the dataset file, when the manifest's path is not valid on this machine
    memory_limit_mb: int | None = None
    workers: int | None = None
    sandbox: str = "auto"
    exec_cache: bool = True
    cache_dir: Path | None = None  # dataset download cache

    def output_name(self) -> str:
        if self.name is not None:
            if not _NAME.fullmatch(self.name):
                raise ConfigError(f"--out {self.name!r}: use letters, digits, '.', '_' or '-' (it names a file)")
            return self.name
        parts = []
        if self.time_limit is not None:
            parts.append(f"tl{self.time_limit:g}")
        if self.compare is not None:
            parts.append(str(_compare_mode(self.compare)))
        return "-".join(parts) or time.strftime("%Y%m%d-%H%M%S")


@dataclass
class RescoreResult:
    summary_path: Path
    tables_path: Path
    summary: dict[str, Any]
    previous: dict[str, Any]  # the original summary's metrics


def _dataset_source(run: RunData, override: str | None) -> str:
    if override:
        return override
    ds = run.manifest.get("dataset")
    if isinstance(ds, dict):
        path = ds.get("path")
        if path and Path(path).is_file():
            return str(path)
        if ds.get("name"):
            return str(ds["name"])
    elif ds:
        return str(ds)
    raise DatasetError(f"{run.path}/summary.json: the manifest names no dataset; pass --dataset PATH")


def reload_tasks(run: RunData, options: RescoreOptions) -> dict[str, Task]:
    """The run's tasks from its dataset, checked against the manifest's sha256 and fingerprint."""
    from cure_bench.tasks.reader import task_fingerprint
    from cure_bench.tasks.registry import load_dataset_tasks

    ds = run.dataset_info
    source = _dataset_source(run, options.dataset)
    tasks, resolved = load_dataset_tasks(
        source,
        limit=ds.get("limit"),
        start_date=ds.get("start_date"),
        end_date=ds.get("end_date"),
        cache_dir=options.cache_dir,
    )
    want = ds.get("sha256")
    if want and resolved.sha256 != want:
        raise DatasetError(
            f"{resolved.path}: sha256 {resolved.sha256[:12]}… differs from the run's {str(want)[:12]}… "
            f"(the dataset changed since the run); pass --dataset PATH to the file the run used"
        )
    fingerprint = ds.get("fingerprint")
    if fingerprint and task_fingerprint(tasks) != fingerprint:
        raise DatasetError(f"{resolved.path}: the task list differs from the run's (fingerprint mismatch)")
    by_id = {t.task_id: t for t in tasks}
    missing = [t.task_id for t in run.tasks if t.task_id not in by_id]
    if missing:
        raise DatasetError(f"{resolved.path}: {len(missing)} task(s) of the run are missing, e.g. {missing[0]!r}")
    return by_id


def table_specs(run: RunData, tasks: dict[str, Task], options: RescoreOptions) -> list[Any]:
    from cure_bench.sandbox import TableSpec

    default_max = int(run.manifest.get("max_test") or 8)
    memory = options.memory_limit_mb or int(run.manifest.get("memory_limit_mb") or 2048)
    specs = []
    for rt in run.tasks:
        task = tasks[rt.task_id]
        n_hidden = rt.max_test if rt.max_test is not None else min(default_max, len(task.hidden_tests))
        if len(rt.programs) != rt.table.n_programs:
            raise RunDirError(
                f"{run.path}/samples.jsonl, task {rt.task_id!r}, field 'programs': {len(rt.programs)} programs "
                f"but the table has {rt.table.n_programs} rows"
            )
        time_limit = options.time_limit or rt.time_limit or task.time_limit
        specs.append(
            TableSpec(
                task_id=rt.task_id,
                programs=rt.programs,
                hidden_tests=task.hidden_tests[:n_hidden],
                generated_tests=rt.generated_tests,
                time_limit_s=float(time_limit),
                memory_limit_mb=memory,
            )
        )
    return specs


def verdict_changes(old: Sequence[TaskTable], new: Sequence[TaskTable]) -> dict[str, Any]:
    """How many verdicts changed, and from what to what (e.g. ``time_limit->accepted``)."""
    kinds: Counter[str] = Counter()
    per_part = {"hidden": 0, "generated": 0}
    for a, b in zip(old, new, strict=True):
        for part in per_part:
            for row_a, row_b in zip(getattr(a, part), getattr(b, part), strict=False):
                for va, vb in zip(row_a, row_b, strict=False):
                    if va is not vb:
                        per_part[part] += 1
                        kinds[f"{va.value}->{vb.value}"] += 1
    return {**per_part, "by_kind": dict(kinds.most_common())}


def _compare_mode(value: str | CompareMode) -> CompareMode:
    try:
        return CompareMode(value)
    except ValueError:
        raise ConfigError(f"--compare must be whitespace, exact or float (got {value!r})") from None


def rescore_run(
    run_dir: str | Path, options: RescoreOptions, on_progress: Callable[[int, int], None] | None = None
) -> RescoreResult:
    """Re-judge every saved program on the hidden tests (reloaded) and the saved generated tests."""
    from cure_bench.sandbox import Sandbox, build_tables
    from cure_bench.scoring.metrics import compute_metrics, protocol_of

    run = load_run(run_dir)
    name = options.output_name()
    summary_path, tables_path = rescore_paths(run.path, name)
    tasks = reload_tasks(run, options)
    specs = table_specs(run, tasks, options)
    compare = _compare_mode(options.compare or run.manifest.get("compare") or CompareMode.WHITESPACE)
    cache_dir = run.path / EXEC_CACHE_DIR if options.exec_cache else None  # a new time limit is a new key
    compat = run.manifest.get("judge_compat") or ()  # re-judged as the run was judged
    with Sandbox(
        workers=options.workers,
        isolation=options.sandbox,
        cache_dir=cache_dir,
        use_cache=options.exec_cache,
        compat=compat,
    ) as box:
        tables = build_tables(box, specs, compare=compare, on_progress=on_progress)
        sandbox_info = box.describe()
    result = compute_metrics(
        tables,
        bon=[] if run.single else run.bon,
        pass_at=run.pass_at,
        single=run.single,
        protocol=protocol_of(run.manifest),  # the protocol the run was scored under, as recorded
    )
    manifest = dict(run.manifest)
    manifest["rescore"] = {
        "name": name,
        "from": str(run.path / "summary.json"),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "time_limit": options.time_limit,
        "compare": str(compare),
        "sandbox": sandbox_info,
        "verdict_changes": verdict_changes(run.tables, tables),
    }
    if options.time_limit is not None:
        manifest["time_limit_override"] = options.time_limit
    manifest["compare"] = str(compare)
    typed = Manifest.from_json(f"{run.path}/summary.json, field 'run'", manifest)
    summary = Summary(run=typed, metrics=result.metrics, counts=result.counts).to_json()
    if summary_path.exists():
        log.warning("replacing the earlier rescore %s", summary_path)
    atomic_write_jsonl(tables_path, ({"task_id": t.task_id, "table": t.to_json()} for t in tables))
    atomic_write_json(summary_path, summary)
    return RescoreResult(summary_path, tables_path, summary, run.metrics)
