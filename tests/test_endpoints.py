"""Several OpenAI-compatible servers behind one generator (``--base-url A,B``): the list's validation, the
spread, per-server concurrency, one rate budget for all, failover when a server dies, the manifest entry."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.errors import ConfigError
from cure_bench.generation.backends.endpoints import parse_base_urls
from cure_bench.generation.backends.openai_backend import OpenAIGenerator
from cure_bench.generation.cache import GenerationCache
from cure_bench.generation.runner import generate_all
from cure_bench.types import ChatMessages, Completion, SamplingParams
from tests.helpers.fake_openai import FakeOpenAIServer
from tests.helpers.scripted_tasks import EXPECTED, ScriptedResponder, write_task_file

PARAMS = SamplingParams(temperature=0.8, max_tokens=32)
KEY = "sk-test"
HEADLINE = ("code_acc", "code_accumulate_acc", "unit_test_acc", "unit_test_accumulate_acc", "p01", "p00", "pass@1")


def prompt(i: int) -> ChatMessages:
    return (("user", f"solve alpha {i}"),)


def generate(urls: str, tmp_path: Path, n_prompts: int, k: int = 2, **kwargs: Any) -> list[list[Completion]]:
    gen = OpenAIGenerator("fake-model", base_url=urls, api_key=KEY, **kwargs)
    try:
        with GenerationCache(tmp_path / f"c{time.monotonic_ns()}.sqlite") as cache:
            return generate_all(gen, cache, [(prompt(i), k) for i in range(n_prompts)], PARAMS)
    finally:
        gen.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://a:8000/v1,,http://b:8000/v1", "empty entry"),
        ("http://a:8000/v1,", "empty entry"),
        ("http://a:8000/v1,ftp://b/v1", "'ftp://b/v1' must start with http:// or https://"),
        ("http://a:8000/v1,http://:80/v1", "names no host"),
        ("http://a:80x/v1,http://b/v1", "malformed port"),
        ("http://a:8000/v1,HTTP://A:8000/v1/", "listed twice"),
    ],
)
def test_bad_url_lists_are_one_line_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_base_urls(text)
    assert "\n" not in str(info.value) and "--base-url" in str(info.value)


def test_url_list_parses_in_order() -> None:
    assert parse_base_urls(" http://a:1/v1/ ,https://b/v1") == ("http://a:1/v1", "https://b/v1")


@pytest.mark.parametrize("flag", ["--base-url", "--coder-base-url"])
def test_cli_rejects_a_duplicate_url_before_any_request(tmp_path: Path, fake_openai: Any, flag: str) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"
    urls = f"{srv.base_url},{srv.base_url}/"
    if flag == "--base-url":
        args = ["bench", "--model", "m", "--base-url", urls, "--api-key", KEY]
    else:
        args = ["bon", "--coder", "c", "--tester", "t", "--coder-base-url", urls, "--tester-base-url", srv.base_url,
                "--coder-api-key", KEY, "--tester-api-key", KEY]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--dataset", str(tasks), "-o", str(out)])
    assert result.exit_code != 0
    assert "listed twice" in result.output and f"{flag}:" in result.output
    assert srv.requests_total == 0 and not out.exists()


def test_two_servers_share_the_work_with_per_server_concurrency(fake_openai: Any, tmp_path: Path) -> None:
    a = fake_openai(default_answer="same", latency=0.05)
    b = fake_openai(default_answer="same", latency=0.05)
    out = generate(f"{a.base_url},{b.base_url}", tmp_path, n_prompts=12, concurrency=2)
    assert [len(row) for row in out] == [2] * 12
    assert a.requests_total + b.requests_total == 12
    assert a.requests_total >= 4 and b.requests_total >= 4  # least-loaded first: both busy, neither starved
    for srv in (a, b):  # --concurrency is per server
        spans = [(r.time, r.done_time) for r in srv.requests]
        assert max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans) <= 2  # type: ignore[operator]


def test_rpm_is_one_budget_across_servers(fake_openai: Any, tmp_path: Path) -> None:
    a = fake_openai(default_answer="x")
    b = fake_openai(default_answer="x")
    rpm, window = 4, 1.0
    generate(f"{a.base_url},{b.base_url}", tmp_path, n_prompts=8, k=1, rpm=rpm, rpm_window_s=window)
    times = sorted(r.time for srv in (a, b) for r in srv.requests)
    assert len(times) == 8 and a.requests_total and b.requests_total
    assert max(sum(1 for u in times if t <= u < t + window) for t in times) <= rpm


def test_a_server_down_from_the_start_is_dropped_and_named(fake_openai: Any, tmp_path: Path) -> None:
    live = fake_openai(default_answer="ok")
    dead = FakeOpenAIServer()
    dead_url = dead.base_url
    dead.stop()  # its port now refuses connections
    gen = OpenAIGenerator("fake-model", base_url=f"{dead_url},{live.base_url}", api_key=KEY, max_retries=8)
    try:
        with GenerationCache(tmp_path / "c.sqlite") as cache:
            started = time.monotonic()
            out = generate_all(gen, cache, [(prompt(i), 1) for i in range(4)], PARAMS)
            assert time.monotonic() - started < 20  # no SDK backoff schedule on the dead one (~40 s)
        entry = gen.describe()
    finally:
        gen.close()
    assert [row[0].text for row in out] == ["ok"] * 4 and live.requests_total == 4
    dead_entry, live_entry = entry["endpoints"]
    assert dead_entry["alive"] is False and "ConnectError" in dead_entry["dropped"]
    assert live_entry == {"url": live.base_url, "requests": 4, "samples": 4, "alive": True}
    assert entry["base_url"] == f"{dead_url},{live.base_url}"


def _killed_after(srv_holder: dict[str, FakeOpenAIServer], shared: ScriptedResponder, after: int) -> Any:
    """A responder that answers like ``shared`` but kills its own server while serving request ``after``
    (that request's answer is dropped with the connection, as a crashed server's would be)."""
    seen = {"n": 0}
    lock = threading.Lock()

    def respond(messages: list[dict[str, Any]], n: int, body: dict[str, Any]) -> list[str]:
        with lock:
            seen["n"] += 1
            kill = seen["n"] == after
        answers = shared(messages, n, body)
        if kill:
            srv_holder["srv"].kill()
        return answers

    return respond


@pytest.mark.slow
def test_bench_over_two_servers_survives_one_dying_mid_run(tmp_path: Path) -> None:
    """Both servers get requests; A dies while answering its second; the run completes with the metrics a
    one-server run gives (EXPECTED, hand-computed), and the manifest lists both, A as dropped."""
    shared = ScriptedResponder()  # one answer sequence per (role, task), whichever server is asked
    holder: dict[str, FakeOpenAIServer] = {}
    a = FakeOpenAIServer(responder=_killed_after(holder, shared, after=2), api_key=KEY, latency=0.2)
    holder["srv"] = a
    b = FakeOpenAIServer(responder=shared, api_key=KEY, latency=0.2)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"
    with a, b:
        result = CliRunner().invoke(
            app,
            ["bench", "--model", "fake-coder", "--dataset", str(tasks), "--base-url", f"{a.base_url},{b.base_url}",
             "--api-key", KEY, "--k-code", "4", "--k-case", "4", "--bon", "4x1,4x4,2x2", "-o", str(out),
             "--workers", "2", "--concurrency", "1"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for key in HEADLINE:
        assert summary["metrics"][key] == pytest.approx(EXPECTED[key]), key
    for nxm, values in EXPECTED["bon"].items():
        assert summary["metrics"]["bon"][nxm]["acc"] == pytest.approx(values["acc"]), nxm
        assert summary["metrics"]["bon"][nxm]["accumulate_acc"] == pytest.approx(values["accumulate_acc"]), nxm
    a_ok = [r for r in a.requests if r.status == 200]
    assert len(a.requests) >= 2 and b.requests_total >= 4  # both received requests
    endpoints = summary["run"]["coder"]["endpoints"]
    assert [e["url"] for e in endpoints] == [a.base_url, b.base_url]
    assert endpoints[0]["alive"] is False and endpoints[1]["alive"] is True
    assert endpoints[0]["samples"] + endpoints[1]["samples"] == 3 * 2 * 4  # every sample once, none lost
    assert endpoints[0]["samples"] <= 4 * len(a_ok)


@pytest.mark.parametrize(
    ("flag", "urls", "message"),
    [
        ("--base-url", "{a},,{a}x", "empty entry"),
        ("--base-url", "{a},127.0.0.1:9/v1", "must start with http:// or https://"),
        ("--tester-base-url", "{a},http://h:8x/v1", "malformed port"),
    ],
)
def test_cli_rejects_a_malformed_url_list_in_one_line_before_any_request(
    tmp_path: Path, fake_openai: Any, flag: str, urls: str, message: str
) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"
    urls = urls.format(a=srv.base_url)
    if flag == "--base-url":
        args = ["bench", "--model", "m", "--base-url", urls, "--api-key", KEY]
    else:
        args = ["bon", "--coder", "c", "--tester", "t", "--coder-base-url", srv.base_url, "--tester-base-url", urls,
                "--coder-api-key", KEY, "--tester-api-key", KEY]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--dataset", str(tasks), "-o", str(out)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert message in lines[0] and f"{flag}" in lines[0]
    assert srv.requests_total == 0 and not out.exists()


@pytest.mark.slow
def test_the_same_servers_in_another_order_resume_the_run_without_a_request(tmp_path: Path, fake_openai: Any) -> None:
    """Which server answered is not part of any sample's key, and the run's key sorts the list."""
    shared = ScriptedResponder()
    a = fake_openai(responder=shared, api_key=KEY)
    b = fake_openai(responder=shared, api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"

    def bench(urls: str) -> Any:
        return CliRunner().invoke(
            app,
            ["bench", "--model", "m", "--dataset", str(tasks), "--base-url", urls, "--api-key", KEY, "--k-code", "4",
             "--k-case", "4", "--bon", "4x4", "-o", str(out), "--workers", "2", "--json"],
        )  # fmt: skip

    first = bench(f"{a.base_url},{b.base_url}")
    assert first.exit_code == 0, first.output
    asked = a.requests_total + b.requests_total
    assert asked == 6 and a.requests_total and b.requests_total
    (out / "summary.json").unlink()  # as if the run had stopped just before writing it: resume, not report
    again = bench(f"{b.base_url},{a.base_url}")
    assert again.exit_code == 0, again.output
    assert a.requests_total + b.requests_total == asked  # every sample from the cache
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    for key in HEADLINE:
        assert metrics[key] == pytest.approx(EXPECTED[key]), key
