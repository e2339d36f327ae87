"""The BoN scaling surface: expected accuracy of each ranker for every (n_code, n_case).

The CURE paper reports BoN on *prefix slices* (the first N programs judged by the first M tests): one draw of
a random quantity, so its value depends on sample order. Here every cell is the expectation over *random
subsets* of N programs and M tests of the run's k_code x k_case table, the number a re-run with only N and M
samples would get on average:

- exact enumeration of every (program subset, test subset) pair when there are at most ``exact_limit``;
- otherwise Monte-Carlo: ``samples`` random orderings of the task's programs and of its tests, seeded by
  (seed, task id); cell (n, m) takes the first n programs and first m tests of each ordering, a uniformly
  random subset of each size. The same orderings serve every cell (common random numbers), so curves are
  smooth, numbers are reproducible, and they do not change when the grid changes.

Within one drawn subset the programs keep their original relative order, so ``cure_first`` still means
"first index among ties" and differs from ``cure_tie_aware`` only through sample order. The prefix-slice
numbers are kept beside the expectations (``prefix``), labelled as such. Tasks with fewer programs or tests
than a cell asks for use all they have (the clipping the metrics apply). The analysis hands in the tasks the
run's protocol scores (under ``cure``, those with a parsable generated test); ``accumulate_acc`` here is a mean
of per-task shares, like every surface value, while summary.json pools it under ``cure``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cure_bench.scoring.rankers import Draw, PrefixDraws, SubTables, TaskArrays, available_rankers, get_ranker
from cure_bench.types import TaskTable

WHICH = ("acc", "accumulate_acc")


@dataclass(frozen=True)
class SurfaceSettings:
    """How expectations are taken; part of what a report prints next to the numbers."""

    exact_limit: int = 256  # enumerate when C(K,n) * C(M,m) is at most this (no dearer than sampling)
    samples: int = 256  # otherwise Monte-Carlo over this many random orderings per task
    seed: int = 0


@dataclass
class BonSurface:
    """Per-task expected BoN values on a grid; means and bootstrap CIs are taken from these."""

    n_codes: list[int]
    n_cases: list[int]
    rankers: list[str]
    task_ids: list[str]
    expected: dict[str, np.ndarray]  # "<ranker>/<acc|accumulate_acc>" -> (tasks, len(n_codes), len(n_cases))
    prefix: dict[str, np.ndarray]  # same keys: first n programs judged by the first m tests
    exact: np.ndarray  # (len(n_codes), len(n_cases)) bool: every task's cell was enumerated exactly
    settings: SurfaceSettings = field(default_factory=SurfaceSettings)

    def per_task(self, ranker: str, which: str = "acc", kind: str = "expected") -> np.ndarray:
        source = self.expected if kind == "expected" else self.prefix
        return source[f"{ranker}/{which}"]

    def mean(self, ranker: str, which: str = "acc", kind: str = "expected") -> np.ndarray:
        """(len(n_codes), len(n_cases)) mean over tasks; NaN when there are no tasks."""
        values = self.per_task(ranker, which, kind)
        if values.shape[0] == 0:
            return np.full(values.shape[1:], np.nan)
        return values.mean(axis=0)

    def cell(self, n_code: int, n_case: int) -> tuple[int, int]:
        return self.n_codes.index(n_code), self.n_cases.index(n_case)

    @property
    def method(self) -> str:
        if self.exact.all():
            return "exact enumeration of all subsets"
        if not self.exact.any():
            return f"Monte-Carlo, {self.settings.samples} random orderings per task (seed {self.settings.seed})"
        return (
            f"exact where at most {self.settings.exact_limit} subset pairs, else Monte-Carlo over "
            f"{self.settings.samples} random orderings per task (seed {self.settings.seed})"
        )

    def to_json(self) -> dict[str, Any]:
        def grid(arr: np.ndarray) -> list[list[float | None]]:
            return [[None if math.isnan(v) else round(float(v), 6) for v in row] for row in arr]

        return {
            "n_code": self.n_codes,
            "n_case": self.n_cases,
            "method": self.method,
            "exact": self.exact.tolist(),
            "n_tasks": len(self.task_ids),
            "expected": {k: grid(self.mean(*_ranker_metric(k))) for k in self.expected},
            "prefix_slice": {k: grid(self.mean(*_ranker_metric(k), kind="prefix")) for k in self.prefix},
        }


def _ranker_metric(key: str) -> tuple[str, str]:
    """``"ranker/metric"`` -> its two parts."""
    ranker, metric = key.split("/")
    return ranker, metric


def default_axis(k: int, start: int) -> list[int]:
    """Every value up to k when k <= 32, else powers of two and k (a 64x64 grid would be slow and unreadable)."""
    if k <= 32:
        return list(range(start, k + 1))
    values = {start, k} | {2**i for i in range(int(math.log2(k)) + 1)}
    return sorted(v for v in values if start <= v <= k)


def _subsets(k: int, r: int) -> np.ndarray:
    """All r-subsets of range(k), each sorted ascending, as rows."""
    if r == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return np.array(list(itertools.combinations(range(k), r)), dtype=np.int64)


def exact_draw(task: TaskArrays, n: int, m: int) -> Draw:
    """Every (program subset, test subset) pair, paired row by row."""
    progs, tests = _subsets(task.k_code, n), _subsets(task.k_case, m)
    return Draw(task, np.repeat(progs, len(tests), axis=0), np.tile(tests, (len(progs), 1)))


def is_exact(task: TaskArrays, n: int, m: int, settings: SurfaceSettings) -> bool:
    return math.comb(task.k_code, n) * math.comb(task.k_case, m) <= settings.exact_limit


def _evaluate_rows(rankers: Sequence[str], sub: SubTables) -> dict[str, np.ndarray]:
    """Per sub-table (row) expected acc and accumulate_acc of each ranker's pick."""
    out: dict[str, np.ndarray] = {}
    hidden_all, hidden_frac = sub.task.hidden_all[sub.progs], sub.task.hidden_frac[sub.progs]
    for name in rankers:
        w = get_ranker(name).weights(sub)
        out[f"{name}/acc"] = (w * hidden_all).sum(axis=1)
        out[f"{name}/accumulate_acc"] = (w * hidden_frac).sum(axis=1)
    return out


