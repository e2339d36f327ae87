"""Clients of the reward server for RL trainers, in one import: verl, TRL, slime, and a plain ``RewardClient``.

Each framework's adapter lives in its own module (``verl_reward``, ``trl_reward``, ``slime_reward``; the HTTP
side in ``transport``); this module gathers them so one path works everywhere, e.g. verl's
``reward.custom_reward_function.path=pkg://cure_bench.serve.client``.

verl::

    compute_score(data_source, solution_str, ground_truth, extra_info=None, url=..., token=...) -> float
    await compute_score_async(...)            # verl 0.9's reward loop; return_dict=True for a dict
    compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos)   # verl's old batch manager

TRL::

    GRPOTrainer(..., reward_funcs=[make_trl_reward_func("http://127.0.0.1:8765")])

slime::

    --custom-rm-path cure_bench.serve.client.slime_rm
"""

from __future__ import annotations

from cure_bench.serve.slime_reward import slime_group_rm, slime_rm
from cure_bench.serve.transport import (
    DEFAULT_TIMEOUT_S,
    RETRY_STATUS,
    TOKEN_ENV,
    URL_ENV,
    RewardClient,
    apost,
    make_item,
    resolve_url,
    shared_client,
)
from cure_bench.serve.trl_reward import (
    make_trl_picklable_reward_func,
    make_trl_reward_func,
    make_trl_sync_reward_func,
)
from cure_bench.serve.verl_reward import compute_score, compute_score_async, compute_score_batch

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "RETRY_STATUS",
    "TOKEN_ENV",
    "URL_ENV",
    "RewardClient",
    "apost",
    "compute_score",
    "compute_score_async",
    "compute_score_batch",
    "make_item",
    "make_trl_picklable_reward_func",
    "make_trl_reward_func",
    "make_trl_sync_reward_func",
    "resolve_url",
    "shared_client",
    "slime_group_rm",
    "slime_rm",
]
