"""The OpenAI-compatible backend against the scripted local server: n per request, fallbacks, retries,
rate limits, errors, reasoning text, Ctrl-C and resume."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cure_bench.errors import AuthenticationError, BackendError, ConfigError, RunInterrupted, ServerUnreachableError
from cure_bench.generation.backends import choose_backend, make_generator, strip_reasoning
from cure_bench.generation.backends._openai_async import ClientSide
from cure_bench.generation.backends.openai_backend import OpenAIGenerator
from cure_bench.generation.backends.ratelimit import estimate_request_tokens
from cure_bench.generation.cache import GenerationCache
from cure_bench.generation.runner import generate_all
from cure_bench.types import ChatMessages, Completion, Generator, SamplingParams
from tests.helpers.fake_openai import FakeOpenAIServer

PARAMS = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=64)
ANSWERS = {"alpha": ["a0 x", "a1 x y", "a2", "a3 x y z"], "beta": ["b0", "b1 y"]}


def prompt(word: str) -> ChatMessages:
    return (("system", "you write code"), ("user", f"solve {word}"))


def run(
    srv: FakeOpenAIServer,
    tmp_path: Path,
    prompts: list[tuple[ChatMessages, int]],
    params: SamplingParams = PARAMS,
    **kwargs: Any,
) -> tuple[list[list[Completion]], OpenAIGenerator]:
    kwargs.setdefault("api_key", "test-key")
    gen = OpenAIGenerator("fake-model", base_url=srv.base_url, **kwargs)
    try:
        with GenerationCache(tmp_path / f"c{time.monotonic_ns()}.sqlite") as cache:
            return generate_all(gen, cache, prompts, params), gen
    finally:
        gen.close()


def texts(results: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in row] for row in results]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- n per request and its fallbacks ----------------------------------------------------------------


def test_one_request_per_prompt_asks_for_n_and_splits_usage(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS)
    out, gen = run(srv, tmp_path, [(prompt("alpha"), 4), (prompt("beta"), 2)])
    assert texts(out) == [["a0 x", "a1 x y", "a2", "a3 x y z"], ["b0", "b1 y"]]
    assert sorted((r.n, r.messages[-1]["content"]) for r in srv.requests) == [(2, "solve beta"), (4, "solve alpha")]
    # usage.completion_tokens = 2+3+1+4 = 10 whitespace tokens, split evenly: 3,3,2,2 (sum kept)
    assert [c.tokens for c in out[0]] == [3, 3, 2, 2] and [c.tokens for c in out[1]] == [2, 1]
    body = srv.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["model"]) == (0.8, 0.95, 64, "fake-model")
    assert "seed" not in body and srv.requests[0].api_key == "test-key"
    assert [c.finish_reason for c in out[0]] == ["stop"] * 4
    assert gen.describe()["n_per_request"] == "n"


def test_without_usage_tokens_are_unknown(fake_openai: Any, tmp_path: Path) -> None:
    out, _ = run(fake_openai(answers=ANSWERS, usage=False), tmp_path, [(prompt("beta"), 2)])
    assert [c.tokens for c in out[0]] == [None, None]


def test_server_rejecting_n_falls_back_to_single_requests_logged_once(
    fake_openai: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv = fake_openai(answers=ANSWERS, reject_n=True)
    with caplog.at_level(logging.WARNING):
        out, gen = run(srv, tmp_path, [(prompt("alpha"), 4), (prompt("beta"), 2)], concurrency=1)
    assert texts(out) == [["a0 x", "a1 x y", "a2", "a3 x y z"], ["b0", "b1 y"]]
    assert [r.n for r in srv.requests] == [4, 1, 1, 1, 1, 1, 1]  # one refusal, then one per sample
    assert [r.status for r in srv.requests][:2] == [400, 200]
    assert sum("cannot sample n>1" in r.getMessage() for r in caplog.records) == 1
    assert gen.describe()["n_per_request"] == "single"


def test_server_capping_n_gets_asked_for_the_rest(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, max_n=3)
    out, gen = run(srv, tmp_path, [(prompt("alpha"), 8)], concurrency=1)
    assert texts(out)[0] == ["a0 x", "a1 x y", "a2", "a3 x y z"] * 2
    assert [(r.n, r.choices) for r in srv.requests] == [(8, 3), (3, 3), (2, 2)]  # then batches of the cap
    assert gen.describe()["n_per_request"] == "n<=3"


def test_server_ignoring_n_switches_to_single(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, max_n=1)
    out, _ = run(srv, tmp_path, [(prompt("alpha"), 3)], concurrency=1)
    assert texts(out)[0] == ["a0 x", "a1 x y", "a2"]
    assert [(r.n, r.choices) for r in srv.requests] == [(3, 1), (1, 1), (1, 1)]


def test_seeds_differ_per_single_request(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, reject_n=True)
    run(srv, tmp_path, [(prompt("beta"), 3)], params=SamplingParams(seed=7), concurrency=1)
    assert [r.body.get("seed") for r in srv.requests if r.status == 200] == [7, 8, 9]


def test_max_completion_tokens_is_used_when_the_server_asks_for_it(fake_openai: Any, tmp_path: Path) -> None:
    def reject(body: dict[str, Any]) -> tuple[int, str] | None:
        if "max_tokens" in body:
            return 400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
        return None

    srv = fake_openai(answers=ANSWERS, reject=reject)
    out, _ = run(srv, tmp_path, [(prompt("beta"), 2)])
    assert texts(out) == [["b0", "b1 y"]]
    assert [r.body.get("max_completion_tokens") for r in srv.requests] == [None, 64]


# -- retries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried(fake_openai: Any, tmp_path: Path, status: int) -> None:
    srv = fake_openai(answers=ANSWERS, fail_first=3, fail_status=status)
    out, _ = run(srv, tmp_path, [(prompt("alpha"), 4)])
    assert texts(out)[0] == ["a0 x", "a1 x y", "a2", "a3 x y z"]
    assert [r.status for r in srv.requests] == [status, status, status, 200]


def test_rate_limit_that_never_ends_names_the_flags(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, faults=lambda i: 429)
    with pytest.raises(BackendError, match=r"429.*after 2 retries.*--rpm") as info:
        run(srv, tmp_path, [(prompt("alpha"), 4)], max_retries=2)
    assert srv.requests_total == 3 and "\n" not in str(info.value)


# -- errors -----------------------------------------------------------------------------------------


def test_unreachable_server_names_the_url_and_flag(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator("m", base_url=url, max_retries=0)
    with GenerationCache(tmp_path / "c.sqlite") as cache, pytest.raises(ServerUnreachableError) as info:
        generate_all(gen, cache, [(prompt("alpha"), 2)], PARAMS)
    gen.close()
    msg = str(info.value)
    assert url in msg and "--base-url" in msg and "\n" not in msg


def test_wrong_api_key_names_the_flag_and_env_and_is_not_retried(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, api_key="correct-key-123")
    with pytest.raises(AuthenticationError, match=r"--api-key.*OPENAI_API_KEY") as info:
        run(srv, tmp_path, [(prompt("alpha"), 2)], api_key="bad-key-456")
    assert srv.requests_total == 1 and "key-123" not in str(info.value) and "key-456" not in str(info.value)


def test_unknown_model_names_the_model_flag(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, models=["other-model"])
    with pytest.raises(BackendError, match=r"no model 'fake-model'.*--model"):
        run(srv, tmp_path, [(prompt("alpha"), 2)])


def test_other_bad_request_is_reported_with_the_server_message(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, reject=lambda body: (400, "max_tokens is too large: 64 > 32"))
    with pytest.raises(BackendError, match=r"HTTP 400.*max_tokens is too large: 64 > 32.*--max-tokens"):
        run(srv, tmp_path, [(prompt("alpha"), 1)])


def test_missing_key_for_openai_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIGenerator("gpt-4o-mini")
    OpenAIGenerator("local", base_url="http://127.0.0.1:9/v1").close()  # local servers need no key


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"rpm": 0}, "--rpm"),
        ({"tpm": -5}, "--tpm"),
        ({"concurrency": 0}, "--concurrency"),
        ({"base_url": "localhost:8000/v1"}, "--base-url"),
    ],
)
def test_bad_settings_name_their_flag(kwargs: dict[str, Any], flag: str) -> None:
    kwargs.setdefault("base_url", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match=flag):
        OpenAIGenerator("m", **kwargs)


def test_describe_names_the_setup_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-secret")
    gen = OpenAIGenerator("m", base_url="https://user:pw@example.org/v1?token=abc", rpm=100, tpm=1000)
    desc = gen.describe()
    dumped = json.dumps(desc)
    assert "secret" not in dumped and "pw" not in dumped and "abc" not in dumped
    assert desc["base_url"] == "https://example.org/v1"
    assert (desc["backend"], desc["model"], desc["rpm"], desc["tpm"]) == ("openai", "m", 100, 1000)
    assert desc["openai_version"] and desc["n_per_request"] == "n"
    assert isinstance(gen, Generator)


# -- reasoning ----------------------------------------------------------------------------------------


def test_reasoning_content_is_kept_raw_and_out_of_the_answer(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, reasoning_content="let me think ```python\nprint(0)\n```")
    out, _ = run(srv, tmp_path, [(prompt("beta"), 2)])
    raw = out[0][0].text
    assert raw.startswith("<think>let me think") and raw.endswith("</think>b0")
    assert [strip_reasoning(c.text) for c in out[0]] == ["b0", "b1 y"]


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        ("plain answer", "plain answer"),
        ("<think>draft ```python\nx=1\n```</think>\nfinal", "final"),
        ("<think>a</think>mid<think>b</think>end", "midend"),
        ("template opened it...</think> the answer", "the answer"),
        ("  <think>ran out of tokens while thinking", ""),
        ("", ""),
    ],
)
def test_strip_reasoning(raw: str, answer: str) -> None:
    assert strip_reasoning(raw) == answer


# -- concurrency and rate limits ----------------------------------------------------------------------


def test_concurrency_caps_requests_in_flight(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, latency=0.1)
    words = [f"alpha {i}" for i in range(6)]
    run(srv, tmp_path, [(prompt(w), 1) for w in words], concurrency=2)
    spans = [(r.time, r.done_time) for r in srv.requests]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)  # type: ignore[operator]
    assert srv.requests_total == 6 and most == 2


def record_sends(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Times (monotonic) at which the client let an HTTP attempt go, retries included."""
    sent: list[float] = []
    original = ClientSide._before_send

    async def spy(self: ClientSide, request: Any) -> None:
        await original(self, request)
        sent.append(time.monotonic())

    monkeypatch.setattr(ClientSide, "_before_send", spy)
    return sent


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_rpm_holds_in_every_window_retries_included(
    fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_sends(monkeypatch)
    srv = fake_openai(answers=ANSWERS, faults=[None, 429, None, 500])
    rpm, window = 4, 1.0  # 4 requests per (scaled) 1-second window
    out, gen = run(
        srv, tmp_path, [(prompt(f"alpha {i}"), 1) for i in range(8)], rpm=rpm, rpm_window_s=window, concurrency=8
    )
    assert len(out) == 8 and srv.requests_total == 10 and len(sent) == 10
    assert max_in_window(sent, window) <= rpm
    assert gen.describe()["rate_window_s"] == window


def test_tpm_charges_estimates_and_lets_oversized_requests_through(
    fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_sends(monkeypatch)
    srv = fake_openai(answers=ANSWERS)
    params = SamplingParams(max_tokens=30)
    prompts = [(prompt(f"beta {i}"), 1) for i in range(5)]
    each = estimate_request_tokens(prompts[0][0], 1, 30)
    assert each == len("you write code") // 4 + len("solve beta 0") // 4 + 8 + 30
    tpm, window = 100, 0.5
    run(srv, tmp_path, prompts, params=params, tpm=tpm, rpm_window_s=window)
    # leaky bucket: at most capacity + rate * window tokens in any window
    assert max_in_window(sent, window) * each <= 2 * tpm
    big = [(prompt("beta"), 10)]  # estimate 10 * 30 + prompt > tpm: clipped, still served
    out, _ = run(srv, tmp_path, big, params=params, tpm=tpm, rpm_window_s=window)
    assert len(out[0]) == 10


def test_generate_works_outside_the_main_thread(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(run(srv, tmp_path, [(prompt("beta"), 2)])[0]))
    thread.start()
    thread.join(60)
    assert texts(result[0]) == [["b0", "b1 y"]]


def test_generator_is_reusable_after_close(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS)
    gen = OpenAIGenerator("fake-model", base_url=srv.base_url)
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        generate_all(gen, cache, [(prompt("alpha"), 1)], PARAMS)
        gen.close()
        out = generate_all(gen, cache, [(prompt("beta"), 1)], PARAMS)
    gen.close()
    assert texts(out) == [["b0"]]


# -- backend choice --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "base_url", "requested", "backend"),
    [
        ("gpt-4o-mini", None, "auto", "openai"),
        ("o3-mini", None, None, "openai"),
        ("o1", None, "auto", "openai"),
        ("claude-3-5-sonnet-latest", None, "auto", "openai"),
        ("gemini-2.0-flash", None, "auto", "openai"),
        ("deepseek-chat", None, "auto", "openai"),
        ("Qwen/Qwen2.5-7B-Instruct", "http://gpu:8000/v1", "auto", "openai"),
        ("Qwen/Qwen2.5-7B-Instruct", None, "hf", "hf"),
        ("gpt-4o-mini", None, "VLLM", "vllm"),
    ],
)
def test_choose_backend(model: str, base_url: str | None, requested: str | None, backend: str) -> None:
    chosen, reason = choose_backend(model, base_url, requested)
    assert chosen == backend and reason


def test_choose_backend_local_model_without_cuda_is_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    import cure_bench.generation.backends as backends

    monkeypatch.setattr(backends, "_cuda_visible", lambda: False)
    assert choose_backend("Qwen/Qwen2.5-0.5B-Instruct", None, "auto")[0] == "hf"
    assert choose_backend("/models/my-ckpt", "", "auto")[0] == "hf"


def test_choose_backend_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="--backend 'tgi'"):
        choose_backend("m", None, "tgi")


