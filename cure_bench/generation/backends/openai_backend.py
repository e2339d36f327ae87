"""The Generator for any OpenAI-compatible chat-completions server: api.openai.com, vLLM, SGLang, TGI...

``OpenAIGenerator.generate`` is synchronous: the async SDK client runs on a private event-loop thread
(``_loop``), the requests logic is in ``_openai_async``, and samples come back to the calling thread,
where ``on_sample`` persists them. Ctrl-C during ``generate``: the first press stops new requests and
waits (``drain_timeout`` seconds at most) for those in flight, whose samples are delivered and cached;
the second press abandons them. Either way ``RunInterrupted`` says to re-run the same command.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cure_bench.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    CureError,
    RunInterrupted,
    ServerUnreachableError,
)
from cure_bench.generation.backends._loop import Interrupted, LoopThread, drive
from cure_bench.generation.backends._openai_async import ClientSide, WireSettings, error_message
from cure_bench.generation.backends.endpoints import parse_base_urls
from cure_bench.generation.backends.options import option
from cure_bench.types import Completion, GenerationRequest, SampleCallback

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_PLACEHOLDER_KEY = "EMPTY"  # vLLM/SGLang accept any key unless started with --api-key
ENDPOINTS = ("chat", "completions")


@dataclass(frozen=True)
class OpenAIOptions:
    """What the openai backend takes (``cure bench`` flags are derived from these fields)."""

    base_url: str | None = option(None, "OpenAI-compatible server URL, or several: URL1,URL2,...", flag=False)
    api_key: str | None = option(None, "API key.", flag=False)
    rpm: int | None = option(None, "API requests per minute at most.")
    tpm: int | None = option(None, "API tokens per minute at most.")
    concurrency: int = option(32, "API requests in flight at most, per server.")
    timeout: float = option(600.0, "Seconds per HTTP attempt.", flag=False)
    max_retries: int = option(8, "Retries of a failed request (429, 5xx, timeouts).", flag=False)
    endpoint: str = option(
        "chat",
        "chat (/v1/chat/completions) or completions (/v1/completions: the raw prompt string, as upstream's "
        "vLLM path; --protocol cure only).",
    )

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"--endpoint must be one of: {', '.join(ENDPOINTS)} (got {self.endpoint!r})")
        if self.base_url:
            parse_base_urls(self.base_url)  # a malformed or duplicated list fails here, at planning time

    @property
    def text_prompt(self) -> bool:
        """Whether prompts go out as one raw string (the completions endpoint) rather than chat messages."""
        return self.endpoint == "completions"


class OpenAIGenerator:
    """Samples from an OpenAI-compatible server, ``n`` per request, with retries, rate limits and resume.

    ``base_url`` defaults to ``OPENAI_BASE_URL`` then api.openai.com, and may list several servers of one model
    (``"http://a:8000/v1,http://b:8000/v1"``: see ``endpoints``); ``api_key`` to ``OPENAI_API_KEY``
    (required for api.openai.com, a placeholder elsewhere). ``rpm``/``tpm``: client-side limits (see
    ``ratelimit``); ``rpm_window_s`` rescales their 60-second window (tests and benchmarks).
    ``concurrency``: requests in flight per server. ``timeout``: seconds per HTTP attempt; ``max_retries``: SDK
    retries of 429/5xx/timeouts/connection errors. ``request_n``: ask for all samples of a prompt in
    one request (falls back to one per request when the server cannot).
    """

    backend = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        concurrency: int = 32,
        timeout: float = 600,
        max_retries: int = 8,
        request_n: bool = True,
        endpoint: str = "chat",
        *,
        rpm_window_s: float = 60.0,
        drain_timeout: float = 30.0,
    ) -> None:
        self.model = model
        given = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).strip()
        self.base_urls = parse_base_urls(given)
        self.base_url = self.base_urls[0]  # the first server (readiness checks, single-server messages)
        _validate(model, rpm, tpm, concurrency, timeout, max_retries, drain_timeout)
        self.endpoint = OpenAIOptions(endpoint=endpoint).endpoint
        self.text_prompt = self.endpoint == "completions"
        self.rpm, self.tpm, self.drain_timeout = rpm, tpm, drain_timeout
        self._settings = WireSettings(
            endpoint=self.endpoint,
            model=model,
            base_url=",".join(self.base_urls),
            base_urls=self.base_urls,
            api_key=_resolve_key(api_key, self.base_urls),
            timeout=float(timeout),
            max_retries=int(max_retries),
            concurrency=int(concurrency),
            rpm=rpm,
            tpm=tpm,
            rpm_window_s=float(rpm_window_s),
        )
        self._side = ClientSide(self._settings, request_n)
        self._loop = LoopThread(f"openai-{model}")

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        """Ask for every request's sample indices; ``on_sample`` runs here, once per sample, as it arrives."""
        if not requests:
            return
        events: queue.Queue[tuple[GenerationRequest, int, Completion]] = queue.Queue()
        delivered = 0

        def on_event(item: tuple[GenerationRequest, int, Completion]) -> None:
            nonlocal delivered
            on_sample(*item)
            delivered += 1

        try:
            drive(
                self._loop,
                self._side.run(requests, events.put),
                events,
                on_event,
                self._side.request_stop,
                self.drain_timeout,
            )
        except Interrupted as exc:
            how = "requests in flight abandoned" if exc.abandoned else "requests in flight finished"
            raise RunInterrupted(
                f"interrupted by Ctrl-C after {delivered} new samples were saved ({how}); "
                "re-run the same command to resume"
            ) from None
        except CureError:
            raise
        except Exception as exc:
            translated = translate_error(exc, self._settings)
            if translated is None:
                raise
            raise translated from exc

    def preflight(self) -> None:
        """Before any generation: with ``endpoint="completions"``, check the server serves /v1/completions.

        One tiny request (``max_tokens=1``); a chat-only server's refusal becomes a ConfigError quoting it.
        """
        if self.endpoint != "completions":
            return
        try:
            self._loop.submit(self._side.probe_completions()).result(self._settings.timeout + 5)
        except CureError:
            raise
        except Exception as exc:
            import openai

            if isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 404, 405, 422, 501):
                raise ConfigError(
                    f"--endpoint completions: {redact_urls(self._settings.base_url)} refused /v1/completions for model "
                    f"'{self.model}' (HTTP {exc.status_code}: {error_message(exc)}); it serves chat only: "
                    "use --endpoint chat"
                ) from None
            translated = translate_error(exc, self._settings)
            if translated is None:
                raise
            raise translated from exc

    def describe(self) -> dict[str, Any]:
        """Manifest entry: no API key, and the n-mode the server turned out to support (ask again after
        ``generate``: a fallback from ``n`` happens during it)."""
        import openai

        side = self._side
        mode = "n" if side.n_mode and side.n_cap is None else f"n<={side.n_cap}" if side.n_mode else "single"
        out: dict[str, Any] = {
            "backend": self.backend,
            "model": self.model,
            "base_url": redact_urls(self._settings.base_url),
            "endpoint": self.endpoint,
            "n_per_request": mode,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "concurrency": self._settings.concurrency,
            "timeout_s": self._settings.timeout,
            "max_retries": self._settings.max_retries,
            "openai_version": openai.__version__,
        }
        if side.identical_prompts:
            out["identical_sample_prompts"] = side.identical_prompts
        if len(self.base_urls) > 1:  # who answered what, and which server was dropped (and why)
            out["endpoints"] = [e.describe(redact_url) for e in side.pool.endpoints]
        if self._settings.rpm_window_s != 60.0:
            out["rate_window_s"] = self._settings.rpm_window_s
        return out

    def close(self) -> None:
        """Close the HTTP client and the loop thread; the generator can be used again afterwards."""
        self._loop.stop(cleanup=self._side.aclose())

    def __enter__(self) -> OpenAIGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _validate(
    model: str,
    rpm: float | None,
    tpm: float | None,
    concurrency: int,
    timeout: float,
    max_retries: int,
    drain_timeout: float,
) -> None:
    if not model or not model.strip():
        raise ConfigError("--model is empty: name the model the server serves")
    for flag, value in (("--rpm", rpm), ("--tpm", tpm)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} must be > 0, got {value:g} (leave it out for no limit)")
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
    if timeout <= 0 or drain_timeout < 0:
        raise ConfigError(f"timeouts must be positive, got timeout={timeout:g}, drain_timeout={drain_timeout:g}")
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries}")


