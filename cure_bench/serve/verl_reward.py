"""verl custom reward functions backed by the reward server (also importable from ``cure_bench.serve.client``).

verl 0.9 (the reward loop): ``reward.custom_reward_function.path=pkg://cure_bench.serve.client`` and
``name=compute_score_async``. Its reward managers test ``inspect.iscoroutinefunction`` and await an async
function on their own event loop (a sync one goes to a thread pool), once per sample::

    await compute_score_async(data_source=..., solution_str=..., ground_truth=..., extra_info=..., **reward_kwargs)

A float answer makes verl log only ``acc``; with ``return_dict=True`` in ``reward_kwargs`` the answer is a
dict, ``{"score", "pass_rate", "extract_ok", "num_tests"}``, and verl logs every key.

Older verl (the ``batch`` reward manager, gone from 0.9): ``name=compute_score_batch``, one request per batch,
called as ``compute_score_batch(data_sources=, solution_strs=, ground_truths=, extra_infos=, **reward_kwargs)``.

``reward_kwargs``: ``url``, ``token``, ``reward`` (pass_rate | all_pass), ``extract``, ``time_limit_s``,
``timeout``, ``return_dict``. Unknown keys verl adds (``reward_router_address``...) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cure_bench.serve.transport import (
    DEFAULT_TIMEOUT_S,
    TOKEN_ENV,
    apost,
    make_item,
    resolve_url,
    score_body,
    score_details,
    score_options,
    shared_client,
)

Score = float | dict[str, float]


def _verl_answer(result: Mapping[str, Any], return_dict: bool) -> Score:
    """verl's shape for one /v1/score result: the reward, or the dict verl logs key by key."""
    reward = float(result["reward"])
    if not return_dict:
        return reward
    return {"score": reward, **score_details(result)}


def _options_of(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return score_options(kwargs.get("reward"), kwargs.get("extract"), kwargs.get("time_limit_s"))


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Score:
    """verl custom reward (sync): the reward of ``solution_str`` on the tests the tester wrote for the problem.

    ``ground_truth`` is the problem text or a JSON object with ``problem``/``task_id``; when it names neither,
    ``extra_info``'s ``task_id``, ``problem`` or ``question`` does. See the module docstring for ``kwargs``.
    """
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]


async def compute_score_async(
    data_source: str | None = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Score:
    """verl 0.9's async custom reward: awaited on verl's reward loop, so many samples are in flight at once."""
    import os

    item = make_item(solution_str, ground_truth, extra_info)
    url = resolve_url(kwargs.get("url"))
    token = kwargs.get("token") or os.environ.get(TOKEN_ENV)
    body = score_body([item], _options_of(kwargs))
    data = await apost(url, "/v1/score", body, token, float(kwargs.get("timeout", DEFAULT_TIMEOUT_S)))
    return _verl_answer(data["results"][0], bool(kwargs.get("return_dict", False)))


def compute_score_batch(
    data_sources: Sequence[str | None],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    **kwargs: Any,
) -> list[Score]:
    """verl's batch reward manager form (verl <= 0.8): one HTTP request for the whole batch."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    items = [make_item(s, g, e) for s, g, e in zip(solution_strs, ground_truths, infos, strict=True)]
    client = shared_client(kwargs.get("url"), kwargs.get("token"), kwargs.get("timeout", DEFAULT_TIMEOUT_S))
    return_dict = bool(kwargs.get("return_dict", False))
    return [_verl_answer(r, return_dict) for r in client.score(items, _options_of(kwargs))]
