"""The vLLM engine boundary: what one engine is asked (``EngineJob``), what it answers (``EngineSample``),
the real ``vllm.LLM`` wrapper, and the subprocess wrapper that pins an engine to one GPU group.

An engine *streams*: it takes jobs from a shared ``JobFeed`` while it has room and yields each job's samples the
moment that job finishes, so every finished request reaches the generation cache at once (an interrupted run keeps
it) and several engines share one feed without waiting for each other. ``VLLMEngine`` does this by stepping
``LLM.llm_engine`` itself (``add_request`` / ``step`` / ``abort_request``, the loop ``LLM.generate`` runs
internally), never by one ``LLM.generate`` over the whole batch.

Kept apart from the Generator so that everything but ``VLLMEngine`` itself runs, and is tested, without vLLM.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cure_bench.errors import BackendError, CureError
from cure_bench.generation.backends.hf_backend import STOP_TOKENS, chat_dicts, first_line
from cure_bench.types import ChatMessages

log = logging.getLogger(__name__)

_READY_POLL_S = 1.0
_STREAM_POLL_S = 0.1  # how often a waiting parent looks at the feed (a stop) and at the child (still alive)
DEFAULT_MAX_IN_FLIGHT = 2048  # samples one engine holds at once: a few times vLLM's max_num_seqs keeps it full
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
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT  # samples taken from the feed and not yet finished, at most


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
CONTEXT_LENGTH = "context_length"  # finish_reason of a sample cut at a max_tokens the context had lowered


@dataclass(frozen=True)
class EngineSample:
    text: str
    tokens: int
    finish_reason: str | None


class JobFeed:
    """The jobs of one ``generate`` call, handed to engines as they have room; thread-safe.

    The jobs are dealt round robin into one lane per engine (every engine starts with a like share of the
    shuffled jobs); an engine takes from its own lane, and once that is empty it takes from the back of the
    fullest other lane. So no engine waits for another and a faster one ends up doing more. ``stop()`` (Ctrl-C,
    an engine failing) hands out nothing more; engines then abort what they hold.
    """

    def __init__(
        self, jobs: Iterable[tuple[int, EngineJob]], lanes: int = 1, interrupted: Callable[[], bool] | None = None
    ) -> None:
        self._lanes: list[deque[tuple[int, EngineJob]]] = [deque() for _ in range(max(1, lanes))]
        for i, job in enumerate(jobs):
            self._lanes[i % len(self._lanes)].append(job)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._interrupted = interrupted  # polled: Ctrl-C stops the feed without raising inside an engine step

    @property
    def stopped(self) -> bool:
        if self._interrupted is not None and self._interrupted():
            self._stopped.set()
        return self._stopped.is_set()

    def stop(self) -> None:
        self._stopped.set()

    def lane(self, index: int) -> Feed:
        """The feed as engine ``index`` sees it."""
        return _Lane(self, index)

    def take(self, room: int, wait: bool = False, lane: int = 0) -> list[tuple[int, EngineJob]]:
        """Jobs worth at most ``room`` samples (at least one job when ``room > 0``); [] once empty or stopped.

        ``wait`` means the caller holds nothing in flight: only then does it take from another lane (a busy engine
        that took from others would hoard work the others could start on now). A local feed never blocks.
        """
        out: list[tuple[int, EngineJob]] = []
        if self.stopped:
            return out
        with self._lock:
            own = self._lanes[lane]
            while room > 0 and own:
                out.append(own.popleft())
                room -= out[-1][1].n
            if not out and wait:  # idle with its own lane done: take up to half of the fullest other lane
                fullest = max(self._lanes, key=len)
                for _ in range((len(fullest) + 1) // 2):
                    if room <= 0:
                        break
                    out.append(fullest.pop())
                    room -= out[-1][1].n
        return out

    def __len__(self) -> int:
        with self._lock:
            return sum(len(lane) for lane in self._lanes)


class _Lane:
    def __init__(self, feed: JobFeed, index: int) -> None:
        self._feed, self._index = feed, index

    @property
    def stopped(self) -> bool:
        return self._feed.stopped

    def take(self, room: int, wait: bool = False) -> list[tuple[int, EngineJob]]:
        return self._feed.take(room, wait, lane=self._index)


class Feed(Protocol):
    @property
    def stopped(self) -> bool: ...

    def take(self, room: int, wait: bool = False) -> list[tuple[int, EngineJob]]: ...


class Engine(Protocol):
    def stream(self, feed: Feed) -> Iterator[tuple[int, list[EngineSample]]]:
        """Take jobs from ``feed`` while there is room; yield ``(job id, its n samples)`` as each job finishes.

        Ends when the feed is empty and nothing is in flight, or soon after the feed is stopped (jobs still in
        flight are then aborted and never yielded). Closing the iterator early aborts them too.
        """
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
        self._request_ids = itertools.count()

    def stream(self, feed: Feed) -> Iterator[tuple[int, list[EngineSample]]]:
        from vllm import SamplingParams

        engine = self._llm.llm_engine
        in_flight: dict[str, tuple[int, EngineJob]] = {}
        cut: set[str] = set()  # requests whose max_tokens the context lowered
        held = skipped = clipped = 0
        try:
            while True:
                taken = [] if feed.stopped else feed.take(self.spec.max_in_flight - held, wait=not in_flight)
                for job_id, job in taken:
                    ids = self._prompt_ids(job.messages)
                    room = self._context - len(ids)
                    if room <= 0:  # one over-long prompt must not abort the run: empty samples, with the reason
                        skipped += job.n
                        yield job_id, [EngineSample("", 0, PROMPT_TOO_LONG)] * job.n
                        continue
                    kwargs = engine_sampling(job, room, self._stop_ids)
                    request_id = f"cure-{next(self._request_ids)}"
                    engine.add_request(request_id, {"prompt_token_ids": ids}, _final_only(SamplingParams(**kwargs)))
                    in_flight[request_id] = (job_id, job)
                    held += job.n
                    if job.max_tokens > room:
                        clipped += job.n
                        cut.add(request_id)
                if not in_flight and (feed.stopped or not taken):
                    return
                if feed.stopped:
                    return  # the finally aborts what is still in flight
                for output in engine.step():
                    if getattr(output, "finished", False) and output.request_id in in_flight:
                        job_id, job = in_flight.pop(output.request_id)
                        held -= job.n
                        samples = _samples(output, job)
                        if output.request_id in cut:  # per sample: this one ran under a lowered limit
                            samples = [_context_cut(s) for s in samples]
                        yield job_id, samples
        finally:
            if in_flight:
                with contextlib.suppress(Exception):  # a dead engine core cannot abort; close() follows
                    engine.abort_request(list(in_flight))
            if skipped or clipped:
                log.warning(
                    "vLLM --max-model-len %d: %d sample(s) skipped (prompt longer than the context), %d with "
                    "max_tokens lowered to the context left after the prompt",
                    self._context,
                    skipped,
                    clipped,
                )

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
                pynvml.nvmlDeviceGetHandleByUUID(v)
                if v.startswith("GPU-")
                else pynvml.nvmlDeviceGetHandleByIndex(int(v))
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


def _context_cut(sample: EngineSample) -> EngineSample:
    """A sample that hit the lowered limit says so, rather than looking like one that hit max_tokens."""
    return EngineSample(sample.text, sample.tokens, CONTEXT_LENGTH) if sample.finish_reason == "length" else sample


def _final_only(params: Any) -> Any:
    """Ask the engine for a request's output once, when it finishes (what ``LLM.generate`` sets itself)."""
    try:
        from vllm.sampling_params import RequestOutputKind
    except ImportError:  # a stand-in vllm without the enum: its outputs are final already
        return params
    params.output_kind = RequestOutputKind.FINAL_ONLY
    return params


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

    def stream(self, feed: Feed) -> Iterator[tuple[int, list[EngineSample]]]:
        """Jobs go to the child one message each as it has room, samples come back one message per finished job:
        no batch is ever one big pickle, and the child keeps its engine full without waiting for the parent."""
        held: dict[int, int] = {}  # job id -> n, sent and not yet answered
        self._conn.send(("stream", None))
        ended = finished = False  # ended: we sent end/abort; finished: the child said done (or failed)
        try:
            while True:
                if not ended and feed.stopped:
                    self._conn.send(("abort", None))
                    ended = True
                elif not ended:
                    for job_id, job in feed.take(self.spec.max_in_flight - sum(held.values()), wait=not held):
                        self._conn.send(("job", (job_id, job)))
                        held[job_id] = job.n
                    if not held:
                        self._conn.send(("end", None))
                        ended = True
                try:
                    kind, payload = self._receive(poll_s=_STREAM_POLL_S, idle_ok=True)
                except BackendError:
                    finished = True  # the child reported an error (or died): it is not streaming any more
                    raise
                if kind == "done":
                    finished = True
                    return
                if kind == "sample":
                    job_id, samples = payload
                    held.pop(job_id, None)
                    yield job_id, samples
        finally:
            if not finished:  # the caller stopped listening: have the child abort, then read up to its "done"
                with contextlib.suppress(OSError, BackendError):
                    if not ended:
                        self._conn.send(("abort", None))
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        if self._receive(poll_s=_STREAM_POLL_S, idle_ok=True)[0] == "done":
                            break

    def close(self) -> None:
        self._finalizer()

    def _receive(self, timeout_s: float | None = None, poll_s: float = _READY_POLL_S, idle_ok: bool = False) -> Any:
        """The child's next message; ``("idle", None)`` when ``idle_ok`` and nothing came within ``poll_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._conn.poll(poll_s):
                if not self._proc.is_alive():
                    raise EOFError
                if idle_ok:
                    return ("idle", None)
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
        return status, payload


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


class PipeFeed:
    """The child's side of ``JobFeed``: jobs arrive on the pipe from the parent, which decides how many."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._jobs: deque[tuple[int, EngineJob]] = deque()
        self._stopped = False
        self._ended = False
        self.closing = False  # the parent asked the child to exit

    @property
    def stopped(self) -> bool:
        self._drain(block=False)
        return self._stopped

    def take(self, room: int, wait: bool = False) -> list[tuple[int, EngineJob]]:
        self._drain(block=False)
        while wait and not self._jobs and not self._ended:
            self._drain(block=True)
        out = list(self._jobs)
        self._jobs.clear()
        return [] if self._stopped else out

    def _drain(self, block: bool) -> None:
        while not self._ended and (block or self._conn.poll()):
            block = False
            command, payload = self._conn.recv()
            if command == "job":
                self._jobs.append(payload)
            elif command == "end":
                self._ended = True
            elif command in ("abort", "close"):
                self._stopped = self._ended = True
                self.closing = command == "close"


def _serve_engine(conn: Any, spec: EngineSpec, builder: EngineFactory) -> None:
    """Child process main: build the engine on the group's GPUs, then serve ``stream`` requests."""
    # Ctrl-C at a terminal reaches every process of the group; the parent decides what stops (it aborts the
    # stream or closes us), so the child must not die half-way through sending a message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.visible_devices
    elif spec.gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)
    engine = None
    try:
        engine = builder(spec)
        conn.send(("ok", None))
        while True:
            command, _ = conn.recv()
            if command == "close":
                break
            if command != "stream":
                continue  # a late abort/end for a stream that already ended
            feed = PipeFeed(conn)
            try:
                for job_id, samples in engine.stream(feed):
                    conn.send(("sample", (job_id, samples)))
                feed.take(0, wait=True)  # read up to the parent's end/abort so no stale message is left
            except Exception as exc:  # the parent re-raises it as one BackendError line
                conn.send(("error", _child_error(exc)))
                continue
            conn.send(("done", None))
            if feed.closing:
                break
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
