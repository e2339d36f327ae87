"""Generators (one module per backend), the registry that names them, and ``open_generator``.

A backend is its module (a Generator class and an options dataclass, see ``options``) plus one entry in
``BACKENDS``. Everything else derives from that entry: ``open_generator`` chooses (the ``auto`` rule), checks
the caller's options against the chosen backend's dataclass, builds and describes the generator; the CLI
derives its per-backend flags and help from the dataclasses (``option_specs``). Modules are imported lazily
where they pull in heavy dependencies (the openai SDK, torch, vLLM load only when a generator is built).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cure_bench.errors import BackendError, ConfigError, MissingExtraError
from cure_bench.generation.backends.options import flag_name, option_fields
from cure_bench.generation.reasoning import join_reasoning, strip_reasoning
from cure_bench.types import Generator

__all__ = [
    "BACKENDS",
    "BackendSpec",
    "OpenedGenerator",
    "check_options",
    "choose_backend",
    "is_api_model",
    "join_reasoning",
    "make_generator",
    "open_generator",
    "options_class",
    "strip_reasoning",
    "takers",
]


@dataclass(frozen=True)
class BackendSpec:
    """One backend: where its Generator and options dataclass live, and the extra that installs its deps."""

    name: str
    module: str
    generator: str
    options: str
    extra: str
    summary: str


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("openai", "cure_bench.generation.backends.openai_backend", "OpenAIGenerator", "OpenAIOptions", "",
                    "any OpenAI-compatible server"),
        BackendSpec("vllm", "cure_bench.generation.backends.vllm_backend", "VLLMGenerator", "VLLMOptions", "vllm",
                    "in-process vLLM engines"),
        BackendSpec("hf", "cure_bench.generation.backends.hf_backend", "HFGenerator", "HFOptions", "hf",
                    "transformers generate, CPU or one GPU"),
    )
}  # fmt: skip

# Model names that only exist behind a hosted API; a local path or hub id never looks like these.
_API_MODEL = re.compile(
    r"^(gpt-|chatgpt-|o[1-9](-|$)|claude-|gemini-|deepseek-(chat|reasoner|coder)$|grok-|mistral-(large|medium|small)-|"
    r"command-r|text-davinci)",
    re.IGNORECASE,
)


def backend_help(role: str = "Generation") -> str:
    """The --backend help text, from the registry."""
    names = ", ".join(BACKENDS)
    return (
        f"{role} backend: auto, {names} (auto: openai for API models or with a base URL, else vllm with a GPU, "
        "else hf)."
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
    """Whether a CUDA device is visible, by the probe that does not initialise CUDA (vLLM forks after it)."""
    from cure_bench.generation.backends.cuda_probe import cuda_device_count

    return cuda_device_count() > 0


def _spec(backend: str) -> BackendSpec:
    if backend not in BACKENDS:
        raise ConfigError(f"--backend '{backend}' is not one of: {', '.join(BACKENDS)}")
    return BACKENDS[backend]


def _module(backend: str) -> Any:
    spec = _spec(backend)
    try:
        return importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name == spec.module:
            raise BackendError(f"the '{backend}' backend is not part of this installation") from exc
        raise MissingExtraError(spec.extra or backend, f"the '{backend}' backend") from exc


def options_class(backend: str) -> type:
    """The backend's options dataclass (its module has no heavy imports at module level)."""
    cls: type = getattr(_module(backend), _spec(backend).options)
    return cls


def takers(name: str) -> list[str]:
    """The backends whose options include ``name``."""
    return [b for b in BACKENDS if name in option_fields(options_class(b))]


def check_options(options: Mapping[str, Any]) -> None:
    """Early check of user-set options (no backend chosen yet): each must be some backend's, with a valid value.

    ``options`` is flat (``{"rpm": 60}``) or per backend (``{"hf": {"device": "cpu"}}``).
    """
    for backend, section in _sections(options).items():
        names = option_fields(options_class(backend))
        unknown = [k for k in section if k not in names]
        if unknown:
            raise ConfigError(_not_taken(backend, unknown[0]))
        options_class(backend)(**section)
    flat = {k: v for k, v in options.items() if k not in BACKENDS and v is not None}
    for name in flat:
        if not takers(name):
            raise ConfigError(f"{flag_name(name)} is not an option of any backend ({', '.join(BACKENDS)})")
    for backend in BACKENDS:
        mine = {k: v for k, v in flat.items() if k in option_fields(options_class(backend))}
        if mine:
            options_class(backend)(**mine)


def _sections(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in options.items() if k in BACKENDS and isinstance(v, Mapping)}


def _not_taken(backend: str, name: str) -> str:
    others = [b for b in takers(name) if b != backend]
    where = f" (it is an option of the {'/'.join(others)} backend)" if others else ""
    return f"the {backend} backend does not take {flag_name(name)}{where}; leave it out or choose another --backend"