def _resolve_key(api_key: str | None, base_urls: Sequence[str]) -> str:
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if any(urlsplit(u).hostname == "api.openai.com" for u in base_urls):
        raise ConfigError("no API key for api.openai.com: set OPENAI_API_KEY or pass --api-key")
    return LOCAL_PLACEHOLDER_KEY


def redact_url(url: str) -> str:
    """The URL without user:password or query string (either may carry a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_urls(urls: str) -> str:
    """``redact_url`` of each URL of a comma-separated list."""
    return ",".join(redact_url(u) for u in urls.split(","))


def translate_error(exc: BaseException, s: WireSettings) -> CureError | None:
    """The one-line CureError for an SDK failure that survived the retries; None when it is not one."""
    import openai

    url = _failed_url(exc, s)
    detail = error_message(exc)
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(
            f"{url} did not answer within {s.timeout:g} s (tried {s.max_retries + 1} times); "
            "lower --concurrency or --max-tokens, or check the server"
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f" ({type(cause).__name__})" if cause is not None else ""
        return ServerUnreachableError(
            f"cannot reach the OpenAI-compatible server at {url}{why}; check --base-url "
            "(or OPENAI_BASE_URL) and that the server is running"
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthenticationError(
            f"{url} refused the API key (HTTP {exc.status_code}: {detail}); pass the right key with "
            "--api-key or set OPENAI_API_KEY"
        )
    if isinstance(exc, openai.NotFoundError):
        return BackendError(
            f"{url} has no model '{s.model}' (HTTP 404: {detail}); check --model (and that --base-url ends in /v1)"
        )
    if isinstance(exc, openai.RateLimitError):
        return BackendError(
            f"{url} still answers 429 (rate limited) after {s.max_retries} retries ({detail}); "
            "lower --rpm, --tpm or --concurrency"
        )
    if isinstance(exc, openai.APIStatusError):
        hint = (
            "check --max-tokens, --temperature, --top-p and --model"
            if exc.status_code < 500
            else "the server failed; check its logs"
        )
        return BackendError(f"{url} answered HTTP {exc.status_code} for model '{s.model}' ({detail}); {hint}")
    if isinstance(exc, openai.OpenAIError):
        return BackendError(f"{url}: {detail}")
    return None


def _failed_url(exc: BaseException, s: WireSettings) -> str:
    """The server a failure came from: the request's own URL when the error carries it (several endpoints)."""
    if len(s.urls) > 1:
        request = getattr(exc, "request", None) or getattr(getattr(exc, "response", None), "request", None)
        url = str(getattr(request, "url", "") or "")
        for base in s.urls:
            if url.startswith(base):
                return redact_url(base)
        return redact_urls(s.base_url)
    return redact_url(s.base_url)
