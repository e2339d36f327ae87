"""The part of the OpenAI backend that lives on the event-loop thread: requests, limits, n handling.

One chat-completions request per (prompt, batch of sample indices) asks for ``n`` choices, so a prompt
is sent once per task and role rather than k times. Servers differ: some reject ``n > 1`` (400), some
silently cap it, some return a single choice. The first such answer switches the whole run to what
the server can do (a cap, or one sample per request), logged once, and the missing samples are asked
for again; samples already received are kept.

Retries and backoff are the openai SDK's own (429, 408, 409 and 5xx, honouring ``retry-after-ms`` and
``Retry-After``); the ``--rpm`` limiter sits in an httpx request hook so those retries are rate
limited too, and ``--concurrency`` caps requests in flight per endpoint (a slot of the ``EndpointPool``
held across a request's retries). Several endpoints (``--base-url A,B``) share one pool, one set of rate
limiters and one learned n-mode; a dropped endpoint's request is sent again to another (see ``endpoints``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cure_bench.errors import BackendError, ServerUnreachableError
from cure_bench.generation.backends.endpoints import AllEndpointsDown, Endpoint, EndpointPool
from cure_bench.generation.backends.ratelimit import estimate_request_tokens, request_limiter, token_limiter
from cure_bench.generation.reasoning import join_reasoning
from cure_bench.types import Completion, GenerationRequest

log = logging.getLogger(__name__)

Emit = Callable[[tuple[GenerationRequest, int, Completion]], None]

_MENTIONS_N = re.compile(r"(?<![\w.-])n(?![\w-])|multiple (choices|candidates|completions)", re.IGNORECASE)


class Stopped(Exception):
    """Internal: Ctrl-C asked for no new requests; this one was not sent."""


class NRejected(Exception):
    """Internal: the server refused ``n > 1``."""


class Replan(Exception):
    """Internal: while this request waited for a slot, the run learned a smaller n; it was not sent."""


@dataclass(frozen=True)
class WireSettings:
    """How to reach the server and how hard to push it (validated by OpenAIGenerator)."""

    model: str
    base_url: str  # for messages: the URL, or the comma-separated list
    api_key: str
    timeout: float
    max_retries: int
    concurrency: int
    rpm: float | None
    tpm: float | None
    rpm_window_s: float
    endpoint: str = "chat"  # or "completions": one raw prompt string per request
    base_urls: tuple[str, ...] = ()  # the servers (empty: just base_url)

    @property
    def urls(self) -> tuple[str, ...]:
        return self.base_urls or (self.base_url,)


class ClientSide:
    """SDK client, semaphore, limiters and the learned n-mode; create and use on the loop thread only."""

    def __init__(self, settings: WireSettings, request_n: bool) -> None:
        self.settings = settings
        self.n_mode = request_n  # False: one sample per request
        self.n_cap: int | None = None  # largest n the server honoured, once it capped one
        self.token_param = "max_tokens"
        self.identical_prompts = 0  # prompts whose k samples (temperature > 0) were all byte-identical
        self.stopping = False
        self._stop_event: asyncio.Event | None = None
        self.pool = EndpointPool(settings.urls, settings.concurrency)
        self._clients_open = False
        self._rpm: Any = None
        self._tpm: Any = None
        self._tpm_warned = False

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def server_seen(self) -> bool:
        """Has any endpoint answered anything yet."""
        return any(e.server_seen for e in self.pool.endpoints)

    def _ensure_client(self) -> None:
        """One SDK client per endpoint; the rate limiters are built once and shared by all of them."""
        if self._clients_open:
            return
        import openai

        from cure_bench.generation.backends._failover import http_client
        from cure_bench.generation.backends.openai_backend import redact_url

        s = self.settings
        for ep in self.pool.endpoints:
            http = http_client(self.pool, ep, redact_url, {"request": [self._before_send]})
            ep.client = openai.AsyncOpenAI(
                api_key=s.api_key, base_url=ep.url, timeout=s.timeout, max_retries=s.max_retries, http_client=http
            )
        self._rpm = request_limiter(s.rpm, s.rpm_window_s) if s.rpm else None
        self._tpm = token_limiter(s.tpm, s.rpm_window_s) if s.tpm else None
        self._clients_open = True

    async def aclose(self) -> None:
        if self._clients_open:
            for ep in self.pool.endpoints:
                await ep.client.close()
                ep.client = None
            self._clients_open = False
            self.pool = _fresh_pool(self.pool)

    def request_stop(self) -> None:
        """Ctrl-C: send nothing new (requests already sent finish). Call on the loop thread."""
        self.stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    async def _acquire(self, limiter: Any, amount: float = 1) -> None:
        """Wait for rate-limit capacity, or raise Stopped at once when Ctrl-C comes first.

        A request waiting for its turn has not been sent, so it must not hold up the bounded wait
        for the requests in flight.
        """
        if self.stopping or self._stop_event is None:
            raise Stopped
        acquire = asyncio.ensure_future(limiter.acquire(amount))
        stop = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()
        if self.stopping:
            raise Stopped

    async def _before_send(self, request: Any) -> None:
        """httpx hook run before every HTTP attempt (SDK retries included): Ctrl-C gate, then --rpm."""
        if self.stopping:
            raise Stopped
        if self._rpm is not None:
            await self._acquire(self._rpm)

    async def probe_completions(self) -> None:
        """One ``max_tokens=1`` completions request, no retries, to each endpoint: do they serve /v1/completions?"""
        self._ensure_client()
        self._stop_event = self._stop_event or asyncio.Event()
        for ep in self.pool.endpoints:
            client = ep.client.with_options(max_retries=0)
            await client.completions.create(model=self.settings.model, prompt="ping", max_tokens=1)
            ep.server_seen = True

    # -- a run -----------------------------------------------------------------------------------
    async def run(self, requests: Sequence[GenerationRequest], emit: Emit) -> None:
        """Serve every request, emitting each sample as it arrives; the first failure cancels the rest."""
        self._ensure_client()
        self.stopping = False
        self._stop_event = asyncio.Event()
        tasks = [asyncio.create_task(self._serve(r, emit)) for r in requests]
        try:
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:  # creation order: the first failing request is the one reported
            if task in done and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _serve(self, req: GenerationRequest, emit: Emit) -> None:
        texts: list[str] = []

        def emit_and_keep(item: tuple[GenerationRequest, int, Completion]) -> None:
            texts.append(item[2].text)
            emit(item)

        await self._serve_all(req, emit_and_keep)
        self._check_diversity(req, texts)

    def _check_diversity(self, req: GenerationRequest, texts: list[str]) -> None:
        """Warn (once per run) when every sample of a prompt came back byte-identical at temperature > 0: the
        server likely ignores temperature or seed, or caches answers, and k samples are worth one."""
        if len(texts) < 2 or req.params.temperature <= 0 or len(set(texts)) > 1:
            return
        self.identical_prompts += 1
        if self.identical_prompts == 1:
            log.warning(
                "the server at %s returned %d byte-identical samples for one prompt at temperature %g: it may "
                "ignore temperature/seed or cache answers, so the k samples are worth one (counted in the manifest "
                "as identical_sample_prompts)",
                self.settings.base_url,
                len(texts),
                req.params.temperature,
            )

    async def _serve_all(self, req: GenerationRequest, emit: Emit) -> None:
        remaining = list(req.sample_indices)
        try:
            while remaining and self.n_mode:
                batch = remaining[: self.n_cap or len(remaining)]
                if len(batch) == 1:
                    break
                try:
                    got = await self._call(req, len(batch), seed_offset=batch[0])
                except Replan:
                    continue
                except NRejected as exc:
                    self._fall_back_to_single(f"it rejected n={len(batch)} ({exc})")
                    break
                for index, completion in zip(batch, got, strict=False):
                    emit((req, index, completion))
                remaining = remaining[len(got) :]
                if len(got) < len(batch):
                    self._learn_cap(len(batch), len(got))
            if remaining:
                await _all_or_first_error([self._single(req, i, emit) for i in remaining])
        except Stopped:
            return

    async def _single(self, req: GenerationRequest, index: int, emit: Emit) -> None:
        got = await self._call(req, 1, seed_offset=index)
        emit((req, index, got[0]))

    def _fall_back_to_single(self, why: str) -> None:
        if self.n_mode:
            self.n_mode = False
            log.warning(
                "the server at %s cannot sample n>1 per request: %s; asking for one sample per request "
                "from now on (the prompt is sent once per sample)",
                self.settings.base_url,
                why,
            )

    def _learn_cap(self, asked: int, got: int) -> None:
        if got <= 1:
            self._fall_back_to_single(f"it returned {got} choice(s) for n={asked}")
        elif self.n_cap is None or got < self.n_cap:
            self.n_cap = got
            log.warning(
                "the server at %s caps n at %d per request; asking in batches of %d", self.settings.base_url, got, got
            )

    async def _call(self, req: GenerationRequest, n: int, seed_offset: int) -> list[Completion]:
        """One chat-completions call for ``n`` choices (SDK retries inside); at least one completion back.

        The request holds a slot on one endpoint; when that endpoint is dropped mid-request (see
        ``_failover``) it takes a slot on another and is sent again there.
        """
        from cure_bench.generation.backends._failover import EndpointDown

        self._ensure_client()
        charged = False
        while True:
            if self.stopping:
                raise Stopped
            try:
                ep = await self.pool.acquire()
            except AllEndpointsDown:
                raise ServerUnreachableError(
                    f"every endpoint of --base-url {self.settings.base_url} was dropped (connections refused); "
                    "check that the servers are running"
                ) from None
            try:
                response = await self._send_on(ep, req, n, seed_offset, charge=not charged)
                charged = True
            except EndpointDown:
                charged = True
                continue
            finally:
                await self.pool.release(ep)
            break
        completions = completions_from(response, n)
        if not completions:
            raise BackendError(
                f"the server at {ep.url} answered with no choices (model "
                f"'{self.settings.model}'); check that --model names a chat model"
            )
        ep.samples += len(completions)
        return completions

    async def _send_on(self, ep: Endpoint, req: GenerationRequest, n: int, seed_offset: int, charge: bool) -> Any:
        """Within ``ep``'s slot: the Ctrl-C gate, the n re-plan, the --tpm charge (once per request), the send."""
        if self.stopping:
            raise Stopped
        if n > 1 and (not self.n_mode or (self.n_cap is not None and n > self.n_cap)):
            raise Replan
        if self._tpm is not None and charge:
            estimate = estimate_request_tokens(req.messages, n, req.params.max_tokens or 0)
            if estimate > self._tpm.max_rate and not self._tpm_warned:
                self._tpm_warned = True
                log.warning(
                    "one request reserves ~%d tokens (prompt + max_tokens x n=%d), more than --tpm %g: "
                    "such requests go one at a time; lower --max-tokens to send more",
                    estimate,
                    n,
                    self._tpm.max_rate,
                )
            await self._acquire(self._tpm, min(estimate, self._tpm.max_rate))
        return await self._create(ep, req, n, seed_offset)

    async def _create(self, ep: Endpoint, req: GenerationRequest, n: int, seed_offset: int) -> Any:
        """Send one request; adapt once to a token-parameter complaint; fail fast on a dead server.

        Until the server has answered anything, requests go with at most one SDK retry, so a wrong
        --base-url or a server that is not up fails in about a second instead of after the whole
        backoff schedule (~40 s for 8 retries). Any HTTP answer, even a 429 or a 500, proves the
        server is there: the request then goes on with the rest of its retry budget (attempts in
        all stay at most max_retries + 1).
        """
        import openai

        client = ep.client
        retries = self.settings.max_retries
        for _ in range(3):  # at most: one end of probing, one token-parameter adaptation
            probing = not ep.server_seen
            budget = min(1, retries) if probing else retries
            try:
                wire = client if budget == self.settings.max_retries else client.with_options(max_retries=budget)
                body = self._body(req, n, seed_offset)
                if self.settings.endpoint == "completions":
                    response = await wire.completions.create(**body)
                else:
                    response = await wire.chat.completions.create(**body)
                ep.server_seen = True
                ep.answered += 1
                return response
            except (openai.APIStatusError, openai.APITimeoutError) as exc:
                ep.server_seen = True
                if isinstance(exc, openai.APIStatusError):
                    ep.answered += 1
                if probing and retries > budget and (isinstance(exc, openai.APITimeoutError) or _retryable(exc)):
                    retries -= budget + 1
                    continue
                if not isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
                    raise
                message = error_message(exc)
                if n > 1 and (_body_param(exc) == "n" or _MENTIONS_N.search(message)):
                    raise NRejected(message) from exc
                if self.token_param == "max_tokens" and "max_completion_tokens" in message:
                    log.info("the server wants max_completion_tokens instead of max_tokens; switching")
                    self.token_param = "max_completion_tokens"
                    continue
                raise
        raise AssertionError("unreachable")

    def _body(self, req: GenerationRequest, n: int, seed_offset: int) -> dict[str, Any]:
        """The request's fields: only the sampling values that are set (``None`` leaves the server's default).

        ``top_k``/``min_p`` are not OpenAI fields; vLLM and SGLang servers read them from the body.
        """
        p = req.params
        body: dict[str, Any] = {"model": self.settings.model}
        if self.settings.endpoint == "completions":
            body["prompt"] = prompt_text(req)
        elif len(req.messages) == 1 and req.messages[0][0] == "text":
            raise BackendError("a raw prompt string needs --endpoint completions (the chat endpoint takes messages)")
        else:
            body["messages"] = [{"role": role, "content": content} for role, content in req.messages]
        body["temperature"] = p.temperature
        if p.top_p is not None:
            body["top_p"] = p.top_p
        if p.max_tokens is not None:
            # the legacy completions endpoint knows only max_tokens
            param = "max_tokens" if self.settings.endpoint == "completions" else self.token_param
            body[param] = p.max_tokens
        if p.stop is not None:
            body["stop"] = list(p.stop)
        extra = {name: value for name, value in (("top_k", p.top_k), ("min_p", p.min_p)) if value is not None}
        if extra:
            body["extra_body"] = extra
        if n > 1:
            body["n"] = n
        if p.seed is not None:
            # n choices of one request differ by themselves; separate requests need separate seeds.
            body["seed"] = p.seed + seed_offset
        return body


