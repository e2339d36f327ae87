"""A `cure refine` run as the report reads it: its round-0 bench run, the accuracy per round, each program's history.

A refine run directory holds ``summary.json`` (with a ``refine`` object and ``metrics.rounds``), the bench run of
round 0 in ``round-0/``, and a ``samples.jsonl`` whose rows are ``{"task_id", "programs": [[version, ...], ...]}``:
per program, every version it went through (``round``, ``program``, the ``feedback`` tests it was shown, its
``hidden_correct`` verdict and its ``generated`` verdicts). The report analyses round 0 like any bench run and
shows the rounds beside it, so one page answers "did refinement help, and on which task, how".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.analysis.bootstrap import Interval
from cure_bench.analysis.rounds import is_refine_run, round0_dir, round_intervals
from cure_bench.runs.reader import RunDirError
from cure_bench.scoring.catalogue import shown

ROUND_HEADER = ["round", "code_acc [CI]", "selected acc", "repaired", "fixed", "broken", "coder tokens"]


@dataclass
class RefineRun:
    """What the report shows of a refine run beyond its round-0 bench run."""

    path: Path
    round0: Path
    rounds: list[dict[str, Any]]  # analysis.rounds.round_intervals: code_acc with CI per round, repair counts
    trajectories: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)  # task -> program -> versions


def refine_run(run_dir: str | Path, resamples: int, seed: int, level: float) -> RefineRun | None:
    """The refine run at ``run_dir``, or None when it is a plain bench run."""
    path = Path(run_dir)
    if not path.is_dir() or not is_refine_run(path):
        return None
    local = path / "round-0"  # where run_refine always puts it; the recorded path goes stale when a run is moved
    round0 = local if (local / "summary.json").is_file() else round0_dir(path)
    rounds = round_intervals(path, resamples, seed, level)
    return RefineRun(path, round0, rounds, _trajectories(path / "samples.jsonl"))


def _trajectories(path: Path) -> dict[str, list[list[dict[str, Any]]]]:
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("task_id"), str):
            raise RunDirError(f"{where}, field 'task_id': expected a string")
        programs = row.get("programs")
        if not isinstance(programs, list) or not all(isinstance(p, list) and p for p in programs):
            raise RunDirError(f"{where}, field 'programs': expected a list of version lists (one per program)")
        for i, versions in enumerate(programs):
            for j, v in enumerate(versions):
                if not isinstance(v, dict) or not isinstance(v.get("round"), int):
                    raise RunDirError(f"{where}, field 'programs[{i}][{j}].round': expected an integer")
        out[row["task_id"]] = programs
    return out


def round_rows(refine: RefineRun) -> list[list[str]]:
    """One row per round: the rows report.md and report.html both print."""
    from cure_bench.analysis.report import fmt

    rows = []
    for r in refine.rounds:
        iv = r["code_acc"]
        acc = Interval(iv["value"], iv["ci_low"], iv["ci_high"], iv["n_tasks"])
        rows.append(
            [
                str(r["round"]),
                fmt(acc),
                _selected(r["selected_acc"]),
                str(r["repaired"]),
                str(r["fixed"]),
                str(r["broken"]),
                str(r["coder_tokens"]),
            ]
        )
    return rows


def _selected(value: Any) -> str:
    """selected_acc as report.md prints it: with its bootstrap CI when the rounds carry one."""
    from cure_bench.analysis.report import fmt

    if value is None:
        return "n/a"
    if isinstance(value, dict):
        if value.get("value") is None:
            return "n/a"
        return fmt(Interval(value["value"], value["ci_low"], value["ci_high"], value["n_tasks"]))
    return shown(value)
