"""`cure refine` end to end: scripted 127.0.0.1 server whose coder answers repair prompts, real sandbox,
round metrics worked out by hand (see the comments), hidden tests never in a request, rerun asks nothing."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers.refine_script import (
    ADD,
    ADD1,
    CODE,
    HIDDEN_STRINGS,
    KEY,
    TESTS,
    Responder,
    kind,
    refine_args,
    words,
    write_tasks,
)


def args(srv: Any, tasks: Path, out: Path, *extra: str) -> list[str]:
    return refine_args(srv, tasks, out, *extra)


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    return write_tasks(tmp_path / "tasks.jsonl")


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

    # the ranker's pick per round: X always P0 (n*n passes both tests first); Y P0, P0, P0 (ties -> first index)
    assert [[r["selected"] for r in row["rounds"]] for row in rows] == [[0, 0, 0], [0, 0, 0]]
    assert [r["selected_correct"] for r in y["rounds"]] == [True, False, True]

    # each repair is asked once, and round 2's Y.P1 (a+b shown 2 3 -> 6, exactly what Y.P0 was shown in round 1)
    # is a new request: the round is in the cache key
    repairs_asked = [json.dumps(r.messages) for r in srv.requests if kind(r) == "repair"]
    assert len(repairs_asked) == len(set(repairs_asked)) == 5

    # hidden tests never reach a request (every body the server received)
    for request in srv.requests:
        text = json.dumps(request.body)
        for hidden in HIDDEN_STRINGS:
            assert hidden not in text, hidden

    # cure report reads a refine run: accuracy per round with CIs, and a plot
    rep = CliRunner().invoke(app, ["report", str(out), "--json", "--resamples", "200", "--draws", "8",
                                   "-o", str(tmp_path / "rep")])  # fmt: skip
    assert rep.exit_code == 0, rep.output
    per_round = json.loads(rep.stdout[rep.stdout.index("{") : rep.stdout.rindex("}") + 1])["refine_rounds"][str(out)]
    assert [r["code_acc"]["value"] for r in per_round] == pytest.approx([1 / 4, 2 / 4, 2 / 4])
    assert all(r["code_acc"]["ci_low"] <= r["code_acc"]["value"] <= r["code_acc"]["ci_high"] for r in per_round)
    assert [r["selected_acc"]["value"] for r in per_round] == pytest.approx([1 / 2, 0.0, 1 / 2])
    # two tasks: a resample draws Y (right at rounds 0 and 2) zero, one or two times
    assert [(r["selected_acc"]["ci_low"], r["selected_acc"]["ci_high"]) for r in per_round] == [
        (0.0, 1.0), (0.0, 0.0), (0.0, 1.0)]  # fmt: skip
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
    bench_args = ["bench", "--model", "fake", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
                  "--k-code", "2", "--k-case", "2", "--bon", "2x2", "-o", str(tmp_path / "bench"),
                  "--workers", "2"]  # fmt: skip
    assert CliRunner().invoke(app, bench_args).exit_code == 0
    bench = json.loads((tmp_path / "bench" / "summary.json").read_text())
    refine = json.loads((tmp_path / "refine" / "summary.json").read_text())
    # summary.json: bench's metrics and counts exactly, plus the rounds; round 0 is bench's keys plus the spend
    assert {k: v for k, v in refine["metrics"].items() if k != "rounds"} == bench["metrics"]
    assert refine["counts"] == bench["counts"]
    (round0,) = refine["metrics"]["rounds"]
    assert {k: round0[k] for k in bench["metrics"]} == bench["metrics"]
    assert set(round0) - set(bench["metrics"]) == {
        "ranker", "selected_acc", "coder_tokens", "tester_tokens", "coder_requests", "tester_requests",
        "repaired", "fixed", "broken", "tests_revised", "tests_fixed", "tests_broken"}  # fmt: skip
    assert round0["selected_acc"] == bench["metrics"]["bon"]["2x2"]["acc"]
    # samples: the round-0 run inside is bench's, line for line (the same answers, tests and verdict tables)
    bench_rows = (tmp_path / "bench" / "samples.jsonl").read_text().splitlines()
    round0_rows = (tmp_path / "refine" / "round-0" / "samples.jsonl").read_text().splitlines()
    assert round0_rows == bench_rows
    # and the trajectories hold round 0's programs and tests only
    rows = [json.loads(line) for line in (tmp_path / "refine" / "samples.jsonl").read_text().splitlines()]
    for row, bench_row in zip(rows, map(json.loads, bench_rows), strict=True):
        assert [[v["program"] for v in p] for p in row["programs"]] == [[p] for p in bench_row["programs"]]
        assert [[(v["input"], v["output"]) for v in t] for t in row["tests"]] == [
            [(t["input"], t["output"])] for t in bench_row["generated_tests"]]  # fmt: skip


def test_ranker_by_name_picks_each_round(tmp_path: Path, tasks: Path, fake_openai: Any) -> None:
    srv = fake_openai(responder=Responder(), api_key=KEY)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, args(srv, tasks, out, "--rounds", "1", "--ranker", "codet"))
    assert result.exit_code == 0, result.output
    rounds = json.loads((out / "summary.json").read_text())["metrics"]["rounds"]
    # CodeT groups programs by the tests they pass and scores #tests x sqrt(#programs). Round 0: X P0 {t0,t1}
    # beats P1 {} (wrong); Y P0 and P1 both pass {t1}: one group, uniform -> 1/2 (P0 right). Round 1: X P0, P1
    # (2n) both pass {t0,t1}: uniform, 1/2; Y P0 a+b+1 {t0}, P1 a+b {t1}: tied groups, uniform, 1/2.
    assert [r["bon"]["2x2"]["codet_acc"] for r in rounds] == pytest.approx([1 / 4, 1 / 2])
    # the submitted program is the lowest index among the heaviest: X P0 (wrong) both rounds; Y P0, right then not
    assert [r["selected_acc"] for r in rounds] == pytest.approx([1 / 2, 0.0])
    # the summary rankers' numbers stay as bench writes them (CURE's first index, tie-aware)
    assert [r["bon"]["2x2"]["acc"] for r in rounds] == pytest.approx([1 / 2, 0.0])
    assert [r["ranker"] for r in rounds] == ["codet", "codet"]


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
        (["--feedback", "hidden"], "--feedback must be one of generated, public (got 'hidden')"),
        (["--k-case", "0"], "cure refine needs generated tests: --k-case must be >= 1 (got 0)"),
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
