"""The reward server driven by each framework's requests, built the way that framework's own code builds them.

Each helper below restates, in a few lines, what the framework's client does (read from its source: OpenRLHF
0.11 ``utils/agent.py``, slime ``rollout/rm_hub/__init__.py`` and ``utils/types.py``, verl 0.9.1
``trainer/ppo/reward.py`` and ``experimental/reward_loop/reward_manager/naive.py``, verl's
``utils/reward_score/sandbox_fusion/utils.py``, TRL 1.13 ``GRPOTrainer._calculate_rewards``), and every test
asserts the reward values, using the scripted tester of tests/test_serve_live.py: on the ADD problem a correct
program earns 2/3, ``print(3)`` 1/3; on DOUBLE a correct program earns 1.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import pickle
import threading
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from cure_bench.sandbox import Sandbox
from cure_bench.serve import create_app, serve_in_background
from cure_bench.serve import transport as cure_transport
from tests.helpers.fake_openai import FakeOpenAIServer
from tests.test_serve_live import ADD, DOUBLE, PRINT3, TOKEN, live, make_config, post, sandbox, tester

__all__ = ["live", "sandbox", "tester"]  # module-scoped fixtures, re-used here

ADD_PROBLEM = "ADD: read a and b, print a+b."
DOUBLE_PROBLEM = "DOUBLE: read n, print 2n."
ADD_CODE = "a, b = map(int, input().split())\nprint(a + b)"


@pytest.fixture(autouse=True)
def _fresh_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cure_transport.URL_ENV, raising=False)
    monkeypatch.delenv(cure_transport.TOKEN_ENV, raising=False)
    monkeypatch.setattr(cure_transport, "_clients", {})


@pytest.fixture(scope="module")
def open_live(tester: FakeOpenAIServer, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server without a token (OpenRLHF's, slime's and verl's sandbox HTTP clients send no headers), with a
    small max_code_bytes so oversized programs are cheap to send."""
    config = make_config(tester, tmp_path_factory.mktemp("open"), auth_token=None, max_code_bytes=4096)
    with serve_in_background(create_app(config, sandbox=sandbox)) as url:
        yield url


# ------------------------------------------------------------------------------------------ OpenRLHF


def openrlhf_shards(queries: list[str], prompts: list[str], labels: list[Any], n_servers: int) -> list[dict]:
    """OpenRLHF's ``_fetch_rewards_via_http``: one payload per reward URL, ``ceil(len / servers)`` each."""
    size = (len(queries) + n_servers - 1) // n_servers
    return [
        {
            "query": queries[i * size : min((i + 1) * size, len(queries))],
            "prompts": prompts[i * size : min((i + 1) * size, len(queries))],
            "labels": labels[i * size : min((i + 1) * size, len(queries))],
        }
        for i in range(n_servers)
    ]


def openrlhf_query(prompt: str, response: str, keep_bytes: int) -> str:
    """``decode(prompt_token_ids[-max_prompt_length:] + action_token_ids)`` with a byte-level tokenizer."""
    return (prompt.encode()[-keep_bytes:] + response.encode()).decode("utf-8", errors="replace")


# A prompt that itself holds a correct program: scoring prompt text would pay 2/3 for any response.
HACKABLE_PROMPT = (
    "<|im_start|>system\nExample of the expected style:\n```python\n" + ADD_CODE + "\n```<|im_end|>\n"
    "<|im_start|>user\n" + ADD_PROBLEM + "<|im_end|>\n<|im_start|>assistant\n"
)


def test_openrlhf_truncated_prompt_scores_the_response_not_the_prompt(open_live: str) -> None:
    keep = len(HACKABLE_PROMPT.encode()) - 25  # OpenRLHF cut the first 25 bytes: query no longer starts with it
    responses = ["No idea.", "```python\n" + ADD_CODE + "\n```<|im_end|>", PRINT3 + "<|im_end|>"]
    queries = [openrlhf_query(HACKABLE_PROMPT, r, keep) for r in responses]
    assert not any(q.startswith(HACKABLE_PROMPT) for q in queries)
    assert all("```python\n" + ADD_CODE in q for q in queries)  # the prompt's program survived the cut
    (payload,) = openrlhf_shards(queries, [HACKABLE_PROMPT] * 3, [ADD_PROBLEM] * 3, n_servers=1)
    answer = httpx.post(open_live + "/get_reward", json=payload, timeout=60).json()
    assert answer["rewards"] == pytest.approx([0.0, 2 / 3, 1 / 3])
    assert answer["scores"] == answer["rewards"]
    assert answer["extra_logs"]["extract_ok"] == [0.0, 1.0, 1.0]
    assert answer["extra_logs"]["num_tests"] == [3.0, 3.0, 3.0]


