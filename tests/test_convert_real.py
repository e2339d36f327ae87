"""The converters on the real MBPP and HumanEval files in ../shared/data (skipped when that folder is absent).

Acceptance for issue 5: at least 220 of MBPP's 257 evaluation tasks convert, and every converted task's
reference solution passes all of its converted tests when run again in our sandbox at the task's own
time limit (conversion verified it at half the limit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cure_bench.tasks.convert import ConvertOptions, convert
from cure_bench.tasks.reader import load_tasks, validate_task_file
from cure_bench.types import Task, Verdict

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
MBPP = DATA / "mbpp" / "sanitized-mbpp.json"
HUMANEVAL = DATA / "humaneval" / "HumanEval.jsonl.gz"


def _failing_references(tasks: list[Task]) -> list[str]:
    from cure_bench.sandbox import Sandbox, TableSpec, build_tables

    specs = [
        TableSpec(t.task_id, [t.metadata["reference_solution"]], [*t.example_tests, *t.hidden_tests], [], t.time_limit)
        for t in tasks
    ]
    with Sandbox(workers=2, use_cache=False) as box:
        tables = build_tables(box, specs)
    return [
        f"{t.task_id}: {[v.value for v in table.hidden[0]]}"
        for t, table in zip(tasks, tables, strict=True)
        if any(v is not Verdict.ACCEPTED for v in table.hidden[0])
    ]


@pytest.mark.slow
@pytest.mark.skipif(not MBPP.is_file(), reason="../shared/data/mbpp is absent")
def test_real_mbpp_eval_split(tmp_path: Path) -> None:
    out = tmp_path / "mbpp.json"
    report = convert("mbpp", MBPP, out, ConvertOptions(workers=2))
    assert report.total == 257
    assert report.converted >= 220, dict(report.skipped)
    assert validate_task_file(out).ok
    tasks = load_tasks(out)
    assert len(tasks) == report.converted
    assert all(1 <= t.metadata["original_task_id"] - 10 <= 500 for t in tasks)
    assert not _failing_references(tasks)


@pytest.mark.slow
@pytest.mark.skipif(not HUMANEVAL.is_file(), reason="../shared/data/humaneval is absent")
def test_real_humaneval(tmp_path: Path) -> None:
    out = tmp_path / "humaneval.json"
    report = convert("humaneval", HUMANEVAL, out, ConvertOptions(workers=2))
    assert report.total == 164
    assert report.converted >= 145, dict(report.skipped)
    tasks = load_tasks(out)
    assert not _failing_references(tasks)
