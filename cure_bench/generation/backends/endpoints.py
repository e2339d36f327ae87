"""Several OpenAI-compatible servers behind one generator: ``--base-url URL1,URL2,...``.

Serious evaluations put one model behind several vLLM servers. The generator treats them as one pool:

* ``parse_base_urls`` checks the list before anything is sent (scheme, host, no duplicates), one line per
  problem naming the flag.
* ``EndpointPool`` hands each request a slot on the live endpoint with the fewest requests in flight
  (``--concurrency`` is per endpoint, so N servers take N times the load), ties going to the one that has
  been sent the fewest, so equal servers share the work evenly.
* An endpoint that refuses connections while another is still alive is *dropped* for the rest of the run
  (the failover transport in ``_failover`` marks it the moment a connection fails, without the SDK's
  backoff), and the request is sent again to another endpoint. The last live endpoint is never dropped
  that way: it gets the SDK's full retry schedule, exactly as a single ``--base-url`` does.
* The rate limits (``--rpm``/``--tpm``) are one budget for the whole pool, not per endpoint: they describe
  what the user allows the *model* to be asked, and the limiters live in ``ClientSide``, shared by every
  endpoint's HTTP client.

Samples are cached under a key made of backend, model, messages and sampling (``GenerationCache.request_key``):
which endpoint answered is not part of it, so a resumed run may use a different list.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cure_bench.errors import ConfigError

log = logging.getLogger(__name__)


def parse_base_urls(text: str, flag: str = "--base-url") -> tuple[str, ...]:
    """``"http://a:8000/v1,http://b:8000/v1"`` -> the URLs (trailing ``/`` dropped); ConfigError on bad input.

    Each entry must be an ``http(s)://host[:port][/path]`` URL; an empty entry (``a,,b``, a trailing comma)
    and the same server twice (compared without case in scheme and host, and without a trailing ``/``)
    are errors, since a duplicate would silently double that server's share.
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and any(not p for p in parts):
        raise ConfigError(f"{flag} '{text}': an empty entry in the comma-separated list (e.g. a stray comma)")
    urls: list[str] = []
    seen: dict[str, str] = {}
    for part in parts:
        url = part.rstrip("/")
        split = urlsplit(url)
        if split.scheme not in ("http", "https"):
            raise ConfigError(f"{flag} '{part}' must start with http:// or https:// (e.g. http://host:8000/v1)")
        try:
            split.port  # noqa: B018  (raises on a malformed port)
        except ValueError:
            raise ConfigError(f"{flag} '{part}' has a malformed port") from None
        if not split.hostname:
            raise ConfigError(f"{flag} '{part}' names no host (e.g. http://host:8000/v1)")
        norm = f"{split.scheme.lower()}://{split.netloc.lower()}{split.path}"
        if norm in seen:
            raise ConfigError(f"{flag}: '{part}' is listed twice (also as '{seen[norm]}'); list each server once")
        seen[norm] = part
        urls.append(url)
    return tuple(urls)


class AllEndpointsDown(Exception):
    """Internal: every endpoint of the pool was dropped (the caller turns it into ServerUnreachableError)."""


@dataclass
class Endpoint:
    """One server of the pool, its client and its counters (mutated on the loop thread only)."""

    url: str
    index: int
    client: Any = None
    alive: bool = True
    in_flight: int = 0
    sent: int = 0  # requests handed this endpoint (failed-over ones included)
    answered: int = 0  # requests it answered (any HTTP status)
    samples: int = 0  # completions it delivered
    server_seen: bool = False  # has it answered anything yet (see ClientSide._create)
    dropped_because: str | None = None

    def describe(self, redact: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"url": redact(self.url), "requests": self.answered, "samples": self.samples}
        out["alive"] = self.alive
        if self.dropped_because:
            out["dropped"] = self.dropped_because
        return out


@dataclass
class EndpointPool:
    """Slots on the live endpoints, ``concurrency`` per endpoint; see the module docstring for the policy."""

    urls: tuple[str, ...]
    concurrency: int
    endpoints: list[Endpoint] = field(init=False)
    _cond: asyncio.Condition | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.endpoints = [Endpoint(url, i) for i, url in enumerate(self.urls)]

    @property
    def several(self) -> bool:
        return len(self.endpoints) > 1

    def live(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.alive]

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # created lazily: it must belong to the loop thread's event loop
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> Endpoint:
        """A slot on the least-loaded live endpoint (waits for one); AllEndpointsDown when none is left."""
        cond = self._condition()
        async with cond:
            while True:
                live = self.live()
                if not live:
                    raise AllEndpointsDown
                free = [e for e in live if e.in_flight < self.concurrency]
                if free:
                    chosen = min(free, key=lambda e: (e.in_flight, e.sent, e.index))
                    chosen.in_flight += 1
                    chosen.sent += 1
                    return chosen
                await cond.wait()

    async def release(self, endpoint: Endpoint) -> None:
        cond = self._condition()
        async with cond:
            endpoint.in_flight -= 1
            cond.notify_all()  # a freed slot, or a dropped endpoint whose waiters must look elsewhere

    def may_drop(self, endpoint: Endpoint) -> bool:
        """Whether a connection failure may drop ``endpoint``: only while another endpoint is alive."""
        return endpoint.alive and any(e.alive for e in self.endpoints if e is not endpoint)

    def drop(self, endpoint: Endpoint, why: str, redact: Any) -> None:
        if not endpoint.alive:
            return
        endpoint.alive = False
        endpoint.dropped_because = why
        left = ", ".join(redact(e.url) for e in self.live())
        log.warning(
            "dropping endpoint %s (%s) for the rest of the run; its requests go to: %s", redact(endpoint.url), why, left
        )
