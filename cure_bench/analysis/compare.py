"""Paired comparison of two runs on the tasks they share: differences with paired bootstrap CIs.

Two models evaluated on the same benchmark see the same hard and easy problems; comparing their separate
CIs ignores that and calls real differences "overlapping". Here the shared tasks are resampled jointly,
so the CI is of the difference itself, and "significant" means the CI excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cure_bench.analysis.analyze import RunAnalysis
from cure_bench.analysis.bootstrap import Interval, paired_difference, resample_counts
from cure_bench.scoring.metrics import bon_key, metric_names, part_of, protocol_of, task_contributions


@dataclass(frozen=True)
class Difference:
    """``other`` minus ``baseline`` on one metric, over the shared tasks."""

    metric: str
    diff: Interval

    @property
    def significant(self) -> bool:
        d = self.diff
        return d.low is not None and d.high is not None and (d.low > 0 or d.high < 0)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, **self.diff.to_json(), "significant": self.significant}


def comparable(a: RunAnalysis, b: RunAnalysis) -> bool:
    """Same dataset (by sha256 when both record it, else by name) and at least one shared task."""
    da, db = a.run.manifest.get("dataset"), b.run.manifest.get("dataset")
    sha_a = da.get("sha256") if isinstance(da, dict) else None
    sha_b = db.get("sha256") if isinstance(db, dict) else None
    same = sha_a == sha_b if sha_a and sha_b else a.run.dataset_name == b.run.dataset_name
    return same and bool({t.task_id for t in a.run.tasks} & {t.task_id for t in b.run.tasks})


def _arrays(run: RunAnalysis, ids: list[str], names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    single = run.run.single
    cells = [] if single else run.run.bon
    protocol = protocol_of(run.run.manifest)
    by_id = {
        t.task_id: task_contributions(t.table, cells, run.settings.pass_at, single, protocol) for t in run.run.tasks
    }
    out = {}
    for name in names:
        parts = [part_of(by_id[i], name) for i in ids]
        out[name] = (np.array([p[0] for p in parts], float), np.array([p[1] for p in parts], float))
    return out


def _surface_arrays(run: RunAnalysis, ids: list[str], key: str, cell: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-task expected BoN as (value, 1) pairs; tasks the surface left out get an empty denominator."""
    surface = run.surface
    assert surface is not None
    a, b = run.nearest_cell(*cell)
    index = {t: i for i, t in enumerate(surface.task_ids)}
    values = surface.expected[key][:, a, b]
    num = np.array([values[index[i]] if i in index else 0.0 for i in ids])
    den = np.array([1.0 if i in index else 0.0 for i in ids])
    return num, den


def paired_differences(baseline: RunAnalysis, other: RunAnalysis) -> list[Difference]:
    """Every headline metric both runs measured (BoN: the paper's acc), plus the expected tie-aware BoN."""
    ids = [t.task_id for t in baseline.run.tasks if t.task_id in {u.task_id for u in other.run.tasks}]
    settings = baseline.settings
    counts = resample_counts(len(ids), settings.resamples, settings.seed)
    names_a = metric_names([] if baseline.run.single else baseline.run.bon, settings.pass_at, baseline.run.single)
    names_b = set(metric_names([] if other.run.single else other.run.bon, settings.pass_at, other.run.single))
    names = [n for n in names_a if n in names_b and not (n.startswith("bon/") and not n.endswith("/acc"))]
    arr_a, arr_b = _arrays(baseline, ids, names), _arrays(other, ids, names)
    out = [Difference(n, paired_difference(arr_a[n], arr_b[n], counts, settings.level)) for n in names]
    key = "cure_tie_aware/acc"
    if baseline.surface is None or other.surface is None:
        return out
    if key not in baseline.surface.expected or key not in other.surface.expected:
        return out
    for cell in sorted(set(baseline.run.bon) & set(other.run.bon)):
        a, b = _surface_arrays(baseline, ids, key, cell), _surface_arrays(other, ids, key, cell)
        diff = paired_difference(a, b, counts, settings.level)
        out.append(Difference(f"bon/{bon_key(*cell)}/expected_tie_aware", diff))
    return out


def comparisons(analyses: list[RunAnalysis]) -> list[tuple[int, int, list[Difference]]]:
    """(baseline index, other index, differences): each run against the first earlier run on its dataset."""
    out = []
    for j, other in enumerate(analyses):
        base = next((i for i in range(j) if comparable(analyses[i], other)), None)
        if base is not None:
            out.append((base, j, paired_differences(analyses[base], other)))
    return out
