"""One refinement step's answers, applied to the task states and judged: each task the moment its answers are in.

A step (the tester's test revisions, or the coder's repairs) asks for answers, applies each to its task's state
and judges every task again. Sequentially (``--no-overlap``) that is ask everything, apply, judge everything.
Overlapped (the default, as in `cure bench`), a task is handed to the judging stream of ``cure_bench.overlap``
as soon as its own answers are in, while other tasks' requests are still in flight, so a round takes about
the larger of its generation and its judging rather than their sum.

Same files either way. The sequential rule is all or nothing: a step judges every task (the ones without a
prompt too) exactly when it changed something (a repair always does; a revision only when the tester's test
differs from the old one), else it judges nothing. The overlapped path keeps that rule, so the exec cache gets
the same rows: a task whose answers changed nothing waits until some task has changed, and the sandbox opens
only then; a step that changed nothing opens none. Each task's table is built from its own final state, by
the same ``table_spec`` and ``build_tables``, so only the order of the work differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from cure_bench.types import ChatMessages, Completion

if TYPE_CHECKING:
    from cure_bench.config import BenchConfig
    from cure_bench.overlap import Judging
    from cure_bench.refine.run import _Round
    from cure_bench.refine.state import TaskState
    from cure_bench.runs.files import TaskRecord

Apply = Callable[[int, Completion], bool]
"""(prompt index, its answer) -> whether the answer changed its task (a new program, a different test)."""


def ask_and_judge(
    ctx: _Round,
    states: list[TaskState],
    role: str,
    prompts: Sequence[tuple[int, ChatMessages]],
    stage: str,
    apply: Apply,
    changed: bool,
) -> bool:
    """Ask ``role`` for every (task, prompt), ``apply`` each answer, judge every task if anything changed.

    ``changed`` says the step changes its tasks whatever the answers (repairs). Returns whether the tasks were
    judged (each state's table replaced).
    """
    msgs = [m for _, m in prompts]
    if not ctx.cfg.bench.overlap:
        answers = ctx.agents.ask(role, msgs, stage, ctx.progress)
        for i, got in enumerate(answers):
            changed = apply(i, got) or changed
        if changed:
            judge_states(ctx, states)
        return changed
    step = _Step(ctx, states, [t for t, _ in prompts], apply, changed)
    with ExitStack() as stack:
        step.stack = stack
        step.flush()
        ctx.agents.ask(role, msgs, stage, ctx.progress, on_answer=step.on_answer)
        if step.judge is None:
            return False
        tables = step.judge.finish()
    for s, table in zip(states, tables, strict=True):
        s.table = table
    return True


def judge_states(ctx: _Round, states: list[TaskState]) -> None:
    """Judge the current programs on hidden + current generated tests; each state's table is replaced."""
    from cure_bench.pipeline import _judge

    bench = ctx.cfg.bench
    records = [_record(bench, s) for s in states]
    tables, _ = _judge(bench, [s.task for s in states], records, ctx.run_dir, ctx.progress, hide=_hide(ctx))
    for s, table in zip(states, tables, strict=True):
        s.table = table


def _record(bench: BenchConfig, state: TaskState) -> TaskRecord:
    """The state as the record both paths judge: one place for the hidden-test cap, so they cannot drift."""
    return state.record(min(bench.max_test, len(state.task.hidden_tests)))


def _hide(ctx: _Round) -> list[Path]:
    """What the judged programs must not see besides the run directory (which the run's sandbox always hides)."""
    return [p for p in ctx.hide if p != ctx.run_dir]


class _Step:
    """The overlapped step's bookkeeping: answers still due per task, tasks ready to judge, the judging stream."""

    def __init__(self, ctx: _Round, states: list[TaskState], owners: list[int], apply: Apply, changed: bool) -> None:
        self.ctx, self.states, self.owners, self.apply, self.changed = ctx, states, owners, apply, changed
        self.due = Counter(owners)
        self.ready = [t for t in range(len(states)) if not self.due[t]]  # no prompt: final from the start
        self.judge: Judging | None = None
        self.stack: ExitStack | None = None

    def on_answer(self, i: int, answer: Completion) -> None:
        t = self.owners[i]
        self.changed = self.apply(i, answer) or self.changed
        self.due[t] -= 1
        if not self.due[t]:
            self.ready.append(t)
        self.flush()

    def flush(self) -> None:
        """Once the step has changed something, open the judging (first time) and submit every ready task."""
        from cure_bench.overlap import judging
        from cure_bench.pipeline import table_spec

        if not self.changed:
            return
        bench = self.ctx.cfg.bench
        if self.judge is None:
            assert self.stack is not None
            block = judging(bench, self.ctx.run_dir, len(self.states), self.ctx.progress, _hide(self.ctx))
            self.judge = self.stack.enter_context(block)
        while self.ready:
            t = self.ready.pop(0)
            state = self.states[t]
            spec = table_spec(bench, state.task, _record(bench, state))
            self.judge.submit(t, spec)  # raises the judge's error: asking stops