def _fresh_pool(old: EndpointPool) -> EndpointPool:
    """After close: a new pool of the same endpoints (a reused generator starts with every server live),
    keeping what each has learned and counted for the manifest."""
    pool = EndpointPool(old.urls, old.concurrency)
    for new, ep in zip(pool.endpoints, old.endpoints, strict=True):
        new.server_seen, new.sent, new.answered, new.samples = ep.server_seen, ep.sent, ep.answered, ep.samples
    return pool


def prompt_text(req: GenerationRequest) -> str:
    """The raw prompt string of a text-prompt request (one ``("text", s)`` message)."""
    if len(req.messages) != 1 or req.messages[0][0] != "text":
        raise BackendError(
            "--endpoint completions sends one raw prompt string, but this request holds chat messages; "
            "use --protocol cure (or --endpoint chat)"
        )
    return req.messages[0][1]


async def _all_or_first_error(coros: list[Any]) -> None:
    """Run concurrently; on the first failure cancel the others and raise that failure (not a group)."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as group_error:
        raise _first_leaf(group_error) from None


def _retryable(exc: Any) -> bool:
    """Statuses the SDK retries by itself (408, 409, 429, 5xx)."""
    status = getattr(exc, "status_code", 0)
    return status in (408, 409, 429) or status >= 500


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def completions_from(response: Any, asked: int) -> list[Completion]:
    """Completions in choice order, at most ``asked``; tokens = usage.completion_tokens split evenly.

    Servers report one completion-token total for all choices; it is divided over the choices
    received (the remainder going to the first ones) so per-sample figures add up to the total.
    Without usage figures tokens stay None rather than guessed.
    """
    choices = sorted(response.choices or [], key=lambda c: c.index)[:asked]
    usage = getattr(response, "usage", None)
    total = getattr(usage, "completion_tokens", None) if usage is not None else None
    shares: list[int | None] = [None] * len(choices)
    if total is not None and choices:
        base, extra = divmod(int(total), len(choices))
        shares = [base + (1 if i < extra else 0) for i in range(len(choices))]
    out = []
    for choice, tokens in zip(choices, shares, strict=True):
        message = getattr(choice, "message", None)
        if message is None:  # the completions endpoint: plain text
            out.append(Completion(text=choice.text or "", tokens=tokens, finish_reason=choice.finish_reason))
            continue
        extra_fields = getattr(message, "model_extra", None) or {}
        reasoning = (
            getattr(message, "reasoning_content", None)
            or extra_fields.get("reasoning_content")
            or extra_fields.get("reasoning")
        )
        text = join_reasoning(reasoning if isinstance(reasoning, str) else None, message.content)
        out.append(Completion(text=text, tokens=tokens, finish_reason=choice.finish_reason))
    return out


def error_message(exc: Any) -> str:
    """The server's error message on one line: OpenAI's ``error.message``, or FastAPI's ``detail`` (a string, or
    a list of validation errors, as ``transformers serve`` and other FastAPI servers answer)."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner if isinstance(inner, str) else None
        if not message and "detail" in body:
            message = _detail_text(body["detail"])
    return " ".join(str(message or getattr(exc, "message", None) or exc).split())


def _detail_text(detail: Any) -> str | None:
    """FastAPI's ``detail``: a string, a list of ``{"loc", "msg"}`` errors, or an object with a message."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        return str(detail.get("message") or detail.get("msg") or detail)
    if isinstance(detail, list):
        parts = []
        for entry in detail[:5]:
            if isinstance(entry, dict):
                loc = ".".join(str(p) for p in entry.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {entry.get('msg', '')}" if loc else str(entry.get("msg", entry)))
            else:
                parts.append(str(entry))
        return "; ".join(parts) or None
    return None if detail is None else str(detail)


def _body_param(exc: Any) -> str | None:
    """The request field the server blamed: OpenAI's ``error.param``, or the last ``loc`` of a FastAPI
    validation error (``{"detail": [{"loc": ["body", "n"], ...}]}``) when it is the only one."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("param"):
        return str(inner["param"])
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and len(detail) == 1 and isinstance(detail[0], dict):
        loc = detail[0].get("loc") or ()
        return str(loc[-1]) if loc else None
    return None
