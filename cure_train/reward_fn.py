"""The reward function handed to TRL: judge each task's programs x tests, return CURE's advantages.

TRL calls a reward function once per generation batch with the batch's prompts, completions and
dataset columns (here ``task_index`` and ``role``), and expects one number per completion. This one
groups the completions by task, extracts programs and tests, runs every program on the task's hidden
tests and on every extracted generated test in the sandbox (one ``build_tables`` call for the batch),
and returns :func:`cure_train.rewards.task_rewards`' advantages. Those are already centred per (task,
role) group, and the trainer sets TRL's ``scale_rewards="none"``, so TRL's own ``r - mean(group)`` leaves
them exactly as computed; groups without signal get 0 everywhere and so contribute no gradient.

A generated answer without an extractable test still holds its place in the group: its column in the
verdict table is all False (no program can pass a test that does not exist), which is what the
reference scripts' empty test amounts to. A missing program is a row of NO_PROGRAM verdicts.

On several processes each one sees only its slice of the batch: the slices are gathered, the main
process scores the whole batch once (one sandbox, one set of statistics), and the result is broadcast.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cure_bench.generation.extract import extract_program, extract_test
from cure_bench.types import CompareMode, Task, TaskTable, TestCase
from cure_train.data import CODE, TEST
from cure_train.rewards import RewardConfig, raw_test_rewards, task_rewards

log = logging.getLogger(__name__)

Row = tuple[int, str, str, int]
"""One completion: (task index, role, text, length in tokens)."""

TableBuilder = Callable[[Sequence[Any]], list[TaskTable]]
"""Turns TableSpecs into verdict tables (the sandbox's ``build_tables`` bound to a running Sandbox)."""


@dataclass
class TaskRollout:
    """One task's answers of one step, in generation order."""

    task_index: int
    code_texts: list[str] = field(default_factory=list)
    code_lengths: list[int] = field(default_factory=list)
    test_texts: list[str] = field(default_factory=list)
    test_lengths: list[int] = field(default_factory=list)


@dataclass
class BatchScore:
    """Advantages of a generation batch (same order as its rows) and what the step log reports."""

    advantages: list[float]
    stats: dict[str, Any]
    tables: list[TaskTable]
    signal: list[bool] = field(default_factory=list)  # per row: its (task, role) group has a learning signal


def group_rows(rows: Sequence[Row], k: int) -> dict[int, TaskRollout]:
    """Rows -> per-task rollouts; every task must bring exactly ``k`` answers per role."""
    groups: dict[int, TaskRollout] = {}
    for task_index, role, text, length in rows:
        group = groups.setdefault(task_index, TaskRollout(task_index))
        if role == CODE:
            group.code_texts.append(text)
            group.code_lengths.append(length)
        elif role == TEST:
            group.test_texts.append(text)
            group.test_lengths.append(length)
        else:
            raise ValueError(f"unknown role {role!r} in the training batch (expected {CODE!r} or {TEST!r})")
    for group in groups.values():
        if len(group.code_texts) != k or len(group.test_texts) != k:
            raise RuntimeError(
                f"task {group.task_index}: the batch holds {len(group.code_texts)} programs and "
                f"{len(group.test_texts)} tests, expected {k} of each: the sampler did not keep the task's "
                "code and test rows in one generation batch"
            )
    return groups


def expand_columns(passed: list[list[bool]], kept: Sequence[int], n_columns: int) -> np.ndarray:
    """Verdicts on the extracted tests -> a programs x all-answers table, False where no test was extracted."""
    full = np.zeros((len(passed), n_columns), dtype=bool)
    if kept and passed:
        full[:, list(kept)] = np.asarray(passed, dtype=bool)
    return full


class CureJudge:
    """Callable reward function for ``GRPOTrainer(reward_funcs=[judge])``.

    ``hidden_tests[i]`` are the tests programs of task ``i`` are judged on (the dataset's hidden tests, or a
    tester's tests in label-free mode). ``open_builder`` starts the sandbox lazily, on the process that
    scores, registering its shutdown on the given ExitStack. ``eos_token_ids``: a final EOS token is not
    counted in an answer's length.
    """

    __name__ = "cure"

    def __init__(
        self,
        tasks: Sequence[Task],
        hidden_tests: Sequence[Sequence[TestCase]],
        reward_cfg: RewardConfig,
        k: int,
        open_builder: Callable[[ExitStack], TableBuilder],
        memory_limit_mb: int = 2048,
        eos_token_ids: Sequence[int] = (),
        time_limit_s: float | None = None,
    ):
        if len(tasks) != len(hidden_tests):
            raise ValueError(f"{len(tasks)} tasks but {len(hidden_tests)} hidden-test lists")
        self.tasks = list(tasks)
        self.hidden_tests = [list(tests) for tests in hidden_tests]
        self.reward_cfg = reward_cfg
        self.k = k
        self.memory_limit_mb = memory_limit_mb
        self.time_limit_s = time_limit_s  # None: each task's own limit; the authors' training fixes 1 s
        self.eos_token_ids = frozenset(eos_token_ids)
        self._open_builder = open_builder
        self._stack = ExitStack()
        self._builder: TableBuilder | None = None
        self.last: BatchScore | None = None
        self.judge_seconds = 0.0

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        completion_ids: list[list[int]],
        task_index: list[int],
        role: list[str],
        **_: Any,
    ) -> list[float]:
        texts = [_completion_text(c) for c in completions]
        local: list[Row] = [
            (int(t), str(r), text, self._length(ids))
            for t, r, text, ids in zip(task_index, role, texts, completion_ids, strict=True)
        ]
        score = self._score_everywhere(local)
        self.last = score
        start = _process_index() * len(local)
        return score.advantages[start : start + len(local)]

    def _length(self, ids: Sequence[int]) -> int:
        """Answer length in tokens without the closing EOS (the reference counts the decoded text's tokens)."""
        n = len(ids)
        return n - 1 if n and ids[-1] in self.eos_token_ids else n

    def _score_everywhere(self, local: list[Row]) -> BatchScore:
        from accelerate import PartialState

        state = PartialState()
        if state.num_processes == 1:
            return self.score(local)
        from accelerate.utils import broadcast_object_list, gather_object

        rows = gather_object(local)
        payload: list[BatchScore | None] = [self.score(rows) if state.is_main_process else None]
        broadcast_object_list(payload, from_process=0)
        assert payload[0] is not None
        return payload[0]

    def score(self, rows: Sequence[Row]) -> BatchScore:
        """Advantages for ``rows`` (a whole generation batch) and the step statistics."""
        started = time.perf_counter()
        groups = group_rows(rows, self.k)
        order = sorted(groups)
        programs = {t: [extract_program(x) for x in groups[t].code_texts] for t in order}
        tests = {t: [extract_test(x) for x in groups[t].test_texts] for t in order}
        tables = self._tables(order, programs, tests)
        advantage_of: dict[tuple[int, str], np.ndarray] = {}
        has_signal: set[tuple[int, str]] = set()
        code_raw: list[float] = []
        test_raw: list[float] = []
        signal = {"code": 0, "test": 0, "any": 0}
        for t, table in zip(order, tables, strict=True):
            kept = [j for j, case in enumerate(tests[t]) if case is not None]
            gt = _bool_rows(table.hidden_pass(), self.k)
            gen = expand_columns(table.generated_pass(), kept, self.k)
            code_adv, test_adv = task_rewards(gt, gen, groups[t].code_lengths, groups[t].test_lengths, self.reward_cfg)
            if gt.shape[1]:
                code_raw.extend(gt.mean(axis=1).tolist())
            raw = raw_test_rewards(gt, gen, self.reward_cfg.post_stage) if gt.shape[1] else None
            if raw is not None:
                test_raw.extend(raw.tolist())
            signal["code"] += code_adv is not None
            signal["test"] += test_adv is not None
            signal["any"] += code_adv is not None or test_adv is not None
            has_signal |= {key for key, adv in (((t, CODE), code_adv), ((t, TEST), test_adv)) if adv is not None}
            advantage_of[(t, CODE)] = code_adv if code_adv is not None else np.zeros(self.k)
            advantage_of[(t, TEST)] = test_adv if test_adv is not None else np.zeros(self.k)
        advantages = _place(rows, advantage_of)
        seconds = time.perf_counter() - started
        self.judge_seconds += seconds
        stats = _stats(groups, programs, tests, tables, code_raw, test_raw, signal, seconds)
        stats["tasks"] = [self.tasks[t].task_id for t in order]
        signal_rows = [(task_index, role) in has_signal for task_index, role, _, _ in rows]
        return BatchScore(advantages=advantages, stats=stats, tables=tables, signal=signal_rows)

    def _tables(
        self, order: list[int], programs: dict[int, list[str | None]], tests: dict[int, list[TestCase | None]]
    ) -> list[TaskTable]:
        from cure_bench.sandbox import TableSpec

        if self._builder is None:
            self._builder = self._open_builder(self._stack)
        specs = [
            TableSpec(
                task_id=self.tasks[t].task_id,
                programs=programs[t],
                hidden_tests=self.hidden_tests[t],
                generated_tests=[case for case in tests[t] if case is not None],
                time_limit_s=self.time_limit_s or self.tasks[t].time_limit,
                memory_limit_mb=self.memory_limit_mb,
            )
            for t in order
        ]
        return self._builder(specs)

    def close(self) -> None:
        """Stop the sandbox (if this process started one)."""
        self._stack.close()
        self._builder = None


