"""`cure data ...` through the real CLI app: outputs, exit codes, one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.tasks.reader import load_tasks, task_fingerprint
from cure_bench.tasks.registry import cached_path, find_spec

runner = CliRunner()


def _rows(n: int) -> list[dict[str, object]]:
    return [
        {
            "question": f"q{i}",
            "test_time_limit": 1 + i % 2,
            "test_input": ["1"] * (i + 1),
            "test_output": ["1"] * (i + 1),
        }
        for i in range(n)
    ]


def test_list_shows_registry_and_cache_state(tmp_path: Path) -> None:
    spec = find_spec("CodeForces")
    assert spec is not None
    path = cached_path(spec, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_rows(1)))
    result = runner.invoke(app, ["data", "list", "--cache-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert {"sample", "CodeContests_train", "CodeContests", "CodeForces", "LiveBench", "LiveCodeBench", "MBPP"} <= set(
        rows
    )
    assert rows["CodeForces"]["cached"] is True and rows["MBPP"]["cached"] is False
    assert "Gen-Verse/MBPP-ReasonFlux" in rows["MBPP"]["source"]
    plain = runner.invoke(app, ["data", "list", "--cache-dir", str(tmp_path), "--plain"])
    names = [line.split("\t")[0] for line in plain.output.splitlines()]
    assert names == list(rows)


@pytest.mark.parametrize("width", [80, 160])
def test_list_table_never_cuts_the_names_users_copy(width: int) -> None:
    from rich.console import Console

    from cure_bench.cli import data as data_cli
    from cure_bench.tasks.registry import REGISTRY

    console = Console(width=width, record=True, file=io.StringIO())
    original = data_cli.console
    data_cli.console = console
    try:
        data_cli.list_cmd(cache_dir=None, as_json=False, plain=False)
    finally:
        data_cli.console = original
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    first_cells = {line.split("│")[1].strip() for line in text.splitlines() if line.count("│") > 3}
    assert {spec.name for spec in REGISTRY} <= first_cells  # each whole, on one line


def test_validate_ok_and_problems(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_rows(2)))
    result = runner.invoke(app, ["data", "validate", str(good), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["rows"], report["valid"], report["ok"], report["problems"]) == (2, 2, True, [])
    bad = tmp_path / "bad.jsonl"
    rows = [{"question": 3, "test_input": ["1"], "test_output": ["1"]}, {"question": "x", "test_time_limit": -1}]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["data", "validate", str(bad)], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "row 1, field 'question': expected a string" in result.output
    assert "row 2, field 'test_time_limit': must be a number > 0" in result.output
    assert "row 2, field 'test_input': missing" in result.output and "left out: no hidden tests" in result.output
    assert "2 problem(s)" in result.output
    as_json = runner.invoke(app, ["data", "validate", str(bad), "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.output)
    assert [(p["row"], p["field"]) for p in report["problems"]] == [(1, "question"), (2, "test_time_limit")]
    assert [(p["row"], p["field"], p["reason"]) for p in report["warnings"]] == [(2, "test_input", "no hidden tests")]


def test_validate_rows_a_run_leaves_out_are_warnings_unless_strict(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = [
        *_rows(2),
        {"question": "x", "test_input": [], "test_output": []},
        {"test_input": ["1"], "test_output": ["1"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output  # people's view: warnings do not fail the file
    report = json.loads(runner.invoke(app, ["data", "validate", str(path), "--json"]).output)
    assert report["ok"] and report["problems"] == [] and report["skipped"] == 2
    assert [w["reason"] for w in report["warnings"]] == ["no hidden tests", "no question"]
    assert [(w["row"], w["field"]) for w in report["warnings"]] == [(3, "test_input"), (4, "question")]
    strict = runner.invoke(app, ["data", "validate", str(path), "--strict", "--json"])
    assert strict.exit_code == 1
    report = json.loads(strict.output)
    assert not report["ok"] and [p["row"] for p in report["problems"]] == [3, 4] and report["warnings"] == []


def test_validate_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nope.json")], env={"COLUMNS": "250"})
    assert result.exit_code == 1 and "no such file" in result.output


def test_info_json_counts_and_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_rows(3)))
    result = runner.invoke(app, ["data", "info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["n_tasks"] == 3 and info["n_hidden_tests"] == 6 and info["n_example_tests"] == 0
    assert info["time_limits"] == {"1.0": 2, "2.0": 1}
    assert info["hidden_per_task"] == {"1": 1, "2": 1, "3": 1}
    assert info["fingerprint"] == task_fingerprint(load_tasks(path))
    assert info["dataset"]["source"] == "local file"


def test_info_table_for_sample() -> None:
    result = runner.invoke(app, ["data", "info", "sample"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "task fingerprint" in result.output and "time limit (s)" in result.output
    assert "hidden tests/task" in result.output and "difficulty" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["data", "info", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
        (["data", "download", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
    ],
)
def test_errors_are_one_line(args: list[str], fragment: str) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1
    error_lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(error_lines) == 1 and fragment in error_lines[0] and "Traceback" not in result.output


def test_download_offline_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    result = runner.invoke(app, ["data", "download", "mbpp", "--cache-dir", str(tmp_path)], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "cannot download dataset 'MBPP'" in result.output and "Traceback" not in result.output


def test_download_cached_prints_path_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    spec = find_spec("LiveBench")
    assert spec is not None
    path = cached_path(spec, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    args = ["data", "download", "livebench", "--cache-dir", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    hub = {"repo_id": "Gen-Verse/LiveBench-ReasonFlux", "filename": "test/LiveBench-ReasonFlux.json", "sha": None}
    assert json.loads(result.output) == {"name": "LiveBench", "path": str(path), "hub": {**hub, "revision": None}}


def _cf_row(pid: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": pid,
        "title": f"P{pid}",
        "description": "Echo n.",
        "time_limit": 1.5,
        "examples": [{"input": "1\n", "output": "1\n"}],
        "official_tests": [{"input": "2\n", "output": "2\n"}],
        "input_mode": "stdio",
    }
    row.update(extra)
    return row


def test_convert_writes_tasks_and_report(tmp_path: Path) -> None:
    src = tmp_path / "cf.json"
    src.write_text(json.dumps([_cf_row("1A"), _cf_row("1B", generated_checker="checker"), _cf_row("1C")]))
    out = tmp_path / "out.json"
    args = ["data", "convert", "--from", "codeforces", str(src), "-o", str(out), "--time-limit", "3", "--limit", "2"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert (outcome["converted"], outcome["skipped"], outcome["total"]) == (1, {"special checker": 1}, 2)
    tasks = load_tasks(out)
    assert [t.task_id for t in tasks] == ["codeforces/1A"] and tasks[0].time_limit == 3.0
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["total"] == 2 and report["skipped"] == {"special checker": 1}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--from", "apps"], "--from 'apps'"),
        (["--from", "mbpp", "--time-limit", "0"], "--time-limit must be > 0"),
        (["--from", "mbpp", "--split", "dev"], "--split 'dev'"),
    ],
)
def test_convert_bad_flags(tmp_path: Path, extra: list[str], fragment: str) -> None:
    src = tmp_path / "src.json"
    src.write_text("[]")
    result = runner.invoke(
        app, ["data", "convert", str(src), "-o", str(tmp_path / "o.json"), *extra], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 1 and fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.json").exists()


def test_validate_row_numbers_are_line_numbers_in_jsonl(tmp_path: Path) -> None:
    """Rows count from 1 like lines: in a JSONL file without blank lines, row N is line N."""
    rows = _rows(3)
    rows[2]["test_time_limit"] = -1
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["data", "validate", str(path), "--json"])
    assert result.exit_code == 1
    [problem] = json.loads(result.output)["problems"]
    assert (problem["row"], problem["field"]) == (3, "test_time_limit")
    bad_line = path.read_text().splitlines()[problem["row"] - 1]
    assert json.loads(bad_line)["test_time_limit"] == -1
