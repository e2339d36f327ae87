"""The transformers backend: ``model.generate`` on CPU or one GPU, no server, works offline.

It is the embedded default for local models when vLLM or a GPU is missing, so a newcomer can run
``cure bench --backend hf`` on a laptop. Samples are spread over rows of a padded batch rather than
asked with ``num_return_sequences``: transformers expands ``num_return_sequences`` into repeated rows
before the prompt forward anyway, so one row per (request, sample index) costs the same and lets prompts
with different sample counts, and the leftovers of a resumed run, share batches.

Model resolution (also used by the vLLM backend): a local directory is used as is; anything else is a
Hugging Face hub id, fetched into the normal hub cache (the one transformers uses) the first time and
read from that cache afterwards without touching the network.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure_bench.errors import BackendError, ConfigError, MissingExtraError
from cure_bench.generation.backends.options import option
from cure_bench.types import ChatMessages, Completion, GenerationRequest, SampleCallback, SamplingParams

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_META_PATTERNS = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken", "*.py"]
# Chat models end a turn with one of these even when the tokenizer's eos_token is another one.
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")


# --- model resolution (shared with the vLLM backend) ----------------------------------------------


def resolve_model(model: str, trust_remote_code: bool = False) -> Path:
    """The directory holding ``model``'s config and weights: a local path, or a hub snapshot.

    A hub id is looked up in the local hub cache first (no network), then downloaded; offline and not
    cached, or unknown on the hub, gives one ``BackendError`` line naming ``--model``.
    """
    path = Path(model).expanduser()
    if path.exists() or _looks_like_path(model):
        return _check_local_dir(model, path)
    cached = _snapshot(model, trust_remote_code, local_only=True)
    if cached is not None and _has_weights(cached):
        return cached
    log.info("downloading %s from the Hugging Face hub into its cache", model)
    downloaded = _snapshot(model, trust_remote_code, local_only=False)
    if downloaded is None or not _has_weights(downloaded):
        raise BackendError(f"--model {model}: the hub repository has no config.json and weights to load")
    return downloaded


def _looks_like_path(model: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else (absolute, ./x, a/b/c) must be a path."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def _check_local_dir(model: str, path: Path) -> Path:
    if not path.is_dir():
        raise BackendError(f"--model {model}: no such model directory")
    if not (path / "config.json").is_file():
        raise BackendError(f"--model {model}: the directory has no config.json (not a transformers model)")
    if not _has_weights(path):
        raise BackendError(f"--model {model}: the directory has no weights (*.safetensors or *.bin)")
    return path.resolve()


def _has_weights(path: Path) -> bool:
    return (path / "config.json").is_file() and any(any(path.glob(p)) for p in _WEIGHT_PATTERNS)


def _snapshot(model: str, trust_remote_code: bool, local_only: bool) -> Path | None:
    """Fetch config, tokenizer and weights (safetensors when the repo has them, else .bin)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a core dependency
        raise MissingExtraError("hf", "loading a model from the Hugging Face hub") from exc
    meta = [p for p in _META_PATTERNS if trust_remote_code or p != "*.py"]
    try:
        folder = Path(snapshot_download(model, allow_patterns=[*meta, "*.safetensors"], local_files_only=local_only))
        if not local_only and not _has_weights(folder):
            folder = Path(snapshot_download(model, allow_patterns=[*meta, "*.bin"]))
    except LocalEntryNotFoundError as exc:
        if local_only:
            return None
        raise BackendError(
            f"--model {model}: not a local directory, not in the Hugging Face cache, and the hub is "
            "unreachable; download it once while online or pass a local model directory"
        ) from exc
    except GatedRepoError as exc:
        raise BackendError(f"--model {model}: the hub repository is gated; run `hf auth login`") from exc
    except (RepositoryNotFoundError, HFValidationError) as exc:
        raise BackendError(
            f"--model {model}: no such local directory or Hugging Face hub model "
            "(private repositories need `hf auth login`)"
        ) from exc
    except OSError as exc:
        raise BackendError(f"--model {model}: could not download it from the hub ({first_line(exc)})") from exc
    return folder


