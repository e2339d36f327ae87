"""The vLLM backend: the in-process offline engine (``vllm.LLM``), optionally one engine per GPU group.

Throughput comes from keeping the engines full: the requests of a ``generate`` call (coder and tester prompts of
every task together) are shuffled with a fixed seed, so long and short prompts mix, and go into one shared
``JobFeed``. Each engine takes jobs from it while it holds fewer than ``max_in_flight`` samples (default 2048)
and reports each request the moment it finishes; ``on_sample`` (and so the generation cache) gets it at once.
An interrupted run therefore keeps every finished request, and a re-run asks only for the rest. A sample's seed
is a function of (seed, request key, sample index) alone, so the rest are drawn as an uninterrupted run would.

Data parallelism copies the CURE scripts' ``gpu_groups``: ``[[0, 1], [2, 3]]`` starts one engine per group, each
in its own spawned process whose ``CUDA_VISIBLE_DEVICES`` is that group mapped through the parent's own visible
list (tensor parallel over the group). Engines pull from the one feed, so a faster engine takes more and none
waits for another; jobs and samples cross the pipes one message each.

The engine boundary (``vllm_engine``) is the small ``Engine`` protocol built by an ``EngineFactory``; tests
replace the factory (or the ``vllm`` module) with fakes, so everything but vLLM itself runs without a GPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import queue
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cure_bench.errors import BackendError, ConfigError, MissingExtraError, RunInterrupted
from cure_bench.generation.backends._loop import SigintGuard
from cure_bench.generation.backends.hf_backend import package_version, resolve_model
from cure_bench.generation.backends.options import option
from cure_bench.generation.backends.vllm_engine import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_TOKENS,
    Engine,
    EngineFactory,
    EngineJob,
    EngineSample,
    EngineSpec,
    JobFeed,
    SubprocessEngine,
    VLLMEngine,
)
from cure_bench.types import Completion, GenerationRequest, SampleCallback

Deliver = Callable[[int, list[EngineSample]], None]

__all__ = [
    "Engine",
    "EngineFactory",
    "EngineJob",
    "EngineSample",
    "EngineSpec",
    "JobFeed",
    "SubprocessEngine",
    "VLLMEngine",
    "VLLMGenerator",
    "parse_gpu_groups",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VLLMOptions:
    """What the vllm backend takes (``cure bench`` flags are derived from these fields)."""

    dtype: str = option("auto", "auto, float32, bfloat16 or float16.", samples=True)
    max_model_len: int | None = option(None, "Context length.", samples=True)
    gpu_memory_utilization: float = option(0.9, "Share of GPU memory to use.")
    tensor_parallel_size: int = option(1, "GPUs per engine.")
    gpu_groups: str | list[list[int]] | None = option(  # noqa: RUF009 (the default is None)
        None, 'Data parallel engines, e.g. "[[0,1],[2,3]]".', cli_type=str
    )
    trust_remote_code: bool = option(False, "Allow model repo code.")

    def __post_init__(self) -> None:
        parse_gpu_groups(self.gpu_groups)  # a malformed value fails now, before any work
        _check_options(self.tensor_parallel_size, self.gpu_memory_utilization, self.max_model_len, None)

    text_prompt = True  # a raw prompt string goes to the engine as is (no chat template)


class VLLMGenerator:
    """vLLM offline inference behind the ``Generator`` protocol.

    ``gpu_groups`` (a list of GPU index lists, or its JSON text from ``--gpu-groups``) enables data
    parallelism; each group's size is its engine's tensor-parallel size. ``seed`` seeds the engines and
    the shuffle; a request's own ``SamplingParams.seed`` seeds its samples. Engines start on the first
    ``generate`` that has work, so a fully cached re-run never loads the model.
    """

    backend = "vllm"
    text_prompt = True

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        gpu_groups: Sequence[Sequence[int]] | str | None = None,
        enable_prefix_caching: bool = True,
        dtype: str = "auto",
        seed: int = 0,
        engine_factory: EngineFactory | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.model = model
        self.seed = seed
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1 (got {max_in_flight})")
        self.gpu_groups = parse_gpu_groups(gpu_groups)
        _check_options(tensor_parallel_size, gpu_memory_utilization, max_model_len, self.gpu_groups)
        if engine_factory is None:
            _check_runtime(self.gpu_groups)
        self.path = resolve_model(model, trust_remote_code)
        base = EngineSpec(
            path=str(self.path),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            trust_remote_code=trust_remote_code,
            enable_prefix_caching=enable_prefix_caching,
            dtype=dtype,
            seed=seed,
            max_in_flight=max_in_flight,
        )
        self.specs = _engine_specs(base, self.gpu_groups)
        self._factory = engine_factory or (VLLMEngine if self.gpu_groups is None else _start_subprocess_engine)
        self._engines: list[Engine] = []

    def describe(self) -> dict[str, Any]:
        spec = self.specs[0]
        return {
            "backend": self.backend,
            "model": self.model,
            "path": str(self.path),
            "tensor_parallel_size": spec.tensor_parallel_size,
            "gpu_groups": [list(g) for g in self.gpu_groups] if self.gpu_groups else None,
            "gpu_memory_utilization": spec.gpu_memory_utilization,
            "max_model_len": spec.max_model_len,
            "enable_prefix_caching": spec.enable_prefix_caching,
            "dtype": spec.dtype,
            "seed": self.seed,
            "max_in_flight": spec.max_in_flight,
            "vllm": package_version("vllm"),
            "torch": package_version("torch"),
            "transformers": package_version("transformers"),
        }

    def cache_context(self) -> dict[str, object]:
        """Part of the generation-cache key: the context length caps each sample's effective max_tokens, so
        samples cut under one ``max_model_len`` are not reused under another."""
        return {"max_model_len": self.specs[0].max_model_len or "model-default"}

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        pending = [r for r in requests if r.sample_indices]
        if not pending:
            return
        engines = self._start_engines()
        units = [u for r in pending for u in _units(r)]
        order = list(range(len(units)))
        random.Random(self.seed).shuffle(order)
        log.info("vLLM: %d prompts, %d samples, on %d engine(s)", len(pending), _n_samples(pending), len(engines))
        delivered = 0

        def deliver(unit: int, samples: list[EngineSample]) -> None:
            nonlocal delivered
            request, indices, _ = units[unit]
            for index, sample in zip(indices, samples, strict=True):
                on_sample(request, index, Completion(sample.text, sample.tokens, sample.finish_reason))
                delivered += 1

        # Every finished request is delivered (and so cached) the moment its engine reports it; Ctrl-C stops the
        # feed, aborts what is in flight and keeps all that was delivered, so a re-run asks only for the rest.
        with SigintGuard() as guard:
            feed = JobFeed(((i, units[i][2]) for i in order), lanes=len(engines), interrupted=lambda: guard.presses > 0)
            try:
                if len(engines) == 1:
                    _drain_one(engines[0], feed, deliver)
                else:
                    _drain_many(engines, feed, deliver)
            except BaseException as exc:
                if guard.presses and not isinstance(exc, RunInterrupted):  # a core killed by the same Ctrl-C
                    log.debug("vLLM stopped by Ctrl-C: %r", exc)
                else:
                    raise
            if guard.presses:
                raise RunInterrupted(
                    f"interrupted by Ctrl-C after {delivered} new samples were saved (requests in flight aborted); "
                    "re-run the same command to resume"
                )

    def close(self) -> None:
        engines, self._engines = self._engines, []
        for engine in engines:
            engine.close()

    def _start_engines(self) -> list[Engine]:
        if not self._engines:
            log.info("starting %d vLLM engine(s) for %s", len(self.specs), self.path)
            if len(self.specs) == 1:
                self._engines = [self._factory(self.specs[0])]
            else:
                self._engines = _start_together(self._factory, self.specs)
        return self._engines


def _start_together(factory: EngineFactory, specs: list[EngineSpec]) -> list[Engine]:
    """Start every engine at once (each takes minutes); if one fails, stop the others and raise."""
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(factory, spec) for spec in specs]
    started: list[Engine] = []
    failure: BaseException | None = None
    for future in futures:
        try:
            started.append(future.result())
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        for engine in started:
            engine.close()
        raise failure
    return started


def _start_subprocess_engine(spec: EngineSpec) -> Engine:
    engine = SubprocessEngine(spec)
    try:
        engine.wait_ready()
    except BaseException:
        engine.close()
        raise
    return engine


def _drain_one(engine: Engine, feed: JobFeed, deliver: Deliver) -> None:
    """One engine, stepped here in the calling thread (an in-process ``vllm.LLM`` is not shared across threads)."""
    stream = engine.stream(feed)
    try:
        for unit, samples in stream:
            deliver(unit, samples)  # a Ctrl-C meanwhile stops the feed: the engine aborts and the loop ends
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a stream left early aborts its requests now, not when it is garbage-collected


_DONE = object()


def _drain_many(engines: list[Engine], feed: JobFeed, deliver: Deliver) -> None:
    """One thread per engine pulls from the shared feed; samples are delivered here, in the calling thread (the
    cache is touched from one thread only), as they arrive from any engine: no engine waits for another."""
    results: queue.Queue[Any] = queue.Queue()

    def pump(engine: Engine, lane: int) -> None:
        try:
            for item in engine.stream(feed.lane(lane)):
                results.put(item)
        except BaseException as exc:
            feed.stop()  # the others stop too; their finished samples still arrive
            results.put((_DONE, exc))
        else:
            results.put((_DONE, None))

    threads = [threading.Thread(target=pump, args=(e, i), name=f"cure-vllm-feed-{i}") for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    running, failure = len(threads), None
    try:
        while running:
            try:
                unit, payload = results.get(timeout=0.05)
            except queue.Empty:
                continue
            if unit is _DONE:
                running -= 1
                failure = failure or payload
            else:
                deliver(unit, payload)
    finally:
        feed.stop()
        for thread in threads:
            thread.join()
    if failure is not None:
        raise failure


def _units(request: GenerationRequest) -> list[tuple[GenerationRequest, tuple[int, ...], EngineJob]]:
    """A request as engine jobs: one per sample when seeded (each sample its own seed), else one with ``n``.

    vLLM derives the seeds of an ``n > 1`` request's samples from its one seed by position, so a resumed run
    asking for samples (3, 5) would draw them as samples 0 and 1; one ``n = 1`` job per sample, seeded from
    (seed, request key, sample index), draws the same sample whatever else is asked. Prefix caching still
    shares the prompt between them (vLLM V1 fans ``n`` out into separate requests anyway).
    """
    p = request.params
    if p.seed is None or p.temperature < 1e-5:  # greedy: one run stands for every sample
        return [(request, request.sample_indices, _job(request, len(request.sample_indices), None))]
    return [(request, (i,), _job(request, 1, sample_seed(p.seed, request.key, i))) for i in request.sample_indices]


def _job(request: GenerationRequest, n: int, seed: int | None) -> EngineJob:
    p = request.params
    return EngineJob(
        request.messages,
        n,
        p.temperature,
        1.0 if p.top_p is None else p.top_p,
        DEFAULT_MAX_TOKENS if p.max_tokens is None else p.max_tokens,
        seed,
        top_k=p.top_k,
        min_p=p.min_p,
        stop=p.stop,
    )


def sample_seed(seed: int, key: str, index: int) -> int:
    """The seed of one sample: a function of (run seed, request key, sample index) only, never of the batch."""
    text = f"{seed}|{key}|{index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _n_samples(requests: Sequence[GenerationRequest]) -> int:
    return sum(len(r.sample_indices) for r in requests)


# --- options -------------------------------------------------------------------------------------


def parse_gpu_groups(value: Sequence[Sequence[int]] | str | None) -> list[tuple[int, ...]] | None:
    """``"[[0,1],[2,3]]"`` or ``[[0, 1], [2, 3]]`` -> ``[(0, 1), (2, 3)]``; groups must not overlap."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--gpu-groups '{value}' is not JSON like [[0,1],[2,3]]") from exc
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"--gpu-groups {value!r} must be a non-empty list of GPU index lists, like [[0,1],[2,3]]")
    groups: list[tuple[int, ...]] = []
    for group in value:
        if not isinstance(group, list | tuple) or not group or not all(_is_index(g) for g in group):
            raise ConfigError(f"--gpu-groups: {group!r} is not a non-empty list of GPU indices")
        groups.append(tuple(int(g) for g in group))
    flat = [g for group in groups for g in group]
    if len(flat) != len(set(flat)):
        raise ConfigError(f"--gpu-groups {value!r}: a GPU appears in more than one group")
    if len({len(g) for g in groups}) > 1:
        raise ConfigError(f"--gpu-groups {value!r}: every group needs the same number of GPUs")
    return groups


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_options(
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    max_model_len: int | None,
    groups: list[tuple[int, ...]] | None,
) -> None:
    if tensor_parallel_size < 1:
        raise ConfigError(f"--tensor-parallel-size must be >= 1, got {tensor_parallel_size}")
    if not 0 < gpu_memory_utilization <= 1:
        raise ConfigError(f"--gpu-memory-utilization must be in (0, 1], got {gpu_memory_utilization}")
    if max_model_len is not None and max_model_len < 1:
        raise ConfigError(f"--max-model-len must be >= 1, got {max_model_len}")
    if groups and tensor_parallel_size not in (1, len(groups[0])):
        raise ConfigError(
            f"--tensor-parallel-size {tensor_parallel_size} disagrees with --gpu-groups of {len(groups[0])} GPUs "
            "each (every group is one tensor-parallel engine); drop --tensor-parallel-size"
        )