def test_openrlhf_several_reward_urls_send_empty_shards(open_live: str) -> None:
    """OpenRLHF 0.11 scores one query per call, so with two URLs the second server gets empty lists."""
    query = HACKABLE_PROMPT + "```python\n" + ADD_CODE + "\n```"
    first, second = openrlhf_shards([query], [HACKABLE_PROMPT], [json.dumps({"problem": ADD_PROBLEM})], 2)
    assert second == {"query": [], "prompts": [], "labels": []}
    answers = [httpx.post(open_live + "/get_reward", json=p, timeout=60) for p in (first, second)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[1].json() == {
        "rewards": [],
        "scores": [],
        "extra_logs": {"pass_rate": [], "extract_ok": [], "num_tests": []},
    }
    rewards_info = answers[0].json()  # OpenRLHF keeps the first server's answer (rewards_info_list[0])
    assert rewards_info["rewards"] == pytest.approx([2 / 3])


def test_openrlhf_label_naming_no_problem_is_a_4xx_naming_the_flag(open_live: str) -> None:
    # OpenRLHF sends "" when --data.label_key is not set
    response = httpx.post(open_live + "/get_reward", json={"query": ["q"], "prompts": ["p"], "labels": [""]})
    assert response.status_code == 422 and "--data.label_key" in response.json()["detail"]


# ------------------------------------------------------------------------------------------ slime


@dataclass
class SlimeSample:
    """The fields of slime's ``Sample`` that reward functions read."""

    prompt: str | list[dict[str, str]] = ""
    response: str = ""
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    index: int | None = None
    reward: float | dict[str, Any] | None = None

    def get_reward_value(self, args: Namespace) -> Any:
        return self.reward if not args.reward_key else self.reward[args.reward_key]  # type: ignore[index]


async def slime_remote_rm(args: Namespace, sample: SlimeSample) -> Any:
    """slime's ``remote_rm``: POST {prompt, response, label} to --rm-url, the JSON answer is the reward."""
    payload = {"prompt": sample.prompt, "response": sample.response, "label": sample.label}
    async with httpx.AsyncClient(timeout=120) as client:
        resp = await client.post(args.rm_url, json=payload)
        resp.raise_for_status()
        return resp.json()


def slime_load_function(path: str) -> Any:
    """slime's ``load_function`` for --custom-rm-path: ``module.submodule.function``."""
    module_path, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_path), attr)


def test_slime_remote_rm_single_sample_number_and_dict(open_live: str) -> None:
    args = Namespace(rm_url=open_live + "/get_reward", reward_key=None)
    samples = [
        SlimeSample(prompt=[{"role": "user", "content": ADD_PROBLEM}], response=ADD, label=ADD_PROBLEM),
        SlimeSample(prompt="templated prompt", response=PRINT3, label=json.dumps({"problem": ADD_PROBLEM})),
        SlimeSample(prompt=[{"role": "user", "content": DOUBLE_PROBLEM}], response=DOUBLE, label=None),
    ]
    for sample in samples:
        sample.reward = asyncio.run(slime_remote_rm(args, sample))
    assert [s.get_reward_value(args) for s in samples] == pytest.approx([2 / 3, 1 / 3, 1.0])
    assert all(isinstance(s.reward, float) for s in samples)

    keyed = Namespace(rm_url=open_live + "/get_reward?format=dict", reward_key="reward")
    sample = SlimeSample(prompt="p", response=ADD, label=ADD_PROBLEM)
    sample.reward = asyncio.run(slime_remote_rm(keyed, sample))
    assert sample.get_reward_value(keyed) == pytest.approx(2 / 3)
    assert sample.reward == {  # type: ignore[comparison-overlap]
        "reward": pytest.approx(2 / 3), "pass_rate": pytest.approx(2 / 3), "passed": 2, "num_tests": 3,
        "extract_ok": True, "error": None,
    }  # fmt: skip


