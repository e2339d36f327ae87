"""Clients of the reward server for RL trainers: verl's ``compute_score``, a TRL reward function, and a
plain ``RewardClient``.

Where the server is: the ``url`` argument, else ``$CURE_REWARD_URL`` (e.g. ``http://127.0.0.1:8000``); the
token: ``token``, else ``$CURE_AUTH_TOKEN``. A problem is named by its text or by a JSON object with
``problem`` and/or ``task_id`` (the same rule as /get_reward's labels), so one dataset column works for
every trainer.

verl (``custom_reward_function.path`` = this file, ``name`` = ``compute_score``)::

    compute_score(data_source, solution_str, ground_truth, extra_info=None, url=..., token=...) -> float

TRL::

    GRPOTrainer(..., reward_funcs=[make_trl_reward_func("http://127.0.0.1:8000")])

The request body is built once (``_score_body``) and sent by a sync or an async transport; failures that a
retry can fix (connection refused, 502/503/504) are retried with backoff, the rest raise
``RewardServerError`` with the server's message.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.serve.errors import RewardServerError
from cure_bench.serve.reward_rules import parse_label

URL_ENV = "CURE_REWARD_URL"
TOKEN_ENV = "CURE_AUTH_TOKEN"
RETRY_STATUS = (502, 503, 504)
DEFAULT_TIMEOUT_S = 600.0


def resolve_url(url: str | None) -> str:
    """The server's base URL: the argument, else $CURE_REWARD_URL (a trailing /v1/score etc. is cut off)."""
    value = url or os.environ.get(URL_ENV)
    if not value:
        raise ConfigError(f"no reward server URL: pass url=... or set {URL_ENV} (e.g. http://127.0.0.1:8000)")
    value = value.rstrip("/")
    for suffix in ("/v1/score", "/get_reward"):
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    return value


def _headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def make_item(
    solution: str, label: Any, extra_info: Mapping[str, Any] | None = None, field: str = "completion"
) -> dict:
    """A /v1/score item from a completion and a label (problem text or {problem|task_id})."""
    problem, task_id = parse_label(label if isinstance(label, str | dict) else None)
    if problem is None and task_id is None and extra_info:
        problem, task_id = parse_label({k: extra_info[k] for k in ("problem", "task_id") if k in extra_info})
    if problem is None and task_id is None:
        raise ConfigError(
            f"cannot tell the problem from ground truth {str(label)[:80]!r}: give the problem text, or a JSON "
            "object with 'problem' or 'task_id'"
        )
    item: dict[str, Any] = {field: solution}
    if problem is not None:
        item["problem"] = problem
    if task_id is not None:
        item["task_id"] = task_id
    return item


