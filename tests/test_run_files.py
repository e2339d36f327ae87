"""The typed run files: what the bench writes is what report/rescore read, and newer files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cure_bench.runs.reader import RunDirError, load_run
from cure_bench.runs.schema import SCHEMA_VERSION, Manifest, SampleRow, Summary
from cure_bench.types import TaskTable, Verdict

A, W = Verdict.ACCEPTED, Verdict.WRONG_ANSWER


def _table() -> TaskTable:
    return TaskTable(task_id="t0", hidden=[[A, A], [A, W]], generated=[[A], [W]])


def _write(run: Path, summary: dict, rows: list[dict]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _row() -> dict:
    return {
        "task_id": "t0",
        "question": "q",
        "time_limit": 1.0,
        "max_test": 2,
        "programs": ["print(1)", None],
        "generated_tests": [{"input": "1\n", "output": "1\n", "answer_index": 0}],
        "table": _table().to_json(),
    }


def _manifest(**extra: object) -> dict:
    return {"mode": "bench", "k_code": 2, "k_case": 1, "bon": ["2x1"], "dataset": {"name": "d"}, **extra}


def test_summary_round_trip_keeps_key_order_and_unknown_keys() -> None:
    data = {
        "schema_version": 1,
        "run": {**_manifest(), "protocol": "cure", "rescore": {"name": "x"}},
        "metrics": {"code_acc": 0.5},
        "counts": {"tasks": 1},
    }
    summary = Summary.from_json("summary.json", data)
    assert summary.run.k_code == 2 and summary.run.dataset.name == "d" and summary.run.bon == ["2x1"]
    assert summary.run.extra == {"protocol": "cure", "rescore": {"name": "x"}}
    again = summary.to_json()
    assert list(again) == ["schema_version", "run", "metrics", "counts"]
    assert again["run"]["protocol"] == "cure" and again["run"]["rescore"] == {"name": "x"}
    assert list(again["run"])[:3] == ["tool", "version", "mode"]  # typed keys first, in the files' old order
    assert Summary.from_json("again", again) == summary


def test_summary_without_a_version_reads_as_version_1(tmp_path: Path) -> None:
    run = _write(tmp_path / "old", {"run": _manifest(), "metrics": {}, "counts": {}}, [_row()])
    loaded = load_run(run)
    assert loaded.schema_version == 1 and loaded.k_code == 2 and loaded.bon == [(2, 1)]


def test_summary_of_a_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    newer = {"schema_version": SCHEMA_VERSION + 1, "run": _manifest(), "metrics": {}, "counts": {}}
    run = _write(tmp_path / "new", newer, [_row()])
    with pytest.raises(RunDirError, match=rf"schema {SCHEMA_VERSION + 1}.*reads up to {SCHEMA_VERSION}.*upgrade"):
        load_run(run)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("k_code", "four", r"field 'run', field 'k_code': expected an integer, got 'four'"),
        ("bon", 4, r"field 'bon': expected a list"),
        ("show_examples", "yes", r"field 'show_examples': expected true or false"),
    ],
)
def test_malformed_manifest_field_is_named(tmp_path: Path, field: str, value: object, message: str) -> None:
    run = _write(tmp_path / "bad", {"run": _manifest(**{field: value}), "metrics": {}, "counts": {}}, [_row()])
    with pytest.raises(RunDirError, match=message):
        load_run(run)


def test_malformed_sample_row_names_line_and_field(tmp_path: Path) -> None:
    bad = {**_row(), "programs": [1, 2]}
    run = _write(tmp_path / "bad", {"run": _manifest(), "metrics": {}, "counts": {}}, [_row(), bad])
    with pytest.raises(RunDirError, match=r"samples.jsonl, line 2, field 'programs': expected a list of programs"):
        load_run(run)


def test_sample_row_round_trip() -> None:
    row = SampleRow.from_json("line 1", {**_row(), "code_answers": [{"text": "x", "tokens": 3}], "note": 7})
    assert row.code_answers[0].tokens == 3 and row.generated_tests[0].answer_index == 0
    assert row.extra == {"note": 7}
    assert SampleRow.from_json("again", row.to_json()) == row


def test_manifest_from_an_old_run_with_a_dataset_name_only() -> None:
    manifest = Manifest.from_json("run", {"dataset": "MBPP"})
    assert manifest.dataset.name == "MBPP" and manifest.k_code is None
