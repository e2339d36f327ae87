"""`cure bench` / `cure bon` end to end: scripted local OpenAI server, real sandbox, hand-computed metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers.scripted_tasks import EXPECTED, EXPECTED_CHAT, TASKS, ScriptedResponder, write_task_file

pytestmark = pytest.mark.slow

KEY = "sk-test-key"
HEADLINE = ("code_acc", "code_accumulate_acc", "unit_test_acc", "unit_test_accumulate_acc", "p01", "p00", "pass@1")


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def bench_args(srv, tasks: Path, out: Path, *extra: str) -> list[str]:
    return [
        "bench", "--model", "fake-coder", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
        "--k-code", "4", "--k-case", "4", "--bon", "4x1,4x4,2x2", "-o", str(out), "--workers", "2", *extra,
    ]  # fmt: skip


def assert_expected_metrics(metrics: dict, expected: dict = EXPECTED) -> None:
    for key in HEADLINE:
        assert metrics[key] == pytest.approx(expected[key]), key
    assert set(metrics["bon"]) == set(expected["bon"])
    for nxm, values in expected["bon"].items():
        assert metrics["bon"][nxm]["acc"] == pytest.approx(values["acc"]), nxm
        assert metrics["bon"][nxm]["accumulate_acc"] == pytest.approx(values["accumulate_acc"]), nxm


def test_bench_metrics_equal_hand_computed_and_rerun_asks_nothing(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"
    result = invoke(*bench_args(srv, tasks, out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert_expected_metrics(summary["metrics"])
    assert json.loads(result.stdout[result.stdout.index("{") :].split("\nresults:")[0])["metrics"] == summary["metrics"]

    counts = summary["counts"]
    assert counts["no_program"] == 1
    assert counts["dropped_test_answers"] == 5
    assert counts["generated_tests"] == 7
    run = summary["run"]
    assert run["dataset"]["sha256"] and run["dataset"]["fingerprint"] and run["prompts"]["sha256"]
    assert run["coder"]["model"] == "fake-coder" and run["coder"]["backend"] == "openai"
    assert run["k_code"] == 4 and run["k_case"] == 4 and run["sandbox"]
    assert KEY not in (out / "summary.json").read_text()

    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in rows] == ["A", "B", "C"]
    assert rows[0]["programs"][3] is None and rows[0]["dropped_test_answers"] == 1
    assert rows[0]["table"]["hidden"][2] == ["wrong_answer", "wrong_answer"]
    assert rows[0]["table"]["hidden"][3] == ["no_program", "no_program"]

    # one request per (task, role), each asking n=4: the prompt goes out once, not k times
    assert sorted(r.n for r in srv.requests) == [4] * 6
    before = srv.requests_total
    again = invoke(*bench_args(srv, tasks, out))
    assert again.exit_code == 0, again.output
    assert srv.requests_total == before  # everything came from the cache
    assert json.loads((out / "summary.json").read_text())["metrics"] == summary["metrics"]
    assert summary["run"]["protocol"]["name"] == "cure" and summary["counts"]["dropped_tasks"] == 0

    # the same answers under --protocol chat give today's numbers (BoN accumulate averaged per task)
    chat_srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    chat = invoke(*bench_args(chat_srv, tasks, tmp_path / "chat"), "--protocol", "chat")
    assert chat.exit_code == 0, chat.output
    chat_summary = json.loads((tmp_path / "chat" / "summary.json").read_text())
    assert_expected_metrics(chat_summary["metrics"], EXPECTED_CHAT)
    assert chat_summary["run"]["protocol"]["name"] == "chat" and "dropped_tasks" not in chat_summary["counts"]


def test_single_mode_generates_no_tests(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "single"
    result = invoke(*bench_args(srv, tasks, out), "--single")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    assert metrics["code_acc"] == pytest.approx(EXPECTED["code_acc"])
    assert metrics["code_accumulate_acc"] == pytest.approx(EXPECTED["code_accumulate_acc"])
    assert ("unit_test_acc" not in metrics and "bon" not in metrics) or not metrics.get("bon")
    assert all("**Test Input:**" not in r.messages[-1]["content"] for r in srv.requests)
    assert srv.requests_total == len(TASKS)


def test_bon_with_separate_coder_and_tester_servers(tmp_path, fake_openai):
    responder = ScriptedResponder()
    coder_srv = fake_openai(responder=responder, api_key=KEY)
    tester_srv = fake_openai(responder=responder, api_key="tester-key")
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "bon"
    result = invoke(
        "bon", "--coder", "coder-model", "--tester", "tester-model", "--dataset", str(tasks),
        "--coder-base-url", coder_srv.base_url, "--coder-api-key", KEY,
        "--tester-base-url", tester_srv.base_url, "--tester-api-key", "tester-key",
        "--k-code", "4", "--k-case", "4", "--bon", "4x1,4x4,2x2", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert_expected_metrics(summary["metrics"])
    assert summary["run"]["mode"] == "bon"
    assert summary["run"]["coder"]["model"] == "coder-model"
    assert summary["run"]["tester"]["model"] == "tester-model"
    assert all("**Test Input:**" not in r.messages[-1]["content"] for r in coder_srv.requests)
    assert all("**Test Input:**" in r.messages[-1]["content"] for r in tester_srv.requests)
    assert {r.model for r in tester_srv.requests} == {"tester-model"}


def test_retries_429_and_500(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY, faults=[429, 500, 429, None, 503])
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "retry"
    result = invoke(*bench_args(srv, tasks, out))
    assert result.exit_code == 0, result.output
    assert_expected_metrics(json.loads((out / "summary.json").read_text())["metrics"])
    assert srv.requests_total == 6 + 4


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "tasks.json"),
        ("malformed", "tasks.json"),
        ("no_question", "question"),
        ("unknown_name", "NoSuchDataset"),
    ],
)
def test_bad_dataset_inputs_give_one_line_errors(tmp_path, fake_openai, setup, message):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    path = tmp_path / "tasks.json"
    if setup == "malformed":
        path.write_text('[{"question": "x", ')
    elif setup == "no_question":  # a row upstream skips: refused under --strict (left out otherwise, see below)
        path.write_text(json.dumps([{**TASKS[0]}, {k: v for k, v in TASKS[1].items() if k != "question"}]))
    dataset = "NoSuchDataset" if setup == "unknown_name" else str(path)
    out = tmp_path / "out"
    result = invoke(*bench_args(srv, Path(dataset), out, *(["--strict"] if setup == "no_question" else [])))
    assert result.exit_code != 0
    assert "error:" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not (out / "summary.json").exists()
    if setup == "no_question":
        assert "row 2" in result.output


def test_row_without_hidden_tests_is_left_out_and_counted_unless_strict(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    empty = {**TASKS[2], "task_id": "D", "question": "TASK-D: no hidden tests.", "test_input": [], "test_output": []}
    rows = [TASKS[0], empty, TASKS[1], TASKS[2]]
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps(rows))
    out = tmp_path / "run"
    result = invoke(*bench_args(srv, tasks, out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert_expected_metrics(summary["metrics"])  # D is in no metric: the numbers are those of A, B, C
    counts = summary["counts"]
    assert counts["skipped_tasks"] == [{"task_id": "D", "row": 2, "reason": "no hidden tests", "field": "test_input"}]
    assert counts["skipped_tasks_by_reason"] == {"no hidden tests": 1}
    assert summary["run"]["dataset"]["n_tasks"] == 3 and summary["run"]["dataset"]["skipped"] == 1
    assert summary["run"]["dataset"]["strict"] is False and summary["run"]["dataset"]["source"] == "local file"
    rows_out = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in rows_out] == ["A", "B", "C"]
    assert not any("TASK-D" in m["content"] for r in srv.requests for m in r.messages)  # nothing asked for D

    strict_out = tmp_path / "strict"
    refused = invoke(*bench_args(srv, tasks, strict_out, "--strict"))
    assert refused.exit_code == 1
    assert "row 2, field 'test_input': is empty" in refused.output and "without --strict" in refused.output
    assert "Traceback" not in refused.output and not (strict_out / "summary.json").exists()


def test_unreachable_server_and_wrong_key(tmp_path, fake_openai):
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    wrong = invoke(*[a if a != KEY else "wrong-key" for a in bench_args(srv, tasks, tmp_path / "w")])
    assert wrong.exit_code != 0 and "error:" in wrong.output and "api-key" in wrong.output.lower()
    assert not (tmp_path / "w" / "summary.json").exists()

    dead_url = srv.base_url
    srv.stop()
    dead = invoke(*[a if a != dead_url else dead_url for a in bench_args(srv, tasks, tmp_path / "d")])
    assert dead.exit_code != 0 and "error:" in dead.output and "127.0.0.1" in dead.output
    assert not (tmp_path / "d" / "summary.json").exists()


def test_ctrl_c_then_rerun_completes_with_identical_metrics_and_no_sample_asked_twice(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY, latency=0.6)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "interrupted"
    args = [sys.executable, "-m", "cure_bench.cli.main", *bench_args(srv, tasks, out), "--concurrency", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while srv.requests_total < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "resume" in stderr
    assert not (out / "summary.json").exists()
    delivered_first = srv.samples_delivered
    assert 0 < delivered_first < 24

    srv.latency = 0.0
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert srv.samples_delivered == 24  # 3 tasks x (4 programs + 4 tests): nothing delivered twice
    assert_expected_metrics(json.loads((out / "summary.json").read_text())["metrics"])


def test_task_whose_tester_answers_never_parse(tmp_path, fake_openai):
    """No generated test. Under cure (default) the task is left out of every metric, as upstream does, and the
    all-tasks numbers sit beside; under chat it counts: unit-test metrics null, BoN falls back to program 0."""
    srv = fake_openai(
        responder=lambda messages, n, request: (
            ["no test here"] * n
            if "**Test Input:**" in messages[-1]["content"]
            else ["```python\nprint(1)\n```", "```python\nprint(2)\n```"][:n]
        ),
        api_key=KEY,
    )
    tasks = tmp_path / "one.jsonl"
    tasks.write_text(json.dumps({"question": "print 2", "test_input": ["\n"], "test_output": ["2\n"]}) + "\n")
    out = tmp_path / "noparse"
    args = [
        "bench", "--model", "m", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
        "--k-code", "2", "--k-case", "3", "--bon", "2x3", "-o", str(out),
    ]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "1 of 1 tasks had no parsable generated test" in " ".join(result.output.split())
    summary = json.loads((out / "summary.json").read_text())
    metrics, counts = summary["metrics"], summary["counts"]
    assert counts["dropped_tasks"] == 1 and counts["dropped_no_generated_test"] == 1 and counts["n_tasks_scored"] == 0
    assert metrics["code_acc"] == 0.0  # upstream's safe_divide over no task
    assert metrics["bon"]["2x3"]["acc"] is None  # upstream divides by zero here
    assert metrics["all_tasks"]["code_acc"] == pytest.approx(0.5)

    result = invoke(*args[:-1], str(tmp_path / "noparse-chat"), "--protocol", "chat")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "noparse-chat" / "summary.json").read_text())
    metrics, counts = summary["metrics"], summary["counts"]
    assert counts["dropped_test_answers"] == 3 and counts["generated_tests"] == 0
    assert metrics["code_acc"] == pytest.approx(0.5)
    assert metrics["unit_test_acc"] is None and metrics["p01"] is None and metrics["p00"] is None
    assert metrics["bon"]["2x3"]["acc"] == 0.0  # program 0 (prints 1) is picked: no test to rank by