def test_make_generator_builds_openai_and_rejects_foreign_options_that_are_set() -> None:
    gen = make_generator("openai", "m", base_url="http://127.0.0.1:9/v1", rpm=10, dtype=None)
    assert isinstance(gen, OpenAIGenerator) and gen.rpm == 10  # an unset (None) foreign option is no error
    with pytest.raises(ConfigError, match=r"the openai backend does not take --device \(it is an option of the hf"):
        make_generator("openai", "m", base_url="http://127.0.0.1:9/v1", device="cuda:0")
    with pytest.raises(ConfigError, match="--backend"):
        make_generator("nope", "m")


def test_open_generator_chooses_checks_and_describes() -> None:
    from cure_bench.generation.backends import open_generator

    opened = open_generator("gpt-4o-mini", "auto", {"rpm": 5}, defaults={"api_key": "k", "device": "cpu"})
    try:
        assert opened.backend == "openai" and "hosted API model" in opened.reason
        assert opened.options.rpm == 5 and opened.text_prompt is False
        info = opened.describe()
        assert info["backend"] == "openai" and info["endpoint"] == "chat" and "k" not in str(info.values())
    finally:
        opened.generator.close()
    with pytest.raises(ConfigError, match="the openai backend does not take --batch-size"):
        open_generator("gpt-4o-mini", "auto", {"batch_size": 2}, defaults={"api_key": "k"})
    # bon: an option of the other role's backend is not this backend's error
    opened = open_generator(
        "gpt-4o-mini", "openai", {"batch_size": 2}, defaults={"api_key": "k"}, foreign={"batch_size"}
    )
    opened.generator.close()


