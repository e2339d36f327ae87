"""TRL reward functions backed by the reward server (also importable from ``cure_bench.serve.client``).

``GRPOTrainer(reward_funcs=[make_trl_reward_func(url)])``. Why a real ``async def`` and not an object with an
async ``__call__``: TRL (1.0 through 1.16, tested) tells async reward functions apart with
``inspect.iscoroutinefunction(reward_func)``, which is False for such an object, so TRL would call it as a
sync function and get a coroutine it never awaits. The function's ``__name__`` is what TRL logs it as
(``rewards/<name>/mean``). ``make_trl_sync_reward_func`` is the blocking twin for code that wants one.

Both are called as TRL does: ``f(prompts=..., completions=..., completion_ids=..., **dataset_columns,
trainer_state=..., log_extra=..., log_metric=...)``. The problem of each row comes from the dataset column
``problem_column`` (text or JSON label), else ``task_id_column``, else the prompt itself (its last user message
when conversational); conversational completions are scored on their last assistant message.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cure_bench.serve.transport import (
    DEFAULT_TIMEOUT_S,
    TOKEN_ENV,
    apost,
    make_item,
    resolve_url,
    score_body,
    score_options,
    shared_client,
)

RewardFunc = Callable[..., list[float]]
AsyncRewardFunc = Callable[..., Awaitable[list[float]]]


@dataclass
class TRLRows:
    """What both adapters share: turning TRL's batch into /v1/score items, and logging the answer."""

    url: str
    token: str | None
    problem_column: str = "problem"
    task_id_column: str = "task_id"
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S

    def body(self, prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]) -> dict[str, Any]:
        items = [self._item(i, prompts[i], completion, columns) for i, completion in enumerate(completions)]
        return score_body(items, self.options)

    def rewards(self, results: list[dict[str, Any]], columns: Mapping[str, Any]) -> list[float]:
        log_metric = columns.get("log_metric")
        if callable(log_metric) and results:
            log_metric("cure/extract_ok", sum(r["extract_ok"] for r in results) / len(results))
            log_metric("cure/num_tests", sum(r["total"] for r in results) / len(results))
        return [float(r["reward"]) for r in results]

    def _item(self, i: int, prompt: Any, completion: Any, columns: Mapping[str, Any]) -> dict[str, Any]:
        label: Any
        if self.problem_column in columns:
            label = columns[self.problem_column][i]
        elif self.task_id_column in columns:
            label = {"task_id": columns[self.task_id_column][i]}
        else:
            label = message_text(prompt, role="user")
        return make_item(message_text(completion, role="assistant"), label)


def _rows(url: str | None, token: str | None, options: dict[str, Any]) -> tuple[TRLRows, str]:
    name = str(options.pop("name", "cure_reward"))
    known = {"problem_column", "task_id_column", "reward", "extract", "time_limit_s", "timeout"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; known: {sorted(known | {'name'})}")
    rows = TRLRows(
        url=resolve_url(url),
        token=token or os.environ.get(TOKEN_ENV),
        problem_column=options.get("problem_column", "problem"),
        task_id_column=options.get("task_id_column", "task_id"),
        options=score_options(options.get("reward"), options.get("extract"), options.get("time_limit_s")),
        timeout=float(options.get("timeout", DEFAULT_TIMEOUT_S)),
    )
    return rows, name


async def cure_reward(
    prompts: Sequence[Any], completions: Sequence[Any], *, rows: TRLRows, **columns: Any
) -> list[float]:
    """The async reward itself, at module level so ``functools.partial(cure_reward, rows=...)`` pickles."""
    data = await apost(rows.url, "/v1/score", rows.body(prompts, completions, columns), rows.token, rows.timeout)
    return rows.rewards(data["results"], columns)


def make_trl_reward_func(url: str | None = None, token: str | None = None, **options: Any) -> AsyncRewardFunc:
    """An async reward function for ``GRPOTrainer(reward_funcs=[...])``, awaited on TRL's event loop.

    ``options``: ``problem_column``, ``task_id_column``, ``reward``, ``extract``, ``time_limit_s``, ``timeout``,
    ``name`` (TRL's log name; default ``cure_reward``).
    """
    rows, name = _rows(url, token, dict(options))

    async def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        return await cure_reward(prompts, completions, rows=rows, **columns)

    reward.__name__ = reward.__qualname__ = name
    return reward


def make_trl_picklable_reward_func(url: str | None = None, token: str | None = None, **options: Any) -> Any:
    """``functools.partial(cure_reward, rows=...)``: async and picklable, for TRL's experimental async GRPO,
    which sends reward functions to a spawned process (closures do not pickle). TRL logs it as ``cure_reward``."""
    import functools

    rows, _name = _rows(url, token, dict(options))
    return functools.partial(cure_reward, rows=rows)


def make_trl_sync_reward_func(url: str | None = None, token: str | None = None, **options: Any) -> RewardFunc:
    """The blocking twin of ``make_trl_reward_func`` (one pooled HTTP client; same options)."""
    rows, name = _rows(url, token, dict(options))

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        client = shared_client(rows.url, rows.token, rows.timeout)
        data = client.post("/v1/score", rows.body(prompts, completions, columns))
        return rows.rewards(data["results"], columns)

    reward.__name__ = reward.__qualname__ = name
    return reward


def message_text(value: Any, role: str) -> str:
    """Plain text, or the content of the last ``role`` message of a conversation."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        for message in reversed(value):
            if isinstance(message, Mapping) and message.get("role") == role:
                return _content_text(message.get("content"))
        if value and isinstance(value[-1], Mapping):
            return _content_text(value[-1].get("content"))
    return str(value)


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a multimodal content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)
