"""Task file loading: both formats, streaming, every schema error naming file/row/field, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cure_bench.errors import TaskFileError
from cure_bench.tasks import reader as tasks_mod
from cure_bench.tasks.reader import (
    SkippedRow,
    file_sha256,
    iter_task_rows,
    iter_tasks,
    load_tasks,
    task_fingerprint,
    task_to_row,
    validate_task_file,
)


def _row(i: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "question": f"Add one to n (task {i}).",
        "test_time_limit": 2,
        "example_input": ["1\n"],
        "example_output": ["2\n"],
        "test_input": ["5\n", "9\n"],
        "test_output": ["6\n", "10\n"],
    }
    row.update(extra)
    return row


def _write_json(path: Path, rows: list[object], indent: int | None = 2) -> Path:
    path.write_text(json.dumps(rows, indent=indent), encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_json_array_and_jsonl_give_the_same_tasks(tmp_path: Path) -> None:
    rows = [_row(i, difficulty="easy") for i in range(3)]
    a = load_tasks(_write_json(tmp_path / "t.json", rows))
    b = load_tasks(_write_jsonl(tmp_path / "t.jsonl", rows))
    assert a == b
    t = a[1]
    assert t.task_id == "t/1"  # no id field: "<stem>/<row>"
    assert t.time_limit == 2.0
    assert [(c.input, c.output) for c in t.hidden_tests] == [("5\n", "6\n"), ("9\n", "10\n")]
    assert [(c.input, c.output) for c in t.example_tests] == [("1\n", "2\n")]
    assert t.metadata == {"difficulty": "easy"}


@pytest.mark.parametrize(
    ("key", "value", "expected"), [("task_id", "abc", "abc"), ("id", 17, "17"), ("name", "x", "x")]
)
def test_task_id_from_row(tmp_path: Path, key: str, value: object, expected: str) -> None:
    (task,) = load_tasks(_write_json(tmp_path / "t.json", [_row(0, **{key: value})]))
    assert task.task_id == expected
    assert task.metadata[key] == value


def test_defaults_and_optional_examples(tmp_path: Path) -> None:
    row = _row(0)
    for k in ("test_time_limit", "example_input", "example_output"):
        del row[k]
    (task,) = load_tasks(_write_json(tmp_path / "t.json", [row]))
    assert task.time_limit == 1.0
    assert task.example_tests == []


def test_limit_stops_early_and_zero_is_empty(tmp_path: Path) -> None:
    # the fourth row (row 4) is broken: with limit=2 it is never read, without a limit it raises
    rows: list[object] = [_row(0), _row(1), _row(2), {"question": 3}]
    path = _write_json(tmp_path / "t.json", rows)
    assert [t.task_id for t in load_tasks(path, limit=2)] == ["t/0", "t/1"]
    assert load_tasks(path, limit=0) == []
    with pytest.raises(TaskFileError, match="row 4, field 'question'"):
        load_tasks(path)


def test_streaming_reads_rows_across_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows much larger than the read size, split mid-string and mid-escape, still decode."""
    monkeypatch.setattr(tasks_mod, "_CHUNK_CHARS", 64)
    rows = [_row(i, blob='é\\"x' * 300, n=1234567) for i in range(20)]
    path = _write_json(tmp_path / "big.json", rows, indent=None)
    got = list(iter_task_rows(path))
    assert [i for i, _ in got] == list(range(20))
    assert [r for _, r in got] == rows


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="no such file"):
        load_tasks(tmp_path / "absent.json")
    with pytest.raises(TaskFileError, match="is a directory"):
        load_tasks(tmp_path)


def test_malformed_json_array_names_row_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    text = json.dumps([_row(0), _row(1)], indent=2).replace('"test_time_limit": 2,\n', '"test_time_limit": 2\n', 2)
    path.write_text(text)
    with pytest.raises(TaskFileError) as info:
        load_tasks(path)
    msg = str(info.value)
    assert str(path) in msg and "row 1" in msg and "line 5, column 5" in msg and "malformed JSON" in msg