def test_backend_option_defaults_match_the_constructors() -> None:
    """The options dataclass is where a flag's default is read; the constructor must agree with it."""
    import dataclasses
    import inspect

    from cure_bench.generation.backends import BACKENDS, options_class
    from cure_bench.generation.backends.openai_backend import OpenAIGenerator as OpenAI
    from cure_bench.generation.backends.vllm_backend import VLLMGenerator

    classes = {"openai": OpenAI, "vllm": VLLMGenerator}
    if importlib.util.find_spec("torch") is not None:
        from cure_bench.generation.backends.hf_backend import HFGenerator

        classes["hf"] = HFGenerator
    for name, cls in classes.items():
        assert name in BACKENDS
        params = inspect.signature(cls).parameters
        for fld in dataclasses.fields(options_class(name)):
            assert params[fld.name].default == fld.default, (name, fld.name)


# -- Ctrl-C and resume (a real SIGINT to a child process) --------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.backends.openai_backend import OpenAIGenerator
    from cure_bench.generation.runner import generate_all
    from cure_bench.errors import RunInterrupted
    from cure_bench.types import SamplingParams

    base_url, cache_path, out_path = sys.argv[1:4]
    prompts = [((("user", f"solve alpha {i}"),), 3) for i in range(6)]
    gen = OpenAIGenerator("fake-model", base_url=base_url, concurrency=2, drain_timeout=30)
    with GenerationCache(cache_path) as cache:
        try:
            out = generate_all(gen, cache, prompts, SamplingParams(max_tokens=16),
                               on_progress=lambda d, t: print("progress", d, t, flush=True))
        except RunInterrupted as exc:
            print("INTERRUPTED", exc, flush=True)
            sys.exit(exc.exit_code)
    gen.close()
    with open(out_path, "w") as f:
        json.dump([[c.text for c in row] for row in out], f)
    """
)


def start_child(tmp_path: Path, srv: FakeOpenAIServer) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = [sys.executable, str(script), srv.base_url, str(tmp_path / "gen.sqlite"), str(tmp_path / "out.json")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.mark.slow
def test_ctrl_c_finishes_in_flight_then_resume_asks_nothing_twice(fake_openai: Any, tmp_path: Path) -> None:
    answers = {f"alpha {i}": [f"p{i}s{j}" for j in range(3)] for i in range(6)}
    srv = fake_openai(answers=answers, latency=0.6)
    child = start_child(tmp_path, srv)
    wait_for(lambda: srv.requests_total >= 2)  # two requests in flight (concurrency=2)
    child.send_signal(signal.SIGINT)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 130, output
    assert "INTERRUPTED" in output and "re-run the same command" in output and "finished" in output
    first = srv.requests
    assert all(r.status == 200 and r.done_time is not None for r in first)  # nothing left hanging
    assert len(first) < 6  # stopped early: not every prompt was asked
    with GenerationCache(tmp_path / "gen.sqlite") as cache:
        assert cache.count() == srv.samples_delivered == 3 * len(first)  # every delivered sample was saved

    child = start_child(tmp_path, srv)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 0, output
    per_prompt: Counter[str] = Counter()
    for r in srv.requests:
        per_prompt[r.messages[-1]["content"]] += r.choices
    assert per_prompt == Counter({f"solve alpha {i}": 3 for i in range(6)})  # no sample asked twice
    assert json.loads((tmp_path / "out.json").read_text()) == [[f"p{i}s{j}" for j in range(3)] for i in range(6)]


@pytest.mark.slow
def test_second_ctrl_c_abandons_requests_in_flight(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers={"alpha": ["x"]}, latency=30)
    child = start_child(tmp_path, srv)
    wait_for(lambda: srv.requests_total >= 2)
    child.send_signal(signal.SIGINT)
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    output, _ = child.communicate(timeout=20)  # well before the 30 s answers: it did not wait for them
    assert child.returncode == 130, output
    assert "INTERRUPTED" in output and "abandoned" in output
    with GenerationCache(tmp_path / "gen.sqlite") as cache:
        assert cache.count() == 0


def test_ctrl_c_does_not_wait_for_rate_limited_requests_and_restores_the_handler(
    fake_openai: Any, tmp_path: Path
) -> None:
    """In-process SIGINT: requests queued behind --rpm are not sent; the previous handler comes back."""
    srv = fake_openai(answers=ANSWERS)
    before = signal.getsignal(signal.SIGINT)

    def press_ctrl_c_after_first_answer() -> None:
        wait_for(lambda: srv.samples_delivered >= 2)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_after_first_answer)
    presser.start()
    gen = OpenAIGenerator("fake-model", base_url=srv.base_url, rpm=2, drain_timeout=20)  # next slot in 30 s
    try:
        with GenerationCache(tmp_path / "c.sqlite") as cache:
            with pytest.raises(RunInterrupted, match=r"2 new samples.*finished.*re-run the same command"):
                generate_all(gen, cache, [(prompt(w), 2) for w in ("alpha", "beta", "alpha 2")], PARAMS)
            assert cache.count() == 2
    finally:
        presser.join()
        gen.close()
    assert srv.requests_total == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_dead_server_fails_fast_but_a_live_one_gets_the_full_retry_budget(
    fake_openai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the server has answered, one retry at most; after any HTTP answer, all max_retries."""
    sent = record_sends(monkeypatch)
    url = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator("m", base_url=url, max_retries=8)
    with GenerationCache(tmp_path / "c.sqlite") as cache, pytest.raises(ServerUnreachableError):
        generate_all(gen, cache, [(prompt("alpha"), 2)], PARAMS)
    gen.close()
    assert len(sent) == 2  # not 9: the whole backoff schedule would take ~40 s
    srv = fake_openai(answers=ANSWERS, fail_first=6, fail_status=503)
    out, _ = run(srv, tmp_path, [(prompt("beta"), 2)], max_retries=6)
    assert texts(out) == [["b0", "b1 y"]] and srv.requests_total == 7


def test_fake_server_lists_models_and_logs_requests(fake_openai: Any) -> None:
    import openai

    srv = fake_openai(models=["m1", "m2"], answers={"hi": ["x y"]})
    client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
    assert [m.id for m in client.models.list()] == ["m1", "m2"]
    reply = client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hi there"}], n=2)
    assert [c.message.content for c in reply.choices] == ["x y", "x y"]
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 4)
    (logged,) = srv.requests
    assert (logged.model, logged.n, logged.status, logged.choices, logged.api_key) == ("m1", 2, 200, 2, "k")
    srv.reset_log()
    assert srv.requests == [] and srv.requests_total == 0
    client.close()
