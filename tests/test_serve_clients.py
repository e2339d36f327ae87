"""The trainer-side clients against a live local server: verl's compute_score, TRL's async reward function,
OpenRLHF's reward-function file. Expected rewards are those of tests/test_serve_live.py's scripted tester."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from typing import Any

import pytest

from cure_bench.serve import client as cure_client
from cure_bench.serve import transport
from cure_bench.serve.client import compute_score, compute_score_batch, make_trl_reward_func
from cure_bench.serve.errors import RewardServerError
from tests.test_serve_live import ADD, AUTH, DOUBLE, PRINT3, TOKEN, live, post, sandbox, tester

__all__ = ["live", "sandbox", "tester"]  # module-scoped fixtures, re-used here

ADD_PROBLEM = "ADD: read a and b, print a+b."
DOUBLE_PROBLEM = "DOUBLE: read n, print 2n."


@pytest.fixture(autouse=True)
def _fresh_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment leaking in, and no pooled client from another test's server."""
    monkeypatch.delenv(cure_client.URL_ENV, raising=False)
    monkeypatch.delenv(cure_client.TOKEN_ENV, raising=False)
    monkeypatch.setattr(transport, "_clients", {})


# ------------------------------------------------------------------------------------------ verl


def test_verl_compute_score_with_kwargs_and_env(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert compute_score("codecontests", ADD, ADD_PROBLEM, None, url=live.url, token=TOKEN) == pytest.approx(2 / 3)

    monkeypatch.setenv(cure_client.URL_ENV, live.url)
    monkeypatch.setenv(cure_client.TOKEN_ENV, TOKEN)
    post(live.url, "/v1/tests", {"problem": DOUBLE_PROBLEM, "task_id": "verl-double"})
    assert compute_score("x", DOUBLE, json.dumps({"task_id": "verl-double"})) == 1.0
    assert compute_score("x", PRINT3, {"problem": ADD_PROBLEM}, extra_info={"index": 3}) == pytest.approx(1 / 3)
    assert compute_score("x", DOUBLE, "", extra_info={"problem": DOUBLE_PROBLEM}) == 1.0
    assert compute_score("x", ADD, ADD_PROBLEM, reward="all_pass") == 0.0


def test_verl_batch_equals_v1_score(live: Any) -> None:
    solutions, truths = [ADD, PRINT3, DOUBLE, "no code"], [ADD_PROBLEM, ADD_PROBLEM, DOUBLE_PROBLEM, DOUBLE_PROBLEM]
    got = compute_score_batch(["a"] * 4, solutions, truths, None, url=live.url, token=TOKEN)
    items = [{"problem": t, "completion": s} for s, t in zip(solutions, truths, strict=True)]
    expected = [r["reward"] for r in post(live.url, "/v1/score", {"items": items}).json()["results"]]
    assert got == expected == pytest.approx([2 / 3, 1 / 3, 1.0, 0.0])


def test_verl_errors_name_the_problem(live: Any) -> None:
    with pytest.raises(RewardServerError, match="401"):
        compute_score("x", ADD, ADD_PROBLEM, url=live.url, token="wrong")
    with pytest.raises(RewardServerError, match=r"404.*unknown-task"):
        compute_score("x", ADD, {"task_id": "unknown-task"}, url=live.url, token=TOKEN)
    with pytest.raises(RewardServerError, match="cannot reach"):
        compute_score("x", ADD, ADD_PROBLEM, url="http://127.0.0.1:9", token=TOKEN, timeout=2)


# ------------------------------------------------------------------------------------------ TRL


def test_trl_reward_func_plain_and_conversational(live: Any) -> None:
    reward = make_trl_reward_func(live.url, token=TOKEN)
    metrics: dict[str, float] = {}
    plain = asyncio.run(
        reward(
            prompts=["Solve it.", "Solve it.", "Solve it."],
            completions=[ADD, PRINT3, DOUBLE],
            problem=[ADD_PROBLEM, ADD_PROBLEM, json.dumps({"problem": DOUBLE_PROBLEM})],
            log_metric=lambda name, value: metrics.__setitem__(name, value),
        )
    )
    assert plain == pytest.approx([2 / 3, 1 / 3, 1.0])
    assert metrics == {"cure/extract_ok": 1.0, "cure/num_tests": pytest.approx((3 + 3 + 4) / 3)}

    # Conversational rows and no problem column: the problem is the prompt's last user message.
    prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": DOUBLE_PROBLEM}]] * 2
    completions = [[{"role": "assistant", "content": DOUBLE}], [{"role": "assistant", "content": "no code"}]]
    assert asyncio.run(reward(prompts=prompts, completions=completions)) == [1.0, 0.0]

    post(live.url, "/v1/tests", {"problem": DOUBLE_PROBLEM, "task_id": "trl-double"})
    by_id = asyncio.run(reward(prompts=["p"], completions=[DOUBLE], task_id=["trl-double"]))
    assert by_id == [1.0]


@pytest.mark.slow
def test_trl_grpo_treats_it_as_an_async_reward_function(live: Any) -> None:
    """Run the reward the way GRPOTrainer._calculate_rewards does in TRL 1.16: detected as async, named,
    awaited on TRL's daemon event loop with the dataset columns and TRL's extra kwargs."""
    from trl.trainer.utils import (
        get_callable_name,
        is_async_callable,
        shutdown_event_loop_in_daemon,
        start_event_loop_in_daemon,
    )

    reward = make_trl_reward_func(live.url, token=TOKEN, name="cure_tests")
    assert is_async_callable(reward) and get_callable_name(reward) == "cure_tests"
    thread, loop, ready = start_event_loop_in_daemon(name="trl-async-rewards")
    ready.wait()
    logged: dict[str, list[float]] = {}
    try:
        kwargs = {
            "problem": [ADD_PROBLEM, DOUBLE_PROBLEM],
            "trainer_state": object(),
            "log_extra": lambda column, values: None,
            "log_metric": lambda name, value: logged.setdefault(name, []).append(value),
        }
        coro = reward(prompts=["p", "p"], completions=[ADD, DOUBLE], completion_ids=[[1], [2]], **kwargs)
        rewards = asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)
    finally:
        shutdown_event_loop_in_daemon(thread, loop)
    assert rewards == pytest.approx([2 / 3, 1.0])
    assert logged["cure/extract_ok"] == [1.0]


