"""The terminal table of a run's metrics (rows, labels and formats from the metric catalogue)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cure_bench.scoring import catalogue
from cure_bench.scoring.metrics import protocol_of


def _fmt(value: Any, fmt: catalogue.Format = catalogue.Format.RATIO) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = catalogue.shown(float(value), fmt)
        return text if fmt is catalogue.Format.TOKENS else f"{text}%"
    return catalogue.shown(None) if value is None else str(value)


def dropped_line(summary: dict[str, Any]) -> str | None:
    """One line saying which tasks the protocol left out of every metric (None when it left out none)."""
    counts = summary.get("counts", {})
    dropped = int(counts.get("dropped_tasks") or 0)
    if not dropped:
        return None
    run = summary.get("run") or {}
    protocol = protocol_of(run) if run.get("protocol") else "cure"  # only cure drops tasks
    return (
        f"protocol {protocol}: {dropped} of {counts.get('n_tasks', '?')} tasks had no parsable generated test and "
        f"are left out of every metric, as upstream does (all-task numbers: metrics.{catalogue.ALL_TASKS_KEY})"
    )


def metrics_table(summary: dict[str, Any]) -> Table:
    """Headline metrics, pass@k, BoN and mean response lengths of one summary.json."""
    run, metrics = summary.get("run", {}), summary.get("metrics", {})
    dataset = (run.get("dataset") or {}).get("name", "?")
    coder = (run.get("coder") or {}).get("model", "?")
    tester = (run.get("tester") or {}).get("model")
    title = f"{coder} on {dataset}" + (f" (tester {tester})" if tester and tester != coder else "")
    table = Table(title=title, show_lines=False, caption=dropped_line(summary))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for spec in catalogue.POOLED:
        if spec.name in metrics:
            table.add_row(spec.label, _fmt(metrics[spec.name]))
    for key in sorted(k for k in metrics if k.startswith("pass@")):
        table.add_row(key, _fmt(metrics[key]))
    acc, accumulate = (field.name for field in catalogue.BON_FIELDS)
    for nxm, values in (metrics.get("bon") or {}).items():  # the paper's rule; other rankers stay in the file
        table.add_row(f"BoN {nxm} acc / accumulate", f"{_fmt(values.get(acc))} / {_fmt(values.get(accumulate))}")
    for spec in catalogue.RESPONSE_LENGTHS:
        if spec.name in metrics:
            table.add_row(spec.label, _fmt(metrics[spec.name], spec.fmt))
    return table
