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
    """Per round: code_acc and selected_acc (the ranker's pick) with bootstrap CIs over the tasks the protocol
    scores, plus that round's repair counts and coder tokens from summary.json."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    counts = resample_counts(len(rows), resamples, seed)
    out = []
    for r, metrics in enumerate(summary["metrics"]["rounds"]):
        at = [_round_entry(row, r) for row in rows]
        scored = np.array([bool(e.get("scored", True)) for e in at], dtype=float)
        num = np.array([sum(_at(p, r)["hidden_correct"] for p in row["programs"]) for row in rows], dtype=float)
        den = np.array([len(row["programs"]) for row in rows], dtype=float)
        picked = np.array([e.get("selected") is not None for e in at], dtype=float) * scored
        hit = np.array([bool(e.get("selected_correct")) for e in at], dtype=float) * picked
        out.append({"round": r, "code_acc": ratio_interval(num * scored, den * scored, counts, level).to_json(),
                    "selected_acc": ratio_interval(hit, picked, counts, level).to_json(),
                    "ranker": metrics.get("ranker"), "repaired": metrics["repaired"], "fixed": metrics["fixed"],
                    "broken": metrics["broken"], "coder_tokens": metrics["coder_tokens"]})  # fmt: skip
    return out


def _round_entry(row: dict[str, Any], r: int) -> dict[str, Any]:
    """The task's record of round ``r`` (pick and scoring); empty for runs written before it was recorded."""
    rounds = row.get("rounds") or []
    return rounds[r] if r < len(rounds) else {}


def _at(versions: list[dict[str, Any]], r: int) -> dict[str, Any]:
    """The program's version in force at round ``r`` (the last one written at or before it)."""
    return [v for v in versions if v["round"] <= r][-1]


def rounds_plot(label: str, rounds: list[dict[str, Any]], path: Path) -> Path:
    from cure_bench.analysis.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["round"] for r in rounds]
    ys = [r["code_acc"]["value"] for r in rounds]
    low = [_or(r["code_acc"]["ci_low"], y) for r, y in zip(rounds, ys, strict=True)]
    high = [_or(r["code_acc"]["ci_high"], y) for r, y in zip(rounds, ys, strict=True)]
    ax.plot(xs, ys, marker="o", label="code_acc")
    ax.fill_between(xs, low, high, alpha=0.25, label="95% bootstrap CI")
    sel = [r["selected_acc"]["value"] for r in rounds]
    if all(s is not None for s in sel):
        ax.plot(xs, sel, marker="s", linestyle="--", label=f"selected acc ({rounds[0].get('ranker')})")
        ax.fill_between(xs, [_or(r["selected_acc"]["ci_low"], y) for r, y in zip(rounds, sel, strict=True)],
                        [_or(r["selected_acc"]["ci_high"], y) for r, y in zip(rounds, sel, strict=True)],
                        alpha=0.15)  # fmt: skip
    ax.set_xlabel("refinement round")
    ax.set_ylabel("accuracy")
    ax.set_xticks(xs)
    ax.set_title(f"{label}: accuracy per round")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
