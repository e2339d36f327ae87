"""Writing what a run leaves behind: ``summary.json`` and ``samples.jsonl`` (records in :mod:`.schema`).

``samples.jsonl`` holds one line per task: prompts, raw answers, extracted programs and tests, and the verdict
table, so a run can be re-scored or analysed offline without generating anything again. Hidden tests are not
copied (LiveCodeBench's are large); re-scoring reloads them from the dataset named in the manifest and checks
its fingerprint.
"""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from cure_bench import __version__
from cure_bench.config import BenchConfig
from cure_bench.fileio import atomic_write_json, atomic_write_jsonl
from cure_bench.runs import directory as rundir
from cure_bench.runs.schema import AnswerRecord, GeneratedTestRecord, Manifest, SampleRow, Summary
from cure_bench.types import ChatMessages, Completion, Task, TaskTable, TestCase, Verdict

_PACKAGES = ("openai", "aiolimiter", "numpy", "torch", "transformers", "vllm", "trl")


@dataclass
class TaskRecord:
    """Everything produced for one task, in generation order."""

    task: Task
    coder_messages: ChatMessages
    tester_messages: ChatMessages | None
    code_answers: list[Completion]
    programs: list[str | None]
    test_answers: list[Completion]
    generated_tests: list[TestCase]
    test_answer_index: list[int]  # generated_tests[j] came from test_answers[test_answer_index[j]]
    hidden_used: int
    table: TaskTable | None = field(default=None)

    def to_row(self) -> SampleRow:
        """The samples.jsonl line of this task (the typed record :mod:`cure_bench.runs.schema` defines)."""
        return SampleRow(
            task_id=self.task.task_id,
            question=self.task.question,
            time_limit=self.task.time_limit,
            max_test=self.hidden_used,
            coder_messages=[list(m) for m in self.coder_messages],
            tester_messages=None if self.tester_messages is None else [list(m) for m in self.tester_messages],
            code_answers=[_answer(c) for c in self.code_answers],
            programs=self.programs,
            test_answers=[_answer(c) for c in self.test_answers],
            generated_tests=[
                GeneratedTestRecord(t.input, t.output, i)
                for t, i in zip(self.generated_tests, self.test_answer_index, strict=True)
            ],
            dropped_test_answers=len(self.test_answers) - len(self.generated_tests),
            table=None if self.table is None else self.table.to_json(),
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_row().to_json()


def _answer(c: Completion) -> AnswerRecord:
    return AnswerRecord(c.text, c.tokens, c.finish_reason)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "cure-toolkit": __version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def build_manifest(
    cfg: BenchConfig,
    *,
    dataset: Any,
    fingerprint: str,
    n_tasks: int,
    bon: Sequence[tuple[int, int]],
    generators: dict[str, Any],
    sandbox: dict[str, Any],
    prompt_sha256: str,
    templates: tuple[Any, Any],
    started: float,
) -> Manifest:
    """The run's identity card: enough to tell whether two runs are comparable."""
    mode = "single" if cfg.single else ("bon" if cfg.tester is not None else "bench")
    return Manifest.from_json(
        "manifest",
        {
            "tool": "cure-toolkit",
            "version": __version__,
            "mode": mode,
            "command": cfg.command,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.time() - started, 3),
            "coder": generators.get("coder"),
            "tester": generators.get("tester"),
            "dataset": {
                **dataset.describe(),  # name, path, source, hub (repo id, file, commit), sha256
                "fingerprint": fingerprint,
                "n_tasks": n_tasks,
                "limit": cfg.limit,
                "start_date": cfg.start_date,
                "end_date": cfg.end_date,
                "strict": cfg.strict,
                "skipped": len(getattr(dataset, "skipped", ())),
            },
            "sampling": asdict(cfg.sampling),
            "k_code": cfg.k_code,
            "k_case": 0 if cfg.single else cfg.k_case,
            "bon": [f"{n}x{m}" for n, m in bon],
            "max_test": cfg.max_test,
            "show_examples": cfg.show_examples,
            "compare": str(cfg.compare),
            "memory_limit_mb": cfg.memory_limit_mb,
            "judge_compat": list(cfg.judge_compat),
            "prompts": {
                "sha256": prompt_sha256,
                "coder": templates[0].source if templates[0] else "default",
                "tester": templates[1].source if templates[1] else "default",
            },
            "sandbox": sandbox,
            "packages": package_versions(),
        },
    )


def mean_tokens(answers: Sequence[Sequence[Completion]]) -> float | None:
    """Mean response length in tokens, from the backend's counts; None when no backend reported any."""
    counts = [c.tokens for task in answers for c in task if c.tokens is not None]
    return sum(counts) / len(counts) if counts else None


def run_counts(records: Sequence[TaskRecord], tables: Sequence[TaskTable]) -> dict[str, Any]:
    verdicts: Counter[str] = Counter()
    for table in tables:
        for row in (*table.hidden, *table.generated):
            verdicts.update(v.value for v in row)
    return {
        "code_answers": sum(len(r.code_answers) for r in records),
        "no_program": sum(p is None for r in records for p in r.programs),
        "test_answers": sum(len(r.test_answers) for r in records),
        "generated_tests": sum(len(r.generated_tests) for r in records),
        "dropped_test_answers": sum(len(r.test_answers) - len(r.generated_tests) for r in records),
        "executions": sum(verdicts.values()) - verdicts.get(Verdict.NO_PROGRAM.value, 0),
        "verdicts": dict(sorted(verdicts.items())),
    }


def write_outputs(
    run_dir: Path,
    manifest: Manifest,
    records: Sequence[TaskRecord],
    tables: Sequence[TaskTable],
    *,
    bon: Sequence[tuple[int, int]],
    pass_at: Sequence[int],
    single: bool,
    extra_counts: dict[str, Any] | None = None,
    protocol: str = "cure",
) -> dict[str, Any]:
    """Compute metrics, write samples.jsonl then summary.json (its presence marks the run finished).

    ``extra_counts`` joins ``counts`` as is (e.g. the dataset's rows left out, by task and reason).
    """
    from cure_bench.scoring.metrics import compute_metrics

    result = compute_metrics(tables, bon=list(bon), pass_at=tuple(pass_at), single=single, protocol=protocol)
    metrics = dict(result.metrics)
    metrics["mean_code_response_tokens"] = mean_tokens([r.code_answers for r in records])
    if not single:
        metrics["mean_test_response_tokens"] = mean_tokens([r.test_answers for r in records])
    counts = {**result.counts, **run_counts(records, tables), **(extra_counts or {})}
    summary = Summary(run=manifest, metrics=metrics, counts=counts).to_json()
    atomic_write_jsonl(Path(run_dir) / rundir.SAMPLES_FILE, (r.to_json() for r in records))
    atomic_write_json(Path(run_dir) / rundir.SUMMARY_FILE, summary)
    return summary
