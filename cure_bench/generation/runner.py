"""Cache-aware generation: ask a Generator only for the samples the cache does not hold yet.

This is the one place that knows both the cache and the Generator protocol, so every backend
(OpenAI-compatible, vLLM, transformers) resumes the same way: look up each prompt's request key,
request the missing sample indices, and persist each sample in ``on_sample`` the moment it arrives.
A run stopped by Ctrl-C, a crash or a server error therefore loses at most the samples in flight,
and the re-run asks for nothing already answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from cure_bench.errors import BackendError
from cure_bench.generation.cache import GenerationCache
from cure_bench.types import ChatMessages, Completion, GenerationRequest, Generator, SamplingParams

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""(samples done, samples wanted); called once up front (cache hits count as done) and per sample."""
PromptDone = Callable[[int, list[Completion]], None]
"""(prompt index, its k completions); called once per prompt the moment its last sample is in."""


def generate_all(
    generator: Generator,
    cache: GenerationCache,
    prompts: Sequence[tuple[ChatMessages, int]],
    params: SamplingParams,
    on_progress: ProgressCallback | None = None,
    on_completion: Callable[[Completion], None] | None = None,
    on_prompt_done: PromptDone | None = None,
) -> list[list[Completion]]:
    """For each (messages, k) return k completions (index 0..k-1), asking the generator only for missing indices.

    Every sample goes to the cache the moment it arrives; resumed runs ask for nothing already
    answered. ``on_completion`` sees each newly generated sample (for live token rates). Prompts with
    identical messages share one request key and hence the same samples
    (they are the same request), and are asked for once, with the largest k among them.
    ``on_prompt_done(i, completions)`` fires once for each prompt as soon as all its k samples are in (fully
    cached prompts before any request), so a caller can start on a prompt's answers while others are pending.
    """
    context_of = getattr(generator, "cache_context", None)
    context = context_of() if context_of is not None else None
    keys = [GenerationCache.request_key(generator.backend, generator.model, m, params, context) for m, _ in prompts]
    wanted: dict[str, int] = {}
    messages_of: dict[str, ChatMessages] = {}
    for key, (messages, k) in zip(keys, prompts, strict=True):
        if k < 0:
            raise ValueError(f"sample count must be >= 0, got {k}")
        wanted[key] = max(k, wanted.get(key, 0))
        messages_of.setdefault(key, messages)

    have = {key: cache.get(key) for key in wanted}
    requests = _missing_requests(wanted, have, messages_of, params)
    total = sum(wanted.values())
    done = total - sum(len(r.sample_indices) for r in requests)
    if requests:
        log.info(
            "generation: %d of %d samples cached, asking %s/%s for %d more in %d requests",
            done,
            total,
            generator.backend,
            generator.model,
            total - done,
            len(requests),
        )
    if on_progress is not None:
        on_progress(done, total)
    waiting = _Waiting(prompts, keys, have, on_prompt_done)
    waiting.check_all()

    def on_sample(request: GenerationRequest, index: int, completion: Completion) -> None:
        nonlocal done
        store = have[request.key]
        if index >= wanted[request.key] or index in store:
            log.debug("ignoring sample %d of %s: not asked for or already stored", index, request.key[:12])
            return
        cache.put(request.key, index, completion)
        store[index] = completion
        done += 1
        if on_completion is not None:
            on_completion(completion)
        if on_progress is not None:
            on_progress(done, total)
        waiting.check(request.key)

    if requests:
        generator.generate(requests, on_sample)
    return [_collect(generator, key, k, have[key]) for key, (_, k) in zip(keys, prompts, strict=True)]


class _Waiting:
    """The prompts whose samples are not all in yet, by request key, for ``on_prompt_done``."""

    def __init__(
        self,
        prompts: Sequence[tuple[ChatMessages, int]],
        keys: list[str],
        have: dict[str, dict[int, Completion]],
        on_done: PromptDone | None,
    ) -> None:
        self._k = [k for _, k in prompts]
        self._have = have
        self._on_done = on_done
        self._by_key: dict[str, list[int]] = {}
        if on_done is not None:
            for i, key in enumerate(keys):
                self._by_key.setdefault(key, []).append(i)

    def check_all(self) -> None:
        for key in list(self._by_key):
            self.check(key)

    def check(self, key: str) -> None:
        if self._on_done is None or key not in self._by_key:
            return
        store, left = self._have[key], []
        for i in self._by_key[key]:
            if all(j in store for j in range(self._k[i])):
                self._on_done(i, [store[j] for j in range(self._k[i])])
            else:
                left.append(i)
        if left:
            self._by_key[key] = left
        else:
            del self._by_key[key]


def _missing_requests(
    wanted: dict[str, int],
    have: dict[str, dict[int, Completion]],
    messages_of: dict[str, ChatMessages],
    params: SamplingParams,
) -> list[GenerationRequest]:
    requests = []
    for key, k in wanted.items():
        missing = tuple(i for i in range(k) if i not in have[key])
        if missing:
            request = GenerationRequest(key=key, messages=messages_of[key], params=params, sample_indices=missing)
            requests.append(request)
    return requests


def _collect(generator: Generator, key: str, k: int, store: dict[int, Completion]) -> list[Completion]:
    missing = [i for i in range(k) if i not in store]
    if missing:
        raise BackendError(
            f"backend '{generator.backend}' (model '{generator.model}') returned without samples {missing[:8]} "
            f"of request {key[:12]}; re-run the same command to ask for them again"
        )
    return [store[i] for i in range(k)]
