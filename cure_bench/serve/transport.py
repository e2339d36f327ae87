"""The HTTP side of the trainer clients: where the server is, the request body, retries, one pooled client.

Where the server is: the ``url`` argument, else ``$CURE_REWARD_URL`` (e.g. ``http://127.0.0.1:8765``); the
token: ``token``, else ``$CURE_AUTH_TOKEN``. A problem is named by its text or by a JSON object with
``problem`` and/or ``task_id`` (the same rule as /get_reward's labels), so one dataset column works for
every trainer.

The request body is built once (``score_body``) and sent by a sync (``RewardClient``) or an async (``apost``)
transport; failures that a retry can fix (connection refused, 502/503/504) are retried with backoff, the rest
raise ``RewardServerError`` with the server's message.
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
        raise ConfigError(f"no reward server URL: pass url=... or set {URL_ENV} (e.g. http://127.0.0.1:8765)")
    value = value.rstrip("/")
    for suffix in ("/v1/score", "/get_reward"):
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    return value


def _headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


EXTRA_INFO_KEYS = ("problem", "question")  # verl's preprocessors put the problem text in extra_info["question"]


def make_item(
    solution: str, label: Any, extra_info: Mapping[str, Any] | None = None, field: str = "completion"
) -> dict[str, Any]:
    """A /v1/score item from a completion and a label (problem text or {problem|task_id}).

    When the label names no problem (verl's ground truth is often the tests or an answer), ``extra_info``'s
    ``task_id``, ``problem`` or ``question`` does.
    """
    problem, task_id = parse_label(label)
    if problem is None and task_id is None and extra_info:
        text = next((extra_info[k] for k in EXTRA_INFO_KEYS if isinstance(extra_info.get(k), str)), None)
        problem, task_id = parse_label({"problem": text, "task_id": extra_info.get("task_id")})
    if problem is None and task_id is None:
        raise ConfigError(
            f"cannot tell the problem from ground truth {str(label)[:80]!r}: give the problem text, or a JSON "
            "object with 'problem' or 'task_id' (or put the problem in extra_info['question'] or ['problem'])"
        )
    item: dict[str, Any] = {field: solution}
    if problem is not None:
        item["problem"] = problem
    if task_id is not None:
        item["task_id"] = task_id
    return item


def score_options(reward: str | None, extract: str | None, time_limit_s: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if reward is not None:
        options["reward"] = reward
    if extract is not None:
        options["extract"] = extract
    if time_limit_s is not None:
        options["time_limit_s"] = time_limit_s
    return options


def score_details(result: Mapping[str, Any]) -> dict[str, float]:
    """The per-item numbers of a /v1/score result that trainers log beside the reward (verl, slime)."""
    return {
        "pass_rate": float(result["pass_rate"]),
        "extract_ok": float(bool(result["extract_ok"])),
        "num_tests": float(result["total"]),
    }


def score_body(items: Sequence[dict[str, Any]], options: Mapping[str, Any] | None) -> dict[str, Any]:
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
                    answer: dict[str, Any] = response.json()
                    return answer
                if response.status_code not in RETRY_STATUS or attempt == self.retries:
                    raise _error_of(response)
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def score(self, items: Sequence[dict[str, Any]], options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.post("/v1/score", score_body(items, options))["results"]
        return results

    def tests(self, problem: str, task_id: str | None = None, num_tests: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"problem": problem}
        if task_id is not None:
            body["task_id"] = task_id
        if num_tests is not None:
            body["num_tests"] = num_tests
        return self.post("/v1/tests", body)

    def select(
        self, problem: str, candidates: Sequence[str], options: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
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
                    answer: dict[str, Any] = response.json()
                    return answer
                if response.status_code not in RETRY_STATUS or attempt == retries:
                    raise _error_of(response)
            await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


_clients: dict[tuple[str, str | None, float], RewardClient] = {}
_clients_lock = threading.Lock()


def shared_client(url: str | None, token: str | None, timeout: float) -> RewardClient:
    """One client per (url, token, timeout) per process: verl calls compute_score once per sample."""
    key = (resolve_url(url), token or os.environ.get(TOKEN_ENV), float(timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RewardClient(key[0], key[1], timeout)
        return client
