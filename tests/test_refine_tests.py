"""`cure refine --refine-tests` and `--feedback public` end to end against the scripted server (real sandbox):
the tester revises the test every program disagrees with, shown their outputs; round metrics worked out by hand;
no hidden input or output in any request body; a re-run asks nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers.refine_script import (
    ADD,
    CODE,
    HIDDEN_STRINGS,
    KEY,
    PLUS1,
    REVISION,
    SQUARE,
    SUB,
    TESTS,
    TWICE,
    Responder,
    kind,
    refine_args,
    words,
    write_tasks,
)


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    return write_tasks(tmp_path / "tasks.jsonl")


def rows(out: Path) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: r for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}


def test_refine_tests_revises_the_test_no_program_passes(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    responder = Responder()
    srv = fake_openai(responder=responder, api_key=KEY)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, refine_args(srv, tasks, out, "--rounds", "2", "--refine-tests"))
    assert result.exit_code == 0, result.output
    rounds = json.loads((out / "summary.json").read_text())["metrics"]["rounds"]

    # Round 1 starts with the tester: Y's test 2 3 -> 6 fails both Y programs (a+b prints 5, a-b prints -1), so it
    # is revised to 2 3 -> 5; X's tests are each passed by n*n, so they stay. Against the revised tests, Y.P0 (a+b)
    # passes everything and is kept (it is not broken, as it is without --refine-tests); X.P1 (n+1 -> 2n) and Y.P1
    # (a-b -> a+b) are repaired and both fixed. Round 2: every program passes every test; nothing is asked.
    assert [(r["tests_revised"], r["tests_fixed"], r["tests_broken"]) for r in rounds] == [(0, 0, 0), (1, 1, 0),
                                                                                           (0, 0, 0)]  # fmt: skip
    assert [(r["repaired"], r["fixed"], r["broken"]) for r in rounds] == [(0, 0, 0), (2, 2, 0), (0, 0, 0)]
    assert [r["code_acc"] for r in rounds] == pytest.approx([1 / 4, 3 / 4, 3 / 4])
    # unit_test_acc (tests every hidden-correct program passes, over tasks with one): round 0 only Y counts, 1 of 2;
    # from round 1 X has a correct program (2n) passing both its tests, and Y's two tests are both right: 4/4
    assert [r["unit_test_acc"] for r in rounds] == pytest.approx([1 / 2, 1.0, 1.0])
    # cure_first still submits X.P0 (n*n passes both tests, first index): only Y is solved
    assert [r["selected_acc"] for r in rounds] == pytest.approx([1 / 2, 1 / 2, 1 / 2])

    # spend: one tester request in round 1 on top of round 0's two; coder requests 2, then 2 repairs
    assert [r["tester_requests"] for r in rounds] == [2, 3, 3]
    assert [r["coder_requests"] for r in rounds] == [2, 4, 4]
    tester0 = sum(words(a) for a in TESTS["X"] + TESTS["Y"])
    revision = words(REVISION["Y"])
    assert [r["tester_tokens"] for r in rounds] == [tester0, tester0 + revision, tester0 + revision]
    coder0 = sum(words(a) for a in CODE["X"] + CODE["Y"])
    assert rounds[1]["coder_tokens"] == coder0 + sum(words(a) for a in responder.repair_answers)
    assert len(responder.repair_answers) == 2 and len(responder.revision_answers) == 1

    # the revision prompt shows the test and what the programs printed on its input, grouped by output
    (asked,) = [r for r in srv.requests if kind(r) == "revision"]
    prompt = asked.messages[-1]["content"]
    assert "TASK-Y" in prompt and "**Test Input:**\n```\n2 3\n" in prompt and "**Test Output:**\n```\n6\n" in prompt
    assert "None of the 2 candidate programs" in prompt
    assert "1 program printed:\n```\n5\n" in prompt and "1 program printed:\n```\n-1\n" in prompt

    # the trajectory: the test's versions with what the tester was shown; Y.P0 has one version, Y.P1 two
    y, x = rows(out)["Y"], rows(out)["X"]
    first = y["tests"][0]
    assert [(v["round"], v["input"].strip(), v["output"].strip()) for v in first] == [(0, "2 3", "6"), (1, "2 3", "5")]
    assert first[1]["shown"] == [{"programs": 1, "printed": "5\n", "verdict": "wrong_answer"},
                                 {"programs": 1, "printed": "-1\n", "verdict": "wrong_answer"}]  # fmt: skip
    assert [len(t) for t in y["tests"]] == [2, 1] and [len(t) for t in x["tests"]] == [1, 1]
    assert [[v["program"] for v in p] for p in y["programs"]] == [[ADD], [SUB, ADD]]
    assert [v["program"] for v in x["programs"][1]] == [CODE["X"][1].split("```python\n")[1].split("\n```")[0], TWICE]
    assert y["programs"][1][1]["feedback"][0]["expected"].strip() == "5"  # repaired against the revised test
    assert [r["passed"] for r in y["rounds"]] == [[1, 1], [2, 2], [2, 2]]

    # a re-run (what a resumed run after Ctrl-C does) asks nothing, and writes the same numbers
    before = srv.requests_total
    (out / "summary.json").unlink()
    again = CliRunner().invoke(app, refine_args(srv, tasks, out, "--rounds", "2", "--refine-tests"))
    assert again.exit_code == 0, again.output
    assert srv.requests_total == before
    assert json.loads((out / "summary.json").read_text())["metrics"]["rounds"] == rounds


def test_no_hidden_test_in_any_request(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    """Every body the server received, with every feedback source on: public examples yes, hidden tests never."""
    srv = fake_openai(responder=Responder(), api_key=KEY)
    out = tmp_path / "run"
    extra = ("--rounds", "2", "--refine-tests", "--feedback", "public", "--feedback-tests", "5", "--show-examples")
    result = CliRunner().invoke(app, refine_args(srv, tasks, out, *extra))
    assert result.exit_code == 0, result.output
    kinds = [kind(r) for r in srv.requests]
    assert {"coder", "tester", "repair", "revision"} <= set(kinds)  # every kind of prompt was sent
    bodies = [json.dumps(r.body) for r in srv.requests]
    assert any("1 1" in b for b, k in zip(bodies, kinds, strict=True) if k == "repair")  # a public example shown
    for body in bodies:
        for hidden in HIDDEN_STRINGS:
            assert hidden not in body, hidden
    # the scan can fail: the hidden tests are in the dataset the run read, and the programs were judged on them
    dataset = tasks.read_text()
    assert all(h in dataset for h in HIDDEN_STRINGS)
    assert all(len(v["hidden"]) == 2 for row in rows(out).values() for p in row["programs"] for v in p)


def test_identical_programs_get_independent_repairs(tmp_path: Path, fake_openai: Any) -> None:
    """Two copies of one program with the same failing tests are one request for two samples, not one answer
    shared: each copy gets its own repair, as bench's k samples of one prompt differ."""
    from tests.helpers.scripted_tasks import _code, _test

    task = {"task_id": "Z", "question": "TASK-Z: read n and print 2*n.", "test_time_limit": 2,
            "example_input": ["1\n"], "example_output": ["2\n"],
            "test_input": ["50\n"], "test_output": ["100\n"]}  # fmt: skip
    path = tmp_path / "z.jsonl"
    path.write_text(json.dumps(task) + "\n")

    def responder(messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        user = messages[-1]["content"]
        if "repair round" in user:
            return [_code(TWICE), _code(SQUARE)][:n]
        if "**Test Input:**" in user:
            return [_test("2", "4"), _test("3", "6")][:n]
        return [_code(PLUS1)] * n

    srv = fake_openai(responder=responder, api_key=KEY)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, refine_args(srv, path, out, "--rounds", "1"))
    assert result.exit_code == 0, result.output
    (asked,) = [r for r in srv.requests if kind(r) == "repair"]
    assert asked.n == 2
    (z,) = rows(out).values()
    assert [p[-1]["program"] for p in z["programs"]] == [TWICE, SQUARE]
    assert [p[-1]["hidden_correct"] for p in z["programs"]] == [True, False]
    rounds = json.loads((out / "summary.json").read_text())["metrics"]["rounds"]
    counts = [(r["repaired"], r["fixed"], r["broken"], r["coder_requests"]) for r in rounds]
    assert counts == [(0, 0, 0, 1), (2, 1, 0, 3)]
