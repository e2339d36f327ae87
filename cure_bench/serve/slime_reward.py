"""slime custom reward functions backed by the reward server (``--custom-rm-path``).

slime loads ``--custom-rm-path module.function`` with ``importlib`` and awaits it: ``fn(args, sample)`` per
sample, or ``fn(args, samples)`` for a whole group with ``--group-rm`` (and when a custom generate function
returns several samples). ``slime_rm`` takes either and answers in kind (a reward, or a list of them);
``slime_group_rm`` is the group form by name. One group is one HTTP request.

    --custom-rm-path cure_bench.serve.slime_reward.slime_rm            # add --group-rm for groups

Where the server is: slime's ``--rm-url`` (``args.rm_url``, a trailing /get_reward is cut), else
``$CURE_REWARD_URL``; the token: ``$CURE_AUTH_TOKEN``. A sample's problem: its ``label`` (problem text or
JSON with problem/task_id), else ``metadata["problem"|"task_id"]``, else its prompt (text, or the last user
message). The reward is a float; with slime's ``--reward-key KEY`` it is a dict holding ``KEY`` (the reward)
and ``pass_rate``, ``extract_ok``, ``num_tests``, which slime keeps on the sample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.serve.reward_rules import parse_label, prompt_text
from cure_bench.serve.transport import DEFAULT_TIMEOUT_S, TOKEN_ENV, apost, resolve_url, score_body, score_details

Reward = float | dict[str, float]


def sample_item(sample: Any) -> dict[str, Any]:
    """The /v1/score item of one slime Sample (``prompt``, ``response``, ``label``, ``metadata``)."""
    problem, task_id = parse_label(getattr(sample, "label", None))
    metadata = getattr(sample, "metadata", None)
    if problem is None and task_id is None and isinstance(metadata, dict):
        problem, task_id = parse_label({k: v for k, v in metadata.items() if k in ("problem", "task_id")})
    if problem is None and task_id is None:
        problem = prompt_text(getattr(sample, "prompt", None))
    if problem is None and task_id is None:
        raise ConfigError(
            f"slime sample {getattr(sample, 'index', '?')} names no problem: set its label to the problem text "
            "(or JSON with 'problem'/'task_id'), or give it a prompt with a user message"
        )
    item: dict[str, Any] = {"completion": str(getattr(sample, "response", "") or "")}
    if problem is not None:
        item["problem"] = problem
    if task_id is not None:
        item["task_id"] = task_id
    return item


def _answer(result: dict[str, Any], reward_key: str | None) -> Reward:
    reward = float(result["reward"])
    if not reward_key:
        return reward
    return {"reward": reward, **score_details(result), reward_key: reward}


async def _score(args: Any, samples: Sequence[Any]) -> list[Reward]:
    if not samples:
        return []
    url = resolve_url(getattr(args, "rm_url", None))
    token = os.environ.get(TOKEN_ENV)
    body = score_body([sample_item(s) for s in samples], {})
    data = await apost(url, "/v1/score", body, token, DEFAULT_TIMEOUT_S)
    reward_key = getattr(args, "reward_key", None)
    return [_answer(r, reward_key) for r in data["results"]]


async def slime_rm(args: Any, sample: Any, **kwargs: Any) -> Reward | list[Reward]:
    """slime's custom reward: one Sample gives one reward; a list of Samples gives a list, in order."""
    if isinstance(sample, list | tuple):
        return await _score(args, list(sample))
    return (await _score(args, [sample]))[0]


async def slime_group_rm(args: Any, samples: Sequence[Any], **kwargs: Any) -> list[Reward]:
    """slime's ``--group-rm`` form: the rewards of a whole group, one request."""
    return await _score(args, list(samples))
