"""Every converter on small hand-made inputs in its source format (built here, no downloads)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest

from cure_bench.errors import ConfigError, TaskFileError
from cure_bench.tasks.convert import ConvertOptions, convert, convert_rows
from cure_bench.tasks.convert.common import ConversionReport, read_rows, report_path
from cure_bench.tasks.convert.safe_pickle import UnsafePickleError, decode_test_cases, restricted_loads
from cure_bench.tasks.reader import load_tasks
from cure_bench.tasks.registry import load_dataset_tasks

FAST = ConvertOptions(workers=2)


def _write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows))
    return path


# --------------------------------------------------------------------------------------------------
# MBPP
# --------------------------------------------------------------------------------------------------


def _mbpp(task_id: int, code: str, tests: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "prompt": f"Task {task_id}.",
        "code": code,
        "test_list": tests,
        "test_imports": [],
        **extra,
    }


MBPP_ROWS = [
    _mbpp(11, "def add(a, b):\n    return a + b", ["assert add(1, 2) == 3", "assert add('a', 'b') == 'ab'"]),
    _mbpp(12, "def pairs(t):\n    return [(x, x) for x in t]", ["assert pairs((1, 2)) == [(1, 1), (2, 2)]"]),
    _mbpp(13, "def half(n):\n    return n / 2", ["assert half(4) == 2"]),  # prints 2.0: int/float
    _mbpp(14, "def sq(n):\n    return n * n", ["assert math.isclose(sq(1.1), 1.21)"], test_imports=["import math"]),
    _mbpp(15, "def first(s):\n    return min(s)", ["assert first({3, 1}) == 1"]),  # set argument
    _mbpp(16, "def grow(t):\n    return t + (1,)", ["assert grow((0,)) == (0, 1)"]),  # needs a real tuple
    _mbpp(17, "def inv(d):\n    return {v: k for k, v in d.items()}", ['assert inv({"a": "b"}) == {"b": "a"}']),
    _mbpp(5, "def x():\n    return 1", ["assert x() == 1"]),  # prompt split: not in the test split
    _mbpp(18, "def loop(n):\n    while True:\n        pass", ["assert loop(1) == 1"]),
    _mbpp(19, "def pi():\n    import math\n    return math.floor(math.pi)", ["assert pi() == 3"]),
]


@pytest.mark.slow
def test_mbpp_converts_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cure_bench.tasks.convert as convert_mod

    monkeypatch.setattr(convert_mod, "BATCH", 4)  # several batches through one sandbox, order kept
    out = tmp_path / "mbpp.json"
    executions: list[None] = []
    src = _write_json(tmp_path / "src.json", MBPP_ROWS)
    report = convert("mbpp", src, out, FAST, on_result=lambda: executions.append(None))
    assert len(executions) == 8  # one per (reference, converted test) of the 7 rows that reached the sandbox
    assert report.total == 9  # row 5 is outside the default test split
    assert report.verified and report.unverified == 0
    reasons = {row["id"]: row["reason"] for row in report.skipped_rows}
    assert reasons == {
        "mbpp/13": "int/float",
        "mbpp/14": "isclose",
        "mbpp/15": "non-JSON values",
        "mbpp/16": "tuples",
        "mbpp/18": "reference time limit",
    }
    tasks = {t.task_id: t for t in load_tasks(out)}
    assert list(tasks) == ["mbpp/11", "mbpp/12", "mbpp/17", "mbpp/19"]
    add = tasks["mbpp/11"]
    assert [(t.input, t.output) for t in add.hidden_tests] == [("1\n2\n", "3\n"), ('"a"\n"b"\n', '"ab"\n')]
    assert add.example_tests == add.hidden_tests[:1]
    assert "`add(a, b)`" in add.question and "json.dumps" in add.question
    assert tasks["mbpp/12"].hidden_tests[0].output == "[[1, 1], [2, 2]]\n"
    saved = json.loads(report_path(out).read_text())
    assert saved["converted"] == 4 and saved["skipped"]["int/float"] == 1


def test_mbpp_split_all_and_bad_split() -> None:
    options = ConvertOptions(verify=False, split="all")
    report = ConversionReport("mbpp", "", "")
    rows = convert_rows("mbpp", MBPP_ROWS, options, report)
    assert report.total == len(MBPP_ROWS) and "mbpp/5" in {r["task_id"] for r in rows}
    assert report.unverified == report.converted and "NOT run" in report.notes[0]
    with pytest.raises(ConfigError, match="--split 'dev'"):
        convert_rows("mbpp", MBPP_ROWS, ConvertOptions(verify=False, split="dev"))


# --------------------------------------------------------------------------------------------------
# HumanEval
# --------------------------------------------------------------------------------------------------


def _humaneval(n: int, prompt: str, body: str, entry: str, check: str) -> dict[str, Any]:
    test = f"\n\nMETADATA = {{}}\n\n\ndef check(candidate):\n{check}\n"
    return {
        "task_id": f"HumanEval/{n}",
        "prompt": prompt,
        "canonical_solution": body,
        "entry_point": entry,
        "test": test,
    }


@pytest.mark.slow
def test_humaneval_from_jsonl_gz(tmp_path: Path) -> None:
    rows = [
        _humaneval(
            0,
            'def rev(s: str) -> str:\n    """Reverse s."""\n',
            "    return s[::-1]\n",
            "rev",
            "    assert candidate('ab') == 'ba'\n    assert candidate('') == ''\n    assert True, 'noise'",
        ),
        _humaneval(
            1, "def two():\n", "    return 2\n", "two", "    for i in range(3):\n        assert candidate() == 2"
        ),
        _humaneval(2, "def third(x):\n", "    return x / 3\n", "third", "    assert abs(candidate(1) - 0.333) < 1e-3"),
    ]
    src = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(src, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    report = convert("humaneval", src, tmp_path / "he.jsonl", FAST)
    assert (report.total, report.converted) == (3, 1)
    assert dict(report.skipped) == {"non-literal test": 1, "isclose": 1}
    (task,) = load_tasks(tmp_path / "he.jsonl")
    assert task.task_id == "HumanEval/0" and len(task.hidden_tests) == 2
    assert task.hidden_tests[1] == type(task.hidden_tests[1])('""\n', '""\n')
    assert "```python\ndef rev(s: str) -> str:" in task.question


# --------------------------------------------------------------------------------------------------
# LiveCodeBench (code_generation_lite), incl. the pickled private tests
# --------------------------------------------------------------------------------------------------


def _pack(cases: list[dict[str, str]]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


class _Boom:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/cure-pwned-by-pickle",))


def _lcb(qid: str, public: list[dict[str, str]], private: str, **extra: Any) -> dict[str, Any]:
    return {
        "question_title": qid,
        "question_content": f"Problem {qid}.\nInput\n...\nOutput\n...",
        "platform": "atcoder",
        "question_id": qid,
        "contest_id": "abc1",
        "contest_date": "2024-03-02T00:00:00",
        "starter_code": "",
        "difficulty": "easy",
        "public_test_cases": json.dumps(public),
        "private_test_cases": private,
        "metadata": "{}",
        **extra,
    }


def test_lcb_stdin_functional_and_unsafe_pickle(tmp_path: Path) -> None:
    stdin_case = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]
    functional = [{"input": "[1,2]\n3", "output": "[0,1]", "testtype": "functional"}]
    rows = [
        _lcb("abc1_a", stdin_case, _pack([{"input": "5 5\n", "output": "10\n", "testtype": "stdin"}])),
        _lcb(
            "lc1",
            functional,
            json.dumps(functional),
            platform="leetcode",
            starter_code="class Solution:\n    def twoSum(self, nums, target):\n        ",
            metadata=json.dumps({"func_name": "twoSum"}),
            contest_date="2023-05-01T00:00:00",
        ),
        _lcb("evil", stdin_case, base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()),
        _lcb("garbage", stdin_case, "!!not base64 or json!!"),
        _lcb("mixed", stdin_case, json.dumps(functional)),
    ]
    out = tmp_path / "lcb.json"
    report = convert("lcb", _write_json(tmp_path / "lcb_src.json", rows), out, FAST)
    assert not Path("/tmp/cure-pwned-by-pickle").exists()
    assert dict(report.skipped) == {"unsafe pickle": 1, "undecodable tests": 1, "mixed test types": 1}
    tasks = {t.task_id: t for t in load_tasks(out)}
    a, lc = tasks["lcb/abc1_a"], tasks["lcb/lc1"]
    assert [(t.input, t.output) for t in a.hidden_tests] == [("1 2\n", "3\n"), ("5 5\n", "10\n")]
    assert [(t.input, t.output) for t in a.example_tests] == [("1 2\n", "3\n")]
    assert a.time_limit == 6.0 and a.metadata["io_format"] == "stdin"
    assert lc.hidden_tests[0].input == "[1,2]\n3" and lc.hidden_tests[0].output == "[0, 1]\n"  # json.dumps form
    assert "Solution().twoSum" in lc.question and "2 lines" in lc.question
    assert report.unverified == 2  # LiveCodeBench ships no reference solutions
    recent, _ = load_dataset_tasks(str(out), start_date="2024-01-01")
    assert [t.task_id for t in recent] == ["lcb/abc1_a"]


def test_restricted_unpickler() -> None:
    plain: dict[str, Any] = {"a": [1, 2.5, "x", None, True], "t": (1, 2), "s": {3}, "f": frozenset({4})}
    for protocol in (0, 2, 4, 5):
        assert restricted_loads(pickle.dumps(plain, protocol=protocol)) == plain
    assert restricted_loads(pickle.dumps({"b": b"y"}, protocol=4)) == {"b": b"y"}
    with pytest.raises(UnsafePickleError, match=r"_codecs\.encode"):  # protocol 2 bytes: a codec call, refused
        restricted_loads(pickle.dumps(b"y", protocol=2))
    for protocol in (0, 2, 5):
        with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
            restricted_loads(pickle.dumps(_Boom(), protocol=protocol))
    with pytest.raises(UnsafePickleError):
        decode_test_cases(base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode())
    assert not Path("/tmp/cure-pwned-by-pickle").exists()


def test_decode_caps_decompression() -> None:
    cases = [{"input": "0 " * 50_000, "output": "0\n", "testtype": "stdin"}] * 20
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()
    assert len(packed) < 5000  # small on the wire, ~2 MB inflated
    with pytest.raises(ValueError, match="exceeds 100000 bytes"):
        decode_test_cases(packed, limit=100_000)
    assert decode_test_cases(packed) == cases


# --------------------------------------------------------------------------------------------------
# CodeContests
# --------------------------------------------------------------------------------------------------


def _cc(name: str, solution: str | None, language: int = 3, **extra: Any) -> dict[str, Any]:
    solutions = {"language": [2, language], "solution": ["int main(){}", solution]} if solution else {}
    return {
        "name": name,
        "description": f"{name}: print the sum of two integers.",
        "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
        "private_tests": {"input": ["5 6\n"], "output": ["11\n"]},
        "generated_tests": {"input": ["0 0\n", "7 -7\n"], "output": ["0\n", "0\n"]},
        "solutions": solutions,
        "time_limit": {"seconds": 2, "nanos": 500000000},
        "input_file": "",
        "output_file": "",
        "difficulty": 7,
        **extra,
    }


@pytest.mark.slow
def test_codecontests(tmp_path: Path) -> None:
    good = "a, b = map(int, input().split())\nprint(a + b)\n"
    rows = [
        _cc("1_A. Sum", good),
        _cc("2_B. Any order", "a, b = map(int, input().split())\nprint(a + b + 1)\n"),  # needs a checker
        _cc("3_C. No python", None),
        _cc("4_D. Files", good, input_file="input.txt", output_file="output.txt"),
        _cc("5_E. Empty", good, private_tests={"input": [], "output": []}, generated_tests=None),
        _cc("6_F. Python2 only", "print 1", language=1),
    ]
    out = tmp_path / "cc.json"
    report = convert("codecontests", _write_json(tmp_path / "cc_src.json", rows), out, FAST)
    reasons = {row["id"]: row["reason"] for row in report.skipped_rows}
    assert reasons == {
        "codecontests/2_B. Any order": "reference fails its own test",
        "codecontests/4_D. Files": "file I/O",
        "codecontests/5_E. Empty": "no tests",
    }
    tasks = {t.task_id: t for t in load_tasks(out)}
    assert set(tasks) == {"codecontests/1_A. Sum", "codecontests/3_C. No python", "codecontests/6_F. Python2 only"}
    assert report.unverified == 2
    task = tasks["codecontests/1_A. Sum"]
    assert task.time_limit == 2.5
    assert [t.output for t in task.hidden_tests] == ["11\n", "0\n", "0\n"]
    assert [t.input for t in task.example_tests] == ["1 2\n"]
    capped = convert_rows("codecontests", rows[:1], ConvertOptions(verify=False, max_tests=1))
    assert capped[0]["test_input"] == ["5 6\n"]


# --------------------------------------------------------------------------------------------------
# Codeforces (open-r1)
# --------------------------------------------------------------------------------------------------


def _cf(pid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "contest_id": 1,
        "index": pid[-1],
        "title": f"Problem {pid}",
        "description": "Print n + 1.",
        "input_format": "One integer n.",
        "output_format": "n + 1.",
        "note": "",
        "time_limit": 2.0,
        "memory_limit": 256.0,
        "examples": [{"input": "1\n", "output": "2\n"}],
        "official_tests": [{"input": "5\n", "output": "6\n"}, {"input": "9\n", "output": "10\n"}],
        "official_tests_complete": True,
        "input_mode": "stdio",
        "generated_checker": None,
        "interaction_format": None,
        "contest_start": 1700000000,
        "rating": 800,
        "tags": ["math"],
        **extra,
    }


def test_codeforces(tmp_path: Path) -> None:
    rows = [
        _cf("1A"),
        _cf("1B", interaction_format="Interact with the jury."),
        _cf("1C", generated_checker="def check(): ..."),
        _cf("1D", input_mode="file"),
        _cf("1E", official_tests=[]),
        _cf("1F", time_limit=None, note="Think.", contest_start=1500000000),
    ]
    src = tmp_path / "cf.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "cf.json"
    report = convert("codeforces", src, out, FAST)
    assert dict(report.skipped) == {"interactive": 1, "special checker": 1, "file I/O": 1, "no tests": 1}
    tasks = {t.task_id: t for t in load_tasks(out)}
    a, f = tasks["codeforces/1A"], tasks["codeforces/1F"]
    assert a.time_limit == 2.0 and f.time_limit == 1.0
    assert a.question.startswith("Problem 1A\n\nPrint n + 1.\n\nInput\nOne integer n.\n\nOutput\nn + 1.")
    assert "Note\nThink." in f.question
    assert a.metadata["contest_date"] == "2023-11-14" and f.metadata["contest_date"] == "2017-07-14"
    late, _ = load_dataset_tasks(str(out), start_date="2020-01-01")
    assert [t.task_id for t in late] == ["codeforces/1A"]


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def test_output_paths_are_checked(tmp_path: Path) -> None:
    src = _write_json(tmp_path / "src.json", [_cf("1A")])
    with pytest.raises(ConfigError, match="overwrite the input"):
        convert("codeforces", src, src)
    with pytest.raises(ConfigError, match=r"must end in \.json"):
        convert("codeforces", src, tmp_path / "out.txt")
    with pytest.raises(ConfigError, match="--from 'apps'"):
        convert("apps", src, tmp_path / "out.json")
    with pytest.raises(TaskFileError, match="no such file"):
        convert("codeforces", tmp_path / "missing.json", tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_written_files_are_complete_and_readable(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "cf.jsonl"
    convert("codeforces", _write_json(tmp_path / "src.json", [_cf("1A"), _cf("2A")]), out)
    assert len(out.read_text().splitlines()) == 2
    assert out.stat().st_mode & 0o044  # group/other may read it, as with a plain open()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_parquet_source(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [_cf("1A"), _cf("2A")]
    table = pa.Table.from_pylist(
        [{k: json.dumps(v) if k in ("examples", "official_tests") else v for k, v in r.items()} for r in rows]
    )
    pq.write_table(table, tmp_path / "cf.parquet")
    got = list(read_rows(tmp_path / "cf.parquet"))
    assert [r["id"] for r in got] == ["1A", "2A"]
