"""Execution feedback for the next round, gathered in the sandbox from generated tests (and public examples).

For the coder: each program failing a generated test (or, with ``--feedback public``, a public example) and
up to F of the tests it fails, re-run for what it printed. For the tester (``--refine-tests``): the generated
tests that no current program passes, with what the programs did on their inputs, grouped by output. Hidden
tests are never run here. Every run goes through the sandbox with the dataset file and the run directory
hidden from the programs, as in the judge stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cure_bench.config import BenchConfig
from cure_bench.refine.prompts import OUTPUT_CAP, Feedback, OutputGroup
from cure_bench.refine.state import TaskState
from cure_bench.sandbox.verdicts import judge, output_digest
from cure_bench.types import ExecJob, ExecResult, TestCase, Verdict

T = TypeVar("T")


class Runner:
    """Sandbox for feedback runs, opened on first use and kept for the whole refinement: the bench's limits,
    the paths programs must not see (dataset file, run directory), the exec cache."""

    def __init__(self, bench: BenchConfig, hide: tuple[Path, ...], cache_dir: Path | None) -> None:
        self.bench, self.hide, self.cache_dir = bench, hide, cache_dir
        self._box: Any = None

    def run(self, jobs: Sequence[ExecJob], reduce: Callable[[int, ExecResult], T]) -> list[T]:
        """``reduce(index, result)`` for every job, in job order. Each result is reduced as it arrives and
        then dropped (``run_each``), so a round holds what the prompts show (a verdict, an excerpt, a digest),
        never every program's whole output: a program printing 16 MiB costs its excerpt (docs/sandbox.md)."""
        from cure_bench.sandbox import open_sandbox

        if not jobs:
            return []
        if self._box is None:
            cfg = self.bench
            self._box = open_sandbox(cfg.executor, cfg.ray_address, workers=cfg.workers, isolation=cfg.sandbox,
                                     cache_dir=self.cache_dir, use_cache=self.cache_dir is not None,
                                     hide=list(self.hide), compat=cfg.judge_compat).__enter__()  # fmt: skip
        reduced: list[Any] = [None] * len(jobs)

        def keep(index: int, result: ExecResult) -> None:
            reduced[index] = reduce(index, result)

        self._box.run_each(jobs, keep)
        return reduced

    def close(self) -> None:
        if self._box is not None:
            self._box.__exit__(None, None, None)
            self._box = None

    def job(self, state: TaskState, program: str, stdin: str) -> ExecJob:
        return ExecJob(program, stdin, state.task.time_limit, self.bench.memory_limit_mb)


def program_feedback(
    runner: Runner, states: Sequence[TaskState], limit: int, public: bool
) -> list[tuple[int, int, list[Feedback]]]:
    """(task, program, feedback) for every program failing a generated test; the others are kept as they are.

    With ``public``, the public examples such a program fails are shown after its failing generated tests.
    """
    wanted: list[tuple[int, int, list[tuple[TestCase, str, Verdict | None]]]] = []
    for t, st in enumerate(states):
        for i, program in enumerate(st.programs):
            if program is None:
                continue
            failing = [(st.tests[j], "generated", v) for j, v in enumerate(st.table.generated[i])
                       if v is not Verdict.ACCEPTED][:limit]  # fmt: skip
            if not failing:
                continue  # passes every generated test: kept as it is (public examples alone never trigger)
            examples = [(e, "public", None) for e in st.task.example_tests] if public else []
            wanted.append((t, i, [*failing, *examples]))
    flat = [(t, i, case, source, verdict) for t, i, cases in wanted for case, source, verdict in cases]
    jobs = [runner.job(states[t], states[t].programs[i] or "", case.input) for t, i, case, _, _ in flat]

    def seen(index: int, res: ExecResult) -> Feedback:
        _, _, case, source, verdict = flat[index]
        if verdict is None:  # a public example: judged here (on the whole output), shown only when failed
            verdict = judge(res, case.output, runner.bench.compare)
        printed = res.stdout[:OUTPUT_CAP] if res.status.value == "ok" else None
        return Feedback(case.input, case.output, printed, verdict.value, res.stderr_tail, source)

    results = iter(runner.run(jobs, seen))
    out = []
    for t, i, cases in wanted:
        fb: list[Feedback] = []
        shown_public = 0
        for _, source, _ in cases:
            f = next(results)
            if source == "public":  # at most ``limit`` failed public examples are shown
                if f.verdict == Verdict.ACCEPTED.value or shown_public >= limit:
                    continue
                shown_public += 1
            fb.append(f)
        out.append((t, i, fb))
    return out


def disagreed_tests(states: Sequence[TaskState]) -> list[tuple[int, int]]:
    """(task, test) for every generated test that no current program passes (tasks with a program only)."""
    out = []
    for t, st in enumerate(states):
        rows = [row for row, p in zip(st.table.generated, st.programs, strict=True) if p is not None]
        if not rows:
            continue
        for j in range(len(st.tests)):
            if all(row[j] is not Verdict.ACCEPTED for row in rows):
                out.append((t, j))
    return out


def output_groups(
    runner: Runner, states: Sequence[TaskState], wanted: Sequence[tuple[int, int]]
) -> list[list[OutputGroup]]:
    """What the current programs of each task did on each wanted test's input, grouped, biggest group first."""
    members = [[p for p in states[t].programs if p is not None] for t, _ in wanted]
    flat = [(t, j) for (t, j), ps in zip(wanted, members, strict=True) for _ in ps]
    jobs = [runner.job(states[t], p, states[t].tests[j].input) for (t, j), ps in zip(wanted, members, strict=True)
            for p in ps]  # fmt: skip

    def seen(index: int, res: ExecResult) -> tuple[tuple[str | None, str], str | None]:
        """(group key, excerpt): outputs are grouped by a digest of their whitespace-normalised text (as
        the output-agreement rankers compare them), so a key is a few bytes whatever the program printed."""
        t, j = flat[index]
        verdict = judge(res, states[t].tests[j].output, runner.bench.compare)
        digest = output_digest(res)  # None: did not finish
        return (digest, verdict.value), None if digest is None else res.stdout[:OUTPUT_CAP]

    results = iter(runner.run(jobs, seen))
    out = []
    for ps in members:
        groups: dict[tuple[str | None, str], list[str | None]] = {}
        for _ in ps:
            key, excerpt = next(results)
            groups.setdefault(key, []).append(excerpt)
        ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: first seen first among equals
        out.append([OutputGroup(len(v), v[0], key[1]) for key, v in ordered])
    return out
