"""`--protocol` from the command line to the metrics, and the terminal table's one line about dropped tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cure_bench import pipeline
from cure_bench.cli import app
from cure_bench.cli.render import dropped_line, metrics_table
from cure_bench.pipeline import BenchResult
from cure_bench.scoring.metrics import compute_metrics
from tests.test_metrics_protocol import ALL, CELLS


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run_bench(config: Any, progress: Any = None, **_: Any) -> BenchResult:
        seen["config"] = config
        summary = {"run": {}, "metrics": {"code_acc": 0.5}, "counts": {}}
        return BenchResult(run_dir=Path("x"), summary=summary, tables=[], records=[])

    monkeypatch.setattr(pipeline, "run_bench", fake_run_bench)
    return seen


@pytest.mark.parametrize("command", [["bench", "--model", "m"], ["bon", "--coder", "a", "--tester", "b"]])
def test_protocol_flag_reaches_the_config(captured: dict[str, Any], command: list[str]) -> None:
    assert CliRunner().invoke(app, command).exit_code == 0
    assert captured.pop("config").protocol == "cure"  # the default: upstream's rules
    result = CliRunner().invoke(app, [*command, "--protocol", "chat"])
    assert result.exit_code == 0, result.output
    assert captured["config"].protocol == "chat"


def test_unknown_protocol_is_a_one_line_error_naming_the_choices(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["bench", "--model", "m", "--protocol", "paper"])
    assert result.exit_code == 1
    assert "--protocol" in result.output and "cure, chat" in result.output and "Traceback" not in result.output
    assert "config" not in captured


def _render(summary: dict[str, Any]) -> str:
    console = Console(width=200, record=True)
    console.print(metrics_table(summary))
    return console.export_text()


def test_table_says_in_one_line_how_many_tasks_the_protocol_left_out() -> None:
    result = compute_metrics(ALL, bon=CELLS, protocol="cure")
    summary = {"run": {"protocol": {"name": "cure"}}, **result.to_json()}
    line = dropped_line(summary)
    assert line is not None and "1 of 5 tasks" in line and "metrics.all_tasks" in line
    assert line.startswith("protocol cure:")
    text = _render(summary)
    assert line in text.replace("\n", " ") or "1 of 5 tasks" in text
    assert "code accuracy" in text and "BoN 2x2 acc / accumulate" in text
    chat = compute_metrics(ALL, bon=CELLS, protocol="chat")
    assert dropped_line({"run": {"protocol": "chat"}, **chat.to_json()}) is None
    assert "left out" not in _render({"run": {}, **chat.to_json()})


def test_table_formats_each_metric_as_the_catalogue_says() -> None:
    summary = {"run": {}, "metrics": {"code_acc": 0.123456, "mean_code_response_tokens": 812.25}, "counts": {}}
    text = _render(summary)
    assert "12.3%" in text and "812.2" in text and "812.2500" not in text and "0.1235" not in text


def test_table_shows_shares_as_the_report_does() -> None:
    """The terminal table and report.md print one number the same way (a percentage to one place)."""
    from cure_bench.analysis.bootstrap import Interval
    from cure_bench.analysis.report import fmt

    result = compute_metrics(ALL, bon=CELLS, protocol="cure")
    summary = {"run": {"protocol": {"name": "cure"}}, **result.to_json()}
    code_acc = summary["metrics"]["code_acc"]
    text = _render(summary)
    assert f"{fmt(Interval(code_acc, None, None, 5))}%" in text
    assert f"{100 * code_acc:.1f}%" in text and f"{code_acc:.4f}" not in text
