"""Tests for a problem, generated once: memory -> SQLite -> one tester call, shared by every waiter.

Three rules shape this module:

- **Single-flight.** The first request for a new problem starts one flight (an ``asyncio.Task``); every
  request for the same key that arrives before it lands awaits that same task. Twenty concurrent trainers
  asking for one new problem cause one tester generation, never twenty.
- **The event loop never blocks.** ``Generator.generate`` is synchronous and may take minutes, so it runs on
  one dedicated worker thread. New problems that arrive while it is busy are batched into the next call
  (one ``generate`` with many prompts is what vLLM, transformers and the OpenAI backend do best), and one
  thread means a backend never sees two calls at once (the transformers backend is not thread-safe).
- **A slow tester is a 503, not a hang.** Each waiter waits at most ``timeout_s`` on a *shielded* flight:
  it gets a ``TesterUnavailableError``, while the flight keeps running and fills the cache for the next try.

Raw tester answers go to a generation cache of the kind ``cure bench`` uses (``generations/<tester>.sqlite``), so
a server killed mid-generation re-asks only for missing samples, and a larger ``num_tests`` reuses the first k.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure_bench.errors import CureError
from cure_bench.generation.cache import GenerationCache
from cure_bench.generation.extract import extract_test
from cure_bench.generation.prompts import PromptTemplate, tester_messages
from cure_bench.generation.runner import generate_all
from cure_bench.serve.errors import TaskConflictError, TesterUnavailableError, UnknownTaskError
from cure_bench.serve.prometheus import Registry
from cure_bench.serve.store import TestSet, TestStore, cache_key, default_task_id
from cure_bench.types import ChatMessages, Completion, Generator, SamplingParams, Task

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    messages: ChatMessages
    k: int
    future: asyncio.Future[list[Completion]]


class GenerationBatcher:
    """Runs ``generate_all`` on one worker thread, batching the prompts that queue up meanwhile."""

    def __init__(
        self,
        generator: Generator,
        params: SamplingParams,
        cache_path: Path | None,
        max_batch: int,
        metrics: Registry,
    ) -> None:
        self.generator = generator
        self.params = params
        self.cache_path = cache_path
        self.max_batch = max_batch
        self.metrics = metrics
        self._pending: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cure-tester")
        self._cache: GenerationCache | None = None  # created, used and closed on the worker thread only

    async def generate(self, messages: ChatMessages, k: int) -> list[Completion]:
        """k completions of one prompt (from the generation cache when it has them)."""
        future: asyncio.Future[list[Completion]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(messages, k, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="cure-tester-batches")
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            prompts = [(p.messages, p.k) for p in batch]
            started = time.monotonic()
            try:
                results = await loop.run_in_executor(self._executor, self._generate_sync, prompts)
            except asyncio.CancelledError:  # the server is shutting down
                _fail(batch + self._pending, TesterUnavailableError("the reward server is shutting down"))
                raise
            except Exception as exc:  # every waiter of this batch learns why
                self.metrics.inc("cure_serve_tester_generations_total", outcome="error")
                _fail(batch, exc)
                continue
            finally:
                self.metrics.observe("cure_serve_tester_generation_seconds", time.monotonic() - started)
            self.metrics.inc("cure_serve_tester_generations_total", outcome="ok")
            for p, completions in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(completions)

    def _generate_sync(self, prompts: list[tuple[ChatMessages, int]]) -> list[list[Completion]]:
        if self._cache is None and self.cache_path is not None:
            self._cache = GenerationCache(self.cache_path)
        cache = self._cache if self._cache is not None else _MemoryGenerationCache()
        return generate_all(self.generator, cache, prompts, self.params)  # type: ignore[arg-type]

    def cancel(self) -> None:
        """Stop batching (call on the event loop): waiters of queued prompts get a 503 at once."""
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
        _fail(self._pending, TesterUnavailableError("the reward server is shutting down"))
        self._pending = []

    def close(self) -> None:
        """Close the generation cache on the worker thread and stop it (blocking: call from a thread)."""

        def close_cache() -> None:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

        try:
            self._executor.submit(close_cache).result(timeout=5)
        except (concurrent.futures.TimeoutError, RuntimeError):  # a generate call still running
            log.warning("tester thread still busy at shutdown; its generation cache is left to SQLite recovery")
        self._executor.shutdown(wait=False, cancel_futures=True)


def _fail(pending: list[_Pending], exc: Exception) -> None:
    for p in pending:
        if not p.future.done():
            p.future.set_exception(exc)


class _MemoryGenerationCache:
    """The GenerationCache interface without a file (``persist=False``)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[int, Completion]] = {}

    def get(self, key: str) -> dict[int, Completion]:
        return dict(self._rows.get(key, {}))

    def put(self, key: str, index: int, completion: Completion) -> None:
        self._rows.setdefault(key, {})[index] = completion


