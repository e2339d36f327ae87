"""The LiveCodeBench and CodeContests converters on rows the sources really ship (tests/fixtures/real_rows).

Each converted task is judged in the sandbox: a program we know to be correct (tests/fixtures/real_rows/solutions)
must be accepted on every converted test, and a wrong one must not, so a converter that mispaired, cut or
reordered tests would fail here. See the fixtures' README for where each row comes from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cure_bench.tasks.convert import ConvertOptions, convert
from cure_bench.tasks.reader import load_tasks, validate_task_file
from cure_bench.tasks.registry import load_dataset_tasks
from cure_bench.types import Task, Verdict

pytestmark = pytest.mark.slow

ROWS = Path(__file__).resolve().parent / "fixtures" / "real_rows"
SOLUTIONS = ROWS / "solutions"
WRONG = "import sys\nsys.stdin.read()\nprint('NO')\n"


def _verdicts(task: Task, program: str) -> list[Verdict]:
    from cure_bench.sandbox import Sandbox, TableSpec, build_tables

    spec = TableSpec(task.task_id, [program], [*task.example_tests, *task.hidden_tests], [], task.time_limit)
    with Sandbox(workers=2, use_cache=False) as box:
        (table,) = build_tables(box, [spec])
    return list(table.hidden[0])


def _row(name: str) -> dict[str, Any]:
    (line,) = (ROWS / name).read_text(encoding="utf-8").splitlines()
    return json.loads(line)


@pytest.mark.parametrize("public_as_json_text", [False, True])
def test_lcb_real_row_converts_with_its_pickled_private_tests(tmp_path: Path, public_as_json_text: bool) -> None:
    row = _row("lcb_code_generation_lite.jsonl")
    if public_as_json_text:  # the hub stores public_test_cases as JSON text; the Kaggle copy as a list
        row["public_test_cases"] = json.dumps(row["public_test_cases"])
    source = tmp_path / "lcb.jsonl"
    source.write_text(json.dumps(row) + "\n")
    out = tmp_path / "lcb_tasks.json"
    report = convert("lcb", source, out, ConvertOptions(workers=2))
    assert (report.total, report.converted, dict(report.skipped)) == (1, 1, {})
    assert validate_task_file(out).ok
    (task,) = load_tasks(out)
    assert task.task_id == "lcb/1873_A" and task.time_limit == 6.0
    assert task.metadata["platform"] == "codeforces" and task.metadata["io_format"] == "stdin"
    assert [(t.input, t.output) for t in task.example_tests] == [
        ("6\nabc\nacb\nbac\nbca\ncab\ncba\n", "YES\nYES\nYES\nNO\nNO\nYES\n")
    ]
    # public + the 4 private tests decoded from the base64/zlib/pickle blob, in order
    assert len(task.hidden_tests) == 5
    assert (task.hidden_tests[1].input, task.hidden_tests[1].output) == ("1\nabc\n", "YES\n")
    assert (task.hidden_tests[3].input, task.hidden_tests[3].output) == (
        "5\ncab\nacb\ncba\nbac\nbca\n",
        "NO\nYES\nYES\nYES\nNO\n",
    )
    solution = (SOLUTIONS / "lcb_1873A_short_sort.py").read_text()
    assert set(_verdicts(task, solution)) == {Verdict.ACCEPTED}
    assert Verdict.WRONG_ANSWER in _verdicts(task, WRONG)
    dated, _ = load_dataset_tasks(str(out), start_date="2023-08-21", end_date="2023-08-21")
    assert [t.task_id for t in dated] == ["lcb/1873_A"]  # contest_date survives for date windows


def test_codecontests_real_row_converts_unverified_then_verified_with_a_python_reference(tmp_path: Path) -> None:
    row = _row("code_contests.jsonl")
    source = tmp_path / "cc.jsonl"
    source.write_text(json.dumps(row) + "\n")
    out = tmp_path / "cc_tasks.json"
    report = convert("codecontests", source, out, ConvertOptions(workers=2))
    # only C++ solutions in the row: kept, but counted as converted without a reference run
    assert (report.total, report.converted, report.unverified, dict(report.skipped)) == (1, 1, 1, {})
    (task,) = load_tasks(out)
    assert task.task_id == "codecontests/76_B. Mice"
    assert task.time_limit == 0.5  # {"seconds": 0, "nanos": 500000000}
    assert [t.output for t in task.example_tests] == ["1\n"]
    assert [t.output for t in task.hidden_tests] == ["1\n", "1\n", "2\n"]  # private, then generated
    assert task.metadata["cf_rating"] == 2100 and task.metadata["memory_limit_bytes"] == 256000000
    assert "reference_solution" not in task.metadata
    solution = (SOLUTIONS / "cc_76B_mice.py").read_text()
    assert set(_verdicts(task, solution)) == {Verdict.ACCEPTED}

    # the same row with our Python 3 solution among its solutions: the converter runs it on every test
    with_python = {**row, "solutions": {"language": [2, 3], "solution": [row["solutions"]["solution"][0], solution]}}
    source.write_text(json.dumps(with_python) + "\n")
    verified = convert("codecontests", source, tmp_path / "cc_verified.json", ConvertOptions(workers=2))
    assert (verified.converted, verified.unverified, verified.verified) == (1, 0, True)
    wrong = {**row, "solutions": {"language": [3], "solution": ["print(0)"]}}
    source.write_text(json.dumps(wrong) + "\n")
    refused = convert("codecontests", source, tmp_path / "cc_wrong.json", ConvertOptions(workers=2))
    assert (refused.converted, dict(refused.skipped)) == (0, {"reference fails its own test": 1})