def _engine_specs(base: EngineSpec, groups: list[tuple[int, ...]] | None) -> list[EngineSpec]:
    """One spec per group; each child's CUDA_VISIBLE_DEVICES goes through the parent's own visible list."""
    from cure_bench.generation.backends.cuda_probe import map_group, parent_visible_devices

    if groups is None:
        return [base]
    visible = parent_visible_devices()
    fields = {k: getattr(base, k) for k in base.__dataclass_fields__}
    return [
        EngineSpec(**{**fields, "tensor_parallel_size": len(g), "gpus": g, "visible_devices": map_group(g, visible)})
        for g in groups
    ]


def _check_runtime(groups: list[tuple[int, ...]] | None) -> None:
    """vLLM importable and CUDA visible, else one line saying what to install or to use --backend hf."""
    if importlib.util.find_spec("vllm") is None:
        raise MissingExtraError("vllm", "--backend vllm", "use --backend hf")
    from cure_bench.generation.backends.cuda_probe import cuda_device_count

    count = cuda_device_count()  # NVML: never torch.cuda.is_available(), which poisons vLLM's fork
    if count == 0:
        raise BackendError("--backend vllm needs a CUDA GPU and torch sees none; use --backend hf on this machine")
    if groups and max(g for group in groups for g in group) >= count:
        raise ConfigError(f"--gpu-groups names GPU {max(max(g) for g in groups)}, but only {count} are visible")