@dataclass
class OpenedGenerator:
    """A built generator, which backend it is, why that one was chosen, and its options (for the manifest)."""

    generator: Generator
    backend: str
    reason: str
    options: Any

    @property
    def text_prompt(self) -> bool:
        """Whether prompts go to it as one raw string (local engines, /v1/completions) or as chat messages."""
        return bool(getattr(self.generator, "text_prompt", False))

    def describe(self) -> dict[str, Any]:
        return {**self.generator.describe(), "backend": self.backend, "backend_reason": self.reason}


def resolve_options(
    backend: str,
    options: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    foreign: Collection[str] = (),
) -> Any:
    """The backend's options dataclass filled from ``options`` (strict) over ``defaults`` (used where taken).

    ``options`` holds what the user set: a name the backend does not take is a ConfigError naming the backend
    and the flag, unless it is in ``foreign`` (set for another role's backend, e.g. in `cure bon`). ``None``
    values count as unset. Per-backend sections (``{"vllm": {...}}``) apply only to their backend.
    """
    cls = options_class(backend)
    names = option_fields(cls)
    given = dict(options or {})
    sections = _sections(given)
    flat = {k: v for k, v in given.items() if k not in BACKENDS and v is not None}
    for name in flat:
        if name not in names and name not in foreign:
            raise ConfigError(_not_taken(backend, name))
    chosen = {k: v for k, v in (defaults or {}).items() if k in names and v is not None}
    chosen.update({k: v for k, v in flat.items() if k in names})
    for name, value in sections.get(backend, {}).items():
        if name not in names:
            raise ConfigError(_not_taken(backend, name))
        chosen[name] = value
    return cls(**chosen)


def open_generator(
    model: str,
    backend: str | None = "auto",
    options: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    foreign: Collection[str] = (),
    construct: Mapping[str, Any] | None = None,
) -> OpenedGenerator:
    """Choose the backend (``auto`` rule), check ``options`` against it, build the generator, run its preflight.

    ``defaults``: values used only where the chosen backend takes them (an API key from the environment).
    ``construct``: constructor-only keywords that are not user options (test seams such as ``engine_factory``).
    A generator with a ``preflight()`` (the openai backend's /v1/completions probe) runs it now, so a server
    that cannot serve the run fails before any generation request.
    """
    base_url = (options or {}).get("base_url") or (defaults or {}).get("base_url")
    chosen, reason = choose_backend(model, base_url, backend)
    opts = resolve_options(chosen, options, defaults=defaults, foreign=foreign)
    cls = getattr(_module(chosen), _spec(chosen).generator)
    generator = cls(model, **dataclasses.asdict(opts), **dict(construct or {}))
    preflight = getattr(generator, "preflight", None)
    if preflight is not None:
        try:
            preflight()
        except BaseException:
            generator.close()
            raise
    return OpenedGenerator(generator, chosen, reason, opts)


def make_generator(backend: str, model: str, **kwargs: Any) -> Generator:
    """Build the named backend's Generator (no ``auto``): options are checked strictly, and keywords the
    constructor takes beyond its options (``engine_factory``, ``request_n``...) pass through."""
    names = option_fields(options_class(backend))
    cls = getattr(_module(backend), _spec(backend).generator)
    params = inspect.signature(cls).parameters
    options = {k: v for k, v in kwargs.items() if k in names or k not in params}
    construct = {k: v for k, v in kwargs.items() if k not in names and k in params}
    return open_generator(model, backend, options, construct=construct).generator


def sample_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The user-set options that change what a model answers (declared ``samples=True`` by some backend).

    Flat or per-backend (``{"vllm": {...}}``) options alike; unset (None) values are left out, so a command
    without such options keeps the resume key it always had.
    """
    shaping = {
        name
        for backend in BACKENDS
        for name, fld in option_fields(options_class(backend)).items()
        if fld.metadata.get("samples")
    }
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in BACKENDS and isinstance(value, Mapping):
            inner = {k: v for k, v in value.items() if k in shaping and v is not None}
            if inner:
                out[key] = inner
        elif key in shaping and value is not None:
            out[key] = value
    return out


def option_specs() -> dict[str, tuple[dataclasses.Field[Any], list[str]]]:
    """Every backend option the CLI offers as a flag: name -> (its field, the backends that take it).

    Two backends may share a name (``dtype``, ``trust_remote_code``) only with one default and one type.
    """
    out: dict[str, tuple[dataclasses.Field[Any], list[str]]] = {}
    for backend in BACKENDS:
        for name, fld in option_fields(options_class(backend)).items():
            if not fld.metadata.get("flag", True):
                continue
            if name in out:
                first, owners = out[name]
                if first.default != fld.default or first.type != fld.type:
                    raise TypeError(f"backends {owners} and {backend} declare option {name!r} differently")
                owners.append(backend)
            else:
                out[name] = (fld, [backend])
    return out