def sandbox_builder(
    workers: int | None,
    isolation: str,
    compare: CompareMode = CompareMode.WHITESPACE,
    executor: str = "local",
    ray_address: str | None = None,
) -> Callable[[ExitStack], TableBuilder]:
    """``open_builder`` for :class:`CureJudge` backed by one sandbox per run: this machine's process pool, or
    (``executor="ray"``) one pool per node of a Ray cluster."""

    def open_builder(stack: ExitStack) -> TableBuilder:
        from cure_bench.sandbox import build_tables, open_sandbox

        box = stack.enter_context(
            open_sandbox(executor, ray_address, workers=workers, isolation=isolation, use_cache=False)
        )
        log.debug("sandbox started for training rewards: %s", box.describe())
        return lambda specs: build_tables(box, specs, compare=compare)

    return open_builder


def _place(rows: Sequence[Row], advantage_of: dict[tuple[int, str], np.ndarray]) -> list[float]:
    """Advantage of each row: the n-th answer of a (task, role) in the batch gets its group's n-th value."""
    seen: dict[tuple[int, str], int] = defaultdict(int)
    out: list[float] = []
    for task_index, role, _, _ in rows:
        key = (task_index, role)
        out.append(float(advantage_of[key][seen[key]]))
        seen[key] += 1
    return out


