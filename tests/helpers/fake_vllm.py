"""A stand-in ``vllm`` module: the V1 offline surface the backend uses, recording every call.

``LLM(**kwargs)`` loads the model directory's own tokenizer; ``llm.llm_engine`` takes requests
(``add_request``), finishes one per ``step()`` (first in, first out, so each request finishes at its own
step as in a real engine), and records aborts. ``install`` puts it in ``sys.modules`` so that
``find_spec("vllm")`` finds it and the backend's real code path (runtime check, ``VLLMEngine``) runs.
Hooks let a test script the answers and what happens at a given step (a Ctrl-C, a dying engine core).
"""

from __future__ import annotations

import enum
import importlib.machinery
import os
import sys
import types
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

Responder = Callable[[str, Any], list[str]]
"""(prompt text, SamplingParams) -> the n answer texts."""


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


class SamplingParams(types.SimpleNamespace):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(output_kind=RequestOutputKind.CUMULATIVE, **kwargs)


@dataclass
class FakeLLMEngine:
    llm: FakeLLM
    max_model_len: int
    added: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    waiting: deque[str] = field(default_factory=deque)
    finished: list[str] = field(default_factory=list)
    shut_down: bool = False

    @property
    def model_config(self) -> Any:
        return types.SimpleNamespace(max_model_len=self.max_model_len)

    def add_request(self, request_id: str, prompt: dict[str, Any], params: Any) -> None:
        assert not self.shut_down, "request after shutdown"
        self.added.append((request_id, prompt, params))
        self.waiting.append(request_id)

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting)

    def abort_request(self, request_ids: list[str]) -> None:
        self.aborted.extend(request_ids)
        for rid in request_ids:
            if rid in self.waiting:
                self.waiting.remove(rid)

    def step(self) -> list[Any]:
        hook = FakeLLM.on_step
        if hook is not None:
            hook(self)
        if not self.waiting:
            return []
        rid = self.waiting.popleft()
        _, prompt, params = next(a for a in self.added if a[0] == rid)
        text = self.llm.tokenizer.decode(prompt["prompt_token_ids"])
        answers = FakeLLM.responder(text, params)
        tokenizer = self.llm.tokenizer
        outputs = [
            types.SimpleNamespace(
                text=a,
                token_ids=tokenizer(a, add_special_tokens=False)["input_ids"][: params.max_tokens] or [0],
                finish_reason=FakeLLM.finish_reason,
            )
            for a in answers
        ]
        self.finished.append(rid)
        return [types.SimpleNamespace(request_id=rid, finished=True, outputs=outputs)]

    def get_tokenizer(self) -> Any:
        return self.llm.tokenizer


def numbered(text: str, params: Any) -> list[str]:
    """The default answers: s0, s1, ... one per sample."""
    return [f"s{k}" for k in range(params.n)]


class FakeLLM:
    made: ClassVar[list[FakeLLM]] = []
    responder: ClassVar[Responder] = staticmethod(numbered)
    on_step: ClassVar[Callable[[FakeLLMEngine], None] | None] = None
    finish_reason: ClassVar[str] = "length"
    default_context: ClassVar[int] = 80

    def __init__(self, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        self.kwargs = kwargs
        self.env_method = os.environ.get("VLLM_WORKER_MULTIPROC_METHOD")
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
        context = kwargs.get("max_model_len") or FakeLLM.default_context
        self.llm_engine = FakeLLMEngine(self, context)
        self.llm_engine.engine_core = types.SimpleNamespace(shutdown=self._shutdown)  # type: ignore[attr-defined]
        FakeLLM.made.append(self)

    def _shutdown(self) -> None:
        self.llm_engine.shut_down = True

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("LLM.generate returns only when the whole batch is done; step the engine instead")


def install(monkeypatch: pytest.MonkeyPatch, gpus: int = 1) -> type[FakeLLM]:
    """Put the stand-in in ``sys.modules``, make NVML report ``gpus`` GPUs, and make any
    ``torch.cuda.is_available()`` call fail the test (it would poison vLLM's fork)."""
    import torch

    from cure_bench.generation.backends import cuda_probe

    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.__spec__ = importlib.machinery.ModuleSpec("vllm.sampling_params", None)
    sampling.RequestOutputKind = RequestOutputKind  # type: ignore[attr-defined]
    sampling.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)

    def poisoned() -> bool:
        raise AssertionError("torch.cuda.is_available() initialises CUDA and poisons vLLM's fork")

    monkeypatch.setattr(torch.cuda, "is_available", poisoned)
    monkeypatch.setattr(cuda_probe, "_nvml_count", lambda: gpus)
    monkeypatch.delenv("VLLM_WORKER_MULTIPROC_METHOD", raising=False)
    monkeypatch.setattr(FakeLLM, "made", [])
    monkeypatch.setattr(FakeLLM, "on_step", None)
    monkeypatch.setattr(FakeLLM, "finish_reason", "length")
    monkeypatch.setattr(FakeLLM, "responder", staticmethod(numbered))
    return FakeLLM
