"""What a ranker sees: one task's verdict table as arrays, and batches of sub-tables drawn from it.

A Best-of-N cell (n programs judged by m tests) is a *sub-table* of a task's k_code x k_case table; the
surface evaluates thousands of them per task, so they are batched: :class:`Draw` gives explicit program and
test index sets, :class:`PrefixDraws` random orderings whose prefixes serve every cell at once. Rankers
(``scoring.rankers``) read only the :class:`SubTables` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from cure_bench.types import TaskTable, Verdict


@dataclass(frozen=True, eq=False)
class TaskArrays:
    """One task's verdict table as arrays, the form every ranker works on.

    ``outputs`` are small integer ids of the output digests (0 = did not finish); None when the run did
    not record outputs, which makes majority vote unavailable.
    """

    task_id: str
    gen: np.ndarray  # (K, M) bool: program passes generated test
    hidden_all: np.ndarray  # (K,) float: 1.0 when the program passes every hidden test
    hidden_frac: np.ndarray  # (K,) float: share of hidden tests passed
    extracted: np.ndarray  # (K,) bool: a program was extracted at all
    outputs: np.ndarray | None  # (K, M) int64 output ids

    @cached_property
    def pass_hash(self) -> np.ndarray:
        """(K, M) uint64 salted hash of each pass bit; a row's key is the sum over the chosen tests."""
        return cell_hash(self.gen)

    @cached_property
    def output_hash(self) -> np.ndarray | None:
        return None if self.outputs is None else cell_hash(self.outputs)

    @property
    def k_code(self) -> int:
        return int(self.gen.shape[0])

    @property
    def k_case(self) -> int:
        return int(self.gen.shape[1])

    @classmethod
    def from_passes(
        cls,
        task_id: str,
        gen_pass: Sequence[Sequence[bool]],
        hidden_pass: Sequence[Sequence[bool]] | None = None,
        outputs: Sequence[Sequence[str | None]] | None = None,
    ) -> TaskArrays:
        """Arrays from plain pass bits (a request's candidates, no hidden tests: hidden values are 0)."""
        k = len(gen_pass)
        gen = np.array(gen_pass, dtype=bool).reshape(k, len(gen_pass[0]) if k else 0)
        hidden = np.zeros((k, 0), dtype=bool) if hidden_pass is None else np.array(hidden_pass, dtype=bool)
        n_hidden = hidden.shape[1] if hidden.ndim == 2 else 0
        return cls(
            task_id=task_id,
            gen=gen,
            hidden_all=(hidden.all(axis=1) if n_hidden else np.zeros(k, dtype=bool)).astype(float),
            hidden_frac=hidden.mean(axis=1) if n_hidden else np.zeros(k),
            extracted=np.ones(k, dtype=bool),
            outputs=None if outputs is None else _ids(outputs, gen.shape[1]),
        )

    @classmethod
    def from_table(cls, table: TaskTable) -> TaskArrays | None:
        """None for a task that cannot inform BoN (no program or no hidden test), as in the metrics."""
        if table.n_programs == 0 or not table.hidden[0]:
            return None
        hidden = np.array(table.hidden_pass(), dtype=bool)
        k = table.n_programs
        gen = np.array(table.generated_pass(), dtype=bool).reshape(k, table.n_generated)
        extracted = np.array(
            [
                not all(v is Verdict.NO_PROGRAM for v in (*h, *g))
                for h, g in zip(table.hidden, _rows(table), strict=True)
            ]
        )
        return cls(
            task_id=table.task_id,
            gen=gen,
            hidden_all=hidden.all(axis=1).astype(float),
            hidden_frac=hidden.mean(axis=1),
            extracted=extracted,
            outputs=_output_ids(table),
        )


def _rows(table: TaskTable) -> list[list[Verdict]]:
    return table.generated if table.generated else [[] for _ in table.hidden]


