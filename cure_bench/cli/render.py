"""The terminal table of a run's metrics."""

from __future__ import annotations

from typing import Any

from rich.table import Table

_HEADLINE = (
    ("code_acc", "code accuracy"),
    ("code_accumulate_acc", "code accumulate accuracy"),
    ("unit_test_acc", "unit-test accuracy"),
    ("unit_test_accumulate_acc", "unit-test accumulate accuracy"),
    ("p01", "p01 (wrong program passes a correct test)"),
    ("p00", "p00 (wrong program passes a wrong test)"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_table(summary: dict[str, Any]) -> Table:
    """Headline metrics, pass@k, BoN and mean response lengths of one summary.json."""
    run, metrics = summary.get("run", {}), summary.get("metrics", {})
    dataset = (run.get("dataset") or {}).get("name", "?")
    coder = (run.get("coder") or {}).get("model", "?")
    tester = (run.get("tester") or {}).get("model")
    title = f"{coder} on {dataset}" + (f" (tester {tester})" if tester and tester != coder else "")
    table = Table(title=title, show_lines=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in _HEADLINE:
        if key in metrics:
            table.add_row(label, _fmt(metrics[key]))
    for key in sorted(k for k in metrics if k.startswith("pass@")):
        table.add_row(key, _fmt(metrics[key]))
    for nxm, values in (metrics.get("bon") or {}).items():
        table.add_row(
            f"BoN {nxm} acc / accumulate", f"{_fmt(values.get('acc'))} / {_fmt(values.get('accumulate_acc'))}"
        )
    for key, label in (
        ("mean_code_response_tokens", "mean coder tokens"),
        ("mean_test_response_tokens", "mean tester tokens"),
    ):
        if key in metrics:
            table.add_row(label, _fmt(metrics[key]))
    return table
