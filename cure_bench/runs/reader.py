"""Reading a finished run directory (``summary.json`` + ``samples.jsonl``) back into typed records.

The analysis works offline on what the bench wrote, so this is the one place that knows the file layout;
every problem names the file, the line and the field, because a run directory is often copied around,
truncated or hand-edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.errors import CureError
from cure_bench.runs.schema import SCHEMA_VERSION, Manifest, RunFileError, SampleRow, Summary
from cure_bench.types import TaskTable, TestCase

SUMMARY_FILE = "summary.json"
SAMPLES_FILE = "samples.jsonl"


class RunDirError(CureError):
    """A run directory is missing, unfinished, or holds a file that does not parse."""


@dataclass
class RunTask:
    """One line of samples.jsonl: what the analysis and ``cure rescore`` need of it."""

    task_id: str
    table: TaskTable
    programs: list[str | None]
    generated_tests: list[TestCase]
    time_limit: float | None
    max_test: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
    test_answer_index: list[int | None] = field(default_factory=list)  # per generated test: its tester answer


@dataclass
class RunData:
    """A loaded run: its manifest, the metrics it reported, and one ``RunTask`` per task."""

    path: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    counts: dict[str, Any]
    tasks: list[RunTask]
    variant: str | None = None  # the rescore name when loaded from summary.rescore-<name>.json
    typed_manifest: Manifest = field(default_factory=Manifest)  # ``manifest`` as checked by the schema
    schema_version: int = SCHEMA_VERSION
    summary: dict[str, Any] = field(default_factory=dict)  # the summary file as read, every key kept

    @property
    def tables(self) -> list[TaskTable]:
        return [t.table for t in self.tasks]

    @property
    def model_label(self) -> str:
        """The coder (and the tester, when a different model wrote the tests); the directory name if unknown."""
        coder = _model_name(self.manifest.get("coder")) or _model_name(self.manifest.get("model"))
        tester = _model_name(self.manifest.get("tester"))
        who = coder or self.path.name
        if tester and tester != coder:
            who = f"{who} + tester {tester}"
        return who

    @property
    def label(self) -> str:
        """Short name for tables and plot titles: model(s) on dataset."""
        dataset = self.dataset_name
        label = f"{self.model_label} / {dataset}" if dataset else self.model_label
        return f"{label} (rescore {self.variant})" if self.variant else label

    @property
    def dataset_info(self) -> dict[str, Any]:
        """The manifest's ``dataset`` record ({} for runs written before it was a record)."""
        ds = self.manifest.get("dataset")
        return ds if isinstance(ds, dict) else {}

    @property
    def dataset_name(self) -> str | None:
        return self.typed_manifest.dataset.name

    @property
    def single(self) -> bool:
        """A one-shot run (``--single``): no tests were generated, so only code metrics exist."""
        typed = self.typed_manifest
        if typed.mode is not None:
            return typed.mode == "single"
        if typed.k_case is not None:
            return typed.k_case == 0
        return all(t.table.n_generated == 0 for t in self.tasks)

    @property
    def k_code(self) -> int:
        return self.typed_manifest.k_code or max((t.table.n_programs for t in self.tasks), default=0)

    @property
    def k_case(self) -> int:
        found = max((t.table.n_generated for t in self.tasks), default=0)
        return max(self.typed_manifest.k_case or 0, found)

    @property
    def pass_at(self) -> tuple[int, ...]:
        """The k of every ``pass@k`` the run reported (at least 1)."""
        ks = {int(k[5:]) for k in self.metrics if k.startswith("pass@") and k[5:].isdigit()}
        return tuple(sorted(ks | {1}))

    @property
    def bon(self) -> list[tuple[int, int]]:
        """The BoN cells the run reported ("4x4" strings in the manifest), else the default clipped to k."""
        from cure_bench.scoring.metrics import parse_bon_spec

        spec = ",".join(self.typed_manifest.bon) if self.manifest.get("bon") is not None else "4x4,16x16"
        return parse_bon_spec(spec, self.k_code, self.k_case)


