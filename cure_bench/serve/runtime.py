"""Everything a running reward server owns, built once and closed once.

Split from the app so the lifecycle reads in one place: the generator and the test cache are opened at
construction (a bad flag fails before a socket opens); the sandbox's worker processes start in
``start`` (the server's lifespan); ``stop`` closes what this runtime created and nothing the caller
passed in.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import TYPE_CHECKING

from cure_bench.generation.backends import open_generator
from cure_bench.generation.prompts import PromptTemplate, load_template, prompt_hash
from cure_bench.serve.config import ServeConfig
from cure_bench.serve.execution import ExecutionService
from cure_bench.serve.prometheus import Registry
from cure_bench.serve.service import RewardService
from cure_bench.serve.store import TestStore
from cure_bench.serve.tester import GenerationBatcher, TesterService
from cure_bench.types import Generator

if TYPE_CHECKING:
    from cure_bench.sandbox import Executor

log = logging.getLogger(__name__)


class Runtime:
    """Generator, test store, sandbox and the services built on them."""

    def __init__(self, config: ServeConfig, generator: Generator | None, sandbox: Executor | None, metrics: Registry):
        self.config = config
        self.metrics = metrics
        self._owns_generator = generator is None
        self._owns_sandbox = sandbox is None
        self.generator = generator if generator is not None else _build_generator(config)
        self.sandbox = sandbox
        self.template: PromptTemplate | None = (
            load_template(config.tester_template, "tester", "tester_template") if config.tester_template else None
        )
        assert config.cache_dir is not None  # filled by ServeConfig.__post_init__
        self.store = TestStore(config.cache_dir / "tests.sqlite" if config.persist else None, config.memory_cache_size)
        self.batcher = GenerationBatcher(
            self.generator,
            config.sampling,
            config.cache_dir / "generations" / f"{_identity_hash(self.identity)}.sqlite" if config.persist else None,
            config.generation_batch,
            metrics,
        )
        self.tester = TesterService(
            self.batcher,
            self.store,
            self.identity,
            prompt_hash(None, self.template),
            self.template,
            config.request_timeout_s,
            metrics,
        )
        self._service: RewardService | None = None

    @property
    def identity(self) -> dict[str, str | None]:
        """Who writes the tests: part of every test-cache key."""
        base_url = getattr(self.generator, "base_url", None) or self.config.base_url
        return {"backend": self.generator.backend, "model": self.generator.model, "base_url": base_url}

    @property
    def started(self) -> bool:
        return self._service is not None

    @property
    def service(self) -> RewardService:
        if self._service is None:
            raise RuntimeError("the reward server is not started (run it under uvicorn, or `with TestClient(app)`)")
        return self._service

    async def start(self) -> None:
        if self.sandbox is None:
            self.sandbox = await asyncio.to_thread(build_sandbox, self.config)
        execution = ExecutionService(self.sandbox, self.config.exec_concurrency, self.metrics)
        self._service = RewardService(self.config, self.tester, execution, self.metrics)
        log.info(
            "reward server ready: tester %s/%s, k=%d, test cache %s, sandbox %s",
            self.generator.backend,
            self.generator.model,
            self.config.k_case,
            self.store.path or "in memory",
            getattr(self.sandbox, "isolation_level", "?"),
        )

    async def stop(self) -> None:
        self._service = None
        self.batcher.cancel()
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self.batcher.close()
        self.store.close()
        if self._owns_generator:
            self.generator.close()
        if self._owns_sandbox and self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None


def _identity_hash(identity: dict[str, str | None]) -> str:
    """Raw tester answers are keyed by model name, not server: one file per tester keeps two servers that
    serve different checkpoints under one name from sharing answers."""
    canonical = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _build_generator(config: ServeConfig) -> Generator:
    """The tester through ``open_generator``; the server's connection settings go where the backend takes them."""
    defaults = {
        "base_url": config.base_url,
        "api_key": config.api_key,
        "timeout": config.tester_timeout_s,
        "max_retries": config.tester_max_retries,
    }
    opened = open_generator(config.tester, config.backend, defaults=defaults)
    log.info("tester backend: %s (%s)", opened.backend, opened.reason)
    return opened.generator


def build_sandbox(config: ServeConfig) -> Executor:
    """The sandbox ``config`` asks for, here or on a Ray cluster (worker processes start now; close it, or use
    it as a context manager). The exec cache stays on this machine either way."""
    from cure_bench.sandbox import open_sandbox

    assert config.cache_dir is not None
    return open_sandbox(
        config.executor,
        config.ray_address,
        workers=config.workers,
        isolation=config.sandbox,
        cache_dir=config.cache_dir / "exec",
        use_cache=config.persist,
    )
