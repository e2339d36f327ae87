"""/ready: can this server score right now? The sandbox must be up and the tester reachable.

For an OpenAI-compatible tester "reachable" means its server answers ``GET {base_url}/models`` with
anything but a 5xx or an auth refusal (some servers do not implement /models: a 404 still proves the
server is there). Local backends (vLLM, transformers) live in this process: a built generator is ready (the
transformers backend reads its weights on first use, so the first request is slower). The probe result is
kept a few seconds so a load balancer polling /ready never hammers the tester.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cure_bench.serve.runtime import Runtime

PROBE_TTL_S = 5.0
PROBE_TIMEOUT_S = 5.0


class ReadinessProbe:
    """Checks the tester and the sandbox; ``check`` returns the JSON body of /ready."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._last: tuple[float, bool, str] | None = None

    async def check(self) -> dict[str, Any]:
        tester_ok, tester_detail = await self._tester()
        sandbox = self.runtime.sandbox
        sandbox_ok = sandbox is not None and self.runtime.started
        generator = self.runtime.generator
        return {
            "ready": tester_ok and sandbox_ok,
            "tester": {
                "backend": generator.backend,
                "model": generator.model,
                "reachable": tester_ok,
                "detail": tester_detail,
            },
            "sandbox": {
                "started": sandbox_ok,
                "isolation": getattr(sandbox, "isolation_level", None),
                "workers": getattr(sandbox, "workers", None),
            },
            "test_cache": {"path": str(self.runtime.store.path) if self.runtime.store.path else None},
        }

    async def _tester(self) -> tuple[bool, str]:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < PROBE_TTL_S:
            return self._last[1], self._last[2]
        ok, detail = await self._probe()
        self._last = (now, ok, detail)
        return ok, detail

    async def _probe(self) -> tuple[bool, str]:
        """Ready when any of the tester's servers answers (several ``--base-url`` entries fail over)."""
        generator = self.runtime.generator
        base_urls = getattr(generator, "base_urls", None) or [getattr(generator, "base_url", None)]
        if generator.backend != "openai" or not base_urls[0]:
            return True, f"{generator.backend} generator built in this process (weights load on first use)"
        detail = ""
        for base_url in base_urls:
            ok, detail = await self._probe_one(base_url)
            if ok:
                return ok, detail
        return False, detail

    async def _probe_one(self, base_url: str) -> tuple[bool, str]:
        import httpx

        key = self.runtime.config.api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = base_url.rstrip("/") + "/models"
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
                response = await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            return False, f"cannot reach the tester at {_redact(base_url)}: {type(exc).__name__}"
        if response.status_code in (401, 403):
            return False, f"the tester at {_redact(base_url)} refused the API key ({response.status_code})"
        if response.status_code >= 500:
            return False, f"the tester at {_redact(base_url)} answers {response.status_code}"
        return True, f"the tester at {_redact(base_url)} answers"


def _redact(url: str) -> str:
    from cure_bench.generation.backends.openai_backend import redact_url

    return redact_url(url)