def is_raw(messages: ChatMessages) -> bool:
    """One ``("text", s)`` message: a raw prompt string (the cure protocol), sent without a chat template."""
    return len(messages) == 1 and messages[0][0] == "text"


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` up to the first stop string (excluded, as vLLM does), and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop or ()) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def chat_dicts(messages: ChatMessages) -> list[dict[str, str]]:
    """``((role, content), ...)`` as the list of dicts chat templates expect."""
    return [{"role": role, "content": content} for role, content in messages]


def render_chat(tokenizer: Any, messages: ChatMessages, model: str) -> str:
    """The prompt text of a conversation, ending with the assistant turn's opening."""
    if is_raw(messages):
        return messages[0][1]
    if not getattr(tokenizer, "chat_template", None):
        raise BackendError(
            f"--model {model}: the tokenizer has no chat template (a base model?); use an instruct/chat model"
        )
    return str(tokenizer.apply_chat_template(chat_dicts(messages), tokenize=False, add_generation_prompt=True))


def first_line(exc: BaseException) -> str:
    """An exception as one line (CLI errors are one line; tracebacks are behind CURE_DEBUG)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- the generator -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One sample to generate: request ``request``'s sample ``index``, with its prompt's token ids."""

    request: GenerationRequest
    index: int
    prompt_ids: tuple[int, ...]


@dataclass(frozen=True)
class HFOptions:
    """What the hf backend takes (``cure bench`` flags are derived from these fields)."""

    device: str = option("auto", "auto, cpu or cuda.")
    dtype: str = option("auto", "auto, float32, bfloat16 or float16.", samples=True)
    batch_size: int = option(32, "Sequences generated together (bigger is faster until memory runs out).")
    trust_remote_code: bool = option(False, "Allow model repo code.")

    def __post_init__(self) -> None:
        if (self.device or "auto").lower() not in DEVICES:
            raise ConfigError(f"--device '{self.device}' is not one of: {', '.join(DEVICES)}")
        if (self.dtype or "auto").lower() not in DTYPES:
            raise ConfigError(f"--dtype '{self.dtype}' is not one of: {', '.join(DTYPES)}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")

    text_prompt = True  # a raw prompt string is tokenized as is (no chat template)


class HFGenerator:
    """transformers ``generate`` behind the ``Generator`` protocol.

    ``device``: ``auto`` (CUDA when visible, else CPU), ``cpu`` or ``cuda``. ``dtype``: ``auto`` is
    float32 on CPU (bfloat16 matmuls are slow there) and bfloat16 on a GPU that supports it (else
    float16). ``batch_size`` is the number of sequences generated together: 32 by default, because a
    decoding step reads every weight once whatever the batch (on a CPU that read is the step's cost), so the
    README's 20 quick-start answers share one pass instead of three. The model loads on the
    first ``generate`` that has work, so a fully cached re-run does not pay for it.
    """

    backend = "hf"
    text_prompt = True

    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        trust_remote_code: bool = False,
    ) -> None:
        torch = _import_torch()
        self.model = model
        self.trust_remote_code = trust_remote_code
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = _resolve_device(torch, device)
        self.dtype = _resolve_dtype(torch, dtype, self.device)
        self.path = resolve_model(model, trust_remote_code)
        self._model: Any = None
        self._tokenizer: Any = None
        self._stop_ids: list[int] = []
        self._pad_id = 0

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "path": str(self.path),
            "device": self.device,
            "dtype": self.dtype,
            "batch_size": self.batch_size,
            "torch": package_version("torch"),
            "transformers": package_version("transformers"),
        }

    def close(self) -> None:
        """Drop the model so its memory can be reclaimed (GPU memory included)."""
        self._model = self._tokenizer = None
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        rows = list(self._rows(requests))
        if not rows:
            return
        for params, group in _group_by_params(rows).items():
            for batch in _batches(group, self.batch_size):
                for row, completion in zip(batch, self._generate_batch(batch, params), strict=True):
                    on_sample(row.request, row.index, completion)

    # -- internals --

    def _rows(self, requests: Sequence[GenerationRequest]) -> Iterator[_Row]:
        pending = [r for r in requests if r.sample_indices]
        if not pending:
            return
        self._load()
        for request in pending:
            text = render_chat(self._tokenizer, request.messages, self.model)
            # a raw string gets the tokenizer's special tokens, as vLLM's text prompts do
            ids = tuple(self._tokenizer(text, add_special_tokens=is_raw(request.messages))["input_ids"])
            for index in request.sample_indices:
                yield _Row(request, index, ids)

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        log.info("loading %s (%s) on %s as %s", self.model, self.path, self.device, self.dtype)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=self.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                self.path, dtype=self.dtype, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"--model {self.model}: transformers could not load {self.path}: {first_line(exc)}"
            ) from exc
        model.to(self.device).eval()  # type: ignore[arg-type]  # transformers types .to() as a decorated function
        self._stop_ids = _stop_token_ids(tokenizer, model, self.model)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self._stop_ids[0]
        tokenizer.padding_side = "left"
        # The checkpoint's sampling defaults (Qwen's top_k=20, repetition_penalty...) would silently
        # change what --temperature/--top-p mean; keep only its token ids, as vLLM/OpenAI do.
        model.generation_config = GenerationConfig(
            eos_token_id=self._stop_ids, pad_token_id=pad, bos_token_id=model.generation_config.bos_token_id
        )
        self._pad_id = pad
        self._tokenizer, self._model = tokenizer, model

    def _generate_batch(self, batch: list[_Row], params: SamplingParams) -> list[Completion]:
        import torch

        width = max(len(row.prompt_ids) for row in batch)
        max_new = self._max_new_tokens(width, 8192 if params.max_tokens is None else params.max_tokens)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):  # left padding: every prompt ends at the last column
            input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            attention[i, width - len(row.prompt_ids) :] = 1
        sampling = _sampling_kwargs(params)
        if params.stop:
            sampling.update(stop_strings=list(params.stop), tokenizer=self._tokenizer)
        # Seed a forked RNG so a notebook user's own torch random state is left as it was.
        devices = [torch.cuda.current_device()] if self.device == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=params.seed is not None), torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(_batch_seed(params.seed, batch))
            out = self._model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                max_new_tokens=max_new,
                **sampling,
            )
        return [self._completion(ids, params.stop) for ids in out[:, width:].tolist()]

    def _max_new_tokens(self, prompt_width: int, wanted: int) -> int:
        context = getattr(self._model.config, "max_position_embeddings", None)
        if context is None:
            return wanted
        room = int(context) - prompt_width
        if room <= 0:
            raise BackendError(
                f"--model {self.model}: a prompt of {prompt_width} tokens does not fit its context of {context}"
            )
        if room < wanted:
            log.debug("max_tokens %d clipped to %d by the model's context", wanted, room)
        return min(wanted, room)

    def _completion(self, generated: list[int], stop_strings: Sequence[str] | None = None) -> Completion:
        """Text and token count up to the first stop token (which counts, as in vLLM's token ids); the text
        is cut before the first stop string, which vLLM leaves out too."""
        stop = next((i for i, tok in enumerate(generated) if tok in self._stop_ids), None)
        kept = generated if stop is None else generated[:stop]
        text, cut = cut_at_stop(self._tokenizer.decode(kept, skip_special_tokens=True), stop_strings)
        if cut:
            return Completion(text=text, tokens=len(kept), finish_reason="stop")
        if stop is None:
            return Completion(text=text, tokens=len(generated), finish_reason="length")
        return Completion(text=text, tokens=stop + 1, finish_reason="stop")


def _sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """``generate`` keywords: greedy at temperature 0; else exactly the params' top_p/top_k/min_p (unset: off)."""
    if params.temperature <= 0:
        return {"do_sample": False}
    out: dict[str, Any] = {
        "do_sample": True,
        "temperature": params.temperature,
        "top_p": 1.0 if params.top_p is None else params.top_p,
        "top_k": params.top_k or 0,
    }
    if params.min_p:
        out["min_p"] = params.min_p
    return out


def _import_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("hf", "--backend hf", "use --backend openai with a server") from exc
    return torch


def _resolve_device(torch: Any, device: str) -> str:
    choice = (device or "auto").lower()
    if choice not in DEVICES:
        raise ConfigError(f"--device '{device}' is not one of: {', '.join(DEVICES)}")
    has_cuda = bool(torch.cuda.is_available())
    if choice == "cuda" and not has_cuda:
        raise ConfigError("--device cuda: torch sees no CUDA device; use --device cpu or auto")
    if choice == "auto":
        return "cuda" if has_cuda else "cpu"
    return choice


def _resolve_dtype(torch: Any, dtype: str, device: str) -> str:
    choice = (dtype or "auto").lower()
    if choice not in DTYPES:
        raise ConfigError(f"--dtype '{dtype}' is not one of: {', '.join(DTYPES)}")
    if choice != "auto":
        return choice
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def _stop_token_ids(tokenizer: Any, model: Any, name: str) -> list[int]:
    """EOS ids from the generation config and tokenizer, plus the chat end-of-turn markers present."""
    ids: list[int] = []
    configured = model.generation_config.eos_token_id
    for tok in [*(configured if isinstance(configured, list) else [configured]), tokenizer.eos_token_id]:
        if tok is not None and tok not in ids:
            ids.append(int(tok))
    vocab = tokenizer.get_vocab()
    ids += [vocab[t] for t in STOP_TOKENS if t in vocab and vocab[t] not in ids]
    if not ids:
        raise BackendError(f"--model {name}: neither its generation config nor its tokenizer names an EOS token")
    return ids


def _group_by_params(rows: list[_Row]) -> dict[SamplingParams, list[_Row]]:
    """Rows that can share a ``generate`` call (same sampling params), each group sorted by prompt
    length so batches hold similar lengths and little padding (stable: a request's rows stay together)."""
    groups: dict[SamplingParams, list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.request.params, []).append(row)
    return {p: sorted(g, key=lambda r: len(r.prompt_ids)) for p, g in groups.items()}


def _batches(rows: list[_Row], size: int) -> Iterator[list[_Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _batch_seed(seed: int, batch: list[_Row]) -> int:
    """A seed fixed by the run's seed and the batch's samples: the same command draws the same samples."""
    h = hashlib.sha256(str(seed).encode())
    for row in batch:
        h.update(f"|{row.request.key}:{row.index}".encode())
    return int.from_bytes(h.digest()[:8], "big") & (2**63 - 1)