def test_malformed_jsonl_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_row(0)) + "\n\n" + '{"question": "x",\n')
    with pytest.raises(TaskFileError, match=r"row 2: malformed JSON at line 3, column"):
        load_tasks(path)


def test_pretty_printed_object_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_row(0), indent=2))
    with pytest.raises(TaskFileError, match="use a JSON array, or JSONL"):
        load_tasks(path)


def test_truncated_array(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps([_row(0), _row(1)])[:-1])
    with pytest.raises(TaskFileError, match="end of file"):
        load_tasks(path)


def test_row_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="row 2: expected a JSON object, got an array"):
        load_tasks(_write_json(tmp_path / "t.json", [_row(0), [1, 2]]))


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"question": None}, "question", "missing"),
        ({"question": "  "}, "question", "empty"),
        ({"question": 3}, "question", "expected a string, got a number"),
        ({"test_time_limit": 0}, "test_time_limit", "> 0"),
        ({"test_time_limit": "1"}, "test_time_limit", "got a string"),
        ({"test_time_limit": True}, "test_time_limit", "got a boolean"),
        ({"test_input": []}, "test_input", "empty"),
        ({"test_input": "5\n"}, "test_input", "expected a list of strings"),
        ({"test_output": ["6\n", 10]}, "test_output", "item 1 is a number"),
        ({"test_output": ["6\n"]}, "test_output", "has 1 items but 'test_input' has 2"),
        ({"example_output": []}, "example_output", "has 0 items but 'example_input' has 1"),
    ],
)
def test_schema_errors_name_row_and_field(tmp_path: Path, change: dict[str, object], field: str, fragment: str) -> None:
    bad = _row(1, **change)
    if change.get("question", "") is None:
        del bad["question"]
    path = _write_json(tmp_path / "t.json", [_row(0), bad])
    with pytest.raises(TaskFileError) as info:
        load_tasks(path, strict=True)
    assert (info.value.row, info.value.field) == (1, field)
    assert str(path) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"question": None}, "no question", "question"),
        ({"question": "  "}, "no question", "question"),
        ({"test_input": []}, "no hidden tests", "test_input"),
        ({"test_input": None, "test_output": None}, "no hidden tests", "test_input"),
        ({"test_output": ["6\n"]}, "hidden inputs and outputs do not pair up", "test_output"),
        ({"test_output": None}, "hidden inputs and outputs do not pair up", "test_output"),
    ],
)
def test_rows_upstream_skips_are_left_out_unless_strict(
    tmp_path: Path, change: dict[str, object], reason: str, field: str
) -> None:
    bad = {k: v for k, v in _row(1, task_id="bad", **change).items() if v is not None}
    path = _write_json(tmp_path / "t.json", [_row(0), bad, _row(2)])
    skipped: list[SkippedRow] = []
    tasks = list(iter_tasks(path, on_skip=lambda s, row: skipped.append(s)))
    assert [t.task_id for t in tasks] == ["t/0", "t/2"]
    assert [(s.task_id, s.row, s.reason, s.field) for s in skipped] == [("bad", 1, reason, field)]
    assert [t.task_id for t in load_tasks(path)] == ["t/0", "t/2"]
    with pytest.raises(TaskFileError) as info:
        load_tasks(path, strict=True)
    assert (info.value.row, info.value.field) == (1, field)
    assert "without --strict the task is left out" in str(info.value)


def test_a_broken_field_is_an_error_even_on_a_row_upstream_skips(tmp_path: Path) -> None:
    bad = _row(1, test_input=[], test_time_limit="2")
    with pytest.raises(TaskFileError) as info:
        load_tasks(_write_json(tmp_path / "t.json", [_row(0), bad]))
    assert (info.value.row, info.value.field) == (1, "test_time_limit")
    empty_but_mistyped = _row(1, test_input="5\n", question="")
    with pytest.raises(TaskFileError, match="expected a list of strings"):
        load_tasks(_write_json(tmp_path / "t.json", [empty_but_mistyped]))