def test_slime_custom_rm_single_and_group(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cure_transport.TOKEN_ENV, TOKEN)
    rm = slime_load_function("cure_bench.serve.client.slime_rm")
    assert inspect.iscoroutinefunction(rm)
    args = Namespace(rm_url=live.url + "/get_reward", reward_key=None, group_rm=False)
    one = SlimeSample(prompt=[{"role": "user", "content": DOUBLE_PROBLEM}], response=DOUBLE)
    assert asyncio.run(rm(args, one)) == 1.0  # slime's async_rm: await fn(args, sample)

    group = [SlimeSample(prompt="p", response=r, label=ADD_PROBLEM, index=i) for i, r in enumerate([ADD, PRINT3])]
    group.append(SlimeSample(prompt="p", response="no code", metadata={"problem": DOUBLE_PROBLEM}))
    args.group_rm = True  # slime's batched_async_rm: await fn(args, samples)
    assert asyncio.run(rm(args, group)) == pytest.approx([2 / 3, 1 / 3, 0.0])
    group_rm = slime_load_function("cure_bench.serve.slime_reward.slime_group_rm")
    assert asyncio.run(group_rm(args, group)) == pytest.approx([2 / 3, 1 / 3, 0.0])

    args.reward_key = "score"  # --reward-key: a dict holding that key, read back by get_reward_value
    one.reward = asyncio.run(rm(args, one))
    assert one.get_reward_value(args) == 1.0 and one.reward["num_tests"] == 4.0  # type: ignore[index]


# ------------------------------------------------------------------------------------------ verl 0.9


def verl_custom_reward_fn(path: str, name: str, reward_kwargs: dict[str, Any]) -> Any:
    """verl 0.9's ``get_custom_reward_fn``: load by ``pkg://``, wrap so reward_kwargs win, keep it async."""
    raw_fn = getattr(importlib.import_module(path.removeprefix("pkg://").replace("/", ".")), name)

    def call(*args: Any, **kwargs: Any) -> Any:
        return raw_fn(*args, **{**kwargs, **reward_kwargs})

    async def acall(*args: Any, **kwargs: Any) -> Any:
        return await raw_fn(*args, **{**kwargs, **reward_kwargs})

    return functools.partial(acall) if inspect.iscoroutinefunction(raw_fn) else functools.partial(call)


async def verl_run_single(fn: Any, data_source: str, response: str, ground_truth: Any, extra_info: dict) -> dict:
    """verl 0.9's ``NaiveRewardManager.run_single`` after decoding: await async, thread-pool sync."""
    extra_info = {**extra_info, "num_turns": None, "rollout_reward_scores": {}}
    kwargs = {"data_source": data_source, "solution_str": response, "ground_truth": ground_truth}
    if inspect.iscoroutinefunction(fn):
        result = await fn(**kwargs, extra_info=extra_info)
    else:
        result = await asyncio.get_running_loop().run_in_executor(None, lambda: fn(**kwargs, extra_info=extra_info))
    if isinstance(result, dict):
        return {"reward_score": result["score"], "reward_extra_info": dict(result)}
    return {"reward_score": result, "reward_extra_info": {"acc": result}}


VERL_ROWS = [  # (response, ground_truth, extra_info) as verl's code-dataset preprocessors write them
    (ADD, json.dumps({"inputs": ["1 2"], "outputs": ["3"]}), {"question": ADD_PROBLEM, "index": 0}),
    (PRINT3, ADD_PROBLEM, {"index": 1}),
    (DOUBLE, None, {"problem": DOUBLE_PROBLEM}),
    ("no code", "", {"question": DOUBLE_PROBLEM}),
]


async def _verl_batch(fn: Any) -> list[dict]:
    return await asyncio.gather(*(verl_run_single(fn, "codecontests", r, g, e) for r, g, e in VERL_ROWS))


def test_verl_09_async_compute_score_with_dict(live: Any) -> None:
    kwargs = {"url": live.url, "token": TOKEN, "return_dict": True}
    fn = verl_custom_reward_fn("pkg://cure_bench.serve.client", "compute_score_async", kwargs)
    assert inspect.iscoroutinefunction(fn)  # verl awaits it on its loop
    out = asyncio.run(_verl_batch(fn))
    assert [o["reward_score"] for o in out] == pytest.approx([2 / 3, 1 / 3, 1.0, 0.0])
    assert out[0]["reward_extra_info"] == {
        "score": pytest.approx(2 / 3), "pass_rate": pytest.approx(2 / 3), "extract_ok": 1.0, "num_tests": 3.0,
    }  # fmt: skip
    assert [o["reward_extra_info"]["extract_ok"] for o in out] == [1.0, 1.0, 1.0, 0.0]


def test_verl_09_sync_compute_score_float_logs_acc(live: Any) -> None:
    fn = verl_custom_reward_fn("pkg://cure_bench/serve/client", "compute_score", {"url": live.url, "token": TOKEN})
    assert not inspect.iscoroutinefunction(fn)
    out = asyncio.run(_verl_batch(fn))
    assert [o["reward_extra_info"] for o in out] == [{"acc": pytest.approx(v)} for v in (2 / 3, 1 / 3, 1.0, 0.0)]


