"""The httpx transport that turns "this endpoint refuses connections" into an immediate failover.

The openai SDK retries a connection error with backoff (~40 s for 8 retries) before giving up, which is
right for a single server that may be restarting, and wrong when another server could answer now. This
transport wraps each endpoint's real one: a connect failure while another endpoint of the pool is alive
drops the endpoint and raises ``EndpointDown``, an ``openai.OpenAIError``, which the SDK propagates without
retrying (it re-raises its own errors as they are); ``ClientSide._call`` then sends the request elsewhere.
A connection failure on the last live endpoint passes through untouched, to the SDK's normal retries.

Imported only when an OpenAI client is built (openai and httpx stay out of ``import cure_bench``). Recent
openai releases are built on ``httpx2`` and older ones on ``httpx``: the transport uses whichever the SDK's
own client class derives from.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import openai

from cure_bench.generation.backends.endpoints import Endpoint, EndpointPool


class EndpointDown(openai.OpenAIError):
    """This endpoint was dropped from the pool; the request was not answered and may go elsewhere."""


def sdk_httpx() -> ModuleType:
    """The httpx package (``httpx2`` or ``httpx``) the installed openai SDK's async client is built on."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        if cls.__name__ == "AsyncClient":
            return importlib.import_module(cls.__module__.split(".")[0])
    return importlib.import_module("httpx")


_httpx = sdk_httpx()


class FailoverTransport(_httpx.AsyncBaseTransport):  # type: ignore[name-defined]
    def __init__(self, inner: Any, pool: EndpointPool, endpoint: Endpoint, redact: Any) -> None:
        self.inner, self.pool, self.endpoint, self.redact = inner, pool, endpoint, redact

    async def handle_async_request(self, request: Any) -> Any:
        if not self.endpoint.alive:
            raise EndpointDown(f"{self.redact(self.endpoint.url)} was dropped")
        try:
            return await self.inner.handle_async_request(request)
        except (_httpx.ConnectError, _httpx.ConnectTimeout) as exc:
            if not self.pool.may_drop(self.endpoint):
                raise
            self.pool.drop(self.endpoint, f"{type(exc).__name__}: {exc}".strip(": "), self.redact)
            raise EndpointDown(f"{self.redact(self.endpoint.url)} refused the connection") from exc

    async def aclose(self) -> None:
        await self.inner.aclose()


def http_client(pool: EndpointPool, endpoint: Endpoint, redact: Any, hooks: dict[str, list[Any]]) -> Any:
    """The SDK's default async httpx client for ``endpoint``, with failover when the pool has several."""
    if not pool.several:
        return openai.DefaultAsyncHttpxClient(event_hooks=hooks)
    inner = _httpx.AsyncHTTPTransport(limits=_httpx.Limits(max_connections=1000, max_keepalive_connections=100))
    return openai.DefaultAsyncHttpxClient(event_hooks=hooks, transport=FailoverTransport(inner, pool, endpoint, redact))