def _per_m(rankers: Sequence[str], draws: PrefixDraws, n: int) -> dict[str, np.ndarray]:
    """Mean over draws for every m = 0..M with n programs: key -> (M + 1,) values."""
    rows = _evaluate_rows(rankers, draws.view_all_m(n))
    m1 = draws.task.k_case + 1
    return {k: v.reshape(-1, m1).mean(axis=0) for k, v in rows.items()}


def task_rng(seed: int, task_id: str) -> np.random.Generator:
    """The random orderings of one task depend on (seed, task id) only: runs on the same tasks then share
    them (common random numbers make paired comparisons less noisy), and adding a task changes no other."""
    digest = hashlib.sha256(task_id.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _task_cells(
    task: TaskArrays, cells: set[tuple[int, int]], names: Sequence[str], settings: SurfaceSettings
) -> dict[tuple[int, int], tuple[dict[str, float], dict[str, float], bool]]:
    """(expected, prefix-slice, exact?) per effective cell of one task."""
    identity = PrefixDraws(task, 1, None)
    orderings: PrefixDraws | None = None
    out = {}
    for n in sorted({n for n, _ in cells}):
        ms = sorted(m for nn, m in cells if nn == n)
        prefix = _per_m(names, identity, n)
        sampled: dict[str, np.ndarray] | None = None
        for m in ms:
            exact = is_exact(task, n, m, settings)
            if exact:
                values = {k: float(v.mean()) for k, v in _evaluate_rows(names, exact_draw(task, n, m)).items()}
            else:
                if orderings is None:
                    orderings = PrefixDraws(task, settings.samples, task_rng(settings.seed, task.task_id))
                if sampled is None:
                    sampled = _per_m(names, orderings, n)
                values = {k: float(v[m]) for k, v in sampled.items()}
            out[(n, m)] = (values, {k: float(v[m]) for k, v in prefix.items()}, exact)
    return out


def compute_surface(
    tables: Sequence[TaskTable],
    n_codes: Sequence[int] | None = None,
    n_cases: Sequence[int] | None = None,
    rankers: Sequence[str] | None = None,
    settings: SurfaceSettings | None = None,
) -> BonSurface:
    """Expected and prefix-slice BoN of every ranker on the (n_codes x n_cases) grid."""
    settings = settings or SurfaceSettings()
    tasks = [a for a in (TaskArrays.from_table(t) for t in tables) if a is not None]
    k_code = max((t.k_code for t in tasks), default=1)
    k_case = max((t.k_case for t in tasks), default=0)
    n_codes = list(n_codes) if n_codes is not None else default_axis(k_code, 1)
    n_cases = list(n_cases) if n_cases is not None else default_axis(k_case, 0)
    names = list(rankers) if rankers is not None else available_rankers(tasks)
    keys = [f"{r}/{w}" for r in names for w in WHICH]
    shape = (len(tasks), len(n_codes), len(n_cases))
    expected = {k: np.zeros(shape) for k in keys}
    prefix = {k: np.zeros(shape) for k in keys}
    exact = np.ones(shape[1:], dtype=bool)
    for ti, task in enumerate(tasks):

        def clip(n: int, m: int, task: TaskArrays = task) -> tuple[int, int]:
            return min(n, task.k_code), min(m, task.k_case)

        done = _task_cells(task, {clip(n, m) for n in n_codes for m in n_cases}, names, settings)
        for a, n in enumerate(n_codes):
            for b, m in enumerate(n_cases):
                exp_values, pre_values, cell_exact = done[clip(n, m)]
                exact[a, b] &= cell_exact
                for k in keys:
                    expected[k][ti, a, b] = exp_values[k]
                    prefix[k][ti, a, b] = pre_values[k]
    return BonSurface(n_codes, n_cases, names, [t.task_id for t in tasks], expected, prefix, exact, settings)
