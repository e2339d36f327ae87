"""Bootstrap confidence intervals by resampling tasks.

Tasks are the unit of sampling in a benchmark (programs of one task are correlated), so every interval
resamples whole tasks with replacement and recomputes the metric *the same way the point estimate is
computed*: pooled metrics as a ratio of summed numerators and denominators, per-task means as means. A
resample is a (B, T) matrix of how often each task was drawn, so all metrics share the same resamples
(differences between rankers or runs are then not blurred by independent noise) and a fixed seed makes
every interval reproducible. Intervals are percentile intervals (2.5% and 97.5% by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cure_bench.scoring.metrics import (
    DEFAULT_BON,
    DEFAULT_PROTOCOL,
    bon_rankers,
    metric_names,
    pool_flat,
    scored,
    task_contributions,
)
from cure_bench.types import TaskTable

DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    """A point estimate, its bootstrap CI, and how many tasks informed it; None where not measurable."""

    value: float | None
    low: float | None
    high: float | None
    n_tasks: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high, "n_tasks": self.n_tasks}


def resample_counts(n_tasks: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n_tasks) draw counts: row b says how often each task appears in resample b."""
    if n_tasks == 0:
        return np.zeros((resamples, 0), dtype=np.int64)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_tasks, np.full(n_tasks, 1.0 / n_tasks), size=resamples)


def _percentiles(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - level) / 2.0
    with np.errstate(all="ignore"):
        low, high = np.nanquantile(samples, [alpha, 1.0 - alpha], axis=0)
    return low, high


def ratio_interval(num: np.ndarray, den: np.ndarray, counts: np.ndarray, level: float = 0.95) -> Interval:
    """CI of sum(num) / sum(den) over tasks; resamples with an empty denominator are left out."""
    n_tasks = int((den > 0).sum())
    if den.sum() == 0:
        return Interval(None, None, None, n_tasks)
    value = float(num.sum() / den.sum())
    boot_num, boot_den = counts @ num, counts @ den
    ratios = np.divide(boot_num, boot_den, out=np.full(boot_num.shape, np.nan), where=boot_den > 0)
    if np.isnan(ratios).all():
        return Interval(value, None, None, n_tasks)
    low, high = _percentiles(ratios, level)
    return Interval(value, float(low), float(high), n_tasks)


def mean_interval(values: np.ndarray, counts: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, ...]:
    """Mean over tasks (axis 0) of ``values`` and its CI, elementwise over the remaining axes."""
    n = values.shape[0]
    if n == 0:
        nan = np.full(values.shape[1:], np.nan)
        return nan, nan, nan
    boot = np.tensordot(counts, values, axes=(1, 0)) / n
    low, high = _percentiles(boot, level)
    return values.mean(axis=0), low, high


def metric_intervals(
    tables: Sequence[TaskTable],
    bon: Iterable[tuple[int, int]] = DEFAULT_BON,
    pass_at: Iterable[int] = (1,),
    single: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, Interval]:
    """A CI for every headline metric (flat names: ``code_acc``, ``bon/4x4/acc``, ``pass@1`` ...).

    Only the tasks ``protocol`` scores are resampled (under ``cure``, those with a parsable generated test).
    """
    bon, pass_at = list(bon), sorted(set(pass_at))
    parts = scored([task_contributions(t, bon, pass_at, single, protocol) for t in tables])
    counts = resample_counts(len(parts), resamples, seed)
    names = metric_names(bon, pass_at, single, bon_rankers(tables))
    points = pool_flat(parts, names, protocol)  # the exact numbers compute_metrics reports, to the last bit
    out: dict[str, Interval] = {}
    for name in names:
        num = np.array([p.parts.get(name, (0.0, 0.0))[0] for p in parts], dtype=float)
        den = np.array([p.parts.get(name, (0.0, 0.0))[1] for p in parts], dtype=float)
        iv = ratio_interval(num, den, counts, level)
        out[name] = Interval(points[name], iv.low, iv.high, iv.n_tasks)
    return out


def paired_difference(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], counts: np.ndarray, level: float = 0.95
) -> Interval:
    """CI of ratio(b) - ratio(a) when both runs are measured on the same tasks (row t = task t in both).

    Resampling the tasks *jointly* is what makes this tighter than comparing two separate CIs: most of the
    task-to-task variance (easy vs hard problems) is shared by both runs and cancels.
    """
    (num_a, den_a), (num_b, den_b) = a, b
    n_tasks = int(((den_a > 0) & (den_b > 0)).sum())
    if den_a.sum() == 0 or den_b.sum() == 0:
        return Interval(None, None, None, n_tasks)
    value = float(num_b.sum() / den_b.sum() - num_a.sum() / den_a.sum())
    ra_num, ra_den, rb_num, rb_den = counts @ num_a, counts @ den_a, counts @ num_b, counts @ den_b
    ok = (ra_den > 0) & (rb_den > 0)
    diffs = np.full(ok.shape, np.nan)
    diffs[ok] = rb_num[ok] / rb_den[ok] - ra_num[ok] / ra_den[ok]
    if np.isnan(diffs).all():
        return Interval(value, None, None, n_tasks)
    low, high = _percentiles(diffs, level)
    return Interval(value, float(low), float(high), n_tasks)
