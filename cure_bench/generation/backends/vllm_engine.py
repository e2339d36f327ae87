"""The vLLM engine boundary: what one engine is asked (``EngineJob``), what it answers (``EngineSample``),
the real ``vllm.LLM`` wrapper, and the subprocess wrapper that pins an engine to one GPU group.

Kept apart from the Generator so that everything but ``VLLMEngine`` itself runs, and is tested, without vLLM.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cure_bench.errors import BackendError, CureError
from cure_bench.generation.backends.hf_backend import STOP_TOKENS, chat_dicts, first_line
from cure_bench.types import ChatMessages

log = logging.getLogger(__name__)

_READY_POLL_S = 1.0
ENGINE_START_TIMEOUT_S = 1800.0  # loading a large model and capturing CUDA graphs takes minutes, never half an hour


# --- the engine boundary -------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineSpec:
    """How to build one engine; plain data so it can cross into a spawned process."""

    path: str
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    trust_remote_code: bool = False
    enable_prefix_caching: bool = True
    dtype: str = "auto"
    seed: int = 0
    gpus: tuple[int, ...] | None = None  # the group, as the parent numbers its GPUs; None: inherit
    visible_devices: str | None = None  # the child's CUDA_VISIBLE_DEVICES (mapped through the parent's)


@dataclass(frozen=True)
class EngineJob:
    """One prompt and the number of samples wanted from it."""

    messages: ChatMessages
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None
    top_k: int | None = None
    min_p: float | None = None
    stop: tuple[str, ...] | None = None  # stop strings, cut from the text (vLLM's own rule)


DEFAULT_MAX_TOKENS = 8192  # when a request leaves max_tokens unset
PROMPT_TOO_LONG = "prompt_too_long"  # finish_reason of a sample skipped because its prompt exceeds the context


@dataclass(frozen=True)
class EngineSample:
    text: str
    tokens: int
    finish_reason: str | None


class Engine(Protocol):
    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        """``n`` samples per job, in job order; the jobs are one batch for the engine."""
        ...

    def close(self) -> None: ...


EngineFactory = Callable[[EngineSpec], Engine]


class VLLMEngine:
    """One ``vllm.LLM`` in this process. The chat template is the model tokenizer's own."""

    def __init__(self, spec: EngineSpec) -> None:
        force_spawn()
        from vllm import LLM

        self.spec = spec
        self._baseline_mib = gpu_memory_used_mib()
        try:
            self._llm = LLM(
                model=spec.path,
                tensor_parallel_size=spec.tensor_parallel_size,
                gpu_memory_utilization=spec.gpu_memory_utilization,
                max_model_len=spec.max_model_len,
                trust_remote_code=spec.trust_remote_code,
                enable_prefix_caching=spec.enable_prefix_caching,
                dtype=spec.dtype,
                seed=spec.seed,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"vLLM could not start on {spec.path}: {first_line(exc)}") from exc
        self._tokenizer = _engine_tokenizer(self._llm, spec)
        vocab = self._tokenizer.get_vocab()
        self._stop_ids = sorted({vocab[t] for t in STOP_TOKENS if t in vocab})
        model_config = getattr(self._llm, "model_config", None) or self._llm.llm_engine.model_config
        self._context = int(model_config.max_model_len)

    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        from vllm import SamplingParams

        prompts, params, sent = [], [], []
        out: list[list[EngineSample] | None] = [None] * len(jobs)
        clipped = 0
        for i, job in enumerate(jobs):
            ids = self._prompt_ids(job.messages)
            room = self._context - len(ids)
            if room <= 0:  # one over-long prompt must not abort the run: its samples are empty, with the reason
                out[i] = [EngineSample("", 0, PROMPT_TOO_LONG)] * job.n
                continue
            clipped += job.n if job.max_tokens > room else 0
            prompts.append({"prompt_token_ids": ids})
            params.append(SamplingParams(**engine_sampling(job, room, self._stop_ids)))
            sent.append(i)
        skipped = sum(jobs[i].n for i, o in enumerate(out) if o is not None)
        if skipped or clipped:
            log.warning(
                "vLLM --max-model-len %d: %d sample(s) skipped (prompt longer than the context), %d with max_tokens "
                "lowered to the context left after the prompt",
                self._context,
                skipped,
                clipped,
            )
        outputs = self._llm.generate(prompts, params, use_tqdm=False) if prompts else []
        for i, o in zip(sent, outputs, strict=True):
            out[i] = _samples(o, jobs[i])
        return [o if o is not None else [] for o in out]

    def _prompt_ids(self, messages: ChatMessages) -> list[int]:
        # A raw prompt string (the cure protocol) is tokenized as vLLM tokenizes a text prompt, special
        # tokens added by the tokenizer included. Chat messages are rendered to text, then tokenized
        # without special tokens: templates that write their own BOS (Llama's) would otherwise get it
        # twice. vLLM's tokenizer wrapper may hide ``chat_template``, so a missing template shows up as
        # transformers' ValueError rather than an attribute check.
        if len(messages) == 1 and messages[0][0] == "text":
            return list(self._tokenizer(messages[0][1])["input_ids"])
        try:
            text = self._tokenizer.apply_chat_template(chat_dicts(messages), tokenize=False, add_generation_prompt=True)
        except ValueError as exc:
            raise BackendError(
                f"--model {self.spec.path}: the tokenizer cannot render a chat ({first_line(exc)}); "
                "use an instruct/chat model"
            ) from exc
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        """Shut the engine core (and its GPU workers) down, then check the GPU memory came back.

        Dropping the reference is not enough: V1's engine-core process holds the weights and KV cache until it is
        told to stop, and a second engine (two local models, evaluation during training) then fails vLLM's
        free-memory check.
        """
        llm, self._llm = self._llm, None
        if llm is None:
            return
        shutdown = getattr(llm, "shutdown", None)
        if shutdown is None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            shutdown = getattr(core, "shutdown", None)
        if shutdown is not None:
            shutdown()
        del llm
        gc.collect()
        wait_memory_freed(self._baseline_mib)


