"""Bootstrap CIs: consistent with the point estimates, deterministic under a seed, None where not measurable."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cure_bench.analysis.bootstrap import mean_interval, metric_intervals, ratio_interval, resample_counts
from cure_bench.scoring.metrics import compute_metrics, unflatten
from tests.test_analysis_rankers import make_table, random_table


def tables(seed: int = 0, n: int = 25) -> list:
    rng = random.Random(seed)
    return [random_table(rng, 6, 5, f"t{i}") for i in range(n)]


def test_intervals_contain_the_point_estimate_which_matches_compute_metrics() -> None:
    data = tables()
    bon = [(2, 2), (6, 5)]
    intervals = metric_intervals(data, protocol="chat", bon=bon, pass_at=(1, 3), resamples=500, seed=1)
    flat_points = {k: v.value for k, v in intervals.items()}
    assert unflatten(flat_points) == compute_metrics(data, bon=bon, pass_at=(1, 3), protocol="chat").metrics
    for name, iv in intervals.items():
        assert iv.value is not None, name
        assert iv.low is not None and iv.high is not None
        assert iv.low <= iv.value <= iv.high, name
        if 0 < iv.value < 1:
            assert iv.low < iv.high, name  # 25 varied tasks: a real spread


def test_intervals_are_deterministic_under_a_seed() -> None:
    data = tables(seed=5)
    a = metric_intervals(data, protocol="chat", resamples=300, seed=11)
    b = metric_intervals(data, protocol="chat", resamples=300, seed=11)
    c = metric_intervals(data, protocol="chat", resamples=300, seed=12)
    assert a == b
    assert any(a[k] != c[k] for k in a)


def test_task_counts_behind_each_interval() -> None:
    data = [
        make_table("right", ["A", "W"], ["A", "W"]),
        make_table("none-right", ["W", "W"], ["A", "W"]),
        make_table("right2", ["A", "A"], ["AW", "AA"]),
    ]
    intervals = metric_intervals(data, protocol="chat", resamples=200)
    assert intervals["code_acc"].n_tasks == 3
    assert intervals["unit_test_acc"].n_tasks == 2  # only tasks with a correct program
    assert intervals["p01"].n_tasks == 1  # only "right" has a wrong program facing a correct test


def test_not_measurable_metric_has_no_interval() -> None:
    data = [make_table("w", ["W", "W"], ["A", "W"])]
    iv = metric_intervals(data, protocol="chat", resamples=100)["unit_test_acc"]
    assert (iv.value, iv.low, iv.high, iv.n_tasks) == (None, None, None, 0)
    empty = ratio_interval(np.zeros(3), np.zeros(3), resample_counts(3, 50))
    assert empty.value is None


def test_ratio_interval_skips_resamples_with_empty_denominator() -> None:
    num, den = np.array([1.0, 0.0, 0.0]), np.array([2.0, 0.0, 0.0])
    iv = ratio_interval(num, den, resample_counts(3, 200, seed=0))
    assert iv.value == 0.5 and iv.low == 0.5 and iv.high == 0.5
    assert iv.n_tasks == 1


def test_resample_counts_draw_every_task_total() -> None:
    counts = resample_counts(7, 50, seed=3)
    assert counts.shape == (50, 7)
    assert (counts.sum(axis=1) == 7).all()
    assert (resample_counts(7, 50, seed=3) == counts).all()


def test_mean_interval_over_a_grid() -> None:
    values = np.stack([np.full((2, 3), 0.5), np.full((2, 3), 0.5)])
    mean, low, high = mean_interval(values, resample_counts(2, 100))
    assert np.allclose(mean, 0.5) and np.allclose(low, 0.5) and np.allclose(high, 0.5)
    values = np.array([[0.0], [1.0], [0.5], [0.25]])
    mean, low, high = mean_interval(values, resample_counts(4, 500, seed=2))
    assert low[0] < mean[0] < high[0]
    assert mean[0] == pytest.approx(0.4375)
