"""Verdict tables: every program of every task on its hidden and generated tests, in one submission.

All tasks' executions go to the sandbox together so the pool stays busy across task boundaries, and
identical (program, input) pairs across tasks run once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cure_bench.sandbox.executor import Executor
from cure_bench.sandbox.verdicts import judge, output_digest
from cure_bench.types import CompareMode, ExecJob, ExecResult, TaskTable, TestCase, Verdict


@dataclass
class TableSpec:
    """One task's judging job. ``programs[i] is None`` means nothing was extracted: NO_PROGRAM, never run."""

    task_id: str
    programs: Sequence[str | None]
    hidden_tests: Sequence[TestCase]
    generated_tests: Sequence[TestCase]
    time_limit_s: float
    memory_limit_mb: int = 2048


@dataclass(frozen=True)
class _Cell:
    spec: int
    program: int
    test: int
    generated: bool


def _cells(specs: Sequence[TableSpec]) -> tuple[list[ExecJob], list[_Cell]]:
    jobs: list[ExecJob] = []
    cells: list[_Cell] = []
    for s, spec in enumerate(specs):
        for p, program in enumerate(spec.programs):
            if program is None:
                continue
            for generated, tests in ((False, spec.hidden_tests), (True, spec.generated_tests)):
                for t, test in enumerate(tests):
                    jobs.append(ExecJob(program, test.input, spec.time_limit_s, spec.memory_limit_mb))
                    cells.append(_Cell(s, p, t, generated))
    return jobs, cells


def _empty_table(spec: TableSpec) -> TaskTable:
    n = len(spec.programs)
    return TaskTable(
        task_id=spec.task_id,
        hidden=[[Verdict.NO_PROGRAM] * len(spec.hidden_tests) for _ in range(n)],
        generated=[[Verdict.NO_PROGRAM] * len(spec.generated_tests) for _ in range(n)],
        generated_outputs=[[None] * len(spec.generated_tests) for _ in range(n)],
    )


def build_tables(
    sandbox: Executor,
    specs: Sequence[TableSpec],
    compare: CompareMode = CompareMode.WHITESPACE,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[TaskTable]:
    """Judge every program of every spec on its hidden and generated tests; one TaskTable per spec.

    ``on_progress(done, total)`` counts executions (cells without a program are not executions).
    """
    jobs, cells = _cells(specs)
    tables = [_empty_table(spec) for spec in specs]
    done = 0

    def record(index: int, result: ExecResult) -> None:
        nonlocal done
        cell = cells[index]
        spec = specs[cell.spec]
        table = tables[cell.spec]
        if cell.generated:
            test = spec.generated_tests[cell.test]
            table.generated[cell.program][cell.test] = judge(result, test.output, compare)
            table.generated_outputs[cell.program][cell.test] = output_digest(result)  # type: ignore[index]
        else:
            test = spec.hidden_tests[cell.test]
            table.hidden[cell.program][cell.test] = judge(result, test.output, compare)
        done += 1
        if on_progress is not None:
            on_progress(done, len(jobs))

    if on_progress is not None:
        on_progress(0, len(jobs))
    sandbox.run_each(jobs, record)  # each result is judged as it arrives and then dropped
    return tables