def _model_name(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("model") or value.get("name")
    return str(value) if value else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: no such file (is this a finished run directory?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from None


def _parse_task(path: Path, line_no: int, data: Any) -> RunTask:
    where = f"{path}, line {line_no}"
    if isinstance(data, dict) and data.get("table") is None:
        raise RunDirError(f"{where}, field 'table': missing (the run was not judged; re-run it to finish)")
    try:
        row = SampleRow.from_json(where, data)
    except RunFileError as exc:
        raise RunDirError(str(exc)) from None
    try:
        table = TaskTable.from_json(row.table or {})
    except (KeyError, ValueError, TypeError) as exc:
        raise RunDirError(f"{where}, field 'table': not a verdict table ({exc!r})") from None
    _check_rectangular(where, table)
    keep = ("task_id", "table", "programs", "generated_tests", "time_limit", "max_test")
    return RunTask(
        task_id=row.task_id or table.task_id,
        table=table,
        programs=row.programs,
        generated_tests=[TestCase(t.input, t.output) for t in row.generated_tests],
        time_limit=row.time_limit,
        max_test=row.max_test,
        metadata={k: v for k, v in data.items() if k not in keep},
        test_answer_index=[t.answer_index for t in row.generated_tests],
    )


def _check_rectangular(where: str, table: TaskTable) -> None:
    """Metrics index tables as matrices; a ragged one would give silently wrong numbers."""
    for name, rows in (("hidden", table.hidden), ("generated", table.generated)):
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise RunDirError(f"{where}, field 'table.{name}': rows have different lengths {sorted(widths)}")
    if len(table.generated) not in (0, len(table.hidden)):
        raise RunDirError(
            f"{where}, field 'table': {len(table.hidden)} hidden rows but {len(table.generated)} generated rows"
        )


def load_samples(path: Path) -> list[RunTask]:
    tasks: list[RunTask] = []
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path}: no such file (is this a finished run directory?)") from None
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunDirError(f"{path}, line {line_no}: not valid JSON ({exc.msg})") from None
            tasks.append(_parse_task(path, line_no, row))
    return tasks


RESCORE_PREFIX = "summary.rescore-"


def rescore_paths(run_dir: Path, name: str) -> tuple[Path, Path]:
    """Where ``cure rescore --out NAME`` writes: the summary and the new verdict tables."""
    return run_dir / f"{RESCORE_PREFIX}{name}.json", run_dir / f"tables.rescore-{name}.jsonl"


def _overlay_tables(tasks: list[RunTask], path: Path) -> None:
    """Swap in re-judged tables (same tasks, same order) from a ``tables.rescore-*.jsonl`` file."""
    by_id = {t.task_id: t for t in tasks}
    seen = 0
    for task in load_samples(path):
        if task.task_id not in by_id:
            raise RunDirError(f"{path}: task {task.task_id!r} is not in samples.jsonl")
        by_id[task.task_id].table = task.table
        seen += 1
    if seen != len(tasks):
        raise RunDirError(f"{path}: {seen} tables for {len(tasks)} tasks in samples.jsonl (incomplete rescore)")


def load_run(run_dir: str | Path) -> RunData:
    """Load ``RUN_DIR/summary.json`` and ``RUN_DIR/samples.jsonl``.

    ``run_dir`` may also be a ``RUN_DIR/summary.rescore-<name>.json`` file: that summary, with the verdict
    tables of the same rescore in place of the original ones.
    """
    path = Path(run_dir)
    rescore: str | None = None
    if path.is_file() and path.name.startswith(RESCORE_PREFIX) and path.suffix == ".json":
        rescore = path.name[len(RESCORE_PREFIX) : -len(".json")]
        path = path.parent
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory (give the run's output directory)")
    summary_file = rescore_paths(path, rescore)[0] if rescore else path / SUMMARY_FILE
    data = _read_json(summary_file)
    if not isinstance(data, dict) or not isinstance(data.get("run", {}), dict):
        raise RunDirError(f"{summary_file}: expected {{'run': {{...}}, 'metrics': {{...}}, 'counts': {{...}}}}")
    try:
        summary = Summary.from_json(str(summary_file), data)
    except RunFileError as exc:
        raise RunDirError(str(exc)) from None
    tasks = load_samples(path / SAMPLES_FILE)
    if rescore:
        _overlay_tables(tasks, rescore_paths(path, rescore)[1])
    return RunData(
        path=path,
        manifest=data.get("run") or {},
        metrics=summary.metrics,
        counts=summary.counts,
        typed_manifest=summary.run,
        schema_version=summary.schema_version,
        tasks=tasks,
        variant=rescore,
        summary=data,
    )