def _options(reward: str | None, extract: str | None, time_limit_s: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if reward is not None:
        options["reward"] = reward
    if extract is not None:
        options["extract"] = extract
    if time_limit_s is not None:
        options["time_limit_s"] = time_limit_s
    return options


def _score_body(items: Sequence[dict], options: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"items": list(items), "options": dict(options or {})}


def _error_of(response: Any) -> RewardServerError:
    try:
        detail = response.json().get("error") or response.json().get("detail")
    except ValueError:
        detail = response.text[:500]
    return RewardServerError(f"reward server {response.request.url} answered {response.status_code}: {detail}")


class RewardClient:
    """Synchronous client (one keep-alive connection pool; safe to share between threads)."""

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, retries: int = 3
    ):
        import httpx

        self.url = resolve_url(url)
        self.retries = retries
        self._client = httpx.Client(base_url=self.url, headers=_headers(token), timeout=timeout)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST JSON and return the JSON answer; retries what a retry can fix."""
        import httpx

        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(path, json=body)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise RewardServerError(f"cannot reach the reward server at {self.url}: {exc!r}") from exc
            else:
                if response.status_code < 400:
                    return response.json()
                if response.status_code not in RETRY_STATUS or attempt == self.retries:
                    raise _error_of(response)
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def score(self, items: Sequence[dict], options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.post("/v1/score", _score_body(items, options))["results"]

    def tests(self, problem: str, task_id: str | None = None, num_tests: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"problem": problem}
        if task_id is not None:
            body["task_id"] = task_id
        if num_tests is not None:
            body["num_tests"] = num_tests
        return self.post("/v1/tests", body)

    def select(self, problem: str, candidates: Sequence[str], options: Mapping[str, Any] | None = None) -> dict:
        return self.post(
            "/v1/select", {"problem": problem, "candidates": list(candidates), "options": dict(options or {})}
        )

    def close(self) -> None:
        self._client.close()


async def apost(
    url: str, path: str, body: Mapping[str, Any], token: str | None, timeout: float, retries: int = 3
) -> dict[str, Any]:
    """The async twin of ``RewardClient.post`` (a fresh connection pool per call: any event loop works)."""
    import httpx

    async with httpx.AsyncClient(base_url=url, headers=_headers(token), timeout=timeout) as client:
        for attempt in range(retries + 1):
            try:
                response = await client.post(path, json=body)
            except httpx.TransportError as exc:
                if attempt == retries:
                    raise RewardServerError(f"cannot reach the reward server at {url}: {exc!r}") from exc
            else:
                if response.status_code < 400:
                    return response.json()
                if response.status_code not in RETRY_STATUS or attempt == retries:
                    raise _error_of(response)
            await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------ verl

_clients: dict[tuple[str, str | None, float], RewardClient] = {}
_clients_lock = threading.Lock()


def _shared_client(url: str | None, token: str | None, timeout: float) -> RewardClient:
    """One client per (url, token, timeout) per process: verl calls compute_score once per sample."""
    key = (resolve_url(url), token or os.environ.get(TOKEN_ENV), float(timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RewardClient(key[0], key[1], timeout)
        return client


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> float:
    """verl custom reward: the reward of ``solution_str`` on the tests the tester wrote for the problem.

    ``ground_truth`` is the problem text or a JSON object with ``problem``/``task_id`` (``extra_info``'s
    ``problem``/``task_id`` are used when it names neither). Keyword arguments (verl's
    ``custom_reward_function.reward_kwargs``): ``url``, ``token``, ``reward`` (pass_rate | all_pass),
    ``extract``, ``time_limit_s``, ``timeout``.
    """
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]


def compute_score_batch(
    data_sources: Sequence[str | None],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    **kwargs: Any,
) -> list[float]:
    """verl's batch reward manager form: one HTTP request for the whole batch."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    items = [make_item(s, g, e) for s, g, e in zip(solution_strs, ground_truths, infos, strict=True)]
    client = _shared_client(kwargs.get("url"), kwargs.get("token"), kwargs.get("timeout", DEFAULT_TIMEOUT_S))
    options = _options(kwargs.get("reward"), kwargs.get("extract"), kwargs.get("time_limit_s"))
    return [float(r["reward"]) for r in client.score(items, options)]


# ------------------------------------------------------------------------------------------------ TRL


class CureRewardFunc:
    """An async TRL reward function: ``await f(prompts, completions, **columns) -> list[float]``.

    TRL runs async reward functions on its own event loop, concurrently with other reward functions.
    The problem of each row comes from the dataset column ``problem_column`` (text or JSON label), else
    ``task_id_column``, else the prompt itself (its last user message when conversational). Conversational
    completions (lists of messages) are scored on their last assistant message.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        problem_column: str = "problem",
        task_id_column: str = "task_id",
        reward: str | None = None,
        extract: str | None = None,
        time_limit_s: float | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        name: str = "cure_reward",
    ):
        self.url = resolve_url(url)
        self.token = token
        self.problem_column = problem_column
        self.task_id_column = task_id_column
        self.options = _options(reward, extract, time_limit_s)
        self.timeout = timeout
        self.__name__ = name  # TRL names the reward in its logs after this

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        items = [self._item(i, prompts[i], completion, kwargs) for i, completion in enumerate(completions)]
        data = await apost(self.url, "/v1/score", _score_body(items, self.options), self.token, self.timeout)
        results = data["results"]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and results:
            log_metric("cure/extract_ok", sum(r["extract_ok"] for r in results) / len(results))
            log_metric("cure/num_tests", sum(r["total"] for r in results) / len(results))
        return [float(r["reward"]) for r in results]

    def _item(self, i: int, prompt: Any, completion: Any, columns: Mapping[str, Any]) -> dict:
        label: Any = None
        if self.problem_column in columns:
            label = columns[self.problem_column][i]
        elif self.task_id_column in columns:
            label = {"task_id": columns[self.task_id_column][i]}
        else:
            label = _message_text(prompt, role="user")
        return make_item(_message_text(completion, role="assistant"), label)


def _message_text(value: Any, role: str) -> str:
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


def make_trl_reward_func(url: str | None = None, token: str | None = None, **options: Any) -> CureRewardFunc:
    """A reward function for ``GRPOTrainer(reward_funcs=[...])`` backed by the reward server.

    ``options``: ``problem_column``, ``task_id_column``, ``reward``, ``extract``, ``time_limit_s``,
    ``timeout``, ``name`` (see ``CureRewardFunc``).
    """
    return CureRewardFunc(url, token, **options)