class TesterService:
    """Test sets by problem, through the store, single-flight flights and the batcher."""

    def __init__(
        self,
        batcher: GenerationBatcher,
        store: TestStore,
        identity: dict[str, str | None],
        prompt_hash: str,
        template: PromptTemplate | None,
        timeout_s: float,
        metrics: Registry,
    ) -> None:
        self.batcher = batcher
        self.store = store
        self.identity = identity
        self.prompt_hash = prompt_hash
        self.template = template
        self.timeout_s = timeout_s
        self.metrics = metrics
        self._flights: dict[str, asyncio.Task[tuple[TestSet, bool]]] = {}

    def key_for(self, problem: str, k: int) -> str:
        return cache_key(problem, self.identity, self.prompt_hash, k)

    async def tests_for(self, problem: str, k: int, task_id: str | None = None) -> tuple[TestSet, bool]:
        """(test set, whether it came from the cache); binds ``task_id`` to the problem when given."""
        key = self.key_for(problem, k)
        found = self.store.peek(key)
        if found is not None:
            self.metrics.inc("cure_serve_test_cache_hits_total", layer="memory")
            cached = True
        else:
            found, cached = await self._join_flight(key, lambda: self._produce(key, problem, k))
        if task_id is not None and task_id != found.task_id:
            await asyncio.to_thread(self._bind, task_id, key)
        return found, cached

    async def tests_for_task(self, task_id: str) -> TestSet:
        """The test set a task_id names; UnknownTaskError when none does."""
        key = await asyncio.to_thread(self.store.key_of, task_id)
        found = self.store.peek(key) if key is not None else None
        if found is None and key is not None:
            found = await asyncio.to_thread(self.store.load, key)
        if found is None:
            raise UnknownTaskError(
                f"task_id '{task_id}' is unknown to this server: send the problem text, or POST /v1/tests first"
            )
        return found

    def _bind(self, task_id: str, key: str) -> None:
        bound = self.store.key_of(task_id)
        if bound is not None and bound != key:
            raise TaskConflictError(
                f"task_id '{task_id}' already names another problem (or the same one with another num_tests); "
                "choose another task_id"
            )
        if bound is None:
            self.store.bind(task_id, key)

    async def _join_flight(self, key: str, produce: Callable[[], Any]) -> tuple[TestSet, bool]:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(produce(), name=f"cure-tests-{key[:12]}")
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        try:
            return await asyncio.wait_for(asyncio.shield(flight), self.timeout_s)
        except TimeoutError:
            self.metrics.inc("cure_serve_tester_timeouts_total")
            raise TesterUnavailableError(
                f"the tester did not answer within {self.timeout_s:g} s (--request-timeout); the generation "
                "continues in the background: retry later"
            ) from None

    def _landed(self, key: str, flight: asyncio.Task[tuple[TestSet, bool]]) -> None:
        """Forget the flight; log its failure here, since every waiter may have timed out already."""
        self._flights.pop(key, None)
        if not flight.cancelled() and flight.exception() is not None:
            log.warning("tests for %s: %s", key[:12], flight.exception())

    async def _produce(self, key: str, problem: str, k: int) -> tuple[TestSet, bool]:
        stored = await asyncio.to_thread(self.store.load, key) if self.store.path is not None else None
        if stored is not None:
            self.metrics.inc("cure_serve_test_cache_hits_total", layer="disk")
            return stored, True
        self.metrics.inc("cure_serve_test_cache_misses_total")
        task = Task(task_id=default_task_id(key), question=problem, time_limit=1.0, example_tests=[], hidden_tests=[])
        messages = tester_messages(task, show_examples=False, template=self.template)
        try:
            completions = await self.batcher.generate(messages, k)
        except CureError as exc:
            raise TesterUnavailableError(f"the tester failed: {exc}") from exc
        except Exception as exc:
            log.exception("tester generation failed")
            raise TesterUnavailableError(f"the tester failed: {type(exc).__name__}: {exc}") from exc
        tests = tuple(t for t in (extract_test(c.text) for c in completions) if t is not None)
        if not tests:
            log.warning("tester produced no usable test in %d answers for task %s", k, task.task_id)
        self.metrics.inc("cure_serve_tests_generated_total", len(tests))
        test_set = TestSet(key=key, task_id=task.task_id, problem=problem, k=k, samples=len(completions), tests=tests)
        await asyncio.to_thread(self.store.put, test_set)
        return test_set, False