def gpu_memory_used_mib() -> int | None:
    """MiB used on the GPUs this process sees, by NVML (None without pynvml or a driver)."""
    try:
        import pynvml
    except ImportError:
        return None
    from cure_bench.generation.backends.cuda_probe import parent_visible_devices

    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        visible = parent_visible_devices()
        handles = (
            [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            if visible is None
            else [
                pynvml.nvmlDeviceGetHandleByUUID(v) if v.startswith("GPU-") else pynvml.nvmlDeviceGetHandleByIndex(int(v))
                for v in visible
            ]
        )
        return sum(int(pynvml.nvmlDeviceGetMemoryInfo(h).used) for h in handles) // (1 << 20)
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


FREED_SLACK_MIB = 1024


def wait_memory_freed(baseline_mib: int | None, timeout_s: float = 30.0) -> bool:
    """Poll until GPU memory is back within ``FREED_SLACK_MIB`` of what was used before the engine; warn if not."""
    if baseline_mib is None:
        return True
    deadline = time.monotonic() + timeout_s
    used = gpu_memory_used_mib()
    while used is not None and used > baseline_mib + FREED_SLACK_MIB and time.monotonic() < deadline:
        time.sleep(0.5)
        used = gpu_memory_used_mib()
    if used is not None and used > baseline_mib + FREED_SLACK_MIB:
        log.warning(
            "vLLM engine closed but %d MiB of GPU memory is still in use (%d MiB before it started); "
            "another engine on these GPUs may fail its free-memory check",
            used - baseline_mib,
            baseline_mib,
        )
        return False
    return True


def force_spawn() -> None:
    """Make vLLM spawn (never fork) its engine-core and worker processes.

    vLLM forks unless ``torch.cuda.is_initialized()`` or ``VLLM_WORKER_MULTIPROC_METHOD=spawn``; any earlier
    ``cudaGetDeviceCount`` in this process (``torch.cuda.is_available()``, a library probing) poisons fork without
    setting ``is_initialized``, and the forked engine then dies with "Cannot re-initialize CUDA in forked
    subprocess". An explicit method set by the user is kept.
    """
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")


def _engine_tokenizer(llm: Any, spec: EngineSpec) -> Any:
    """The engine's own tokenizer (same chat template and ids it decodes with); transformers' if absent."""
    if hasattr(llm, "get_tokenizer"):
        return llm.get_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)


