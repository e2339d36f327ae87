"""Accuracy per refinement round with bootstrap CIs over tasks, read from a `cure refine` run directory.

A refine run's samples.jsonl holds each program's trajectory (every version, with its hidden verdict), so the
per-round accuracy is the share of hidden-correct programs at that round, resampled by task like every other
interval in the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cure_bench.analysis.bootstrap import ratio_interval, resample_counts


def is_refine_run(run_dir: Path) -> bool:
    summary = run_dir / "summary.json"
    return summary.is_file() and "refine" in json.loads(summary.read_text(encoding="utf-8"))


def round0_dir(run_dir: Path) -> Path:
    """The `cure bench` run inside a refine run (what the rest of the report analyses)."""
    return Path(json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["refine"]["round0_dir"])


def round_intervals(run_dir: Path, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> list[dict[str, Any]]:
    """code_acc per round (value, CI, tasks) plus the run's selected_acc and repair counts for that round."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    counts = resample_counts(len(rows), resamples, seed)
    out = []
    for r, metrics in enumerate(summary["metrics"]["rounds"]):
        num = np.array([sum(_at(p, r)["hidden_correct"] for p in row["programs"]) for row in rows], dtype=float)
        den = np.array([len(row["programs"]) for row in rows], dtype=float)
        iv = ratio_interval(num, den, counts, level)
        out.append({"round": r, "code_acc": iv.to_json(), "selected_acc": metrics.get("selected_acc"),
                    "repaired": metrics["repaired"], "fixed": metrics["fixed"], "broken": metrics["broken"],
                    "coder_tokens": metrics["coder_tokens"]})  # fmt: skip
    return out


def _at(versions: list[dict[str, Any]], r: int) -> dict[str, Any]:
    """The program's version in force at round ``r`` (the last one written at or before it)."""
    return [v for v in versions if v["round"] <= r][-1]


def rounds_plot(label: str, rounds: list[dict[str, Any]], path: Path) -> Path:
    from cure_bench.analysis.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["round"] for r in rounds]
    ys = [r["code_acc"]["value"] for r in rounds]
    low = [
        r["code_acc"]["ci_low"] if r["code_acc"]["ci_low"] is not None else y for r, y in zip(rounds, ys, strict=True)
    ]
    high = [
        r["code_acc"]["ci_high"] if r["code_acc"]["ci_high"] is not None else y for r, y in zip(rounds, ys, strict=True)
    ]
    ax.plot(xs, ys, marker="o", label="code_acc")
    ax.fill_between(xs, low, high, alpha=0.25, label="95% bootstrap CI")
    sel = [r["selected_acc"] for r in rounds]
    if all(s is not None for s in sel):
        ax.plot(xs, sel, marker="s", linestyle="--", label="selected (ranker) acc")
    ax.set_xlabel("refinement round")
    ax.set_ylabel("accuracy")
    ax.set_xticks(xs)
    ax.set_title(f"{label}: accuracy per round")
    ax.legend(fontsize=8)
    return _save(fig, path)
