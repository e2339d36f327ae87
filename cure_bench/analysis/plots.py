"""PNG figures of one or more run analyses (matplotlib, Agg backend: works headless and offline).

Each function writes one file and returns its path; titles and captions say what is averaged over what, so
a figure pasted alone into a paper draft still reads correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cure_bench.analysis.analyze import RunAnalysis
from cure_bench.scoring.rankers import REGISTRY

# distinct markers and dashes by registration order, so a line hidden under another (equal values) still shows
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def ranker_style(ranker: str) -> tuple[str, str]:
    """(colour, title) of a ranker from the registry; grey and its name when it sets none."""
    spec = REGISTRY.get(ranker)
    return (spec.color if spec and spec.color else "#7f7f7f", spec.title if spec and spec.title else ranker)


def line_style(ranker: str) -> tuple[str, str]:
    """(marker, dash) by the ranker's place in the registry."""
    order = list(REGISTRY).index(ranker) if ranker in REGISTRY else len(REGISTRY)
    return _MARKERS[order % len(_MARKERS)], _DASHES[order % len(_DASHES)]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    _plt().close(fig)
    return path


def heatmap(analysis: RunAnalysis, path: Path) -> Path:
    """One panel per ranker: expected BoN accuracy over (n_code, n_case), shared colour scale."""
    plt = _plt()
    surface = analysis.surface
    assert surface is not None
    rankers = surface.rankers
    cols = 2 if len(rankers) > 1 else 1
    rows = (len(rankers) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 5.0 * rows), squeeze=False)
    annotate = len(surface.n_codes) * len(surface.n_cases) <= 300
    image = None
    for ax, ranker in zip(axes.flat, rankers, strict=False):
        grid = surface.mean(ranker)
        image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_title(ranker_style(ranker)[1], fontsize=11)
        _ticks(ax, surface.n_codes, surface.n_cases)
        ax.set_xlabel("n_case: generated tests used (0 = no tests)")
        ax.set_ylabel("n_code: programs to choose from")
        if annotate:
            for (a, b), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(
                        b,
                        a,
                        f"{100 * v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if v < 0.6 else "black",
                    )
    for ax in list(axes.flat)[len(rankers) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85, label="BoN accuracy (cell labels in %)")
    fig.suptitle(
        f"{analysis.label}: expected Best-of-N accuracy, mean over {len(surface.task_ids)} tasks\n"
        f"of random subsets of n_code programs x n_case tests\n({surface.method})",
        fontsize=11,
    )
    return _save(fig, path)


def _ticks(ax: Any, n_codes: Sequence[int], n_cases: Sequence[int]) -> None:
    step_y = max(1, len(n_codes) // 8)
    step_x = max(1, len(n_cases) // 8)
    ax.set_yticks(range(0, len(n_codes), step_y), [str(v) for v in n_codes[::step_y]])
    ax.set_xticks(range(0, len(n_cases), step_x), [str(v) for v in n_cases[::step_x]])


def _curve(ax: Any, analysis: RunAnalysis, cells: list[tuple[int, int]], x: list[int]) -> None:
    from matplotlib.ticker import MaxNLocator

    surface = analysis.surface
    assert surface is not None
    for ranker in surface.rankers:
        color, name = ranker_style(ranker)
        band = analysis.bands[f"{ranker}/acc"]
        mean = [band.mean[c] for c in cells]
        marker, dash = line_style(ranker)
        ax.plot(x, mean, marker=marker, ms=4, linestyle=dash, color=color, label=name, mfc="none")
        ax.fill_between(x, [band.low[c] for c in cells], [band.high[c] for c in cells], color=color, alpha=0.12)
    prefix = surface.mean("cure_first", kind="prefix")
    ax.plot(
        x,
        [prefix[c] for c in cells],
        linestyle="none",
        marker="x",
        color="black",
        label="paper's prefix slice (first N, first M)",
    )
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.set_ylabel("BoN accuracy")


def curves(analysis: RunAnalysis, path: Path) -> Path:
    """BoN accuracy vs n per ranker with 95% bootstrap bands: n_code = n_case = n, and all programs vs n_case."""
    plt = _plt()
    surface = analysis.surface
    assert surface is not None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.6))
    diagonal = [n for n in surface.n_codes if n in surface.n_cases]
    _curve(left, analysis, [surface.cell(n, n) for n in diagonal], diagonal)
    left.set_xlabel("n = n_code = n_case (programs and tests sampled)")
    left.set_title("scaling programs and tests together")
    k = surface.n_codes[-1]
    _curve(right, analysis, [surface.cell(k, m) for m in surface.n_cases], list(surface.n_cases))
    right.set_xlabel(f"n_case: generated tests used, choosing among n_code = {k} programs")
    right.set_title("more tests, all programs")
    left.legend(fontsize=8, loc="lower right")
    level = round(100 * analysis.settings.level)
    fig.suptitle(
        f"{analysis.label}: Best-of-N accuracy by ranker (lines: expectation over random subsets; "
        f"bands: {level}% bootstrap CI over {len(surface.task_ids)} tasks)",
        fontsize=10.5,
    )
    return _save(fig, path)


