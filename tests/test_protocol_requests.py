"""What `cure bench` sends under each protocol, read off the fake server's request log, and what the manifest says.

Every request body is compared whole (keys and values), so a sampling field that upstream does not send
fails the test as surely as a wrong value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.generation.protocols import CURE_STOP
from tests.helpers.scripted_tasks import TASKS, ScriptedResponder, write_task_file

KEY = "sk-test-key"


def bench(srv, tmp_path: Path, *extra: str):
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    args = ["bench", "--model", "fake-coder", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
            "--k-code", "2", "--k-case", "2", "--bon", "2x2", "-o", str(tmp_path / "run"), "--workers", "2",
            *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


def coder_raw(question: str) -> str:
    return (
        "<|im_start|>You are a helpful assistant help user solve problems. <|im_end|>\n<|im_start|>User: You need to "
        "think first then write python script. You should use input() to input and print() to output in your "
        "script. Your code should output the results based on the input read in, rather than generating the given "
        f"test example.\nThis is the problem:\n{question} <|im_end|>\n<|im_start|>Assistant: "
    )


def manifest(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "summary.json").read_text())["run"]


@pytest.mark.slow
def test_default_cure_protocol_sends_upstreams_api_payload(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    result = bench(srv, tmp_path)
    assert result.exit_code == 0, result.output
    requests = srv.requests
    assert len(requests) == 2 * len(TASKS) and all(r.endpoint == "chat" for r in requests)
    coder = {r.body["messages"][1]["content"]: r.body for r in requests if "**Test Input:**" not in str(r.messages)}
    for task in TASKS:
        body = coder[coder_raw(task["question"])]
        assert body == {
            "model": "fake-coder",
            "messages": [
                {"role": "system", "content": "You are a helpful coding assistant."},
                {"role": "user", "content": coder_raw(task["question"])},
            ],
            "temperature": 0.8,
            "n": 2,
        }
    testers = [r.body for r in requests if "**Test Input:**" in str(r.messages)]
    assert len(testers) == len(TASKS)
    assert all(set(b) == {"model", "messages", "temperature", "n"} and b["temperature"] == 0.8 for b in testers)
    assert all(b["messages"][1]["content"].endswith("<|im_end|>\n<|im_start|>Assistant: ") for b in testers)
    run = manifest(tmp_path)
    assert run["protocol"]["name"] == "cure"
    assert run["protocol"]["coder"] == {
        "prompt_form": "chat",
        "sampling": {
            "sent": {"temperature": 0.8},
            "set_by_protocol": {"temperature": 0.8, "top_p": None, "max_tokens": None},
            "overridden": {},
        },
    }
    assert run["sampling"] == {"temperature": 0.8}


@pytest.mark.slow
def test_explicit_flags_override_the_protocol_and_are_recorded(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    result = bench(srv, tmp_path, "--temperature", "0.3", "--top-k", "5", "--max-tokens", "77", "--stop", "XX")
    assert result.exit_code == 0, result.output
    for r in srv.requests:
        body = {k: v for k, v in r.body.items() if k != "messages"}
        assert body == {"model": "fake-coder", "temperature": 0.3, "top_k": 5, "max_tokens": 77, "stop": ["XX"], "n": 2}
    sampling = manifest(tmp_path)["protocol"]["tester"]["sampling"]
    assert sampling["overridden"] == {"temperature": 0.3, "top_k": 5, "max_tokens": 77, "stop": ["XX"]}
    assert sampling["set_by_protocol"] == {"top_p": None}


@pytest.mark.slow
def test_completions_endpoint_sends_the_raw_string_with_upstreams_local_sampling(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    result = bench(srv, tmp_path, "--endpoint", "completions")
    assert result.exit_code == 0, result.output
    probe, *requests = srv.requests
    assert probe.endpoint == "completions" and probe.body["max_tokens"] == 1  # the preflight
    assert len(requests) == 2 * len(TASKS) and all(r.endpoint == "completions" for r in requests)
    sampling = {"temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.0, "max_tokens": 10000,
                "stop": list(CURE_STOP), "n": 2, "model": "fake-coder"}  # fmt: skip
    prompts = set()
    for r in requests:
        assert {k: v for k, v in r.body.items() if k != "prompt"} == sampling
        prompts.add(r.body["prompt"])
    assert {coder_raw(t["question"]) for t in TASKS} <= prompts
    run = manifest(tmp_path)
    assert run["protocol"]["coder"]["prompt_form"] == "text" and run["coder"]["endpoint"] == "completions"
    metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert metrics["code_acc"] is not None


def test_completions_endpoint_against_a_chat_only_server_fails_before_generating(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY, chat_only=True)
    result = bench(srv, tmp_path, "--endpoint", "completions")
    assert result.exit_code == 1
    assert "refused /v1/completions" in result.output and "This is a chat model" in result.output
    assert [r.body.get("max_tokens") for r in srv.requests] == [1]  # only the probe; no generation request
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("extra", "flag"),
    [(["--protocol", "paper"], "--protocol"), (["--top-k", "0"], "--top-k"), (["--top-k", "-1"], "--top-k"),
     (["--protocol", "chat", "--endpoint", "completions"], "--endpoint completions"),
     (["--endpoint", "responses"], "--endpoint"), (["--batch-size", "2"], "--batch-size"),
     (["--temperature", "5"], "--temperature")],
)  # fmt: skip
def test_bad_input_is_rejected_before_any_request(tmp_path, fake_openai, extra, flag):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    result = bench(srv, tmp_path, *extra)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and flag in result.output and "Traceback" not in result.output
    assert srv.requests_total == 0


@pytest.mark.slow
def test_chat_protocol_keeps_our_messages_and_sampling(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    result = bench(srv, tmp_path, "--protocol", "chat")
    assert result.exit_code == 0, result.output
    for r in srv.requests:
        assert r.body["messages"][0]["content"].startswith("You are a helpful assistant help user")
        assert {k: r.body[k] for k in ("temperature", "top_p", "max_tokens")} == {
            "temperature": 1.0,
            "top_p": 1.0,
            "max_tokens": 8192,
        }
    assert manifest(tmp_path)["protocol"]["name"] == "chat"
