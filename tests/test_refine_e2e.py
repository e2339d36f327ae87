"""`cure refine` end to end: scripted 127.0.0.1 server whose coder answers repair prompts, real sandbox,
round metrics worked out by hand (see the comments), hidden tests never in a request, rerun asks nothing."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers.scripted_tasks import _code, _test

KEY = "sk-test"
TWICE = "print(2 * int(input()))"
SQUARE = "n = int(input())\nprint(n * n)"
PLUS1 = "print(int(input()) + 1)"
ADD = "a, b = map(int, input().split())\nprint(a + b)"
ADD1 = "a, b = map(int, input().split())\nprint(a + b + 1)"
SUB = "a, b = map(int, input().split())\nprint(a - b)"

TASKS = [
    {"task_id": "X", "question": "TASK-X: read n and print 2*n.", "test_time_limit": 2,
     "example_input": ["1\n"], "example_output": ["2\n"],
     "test_input": ["12345\n", "777\n"], "test_output": ["24690\n", "1554\n"]},
    {"task_id": "Y", "question": "TASK-Y: read a and b and print a+b.", "test_time_limit": 2,
     "example_input": ["1 1\n"], "example_output": ["2\n"],
     "test_input": ["1001 2002\n", "4444 5555\n"], "test_output": ["3003\n", "9999\n"]},
]  # fmt: skip
HIDDEN_STRINGS = ["12345", "24690", "1554", "1001 2002", "3003", "4444 5555", "9999"]

# Round 0 (k_code 2, k_case 2). X: P0 n*n passes both generated tests (2->4, 0->0) yet is wrong on hidden, so it
# is never repaired; P1 n+1 fails both. Y: P0 a+b is right, but the wrong test (2 3 -> 6) fails it; P1 a-b fails it.
CODE = {"X": [_code(SQUARE), _code(PLUS1)], "Y": [_code(ADD), _code(SUB)]}
TESTS = {"X": [_test("2", "4"), _test("0", "0")], "Y": [_test("2 3", "6"), _test("0 0", "0")]}
# Repairs, by the program shown: n+1 -> 2n (fixed); a+b -> a+b+1 (broken: passes 2 3 -> 6, fails 0 0 -> 0);
# a-b -> a+b (fixed); a+b+1 -> a+b (fixed again in round 2).
REPAIR = {PLUS1: TWICE, ADD: ADD1, SUB: ADD, ADD1: ADD}


class Responder:
    def __init__(self) -> None:
        self.repair_answers: list[str] = []

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        user = messages[-1]["content"]
        task = re.search(r"TASK-([A-Z])", user)
        assert task is not None
        if "repair round" in user:
            shown = re.search(r"```python\n(.*?)\n```", user, re.S)
            assert shown is not None
            answer = _code(REPAIR[shown.group(1)])
            self.repair_answers.append(answer)
            return [answer] * n
        pool = (TESTS if "**Test Input:**" in user else CODE)[task.group(1)]
        return [pool[i % len(pool)] for i in range(n)]


def args(srv: Any, tasks: Path, out: Path, *extra: str) -> list[str]:
    return ["refine", "--model", "fake", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
            "--k-code", "2", "--k-case", "2", "--bon", "2x2", "-o", str(out), "--workers", "2", "--json",
            *extra]  # fmt: skip


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in TASKS) + "\n", encoding="utf-8")
    return path


def words(text: str) -> int:
    return len(text.split())


def test_refine_round_metrics_equal_hand_worked(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    responder = Responder()
    srv = fake_openai(responder=responder, api_key=KEY)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, args(srv, tasks, out, "--rounds", "2"))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    rounds = summary["metrics"]["rounds"]
    assert len(rounds) == 3
    # code_acc: round 0 only Y.P0 right (1/4); round 1 X.P1 and Y.P1 (2/4); round 2 X.P1 and Y.P0 (2/4)
    assert [r["code_acc"] for r in rounds] == pytest.approx([1 / 4, 2 / 4, 2 / 4])
    # round 1: X.P1, Y.P0, Y.P1 repaired; X.P1 and Y.P1 fixed, Y.P0 broken. X.P0 (wrong, passes all) untouched.
    # round 2: Y.P0 (a+b+1 fails 0 0 -> 0) and Y.P1 (a+b fails 2 3 -> 6) repaired: one fixed, one broken.
    assert [(r["repaired"], r["fixed"], r["broken"]) for r in rounds] == [(0, 0, 0), (3, 2, 1), (2, 1, 1)]
    # cure_first picks: X P0 (n*n passes both) every round -> wrong; Y ties -> P0: right, wrong (a+b+1), right
    assert [r["selected_acc"] for r in rounds] == pytest.approx([1 / 2, 0.0, 1 / 2])
    assert [r["bon"]["2x2"]["acc"] for r in rounds] == pytest.approx([1 / 2, 0.0, 1 / 2])
    assert [r["coder_requests"] for r in rounds] == [2, 5, 7]
    assert [r["tester_requests"] for r in rounds] == [2, 2, 2]
    round0 = sum(words(a) for a in CODE["X"] + CODE["Y"])
    repairs = [words(a) for a in responder.repair_answers]
    assert [r["coder_tokens"] for r in rounds] == [round0, round0 + sum(repairs[:3]), round0 + sum(repairs)]
    assert rounds[0]["tester_tokens"] == sum(words(a) for a in TESTS["X"] + TESTS["Y"])

    # trajectories: every version of every program, with the feedback it got
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    x, y = rows
    assert len(x["programs"][0]) == 1 and x["programs"][0][0]["hidden_correct"] is False
    assert [v["program"] for v in y["programs"][0]] == [ADD, ADD1, ADD]
    assert y["programs"][0][1]["feedback"][0] == {
        "input": "2 3\n", "expected": "6\n", "printed": "5\n", "verdict": "wrong_answer", "stderr_tail": "",
        "source": "generated"}  # fmt: skip

    # hidden tests never reach a request
    for request in srv.requests:
        text = json.dumps(request.messages)
        for hidden in HIDDEN_STRINGS:
            assert hidden not in text, hidden

    # cure report reads a refine run: accuracy per round with CIs, and a plot
    rep = CliRunner().invoke(app, ["report", str(out), "--json", "--resamples", "200", "--draws", "8",
                                   "-o", str(tmp_path / "rep")])  # fmt: skip
    assert rep.exit_code == 0, rep.output
    per_round = json.loads(rep.stdout[rep.stdout.index("{") : rep.stdout.rindex("}") + 1])["refine_rounds"][str(out)]
    assert [r["code_acc"]["value"] for r in per_round] == pytest.approx([1 / 4, 2 / 4, 2 / 4])
    assert all(r["code_acc"]["ci_low"] <= r["code_acc"]["value"] <= r["code_acc"]["ci_high"] for r in per_round)
    assert (tmp_path / "rep" / "run_rounds.png").stat().st_size > 0

    # re-run (what a resumed run after Ctrl-C does): nothing asked twice, even with summary.json gone
    before = srv.requests_total
    (out / "summary.json").unlink()
    again = CliRunner().invoke(app, args(srv, tasks, out, "--rounds", "2"))
    assert again.exit_code == 0, again.output
    assert srv.requests_total == before
    assert json.loads((out / "summary.json").read_text())["metrics"]["rounds"] == rounds


def test_rounds_zero_is_bench(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    srv = fake_openai(responder=Responder(), api_key=KEY)
    result = CliRunner().invoke(app, args(srv, tasks, tmp_path / "refine", "--rounds", "0"))
    assert result.exit_code == 0, result.output
    bench_args = [
        "bench",
        "--model",
        "fake",
        "--dataset",
        str(tasks),
        "--base-url",
        srv.base_url,
        "--api-key",
        KEY,
        "--k-code",
        "2",
        "--k-case",
        "2",
        "--bon",
        "2x2",
        "-o",
        str(tmp_path / "bench"),
        "--workers",
        "2",
    ]
    assert CliRunner().invoke(app, bench_args).exit_code == 0
    bench = json.loads((tmp_path / "bench" / "summary.json").read_text())["metrics"]
    refine = json.loads((tmp_path / "refine" / "summary.json").read_text())["metrics"]
    assert len(refine["rounds"]) == 1
    for key, value in bench.items():
        assert refine[key] == value, key
        if key in refine["rounds"][0]:
            assert refine["rounds"][0][key] == value, key


def test_public_feedback_adds_examples(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    srv = fake_openai(responder=Responder(), api_key=KEY)
    result = CliRunner().invoke(app, args(srv, tasks, tmp_path / "run", "--rounds", "1", "--feedback", "public"))
    assert result.exit_code == 0, result.output
    # only the examples a program fails are shown: Y.P1 (a-b) prints 0 on "1 1"; X.P1 (n+1) passes "1" -> 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    public = {(r["task_id"], i): [f for f in p[1]["feedback"] if f["source"] == "public"]
              for r in rows for i, p in enumerate(r["programs"]) if len(p) > 1}  # fmt: skip
    assert public == {("X", 1): [], ("Y", 0): [],
                      ("Y", 1): [{"input": "1 1\n", "expected": "2\n", "printed": "0\n", "verdict": "wrong_answer",
                                  "stderr_tail": "", "source": "public"}]}  # fmt: skip
    repairs = [json.dumps(r.messages) for r in srv.requests if "a - b" in json.dumps(r.messages)]
    assert len(repairs) == 1 and "Input:\\n```\\n1 1" in repairs[0]


def test_budget_baseline_spends_the_refinement_tokens(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    responder = Responder()
    srv = fake_openai(responder=responder, api_key=KEY)
    result = CliRunner().invoke(app, args(srv, tasks, tmp_path / "run", "--rounds", "1", "--budget-baseline"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    base = metrics["budget_baseline"]
    round0 = sum(words(a) for a in CODE["X"] + CODE["Y"])
    spent = sum(words(a) for a in responder.repair_answers)
    assert spent == metrics["rounds"][1]["coder_tokens"] - round0
    extra = math.ceil(spent / (round0 / 4) / 2)
    k = 2 + extra
    assert base["programs_per_task"] == k and base["extra_programs_per_task"] == extra
    # extra samples cycle the same answers: X never right; Y alternates a+b, a-b -> ceil(k/2) right
    assert base["code_acc"] == pytest.approx(math.ceil(k / 2) / (2 * k))
    assert base["selected_acc"] == pytest.approx(1 / 2)  # X picks n*n (passes both); Y ties -> P0 a+b
    coder_requests = [r for r in srv.requests if "**Test Input:**" not in json.dumps(r.messages)
                      and "repair round" not in json.dumps(r.messages)]  # fmt: skip
    assert sorted(r.n for r in coder_requests) == [2, 2, extra, extra]  # round 0's two samples came from the cache


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rounds", "-1"], "--rounds must be >= 0"),
        (["--feedback-tests", "0"], "--feedback-tests must be >= 1"),
        (["--ranker", "nope"], "--ranker: unknown ranker 'nope'"),
    ],
)
def test_bad_input_fails_before_any_request(tmp_path: Path, tasks: Path, fake_openai: Any, extra: list[str],
                                            message: str) -> None:  # fmt: skip
    srv = fake_openai(responder=Responder(), api_key=KEY)
    result = CliRunner().invoke(app, args(srv, tasks, tmp_path / "run", *extra))
    assert result.exit_code != 0
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert srv.requests_total == 0 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_in_a_repair_round_then_rerun_asks_nothing_twice(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    def slow_repairs(body: dict[str, Any]) -> float:
        return 0.5 if "repair round" in json.dumps(body) else 0.0

    srv = fake_openai(responder=Responder(), api_key=KEY, latency=slow_repairs)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cure_bench.cli.main", *args(srv, tasks, out, "--rounds", "2"), "--concurrency", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def repairs() -> int:
        return sum("repair round" in json.dumps(r.messages) for r in srv.requests)

    deadline = time.time() + 60
    while repairs() < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0, stderr
    assert not (out / "summary.json").exists()
    first = repairs()
    assert 2 <= first < 5

    srv.latency = 0.0
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    # 3 repairs in round 1 and 2 in round 2, each asked once over both runs (an answer in flight at Ctrl-C
    # was never stored, so it is the only one that may be asked again)
    delivered = [r for r in srv.requests if "repair round" in json.dumps(r.messages) and r.choices]
    assert len({json.dumps(r.messages) for r in delivered}) == 5
    assert len(delivered) <= 6
    rounds = json.loads((out / "summary.json").read_text())["metrics"]["rounds"]
    assert [(r["repaired"], r["fixed"], r["broken"]) for r in rounds] == [(0, 0, 0), (3, 2, 1), (2, 1, 1)]
