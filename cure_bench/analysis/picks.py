"""Per task and BoN cell: which program each ranker submits, and why (how many generated tests each passes).

The headline BoN numbers are means over tasks of one value per task; this module keeps those per-task values
in view, so report.md, analysis.json and report.html explain a BoN number with the very picks behind it. The
pick of a cell "NxM" is the one summary.json's ``bon["NxM"]`` scores: the ranker run on the *first* N programs
judged by the *first* M generated tests (``expected_pick`` on the prefix slice, as ``task_contributions``
does), so the paper's acc of a cell is exactly the mean of ``acc`` over the tasks the protocol scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cure_bench.scoring.metrics import bon_key, correct_programs, drop_reason
from cure_bench.scoring.rankers import PAPER_RANKER, REGISTRY, TaskArrays, available_rankers, expected_pick
from cure_bench.types import TaskTable

MISSED_SHOWN = 20
"""report.md lists at most this many task ids per line (report.html has them all)."""


@dataclass(frozen=True)
class RankerPick:
    """One ranker in one cell: the program it submits and the probability it gives each program."""

    pick: int  # the heaviest program, first index among equal weights
    weights: tuple[float, ...]  # over the first n_code programs; sums to 1
    acc: float  # expected accuracy of the submission: this task's share of bon/NxM/<prefix>acc

    def to_json(self) -> dict[str, Any]:
        return {"pick": self.pick, "weights": list(self.weights), "acc": self.acc}


@dataclass(frozen=True)
class CellPicks:
    """Every ranker's pick among the first ``n_code`` programs by the first ``n_case`` generated tests."""

    n_code: int
    n_case: int
    passes: tuple[int, ...]  # generated tests (of the first n_case) passed by each of the first n_code programs
    rankers: dict[str, RankerPick]

    @property
    def key(self) -> str:
        return bon_key(self.n_code, self.n_case)

    def to_json(self) -> dict[str, Any]:
        return {"passes": list(self.passes), "rankers": {r: p.to_json() for r, p in self.rankers.items()}}


@dataclass(frozen=True)
class TaskPicks:
    """One task's picks per BoN cell; ``cells`` is empty where BoN cannot be scored (no program/hidden test)."""

    task_id: str
    dropped: str | None  # why the protocol leaves the task out of every metric (None: it counts)
    correct: tuple[bool, ...]  # per program: passes every hidden test
    cells: dict[str, CellPicks] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "dropped": self.dropped,
            "correct": list(self.correct),
            "cells": {k: c.to_json() for k, c in self.cells.items()},
        }


def task_picks(
    tables: Sequence[TaskTable],
    bon: Sequence[tuple[int, int]],
    protocol: str,
    single: bool,
    rankers: Sequence[str] | None = None,
) -> list[TaskPicks]:
    """Picks for every task and cell; ``rankers`` defaults to every ranker usable on all the tables."""
    arrays = [TaskArrays.from_table(t) for t in tables]
    if rankers is None:
        rankers = available_rankers([a for a in arrays if a is not None])
    out = []
    for table, arr in zip(tables, arrays, strict=True):
        cells: dict[str, CellPicks] = {}
        if arr is not None and not single:
            for n_code, n_case in bon:
                cell = _cell(arr, n_code, n_case, rankers)
                cells[cell.key] = cell
        correct = tuple(correct_programs(table))
        out.append(TaskPicks(table.task_id, drop_reason(table, protocol, single), correct, cells))
    return out


def _cell(arr: TaskArrays, n_code: int, n_case: int, rankers: Sequence[str]) -> CellPicks:
    n, m = min(n_code, arr.k_code), min(n_case, arr.k_case)
    passes = tuple(int(x) for x in arr.gen[:n, :m].sum(axis=1))
    picks = {}
    for name in rankers:
        if REGISTRY[name].needs_outputs and arr.outputs is None:
            continue  # e.g. majority vote on a task whose outputs were not recorded
        w = expected_pick(arr, name, n_code, n_case)
        picks[name] = RankerPick(
            pick=int(np.flatnonzero(w == w.max())[0]),
            weights=tuple(round(float(x), 6) for x in w),
            acc=float(w @ arr.hidden_all[: len(w)]),
        )
    return CellPicks(n_code, n_case, passes, picks)


def headline_cell(picks: Sequence[TaskPicks]) -> str | None:
    """The biggest cell the run scored (the one the task table's "solved by BoN" column shows)."""
    cells = {(c.n_code, c.n_case) for p in picks for c in p.cells.values()}
    return bon_key(*max(cells)) if cells else None


def solved(p: TaskPicks, key: str, ranker: str = PAPER_RANKER) -> bool | None:
    """Whether ``ranker``'s pick in cell ``key`` is correct; None when the cell was not scored for the task."""
    cell = p.cells.get(key)
    if cell is None or ranker not in cell.rankers:
        return None
    return bool(p.correct[cell.rankers[ranker].pick])


def pick_rows(picks: Sequence[TaskPicks]) -> list[list[str]]:
    """Per cell, over the tasks the protocol scores: how the paper's pick did, and the tasks it missed.

    Columns: cell, scored tasks, pick correct, missed (a correct program was among the first N but the pick
    is wrong: the tests or the ranker failed), no correct program among the first N (no ranker can help),
    and the missed task ids (first ``MISSED_SHOWN``).
    """
    keys = list(dict.fromkeys(k for p in picks for k in p.cells))
    rows = []
    for key in keys:
        scored = [p for p in picks if p.dropped is None and key in p.cells]
        hit = [p for p in scored if solved(p, key)]
        n = scored[0].cells[key].n_code if scored else 0
        possible = [p for p in scored if any(p.correct[:n])]
        missed = [p.task_id for p in possible if not solved(p, key)]
        shown = ", ".join(missed[:MISSED_SHOWN]) + (
            f" and {len(missed) - MISSED_SHOWN} more" if len(missed) > MISSED_SHOWN else ""
        )
        rows.append(
            [key, str(len(scored)), str(len(hit)), str(len(missed)), str(len(scored) - len(possible)), shown or "-"]
        )
    return rows
