"""Per-round metrics: the bench metric keys on the round's tables, plus spend, repair and test-revision counts.

Selection goes through the ranker registry: ``bon["NxM"]`` carries the summary rankers' numbers exactly as
`cure bench` writes them (so round 0 equals bench), plus ``<ranker>_acc``/``<ranker>_accumulate_acc`` when
``--ranker`` names a ranker that bench does not summarise; ``selected_acc`` is the share of tasks whose
submitted program (the ranker's pick over all programs and tests, lowest index among equal weights) is
hidden-correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cure_bench.scoring.metrics import compute_metrics, correct_programs, correct_tests, drop_reason
from cure_bench.scoring.rankers import pick
from cure_bench.scoring.subtables import TaskArrays
from cure_bench.types import TaskTable


def selected_acc(tables: Sequence[TaskTable], ranker: str, protocol: str) -> float | None:
    """Share of tasks whose ranker-picked program passes every hidden test (BoN over all k programs), over the
    tasks the protocol scores (as ``bon``: under ``cure`` a task with no generated test is left out)."""
    hits = []
    for table in tables:
        arrays = TaskArrays.from_table(table)
        if arrays is None or drop_reason(table, protocol, single=False) is not None:
            continue
        hits.append(bool(correct_programs(table)[pick(arrays, ranker)]))
    return sum(hits) / len(hits) if hits else None


def repair_counts(
    before: Sequence[TaskTable], after: Sequence[TaskTable], repaired: Sequence[Sequence[int]]
) -> dict[str, int]:
    """``repaired`` programs, of which ``fixed`` (hidden-wrong -> hidden-correct) and ``broken`` (the reverse)."""
    fixed = broken = 0
    for b, a, idx in zip(before, after, repaired, strict=True):
        cb, ca = correct_programs(b), correct_programs(a)
        fixed += sum(1 for i in idx if not cb[i] and ca[i])
        broken += sum(1 for i in idx if cb[i] and not ca[i])
    return {"repaired": sum(len(i) for i in repaired), "fixed": fixed, "broken": broken}


def test_counts(before: Sequence[TaskTable], after: Sequence[TaskTable], revised: int) -> dict[str, int]:
    """``tests_revised``, of which ``tests_fixed`` (now passed by every hidden-correct program, before not) and
    ``tests_broken`` (the reverse); tasks with no hidden-correct program cannot tell and count in neither."""
    fixed = broken = 0
    for b, a in zip(before, after, strict=True):
        gb, ga = correct_tests(b), correct_tests(a)
        if gb is None or ga is None:
            continue
        fixed += sum(1 for x, y in zip(gb, ga, strict=True) if not x and y)
        broken += sum(1 for x, y in zip(gb, ga, strict=True) if x and not y)
    return {"tests_revised": revised, "tests_fixed": fixed, "tests_broken": broken}


def round_metrics(
    tables: Sequence[TaskTable],
    *,
    bon: list[tuple[int, int]],
    pass_at: Sequence[int],
    protocol: str,
    ranker: str,
    spend: dict[str, int],
    counts: dict[str, int],
) -> dict[str, Any]:
    result = compute_metrics(list(tables), bon=bon, pass_at=tuple(pass_at), single=False, protocol=protocol,
                             extra_rankers=(ranker,))  # fmt: skip
    metrics = dict(result.metrics)
    metrics["ranker"] = ranker
    metrics["selected_acc"] = selected_acc(tables, ranker, protocol)
    return {**metrics, **spend, **counts}