# ------------------------------------------------------------------------------------------ OpenRLHF


@pytest.mark.slow
def test_openrlhf_reward_file_matches_get_reward(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaded from its path, as OpenRLHF does with --remote_rm_url /path/to/file.py."""
    from cure_bench.serve import openrlhf_reward

    monkeypatch.setenv(cure_client.URL_ENV, live.url)
    monkeypatch.setenv(cure_client.TOKEN_ENV, TOKEN)
    spec = importlib.util.spec_from_file_location("reward_func", openrlhf_reward.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    prompts = ["<user>A</user>", "<user>B</user>"]
    queries = [prompts[0] + ADD, prompts[1] + PRINT3]
    labels = [ADD_PROBLEM, json.dumps({"problem": ADD_PROBLEM})]
    out = module.reward_func(queries, prompts, labels)
    http = post(live.url, "/get_reward", {"query": queries, "prompts": prompts, "labels": labels}, headers=AUTH).json()
    assert http["rewards"] == pytest.approx([2 / 3, 1 / 3])
    assert out["rewards"].tolist() == pytest.approx(http["rewards"])
    assert out["scores"].tolist() == pytest.approx(http["scores"])
    assert set(out["extra_logs"]) == {"pass_rate", "extract_ok", "num_tests"}


@pytest.mark.slow
def test_trl_grpo_trainer_step_uses_the_server(live: Any, tiny_model_dir: Any, tmp_path: Any) -> None:
    """One real GRPOTrainer step (tiny random model, CPU): TRL awaits our async reward and logs it.
    The model's text is garbage, so every reward is 0; the test asserts the plumbing, not the values."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from cure_bench.serve.app import metrics_of

    scored_before = metrics_of(live.app).value("cure_serve_items_scored_total")
    row = {"prompt": [{"role": "user", "content": "Solve ADD."}], "problem": ADD_PROBLEM}
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, num_generations=2, max_completion_length=8,
        max_steps=1, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no",
    )  # fmt: skip
    reward = make_trl_reward_func(live.url, token=TOKEN)
    trainer = GRPOTrainer(model=str(tiny_model_dir), args=args, train_dataset=Dataset.from_list([row] * 4),
                          reward_funcs=[reward])  # fmt: skip
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["rewards/cure_reward/mean"] == 0.0
    assert logged["cure/num_tests"] == 3.0  # the server's tests for ADD were used
    assert metrics_of(live.app).value("cure_serve_items_scored_total") - scored_before == 2


def test_verl_loads_the_client_file_by_path(live: Any) -> None:
    """verl imports custom_reward_function.path as a file, not as a package module."""
    spec = importlib.util.spec_from_file_location("custom_module", cure_client.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    score = module.compute_score(data_source="x", solution_str=ADD, ground_truth=ADD_PROBLEM, extra_info=None,
                                 url=live.url, token=TOKEN)  # fmt: skip
    assert score == pytest.approx(2 / 3)
    batch = module.compute_score_batch(data_sources=["x"], solution_strs=[DOUBLE], ground_truths=[DOUBLE_PROBLEM],
                                       extra_infos=[{}], url=live.url, token=TOKEN)  # fmt: skip
    assert batch == [1.0]