def dataset_bars(
    analyses: Sequence[RunAnalysis], names: Sequence[str], path: Path, metrics: Sequence[tuple[str, str]]
) -> Path:
    """One panel per metric: a bar per run (legend ``names``), grouped by dataset, with CI error bars."""
    plt = _plt()
    datasets = list(dict.fromkeys(a.run.dataset_name or "?" for a in analyses))
    models = list(dict.fromkeys(names))
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.2 * len(metrics), 6), 4.6), squeeze=False)
    width = 0.8 / max(len(models), 1)
    colors = plt.get_cmap("tab10")
    for ax, (name, title) in zip(axes.flat, metrics, strict=True):
        for mi, model in enumerate(models):
            _bars(ax, analyses, names, datasets, model, name, (mi - (len(models) - 1) / 2) * width, width, colors(mi))
        ax.set_xticks(range(len(datasets)), [_dataset_tick(analyses, ds) for ds in datasets])
        ax.set_ylim(0, 1.12)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    level = round(100 * analyses[0].settings.level) if analyses else 95
    axes.flat[0].set_ylabel(f"share (error bars: {level}% bootstrap CI over tasks)")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Headline metrics per dataset (bar labels in %)", fontsize=11)
    return _save(fig, path)


def _bars(
    ax: Any,
    analyses: Sequence[RunAnalysis],
    names: Sequence[str],
    datasets: list[str],
    model: str,
    metric: str,
    offset: float,
    width: float,
    color: Any,
) -> None:
    xs, ys, lo, hi = [], [], [], []
    for di, ds in enumerate(datasets):
        match = [a for a, n in zip(analyses, names, strict=True) if n == model and (a.run.dataset_name or "?") == ds]
        iv = match[0].intervals.get(metric) if match else None
        if iv is None or iv.value is None:
            continue
        xs.append(di + offset)
        ys.append(iv.value)
        lo.append(iv.value - (iv.low if iv.low is not None else iv.value))
        hi.append((iv.high if iv.high is not None else iv.value) - iv.value)
    bars = ax.bar(xs, ys, width=width, color=color, label=model, yerr=[lo, hi], capsize=3)
    for bar, y, up in zip(bars, ys, hi, strict=True):
        ax.text(
            bar.get_x() + bar.get_width() / 2, y + up + 0.01, f"{100 * y:.0f}", ha="center", va="bottom", fontsize=7
        )


def _dataset_tick(analyses: Sequence[RunAnalysis], dataset: str) -> str:
    sizes = sorted({len(a.run.tasks) for a in analyses if (a.run.dataset_name or "?") == dataset})
    return f"{dataset}\n({'/'.join(map(str, sizes))} tasks)"


__all__ = ["curves", "dataset_bars", "heatmap", "line_style", "ranker_style"]