def test_validate_reports_skippable_rows_as_warnings(tmp_path: Path) -> None:
    rows: list[object] = [_row(0), _row(1, test_input=[]), _row(2, question=""), _row(3, test_time_limit=0)]
    path = _write_json(tmp_path / "t.json", rows)
    report = validate_task_file(path)
    assert not report.ok and (report.n_rows, report.n_valid, report.n_skipped) == (4, 1, 2)
    assert [(p.row, p.field) for p in report.errors] == [(3, "test_time_limit")]
    assert [(p.row, p.skip_reason, p.severity) for p in report.warnings] == [
        (1, "no hidden tests", "warning"),
        (2, "no question", "warning"),
    ]
    only_skips = _write_json(tmp_path / "s.json", rows[:3])
    assert validate_task_file(only_skips).ok
    strict = validate_task_file(only_skips, strict=True)
    assert not strict.ok and len(strict.errors) == 2 and strict.warnings == []
    nothing_left = validate_task_file(_write_json(tmp_path / "n.json", rows[1:3]))
    assert not nothing_left.ok and "every row would be left out" in nothing_left.errors[0].message


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    rows: list[object] = [
        _row(0, task_id="a"),
        {"question": 3, "test_input": ["1"], "test_output": ["1", "2"], "test_time_limit": -1},
        "text",
        _row(3, task_id="a"),
        _row(4),
    ]
    report = validate_task_file(_write_json(tmp_path / "t.json", rows))
    assert not report.ok
    assert (report.n_rows, report.n_valid) == (5, 3)
    found = {(p.row, p.field) for p in report.problems}
    assert found == {(1, "question"), (1, "test_time_limit"), (1, "test_output"), (2, None), (3, None)}
    assert any("duplicate task id 'a'" in p.message for p in report.problems)


def test_validate_reports_syntax_error_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('[{"question": "x", "test_input": ["1"], "test_output": ["1"]}, {"question": }]')
    report = validate_task_file(path)
    assert report.n_rows == 1 and report.n_valid == 1
    assert len(report.problems) == 1 and "malformed JSON" in report.problems[0].message
    assert report.problems[0].row == 1


def test_validate_clean_and_empty(tmp_path: Path) -> None:
    assert validate_task_file(_write_jsonl(tmp_path / "ok.jsonl", [_row(0), _row(1)])).ok
    empty = _write_json(tmp_path / "empty.json", [])
    assert not validate_task_file(empty).ok
    assert load_tasks(empty) == []
    blank = tmp_path / "blank.json"
    blank.write_text("  \n")
    with pytest.raises(TaskFileError, match="empty"):
        load_tasks(blank)


def test_duplicate_ids_are_made_unique_on_load(tmp_path: Path) -> None:
    tasks = load_tasks(_write_json(tmp_path / "t.json", [_row(0, name="p"), _row(1, name="p")]))
    assert [t.task_id for t in tasks] == ["p", "p#1"]


def test_fingerprint_tracks_content_not_metadata_or_format(tmp_path: Path) -> None:
    rows = [_row(i) for i in range(3)]
    base = task_fingerprint(load_tasks(_write_json(tmp_path / "t.json", rows)))
    assert len(base) == 64
    same = task_fingerprint(load_tasks(_write_jsonl(tmp_path / "t.jsonl", [_row(i, note="x") for i in range(3)])))
    assert same == base
    changed = [_row(0), _row(1), _row(2, test_output=["6\n", "11\n"])]
    assert task_fingerprint(load_tasks(_write_json(tmp_path / "t.json", changed))) != base
    reordered = [rows[1], rows[0], rows[2]]
    assert task_fingerprint(load_tasks(_write_json(tmp_path / "t.json", reordered))) != base


def test_task_to_row_round_trips(tmp_path: Path) -> None:
    tasks = load_tasks(_write_json(tmp_path / "t.json", [_row(0, name="p", extra={"k": 1})]))
    again = load_tasks(_write_json(tmp_path / "t2.json", [task_to_row(t) for t in tasks]))
    assert again == tasks


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(TaskFileError):
        file_sha256(tmp_path / "nope")