def _stats(
    groups: dict[int, TaskRollout],
    programs: dict[int, list[str | None]],
    tests: dict[int, list[TestCase | None]],
    tables: list[TaskTable],
    code_raw: list[float],
    test_raw: list[float],
    signal: dict[str, int],
    seconds: float,
) -> dict[str, Any]:
    from cure_bench.scoring.catalogue import train_log_names
    from cure_bench.scoring.metrics import compute_metrics

    n_tasks = len(groups)
    # a rollout's own statistics: every task counts and an unmeasurable share is None (the chat rules); the
    # periodic evaluation (cure_train.evaluation) is a bench run under the default protocol
    metrics = compute_metrics(tables, bon=(), pass_at=(1,), protocol="chat").metrics
    code_lengths = [n for g in groups.values() for n in g.code_lengths]
    test_lengths = [n for g in groups.values() for n in g.test_lengths]
    n_programs = sum(len(p) for p in programs.values())
    n_tests = sum(len(t) for t in tests.values())
    return {
        "n_tasks": n_tasks,
        "code_reward_mean": _mean(code_raw),
        "code_reward_std": _std(code_raw),
        "test_reward_mean": _mean(test_raw),
        "test_reward_std": _std(test_raw),
        "signal_share": signal["any"] / n_tasks if n_tasks else None,
        "code_signal_share": signal["code"] / n_tasks if n_tasks else None,
        "test_signal_share": signal["test"] / n_tasks if n_tasks else None,
        **{name: metrics.get(name) for name in train_log_names()},
        "no_program_share": sum(p is None for ps in programs.values() for p in ps) / n_programs if n_programs else None,
        "no_test_share": sum(c is None for cs in tests.values() for c in cs) / n_tests if n_tests else None,
        "code_length_mean": _mean(code_lengths),
        "test_length_mean": _mean(test_lengths),
        "judge_s": round(seconds, 3),
    }


def _bool_rows(rows: list[list[bool]], n_rows: int) -> np.ndarray:
    """A programs x tests bool table that keeps its shape when there are no tests."""
    width = len(rows[0]) if rows else 0
    return np.asarray(rows, dtype=bool).reshape(n_rows, width)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _std(values: Sequence[float]) -> float | None:
    return float(np.std(values)) if len(values) else None


def _completion_text(completion: Any) -> str:
    """TRL gives conversational completions as ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        return content if isinstance(content, str) else str(content)
    return ""


def _process_index() -> int:
    from accelerate import PartialState

    return int(PartialState().process_index)
