"""One run's full analysis: headline metrics with CIs, the BoN surface per ranker, and its CIs.

Everything is recomputed from the saved verdict tables (never read back from summary.json), so a report is
only as trusted as the tables; when the recomputed headline numbers disagree with what the run reported,
a warning says so (e.g. a summary written by an older version, or a hand-edited file).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cure_bench.analysis.bootstrap import DEFAULT_RESAMPLES, Interval, mean_interval, metric_intervals, resample_counts
from cure_bench.analysis.picks import TaskPicks, task_picks
from cure_bench.analysis.surface import BonSurface, SurfaceSettings, compute_surface
from cure_bench.runs.reader import RunData
from cure_bench.scoring import catalogue
from cure_bench.scoring.metrics import bon_key, drop_reason, metric_names, protocol_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisSettings:
    """Knobs of an analysis; all deterministic for a given seed."""

    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    level: float = 0.95
    surface: SurfaceSettings = field(default_factory=SurfaceSettings)
    pass_at: tuple[int, ...] = (1,)  # merged with every pass@k the run itself reported


@dataclass
class SurfaceBand:
    """Mean over tasks of one ranker's expected BoN on the grid, with its bootstrap CI."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass
class RunAnalysis:
    run: RunData
    intervals: dict[str, Interval]  # flat metric name -> value and CI
    surface: BonSurface | None  # None for --single runs (nothing to rank with)
    bands: dict[str, SurfaceBand]  # "<ranker>/<acc|accumulate_acc>" -> band over the grid
    settings: AnalysisSettings
    picks: list[TaskPicks] = field(default_factory=list)  # per task: each ranker's pick per BoN cell, and why

    @property
    def label(self) -> str:
        return self.run.label

    def bon_cell(self, ranker: str, n_code: int, n_case: int, which: str = "acc") -> dict[str, Any]:
        """Expected value, CI and prefix-slice value of one ranker in one cell (clipped to the grid)."""
        assert self.surface is not None
        a, b = self.nearest_cell(n_code, n_case)
        band = self.bands[f"{ranker}/{which}"]
        prefix = self.surface.mean(ranker, which, kind="prefix")[a, b]
        return {
            "n_code": self.surface.n_codes[a],
            "n_case": self.surface.n_cases[b],
            "expected": _num(band.mean[a, b]),
            "ci_low": _num(band.low[a, b]),
            "ci_high": _num(band.high[a, b]),
            "prefix_slice": _num(prefix),
            "exact": bool(self.surface.exact[a, b]),
        }

    def nearest_cell(self, n_code: int, n_case: int) -> tuple[int, int]:
        assert self.surface is not None
        codes, cases = self.surface.n_codes, self.surface.n_cases
        a = min(range(len(codes)), key=lambda i: (abs(codes[i] - n_code), -codes[i]))
        b = min(range(len(cases)), key=lambda i: (abs(cases[i] - n_case), -cases[i]))
        return a, b

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_dir": str(self.run.path),
            "label": self.label,
            "dataset": self.run.dataset_name,
            "bootstrap": {
                "resamples": self.settings.resamples,
                "seed": self.settings.seed,
                "level": self.settings.level,
            },
            "metrics": {k: v.to_json() for k, v in self.intervals.items()},
            "tasks": [p.to_json() for p in self.picks],
        }
        if self.surface is not None:
            out["bon_surface"] = self.surface.to_json()
            out["bon_cells"] = {
                bon_key(n, m): {r: self.bon_cell(r, n, m) for r in self.surface.rankers} for n, m in self.run.bon
            }
        return out


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(float(x)) else float(x)


def _check_against_summary(run: RunData, intervals: dict[str, Interval]) -> None:
    for name in catalogue.names(catalogue.POOLED):
        reported = run.metrics.get(name)
        ours = intervals.get(name)
        if ours is None or not isinstance(reported, int | float) or ours.value is None:
            continue
        if abs(float(reported) - ours.value) > 1e-9:
            log.warning(
                "%s: %s recomputed from samples.jsonl is %.6f but summary.json says %.6f",
                run.path,
                name,
                ours.value,
                reported,
            )


def analyze_run(run: RunData, settings: AnalysisSettings | None = None) -> RunAnalysis:
    """Recompute every headline metric with CIs and, unless the run is --single, the BoN surface."""
    settings = settings or AnalysisSettings()
    settings = replace(settings, pass_at=tuple(sorted(set(settings.pass_at) | set(run.pass_at))))
    tables = run.tables
    single = run.single
    bon = [] if single else run.bon
    protocol = protocol_of(run.manifest)
    intervals = metric_intervals(
        tables, bon, settings.pass_at, single, settings.resamples, settings.seed, settings.level, protocol
    )
    _check_against_summary(run, intervals)
    if single:
        return RunAnalysis(run, intervals, None, {}, settings, task_picks(tables, [], protocol, single))
    # the surface averages over the same tasks the protocol scores (cure: those with a parsable generated test)
    surface = compute_surface(
        [t for t in tables if drop_reason(t, protocol, single) is None], settings=settings.surface
    )
    log.info(
        "%s: BoN surface over %d tasks, %d x %d cells (%s)",
        run.path,
        len(surface.task_ids),
        len(surface.n_codes),
        len(surface.n_cases),
        surface.method,
    )
    counts = resample_counts(len(surface.task_ids), settings.resamples, settings.seed)
    bands = {}
    for key, values in surface.expected.items():
        mean, low, high = mean_interval(values, counts, settings.level)
        bands[key] = SurfaceBand(mean, low, high)
    picks = task_picks(tables, bon, protocol, single, surface.rankers or None)
    return RunAnalysis(run, intervals, surface, bands, settings, picks)


def headline_names(analysis: RunAnalysis) -> list[str]:
    """Flat metric names in report order, without the BoN cells (shown per ranker instead)."""
    names = metric_names([], analysis.settings.pass_at, analysis.run.single)
    return [n for n in names if n in analysis.intervals]