def engine_sampling(job: EngineJob, room: int, stop_ids: Sequence[int]) -> dict[str, Any]:
    """``vllm.SamplingParams`` keywords for a job; unset top_k/min_p/stop keep vLLM's defaults."""
    greedy = _is_greedy(job)  # vLLM refuses n > 1 (and top_p < 1) with greedy decoding
    out: dict[str, Any] = {
        "n": 1 if greedy else job.n,
        "temperature": 0.0 if greedy else job.temperature,
        "top_p": 1.0 if greedy else job.top_p,
        "max_tokens": min(job.max_tokens, room),
        "seed": job.seed,
        "stop_token_ids": list(stop_ids),
    }
    if job.top_k is not None and not greedy:
        out["top_k"] = job.top_k
    if job.min_p is not None and not greedy:
        out["min_p"] = job.min_p
    if job.stop:
        out["stop"] = list(job.stop)
    return out


def _is_greedy(job: EngineJob) -> bool:
    return job.temperature < 1e-5


def _samples(output: Any, job: EngineJob) -> list[EngineSample]:
    """The job's ``n`` samples; a greedy job ran once and its one answer stands for all ``n``."""
    got = [EngineSample(o.text, len(o.token_ids), o.finish_reason) for o in output.outputs]
    if _is_greedy(job) and len(got) == 1:
        got *= job.n
    if len(got) != job.n:
        raise BackendError(f"vLLM returned {len(got)} samples for a prompt that asked for {job.n}")
    return got


# --- one engine per GPU group, each in its own process ----------------------------------------------


class SubprocessEngine:
    """An engine living in a spawned process that only sees its GPU group.

    Spawned (not forked) so CUDA starts fresh with ``CUDA_VISIBLE_DEVICES`` set before torch loads.
    ``builder`` makes the engine inside the child; it must be importable (a module-level function).
    """

    def __init__(self, spec: EngineSpec, builder: EngineFactory | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.spec = spec
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve_engine,
            args=(child, spec, builder or VLLMEngine),
            name=f"cure-vllm-gpus-{'-'.join(map(str, spec.gpus or ()))}",
        )
        self._proc.start()
        child.close()
        # Stop the child even if nobody calls close(): it is not a daemon (vLLM starts its own
        # workers), so without this the interpreter would wait for it at exit.
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._conn)

    def wait_ready(self, timeout_s: float = ENGINE_START_TIMEOUT_S) -> None:
        """Block until the child's engine is up; a child that neither answers nor dies in time is stopped."""
        self._receive(timeout_s)

    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        self._conn.send(("run", list(jobs)))
        result: list[list[EngineSample]] = self._receive()
        return result

    def close(self) -> None:
        self._finalizer()

    def _receive(self, timeout_s: float | None = None) -> Any:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._conn.poll(_READY_POLL_S):
                if not self._proc.is_alive():
                    raise EOFError
                if deadline is not None and time.monotonic() > deadline:
                    self.close()
                    raise BackendError(
                        f"the vLLM engine on GPUs {list(self.spec.gpus or ())} did not start within {timeout_s:.0f} s"
                    )
            status, payload = self._conn.recv()
        except EOFError:
            self._proc.join(timeout=5)
            raise BackendError(
                f"the vLLM engine on GPUs {list(self.spec.gpus or ())} died "
                f"(exit code {self._proc.exitcode}); its log is above"
            ) from None
        if status == "error":
            raise BackendError(f"vLLM engine on GPUs {list(self.spec.gpus or ())}: {payload}")
        return payload


def _shutdown(proc: Any, conn: Any) -> None:
    """Ask the child to stop, then insist: a bounded wait, never a hang."""
    if proc.is_alive():
        with contextlib.suppress(OSError):
            conn.send(("close", None))
        proc.join(timeout=30)
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout=10)
    conn.close()


def _serve_engine(conn: Any, spec: EngineSpec, builder: EngineFactory) -> None:
    """Child process main: build the engine on the group's GPUs, then answer ``run`` messages."""
    if spec.visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.visible_devices
    elif spec.gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)
    engine = None
    try:
        engine = builder(spec)
        conn.send(("ok", None))
        while True:
            command, payload = conn.recv()
            if command == "close":
                break
            try:
                conn.send(("ok", engine.run(payload)))
            except Exception as exc:  # the parent re-raises it as one BackendError line
                conn.send(("error", _child_error(exc)))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as exc:
        conn.send(("error", _child_error(exc)))
    finally:
        if engine is not None:
            engine.close()
        conn.close()


def _child_error(exc: Exception) -> str:
    if not isinstance(exc, CureError):
        traceback.print_exc()
    return str(exc) if isinstance(exc, CureError) else f"{type(exc).__name__}: {first_line(exc)}"


# --- the generator -------------------------------------------------------------------------------