def test_verl_legacy_batch_manager_call(live: Any) -> None:
    """verl <= 0.8's BatchRewardManager.verify: one call with plural keyword arguments."""
    fn = verl_custom_reward_fn(
        "pkg://cure_bench.serve.client", "compute_score_batch", {"url": live.url, "token": TOKEN}
    )
    scores = fn(
        data_sources=["x"] * 4,
        solution_strs=[r for r, _, _ in VERL_ROWS],
        ground_truths=[g for _, g, _ in VERL_ROWS],
        extra_infos=[{**e, "rollout_reward_scores": {}} for _, _, e in VERL_ROWS],
    )
    assert scores == pytest.approx([2 / 3, 1 / 3, 1.0, 0.0])


# ------------------------------------------------------------------------------------------ TRL


def test_trl_detection_as_trl_1_13_does_it(live: Any) -> None:
    """TRL 1.0-1.13: ``inspect.iscoroutinefunction(reward_func)`` picks the async path, awaited with
    ``asyncio.run_coroutine_threadsafe`` on TRL's loop thread; the log name is ``get_callable_name``'s."""
    from cure_bench.serve.client import make_trl_picklable_reward_func, make_trl_reward_func, make_trl_sync_reward_func

    reward = make_trl_reward_func(live.url, token=TOKEN, name="cure_tests")
    assert inspect.iscoroutinefunction(reward)
    assert getattr(reward, "__name__", type(reward).__name__) == "cure_tests"
    logged: dict[str, list[float]] = {}
    reward_kwargs = {
        "problem": [ADD_PROBLEM, ADD_PROBLEM, DOUBLE_PROBLEM],
        "trainer_state": object(),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: logged.setdefault(name, []).append(value),
    }
    call = {"prompts": ["p"] * 3, "completions": [ADD, PRINT3, DOUBLE], "completion_ids": [[1], [2], [3]]}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        out = asyncio.run_coroutine_threadsafe(reward(**call, **reward_kwargs), loop).result(timeout=60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert out == pytest.approx([2 / 3, 1 / 3, 1.0])
    assert logged == {"cure/extract_ok": [1.0], "cure/num_tests": [pytest.approx(10 / 3)]}

    sync = make_trl_sync_reward_func(live.url, token=TOKEN)
    assert not inspect.iscoroutinefunction(sync) and sync.__name__ == "cure_reward"
    assert sync(**call, **reward_kwargs) == pytest.approx([2 / 3, 1 / 3, 1.0])

    picklable = pickle.loads(pickle.dumps(make_trl_picklable_reward_func(live.url, token=TOKEN)))
    assert inspect.iscoroutinefunction(picklable)
    assert asyncio.run(picklable(**call, **reward_kwargs)) == pytest.approx([2 / 3, 1 / 3, 1.0])


# ------------------------------------------------------------------------------------------ /run_code


def verl_call_sandbox_api(url: str, code: str, stdin: str | None, timeout: int, memory_mb: int) -> dict:
    """verl's ``call_sandbox_api`` request (json.dumps body, no auth header)."""
    payload = json.dumps(
        {
            "compile_timeout": timeout,
            "run_timeout": timeout,
            "code": code,
            "stdin": stdin,
            "memory_limit_MB": memory_mb,
            "language": "python",
            "files": {},
            "fetch_files": [],
        }
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    response = httpx.post(url, headers=headers, content=payload, timeout=timeout * 2 + 10)
    response.raise_for_status()
    return response.json()


def verl_case_status(api: dict, expected: str | None) -> Any:
    """verl's ``_process_single_case`` verdict: True/False, -2 runtime error, -3 timeout, -1 sandbox error."""
    run = api.get("run_result") or {}
    if api["status"] == "SandboxError":
        return -1
    if api["status"] == "Failed":
        return -3 if run.get("status") == "TimeLimitExceeded" else -2
    return expected is None or str(run.get("stdout") or "").rstrip("\n") == expected.rstrip("\n")


def test_run_code_as_verls_sandbox_client_calls_it(open_live: str) -> None:
    url = open_live + "/run_code"
    ok = verl_call_sandbox_api(url, ADD_CODE, "1 2\n", timeout=5, memory_mb=1024)
    assert ok["status"] == "Success" and ok["run_result"]["status"] == "Finished"
    assert ok["run_result"]["return_code"] == 0 and ok["run_result"]["stdout"] == "3\n"
    assert verl_case_status(ok, "3") is True
    assert verl_case_status(verl_call_sandbox_api(url, ADD_CODE, "2 2", 5, 1024), "5") is False

    crash = verl_call_sandbox_api(url, "import sys\nprint('x')\nsys.exit(3)", None, 5, 1024)
    assert crash["status"] == "Failed" and crash["run_result"]["return_code"] == 3
    assert crash["run_result"]["stdout"] == "x\n" and verl_case_status(crash, "x") == -2
    error = verl_call_sandbox_api(url, "raise ValueError('boom')", "", 5, 1024)
    assert "ValueError: boom" in error["run_result"]["stderr"] and verl_case_status(error, "") == -2

    slow = verl_call_sandbox_api(url, "while True:\n    pass", "", 1, 1024)
    assert slow["status"] == "Failed" and slow["run_result"]["status"] == "TimeLimitExceeded"
    assert verl_case_status(slow, "") == -3


def test_run_code_needs_the_token_when_the_server_has_one(live: Any) -> None:
    body = {"code": "print(1)", "language": "python"}
    assert post(live.url, "/run_code", body, headers=None).status_code == 401
    answer = post(live.url, "/run_code", body).json()
    assert answer["status"] == "Success" and answer["run_result"]["stdout"] == "1\n"


# ------------------------------------------------------------------------------------------ bad input

BAD_RUN_CODE = [
    ({"code": "print(1)" + " " * 5000, "language": "python"}, 413, "max_code_bytes"),
    ({"code": "int main(){}", "language": "cpp"}, 422, "Python only"),
    ({"code": "x", "language": "cobol"}, 422, "Python only"),
    ({"code": "print(1)", "language": "python", "run_timeout": -1}, 422, "run_timeout"),
    ({"code": "print(1)", "language": "python", "run_timeout": 3600}, 422, "run_timeout"),
    ({"code": "print(1)", "language": "python", "compile_timeout": -5}, 422, "compile_timeout"),
    ({"code": "print(1)", "language": "python", "memory_limit_MB": 0}, 422, "memory_limit_MB"),
    ({"code": "print(1)", "language": "python", "files": {"a.txt": "aGk="}}, 422, "files are not supported"),
    ({"language": "python"}, 422, "code"),
]
BAD_SLIME = [
    ({"prompt": 5, "response": "x", "label": "P"}, "prompt"),
    ({"prompt": "p", "response": 3, "label": "P"}, "response"),
    ({"prompt": "p", "label": "P"} | {"response": None}, "response"),
    ({"prompt": [], "response": "x", "label": None}, "names no problem"),
    ({"prompt": "p", "response": "x", "label": ["a"]}, "label"),
    ({"prompt": "p", "response": "x", "label": "P", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_RUN_CODE)
def test_bad_run_code_gets_4xx_with_a_message(open_live: str, body: dict, status: int, fragment: str) -> None:
    response = httpx.post(open_live + "/run_code", json=body, timeout=30)
    assert response.status_code == status
    assert fragment in response.text
    assert httpx.get(open_live + "/health").json() == {"status": "ok"}


@pytest.mark.parametrize(("body", "fragment"), BAD_SLIME)
def test_malformed_slime_payloads_get_422_with_a_message(open_live: str, body: dict, fragment: str) -> None:
    response = httpx.post(open_live + "/get_reward", json=body, timeout=30)
    assert response.status_code == 422
    assert fragment in response.text


def test_get_reward_body_of_neither_shape_and_bad_format(open_live: str) -> None:
    for body in ([1, 2], {"prompts": ["p"]}, "text"):
        response = httpx.post(open_live + "/get_reward", json=body)
        assert response.status_code == 422 and "OpenRLHF" in response.json()["detail"]
    response = httpx.post(open_live + "/get_reward?format=xml", json={"prompt": "p", "response": "r"})
    assert response.status_code == 422 and "format" in response.json()["detail"]
    # and the server still answers real work
    good = {"prompt": "p", "response": DOUBLE, "label": DOUBLE_PROBLEM}
    assert httpx.post(open_live + "/get_reward", json=good, timeout=60).json() == 1.0


def test_oversized_program_in_score_is_reward_0_not_a_failed_batch(open_live: str) -> None:
    big = "```python\n" + ADD_CODE + "\n" + "#" * 5000 + "\n```"
    items = [{"problem": ADD_PROBLEM, "completion": big}, {"problem": ADD_PROBLEM, "completion": ADD}]
    results = httpx.post(open_live + "/v1/score", json={"items": items}, timeout=60).json()["results"]
    assert [r["reward"] for r in results] == pytest.approx([0.0, 2 / 3])
    assert "max_code_bytes" in results[0]["error"]
