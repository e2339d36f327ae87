"""A real vLLM engine on the tiny random Qwen2 built on the spot: needs CUDA and vllm, skipped otherwise.

It checks what the fake-engine tests cannot (tests/helpers/engine_checks.py): that vLLM loads the tiny checkpoint
and its chat template, draws different samples for one prompt, repeats greedy answers across ``n``, honours
``max_tokens``, delivers each request as it finishes, survives Ctrl-C with a resume that asks only for the rest and
draws the same samples, frees the GPU on ``close()`` and leaves no process; and that the spawned per-GPU-group path
starts and answers. Collection never initialises CUDA (NVML counts the GPUs): vLLM would fork after it and fail.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from cure_bench.generation.backends.cuda_probe import cuda_device_count
from cure_bench.types import Completion, GenerationRequest, SamplingParams
from tests.helpers import engine_checks

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed"),
    pytest.mark.skipif(cuda_device_count() == 0, reason="no CUDA device"),
]


def _make(model: Path, **kwargs: object) -> Callable[[], object]:
    from cure_bench.generation.backends.vllm_backend import VLLMGenerator

    def make() -> VLLMGenerator:
        return VLLMGenerator(str(model), gpu_memory_utilization=0.3, max_model_len=512, **kwargs)  # type: ignore[arg-type]

    return make


CHECKS = ["samples_differ", "greedy_repeats", "max_tokens_clip", "delivered_per_request", "memory_freed",
          "no_leftover_processes"]  # fmt: skip


@pytest.mark.parametrize("name", CHECKS)
def test_vllm_engine_check(tiny_model_dir: Path, name: str) -> None:
    result = getattr(engine_checks, name)(_make(tiny_model_dir))
    assert result.passed, result.line()


def test_vllm_ctrl_c_and_resume_draws_the_same_samples(tiny_model_dir: Path) -> None:
    result = engine_checks.ctrl_c_and_resume(_make(tiny_model_dir), same_samples=True)
    assert result.passed, result.line()


def test_vllm_engine_in_gpu_group_processes(tiny_model_dir: Path) -> None:
    groups = [[i] for i in range(min(cuda_device_count(), 2))]
    make = _make(tiny_model_dir, gpu_groups=groups)
    for check in (engine_checks.samples_differ, engine_checks.no_leftover_processes):
        result = check(make)
        assert result.passed, result.line()


def test_vllm_takes_the_cure_protocol_raw_prompt_and_sampling(tiny_model_dir: Path) -> None:
    """The cure protocol's raw string (no chat template), top_k/min_p and stop strings, through a real engine."""
    from cure_bench.generation.protocols import CURE_STOP

    cure = SamplingParams(temperature=0.8, top_p=0.95, top_k=40, min_p=0.0, max_tokens=32, stop=CURE_STOP, seed=5)
    raw = "<|im_start|>User: Write a program. <|im_end|>\n<|im_start|>Assistant: "
    gen = _make(tiny_model_dir)()
    got: dict[tuple[str, int], Completion] = {}
    try:
        gen.generate(  # type: ignore[attr-defined]
            [GenerationRequest("raw", (("text", raw),), cure, (0, 1, 2))], lambda r, i, c: got.setdefault((r.key, i), c)
        )
        assert len(got) == 3
        assert all(not any(stop in c.text for stop in CURE_STOP) for c in got.values())  # cut, as upstream's
        assert all(c.tokens is not None and c.tokens <= 32 for c in got.values())
    finally:
        gen.close()  # type: ignore[attr-defined]
