"""Generators (one module per backend) and the on-disk generation cache.

Public surface: ``make_generator`` builds a backend by name, importing it lazily so that the openai SDK,
torch or vLLM load only when used; ``choose_backend`` is the ``--backend auto`` rule;
``strip_reasoning`` turns a raw answer into the text extraction reads; ``GenerationCache`` and
``generate_all`` (in ``cache`` and ``runner``) give every backend the same resume behaviour.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import re
from typing import Any

from cure_bench.errors import BackendError, ConfigError, MissingExtraError
from cure_bench.generation.reasoning import join_reasoning, strip_reasoning
from cure_bench.types import Generator

__all__ = ["BACKENDS", "choose_backend", "is_api_model", "join_reasoning", "make_generator", "strip_reasoning"]

log = logging.getLogger(__name__)

BACKENDS: dict[str, tuple[str, str, str]] = {
    # name: (module, class, extra that provides its dependencies)
    "openai": ("cure_bench.generation.backends.openai_backend", "OpenAIGenerator", ""),
    "vllm": ("cure_bench.generation.backends.vllm_backend", "VLLMGenerator", "vllm"),
    "hf": ("cure_bench.generation.backends.hf_backend", "HFGenerator", "hf"),
}

# Model names that only exist behind a hosted API; a local path or hub id never looks like these.
_API_MODEL = re.compile(
    r"^(gpt-|chatgpt-|o[1-9](-|$)|claude-|gemini-|deepseek-(chat|reasoner|coder)$|grok-|mistral-(large|medium|small)-|"
    r"command-r|text-davinci)",
    re.IGNORECASE,
)


def is_api_model(model: str) -> bool:
    """True for names of hosted API models (gpt-4o-mini, o3-mini, claude-..., gemini-..., deepseek-chat)."""
    return bool(_API_MODEL.match(model.strip()))


def choose_backend(model: str, base_url: str | None, requested: str | None = "auto") -> tuple[str, str]:
    """The backend to use and a sentence saying why (for logs and the manifest).

    ``auto``: openai when a base URL is given or the model is a hosted API model; otherwise vLLM when it
    is installed and CUDA is visible; otherwise transformers (hf).
    """
    choice = (requested or "auto").strip().lower()
    if choice != "auto":
        if choice not in BACKENDS:
            raise ConfigError(f"--backend '{requested}' is not one of: auto, {', '.join(BACKENDS)}")
        return choice, f"--backend {choice}"
    if base_url:
        return "openai", f"--base-url {base_url} was given"
    if is_api_model(model):
        return "openai", f"'{model}' is a hosted API model"
    if importlib.util.find_spec("vllm") is not None and _cuda_visible():
        return "vllm", "vLLM is installed and a CUDA device is visible"
    return "hf", "no --base-url, not an API model, and vLLM+CUDA unavailable: running it with transformers"


def _cuda_visible() -> bool:
    """Whether torch sees a CUDA device (imports torch: called only when choosing a local backend)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def make_generator(backend: str, model: str, **options: Any) -> Generator:
    """Build the named backend's Generator, importing its module only now.

    Options the backend's constructor does not take are dropped with a warning when they are set
    (e.g. ``rpm`` for vLLM), so a CLI can pass every generation flag to every backend.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend '{backend}' is not one of: {', '.join(BACKENDS)}")
    module_name, class_name, extra = BACKENDS[backend]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise BackendError(f"the '{backend}' backend is not part of this installation") from exc
        raise MissingExtraError(extra or backend, f"the '{backend}' backend") from exc
    cls = getattr(module, class_name)
    return cls(model, **_accepted(cls, backend, options))


def _accepted(cls: type, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    kept = {k: v for k, v in options.items() if k in params}
    ignored = sorted(k for k, v in options.items() if k not in params and v is not None)
    if ignored:
        flags = ", ".join("--" + k.replace("_", "-") for k in ignored)
        log.warning("the %s backend ignores %s", backend, flags)
    return kept