def _output_ids(table: TaskTable) -> np.ndarray | None:
    outs = table.generated_outputs
    if outs is None or len(outs) != table.n_programs:
        return None
    return _ids(outs, table.n_generated)


def _ids(outs: Sequence[Sequence[str | None]], width: int) -> np.ndarray | None:
    """Output digests as small integer ids (0 = did not finish); None when a row has the wrong width."""
    ids: dict[str, int] = {}
    mat = np.zeros((len(outs), width), dtype=np.int64)
    for i, row in enumerate(outs):
        if len(row) != width:
            return None
        for j, digest in enumerate(row):
            if digest is not None:
                mat[i, j] = ids.setdefault(digest, len(ids) + 1)
    return mat


# ------------------------------------------------------------------------------------------------
# grouping identical rows
# ------------------------------------------------------------------------------------------------

_U = np.uint64


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised: a fixed, well-mixed hash of uint64 values."""
    with np.errstate(over="ignore"):
        z = x + _U(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
        return z ^ (z >> _U(31))


def cell_hash(values: np.ndarray) -> np.ndarray:
    """Hash each cell of a (..., m) integer array, salted by its column, for :func:`row_keys`."""
    salt = _splitmix(np.arange(values.shape[-1], dtype=np.uint64) + _U(0x5EED))
    return _splitmix(values.astype(np.uint64) ^ salt)


def row_keys(values: np.ndarray) -> np.ndarray:
    """One 64-bit key per row of the last axis: equal rows get equal keys.

    Distinct rows collide with probability about 2^-64 per pair (a sum of column-salted SplitMix64
    hashes), far below anything a benchmark could notice; it keeps grouping O(S n m) instead of sorting rows.
    """
    with np.errstate(over="ignore"):
        return cell_hash(values).sum(axis=-1, dtype=np.uint64)


def _gather_keys(hashes: np.ndarray, progs: np.ndarray, tests: np.ndarray) -> np.ndarray:
    """Row keys of sub-tables from per-cell hashes precomputed on the whole table (same as row_keys)."""
    with np.errstate(over="ignore"):
        return hashes[progs[:, :, None], tests[:, None, :]].sum(axis=-1, dtype=np.uint64)


# ------------------------------------------------------------------------------------------------
# rankers: a Draw of S sub-tables -> weights (S, n)
# ------------------------------------------------------------------------------------------------


class SubTables(Protocol):
    """What a ranker sees of S sub-tables of one task, each row one sub-table of n programs x m tests.

    ``progs`` are original program indices (for first-index tie-breaking), ``scores`` tests passed,
    ``pass_keys``/``out_keys`` group keys of each program's pass row / output row over the chosen tests,
    ``finished`` whether the program finished on at least one chosen input (True when m = 0).
    """

    # Read-only members, so frozen dataclasses and cached properties both satisfy the protocol.
    @property
    def task(self) -> TaskArrays: ...
    @property
    def progs(self) -> np.ndarray: ...
    @property
    def scores(self) -> np.ndarray: ...
    @property
    def pass_keys(self) -> np.ndarray: ...
    @property
    def out_keys(self) -> np.ndarray | None: ...
    @property
    def finished(self) -> np.ndarray: ...


class Draw:
    """Explicit sub-tables: ``progs`` (S, n) program indices paired row by row with ``tests`` (S, m)."""

    def __init__(self, task: TaskArrays, progs: np.ndarray, tests: np.ndarray):
        self.task, self.progs, self.tests = task, progs, tests

    @cached_property
    def passes(self) -> np.ndarray:
        """(S, n, m) bool."""
        return self.task.gen[self.progs[:, :, None], self.tests[:, None, :]]

    @cached_property
    def scores(self) -> np.ndarray:
        return self.passes.sum(axis=-1)

    @cached_property
    def pass_keys(self) -> np.ndarray:
        return _gather_keys(self.task.pass_hash, self.progs, self.tests)

    @cached_property
    def out_keys(self) -> np.ndarray | None:
        hashes = self.task.output_hash
        return None if hashes is None else _gather_keys(hashes, self.progs, self.tests)

    @cached_property
    def finished(self) -> np.ndarray:
        if self.task.outputs is None or self.tests.shape[1] == 0:
            return np.ones(self.progs.shape, dtype=bool)
        return (self.task.outputs[self.progs[:, :, None], self.tests[:, None, :]] != 0).any(axis=-1)


@dataclass(frozen=True)
class View:
    """Sub-tables given directly by their features (see :class:`PrefixDraws`)."""

    task: TaskArrays
    progs: np.ndarray
    scores: np.ndarray
    pass_keys: np.ndarray
    out_keys: np.ndarray | None
    finished: np.ndarray


class PrefixDraws:
    """S random orderings of a task's programs and of its tests, for Monte-Carlo over every cell at once.

    Cell (n, m) of draw s takes the first n programs and the first m tests of ordering s: a uniformly random
    subset of each size. Scores and group keys are additive over tests, so cumulative sums over the ordered
    tests give them for every m in one pass; a cell then costs O(S n^2) instead of O(S n m).
    """

    def __init__(self, task: TaskArrays, samples: int, rng: np.random.Generator | None):
        """``rng`` None: the identity ordering (one draw), i.e. the paper's prefix slices."""
        self.task = task
        if rng is None:
            self.perm_p = np.arange(task.k_code)[None, :]
            perm_t = np.arange(task.k_case)[None, :]
        else:
            self.perm_p = rng.random((samples, task.k_code)).argsort(axis=1)
            perm_t = rng.random((samples, task.k_case)).argsort(axis=1)
        rows, cols = self.perm_p[:, :, None], perm_t[:, None, :]
        self.scores = _cumsum(task.gen[rows, cols].astype(np.int64))
        self.pass_keys = _cumsum(task.pass_hash[rows, cols])
        self.out_keys = None if task.output_hash is None else _cumsum(task.output_hash[rows, cols])
        self.finished = None if task.outputs is None else _cumsum((task.outputs[rows, cols] != 0).astype(np.int64))

    def view(self, n: int, m: int) -> View:
        finished = np.ones((self.perm_p.shape[0], n), dtype=bool)
        if self.finished is not None and m > 0:
            finished = self.finished[:, :n, m] > 0
        return View(
            task=self.task,
            progs=self.perm_p[:, :n],
            scores=self.scores[:, :n, m],
            pass_keys=self.pass_keys[:, :n, m],
            out_keys=None if self.out_keys is None else self.out_keys[:, :n, m],
            finished=finished,
        )

    def view_all_m(self, n: int) -> View:
        """Every m = 0..M at once for n programs: rows are (draw, m) pairs, S * (M + 1) of them, m fastest."""
        s, m1 = self.perm_p.shape[0], self.task.k_case + 1

        def rows(a: np.ndarray) -> np.ndarray:  # (S, K, M+1) -> (S * (M+1), n)
            return a[:, :n, :].transpose(0, 2, 1).reshape(s * m1, n)

        finished = np.ones((s, m1, n), dtype=bool)
        if self.finished is not None:
            finished[:, 1:, :] = self.finished[:, :n, 1:].transpose(0, 2, 1) > 0
        return View(
            task=self.task,
            progs=np.repeat(self.perm_p[:, :n], m1, axis=0),
            scores=rows(self.scores),
            pass_keys=rows(self.pass_keys),
            out_keys=None if self.out_keys is None else rows(self.out_keys),
            finished=finished.reshape(s * m1, n),
        )


def _cumsum(values: np.ndarray) -> np.ndarray:
    """(S, K, M) -> (S, K, M + 1) sums over the first m tests, m = 0..M (uint64 wraps, as the keys need)."""
    out = np.zeros((*values.shape[:2], values.shape[2] + 1), dtype=values.dtype)
    with np.errstate(over="ignore"):
        np.cumsum(values, axis=2, out=out[:, :, 1:])
    return out
