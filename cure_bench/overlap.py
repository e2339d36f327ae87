"""Judge while generating: a task's verdict table is built as soon as its programs and tests are all in.

The sequential path (``BenchConfig(overlap=False)``, ``--no-overlap``) generates every sample and only then
judges, so a benchmark over an API pays generation's minutes plus the judge's. Here the sandbox opens before
generation, each task is extracted and handed to a ``TableStream`` the moment its last code and test answer
arrive (``generate_all``'s ``on_prompt_done``), and a shared generator is asked task by task so tasks finish
steadily rather than all at the end. Wall time tends to the larger of the two instead of their sum
(``benchmarks/pipeline_overlap.py``).

Same files as the sequential path: the answers come from the same cache by the same keys, each record is
extracted by the same function, each table is judged by the same ``build_tables``; only the order of work
differs. Ctrl-C: during generation the backend stops sending and raises ``RunInterrupted``; during the wait for
the last tables a KeyboardInterrupt does the same. Either way the stream is cancelled (its sandbox closed):
every sample that arrived is in the generation cache and every execution that finished is in the exec cache
(both are written one row at a time as results arrive), so the re-run asks for nothing twice.

``judging`` is that sandbox-plus-stream block on its own; `cure refine`'s repair and test-revision steps judge
in it too (``cure_bench/refine/judging.py``), with the same cancellation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cure_bench.errors import RunInterrupted
from cure_bench.types import ChatMessages, Completion, Generator, Task, TaskTable

if TYPE_CHECKING:
    from cure_bench.config import BenchConfig
    from cure_bench.generation.plan import GenerationPlan
    from cure_bench.pipeline import Progress
    from cure_bench.runs.files import TaskRecord
    from cure_bench.sandbox.stream import TableStream
    from cure_bench.sandbox.tables import TableSpec

JUDGE_STAGE = "judge"


class _Answers:
    """Each task's code and test answers as they arrive; ``add`` says when a task has both."""

    def __init__(self, n_tasks: int, with_tests: bool) -> None:
        self.code: list[list[Completion] | None] = [None] * n_tasks
        self.tests: list[list[Completion] | None] = [None] * n_tasks if with_tests else [[] for _ in range(n_tasks)]

    def add(self, role: str, task: int, completions: list[Completion]) -> bool:
        """Record one role's answers for ``task``; True exactly once, when the task's last role came in."""
        slots = self.code if role == "code" else self.tests
        if slots[task] is not None:
            return False  # a prompt shared by two tasks reports for each; a role reports once per task
        slots[task] = completions
        return self.code[task] is not None and self.tests[task] is not None


class Judging:
    """A ``TableStream`` on the run's sandbox that shows the judge bar from the first submission on."""

    def __init__(self, stream: TableStream, progress: Progress) -> None:
        self._stream, self._progress = stream, progress
        self.started = False
        self.finished = False
        self.sandbox: dict[str, Any] = {}  # the sandbox's manifest entry, once the ``judging`` block is left

    def submit(self, index: int, spec: TableSpec) -> None:
        """Queue table ``index``; raises the judge's error, if judging hit one, so the caller stops early."""
        if not self.started:  # the judge bar appears with the first task ready, below the generation bar
            self._progress.start(JUDGE_STAGE, 0)
            self.started = True
        self._stream.submit(index, spec)

    def finish(self) -> list[TaskTable]:
        """Wait for every table (each index submitted once) and return them in index order."""
        tables = self._stream.finish()
        self.finished = True
        return tables


@contextmanager
def judging(
    cfg: BenchConfig, run_dir: Path, n_tables: int, progress: Progress, hide: Sequence[Path] = ()
) -> Iterator[Judging]:
    """The run's sandbox and a stream judging ``n_tables`` tables as they are submitted, for one block.

    Leaving the block on an exception (generation's error, ``RunInterrupted``, the judge's own error) cancels
    the stream and closes the sandbox: finished executions are in the exec cache, those in flight never are.
    A KeyboardInterrupt inside the block (Ctrl-C while waiting for the last tables) becomes ``RunInterrupted``.
    Leaving it normally without ``finish`` is allowed only when nothing was submitted (a caller that found
    nothing to judge); the idle judging threads are stopped then.
    """
    from cure_bench.pipeline import open_run_sandbox
    from cure_bench.sandbox.stream import TableStream

    judge: Judging | None = None
    with open_run_sandbox(cfg, run_dir, hide) as box:
        on_progress = lambda done, total: progress.advance(JUDGE_STAGE, done, total)  # noqa: E731
        try:
            with TableStream(box, n_tables, cfg.compare, on_progress) as stream:
                judge = Judging(stream, progress)
                try:
                    yield judge
                except KeyboardInterrupt:
                    raise RunInterrupted(
                        f"interrupted while judging; generations are saved in {run_dir}: re-run the same command "
                        "to resume"
                    ) from None
                if not judge.finished:
                    stream.cancel()  # stops the judging threads; with nothing submitted nothing is dropped
                    if judge.started:
                        raise RuntimeError("left the judging block with tables submitted but never awaited")
        finally:
            if judge is not None and judge.started:
                progress.finish(JUDGE_STAGE)
        judge.sandbox = box.describe()


def generate_and_judge(
    cfg: BenchConfig,
    generation: GenerationPlan,
    opened: dict[str, tuple[Generator, dict[str, Any]]],
    tasks: Sequence[Task],
    messages: tuple[list[ChatMessages], list[ChatMessages] | None],
    run_dir: Path,
    progress: Progress,
    hide: Sequence[Path] = (),
) -> tuple[list[TaskRecord], list[TaskTable], dict[str, Any], dict[str, Any]]:
    """Generate and judge at once; returns (records, tables, generators' manifest entries, sandbox entry)."""
    from cure_bench.generation.stage import generate
    from cure_bench.pipeline import extract_record, table_spec

    coder_msgs, tester_msgs = messages
    answers = _Answers(len(tasks), with_tests=tester_msgs is not None)
    records: list[TaskRecord | None] = [None] * len(tasks)

    with judging(cfg, run_dir, len(tasks), progress, hide) as judge:

        def on_answers(role: str, i: int, completions: list[Completion]) -> None:
            if not answers.add(role, i, completions):
                return
            code, tests = answers.code[i], answers.tests[i]
            assert code is not None and tests is not None
            tester = tester_msgs[i] if tester_msgs is not None else None
            records[i] = record = extract_record(tasks[i], coder_msgs[i], tester, code, tests, cfg)
            judge.submit(i, table_spec(cfg, tasks[i], record))  # raises the judge's error: generation stops

        _, _, generators = generate(cfg, generation, opened, coder_msgs, tester_msgs, run_dir, progress,
                                    on_prompt_done=on_answers, interleave=True)  # fmt: skip
        tables = judge.finish()
    done = [r for r in records if r is not None]
    if len(done) != len(tasks):  # generate() raises first for any missing sample; this guards the invariant
        raise RuntimeError(f"{len(tasks) - len(done)} task(s) finished generating without being judged")
    return done, tables, generators, judge.sandbox
