"""Programs x tests through the sandbox pool, off the event loop, a bounded number of batches at once.

The sandbox's ``run`` is thread-safe and its worker processes already cap parallel executions, so the
semaphore here bounds something else: how many request batches wait in threads at once (each holds its
programs and results in memory). Requests beyond it queue on the event loop, where waiting is free.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cure_bench.sandbox import Executor, TableSpec, build_tables
from cure_bench.serve.prometheus import Registry
from cure_bench.types import ExecJob, ExecResult, TestCase, Verdict


@dataclass(frozen=True)
class JudgeRequest:
    """Every program to judge on one problem's tests."""

    task_id: str
    programs: Sequence[str | None]
    tests: Sequence[TestCase]
    time_limit_s: float
    memory_limit_mb: int


class ExecutionService:
    """Verdict rows (one per program, one verdict per test) for batches of JudgeRequests."""

    def __init__(self, sandbox: Executor, concurrency: int, metrics: Registry) -> None:
        self.sandbox = sandbox
        self.metrics = metrics
        self._slots = asyncio.Semaphore(concurrency)

    async def judge(self, requests: Sequence[JudgeRequest]) -> list[list[list[Verdict]]]:
        """For each request, ``rows[i][j]``: program i on test j (NO_PROGRAM rows for missing programs)."""
        specs = [
            TableSpec(r.task_id, list(r.programs), [], list(r.tests), r.time_limit_s, r.memory_limit_mb)
            for r in requests
        ]
        if not any(s.generated_tests and any(p is not None for p in s.programs) for s in specs):
            return [[[Verdict.NO_PROGRAM] * len(s.generated_tests) for _ in s.programs] for s in specs]
        async with self._slots:
            started = time.monotonic()
            tables = await asyncio.to_thread(build_tables, self.sandbox, specs)
            self.metrics.observe("cure_serve_execution_seconds", time.monotonic() - started)
        rows = [table.generated for table in tables]
        self._count(rows)
        return rows

    async def run_one(self, job: ExecJob) -> ExecResult:
        """One raw execution (for /run_code), under the same slots as the judged batches."""
        async with self._slots:
            started = time.monotonic()
            results = await asyncio.to_thread(self.sandbox.run, [job])
            self.metrics.observe("cure_serve_execution_seconds", time.monotonic() - started)
        self.metrics.inc("cure_serve_run_code_total", status=results[0].status.value)
        return results[0]

    def _count(self, rows: list[list[list[Verdict]]]) -> None:
        counts: dict[Verdict, int] = {}
        for table in rows:
            for row in table:
                for verdict in row:
                    if verdict is not Verdict.NO_PROGRAM:
                        counts[verdict] = counts.get(verdict, 0) + 1
        for verdict, n in counts.items():
            self.metrics.inc("cure_serve_executions_total", n, verdict=verdict.value)
        if counts.get(Verdict.TIME_LIMIT):
            self.metrics.inc("cure_serve_execution_timeouts_total", counts[Verdict.TIME_LIMIT])
