"""A real vLLM engine on the tiny random Qwen2 built on the spot: needs CUDA and vllm, skipped otherwise.

It checks what the fake-engine tests cannot: that vLLM loads the tiny checkpoint and its chat template,
honours ``n`` and per-request seeds, reports token counts within ``max_tokens``, and that the spawned
per-GPU-group engine path starts and answers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cure_bench.types import Completion, GenerationRequest, SamplingParams


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed"),
    pytest.mark.skipif(not _cuda(), reason="no CUDA device"),
]

PARAMS = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=16, seed=3)


def _requests() -> list[GenerationRequest]:
    return [
        GenerationRequest(f"r{i}", (("user", f"Write a program number {i}."),), PARAMS, tuple(range(i + 1)))
        for i in range(4)
    ]


def _collect(gen, requests) -> dict[tuple[str, int], Completion]:
    got: dict[tuple[str, int], Completion] = {}
    gen.generate(requests, lambda r, i, c: got.setdefault((r.key, i), c))
    return got


def test_vllm_generates_n_samples_per_prompt_with_token_counts(tiny_model_dir: Path) -> None:
    from cure_bench.generation.backends.vllm_backend import VLLMGenerator

    gen = VLLMGenerator(str(tiny_model_dir), gpu_memory_utilization=0.3, max_model_len=512)
    try:
        requests = _requests()
        first = _collect(gen, requests)
        assert sorted(first) == sorted((r.key, i) for r in requests for i in r.sample_indices)
        assert all(c.tokens is not None and 1 <= c.tokens <= PARAMS.max_tokens for c in first.values())
        assert all(c.finish_reason in ("stop", "length") for c in first.values())
        assert _collect(gen, requests) == first, "per-request seeds make a re-run identical"
        assert gen.describe()["vllm"]
    finally:
        gen.close()


def test_vllm_engine_in_a_gpu_group_process(tiny_model_dir: Path) -> None:
    import torch

    from cure_bench.generation.backends.vllm_backend import VLLMGenerator

    groups = [[i] for i in range(min(torch.cuda.device_count(), 2))]
    gen = VLLMGenerator(str(tiny_model_dir), gpu_groups=groups, gpu_memory_utilization=0.3, max_model_len=512)
    try:
        got = _collect(gen, _requests())
        assert len(got) == sum(i + 1 for i in range(4))
    finally:
        gen.close()


def test_vllm_takes_the_cure_protocol_raw_prompt_and_sampling(tiny_model_dir: Path) -> None:
    """The cure protocol's raw string (no chat template), top_k/min_p and stop strings, through a real engine."""
    from cure_bench.generation.backends.vllm_backend import VLLMGenerator
    from cure_bench.generation.protocols import CURE_STOP

    cure = SamplingParams(temperature=0.8, top_p=0.95, top_k=40, min_p=0.0, max_tokens=32, stop=CURE_STOP, seed=5)
    raw = "<|im_start|>User: Write a program. <|im_end|>\n<|im_start|>Assistant: "
    gen = VLLMGenerator(str(tiny_model_dir), gpu_memory_utilization=0.3, max_model_len=512)
    try:
        got = _collect(gen, [GenerationRequest("raw", (("text", raw),), cure, (0, 1, 2))])
        assert len(got) == 3
        assert all(not any(stop in c.text for stop in CURE_STOP) for c in got.values())  # cut, as upstream's
        assert all(c.tokens is not None and c.tokens <= 32 for c in got.values())
    finally:
        gen.close()
