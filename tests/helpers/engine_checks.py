"""Checks of a local generation backend on real hardware, shared by the GPU smoke scripts and tests/gpu.

Each check builds what it needs from ``make`` (a function returning a fresh Generator on the tiny model), runs it
and returns a ``Check`` (name, passed, detail); nothing here asserts, so a smoke script can print every result
and exit non-zero when one fails, and a pytest test can assert each. They check what fakes cannot: that a real
engine draws different samples for one prompt, repeats greedy answers across ``n``, honours ``max_tokens``,
delivers each request as it finishes, survives a Ctrl-C with a resume that asks only for the rest (drawing the
samples an uninterrupted run draws, where the backend seeds per sample), frees the GPU memory on ``close()``
and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure_bench.errors import RunInterrupted
from cure_bench.types import ChatMessages, Completion, GenerationRequest, Generator, SampleCallback, SamplingParams

MakeGenerator = Callable[[], Generator]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"  {'ok  ' if self.passed else 'FAIL'} {self.name}: {self.detail}"


def _messages(i: int) -> ChatMessages:
    return (("system", "You are a careful Python programmer."), ("user", f"Problem {i}: print the sum of n ints."))


def _requests(params: SamplingParams, prompts: int, k: int) -> list[GenerationRequest]:
    return [GenerationRequest(f"p{i}", _messages(i), params, tuple(range(k))) for i in range(prompts)]


def _collect(gen: Generator, requests: Sequence[GenerationRequest]) -> dict[tuple[str, int], Completion]:
    got: dict[tuple[str, int], Completion] = {}
    gen.generate(requests, lambda r, i, c: got.setdefault((r.key, i), c))
    return got


def _closing(make: MakeGenerator) -> contextlib.AbstractContextManager[Generator]:
    return contextlib.closing(make())  # type: ignore[type-var]


def samples_differ(make: MakeGenerator, max_tokens: int = 16) -> Check:
    """4 prompts x 4 seeded samples at temperature 1: all arrive, token counts in range, a prompt's samples differ."""
    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=3)
    requests = _requests(params, 4, 4)
    with _closing(make) as gen:
        got = _collect(gen, requests)
    missing = 16 - len(got)
    bad_tokens = [c.tokens for c in got.values() if c.tokens is None or not 1 <= c.tokens <= max_tokens]
    same = [r.key for r in requests if len({got[(r.key, i)].text for i in range(4) if (r.key, i) in got}) < 2]
    ok = missing == 0 and not bad_tokens and not same
    return Check("n samples of a prompt differ", ok, f"{len(got)}/16 samples, bad token counts {bad_tokens[:4]}, "
                 f"prompts whose samples are all equal {same}")  # fmt: skip


def greedy_repeats(make: MakeGenerator) -> Check:
    """Greedy with n = 3: every sample of a prompt is the same answer."""
    params = SamplingParams(temperature=0.0, max_tokens=12)
    requests = _requests(params, 2, 3)
    with _closing(make) as gen:
        got = _collect(gen, requests)
    differing = [r.key for r in requests if len({got[(r.key, i)].text for i in range(3) if (r.key, i) in got}) != 1]
    ok = len(got) == 6 and not differing
    return Check("greedy with n > 1 repeats one answer", ok, f"{len(got)}/6 samples, prompts differing {differing}")


def max_tokens_clip(make: MakeGenerator, limit: int = 4) -> Check:
    """``max_tokens`` caps every sample; with a random model most hit it (finish_reason length)."""
    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=limit, seed=1)
    with _closing(make) as gen:
        got = _collect(gen, _requests(params, 3, 2))
    over = [c.tokens for c in got.values() if c.tokens is None or c.tokens > limit]
    cut = sum(c.finish_reason in ("length", "context_length") for c in got.values())
    ok = len(got) == 6 and not over and cut > 0
    return Check(f"max_tokens {limit} clips", ok, f"{len(got)}/6 samples, over the limit {over}, {cut} cut at it")


def delivered_per_request(make: MakeGenerator) -> Check:
    """Requests of 1 token and of 96 tokens in one call: every short one reaches on_sample before any long one,
    so samples reach the cache as each request finishes, not when the whole batch does."""
    short = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=1, seed=2)
    long = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=96, seed=2)
    requests = [GenerationRequest(f"long{i}", _messages(i), long, (0,)) for i in range(3)]
    requests += [GenerationRequest(f"short{i}", _messages(10 + i), short, (0,)) for i in range(3)]
    order: list[str] = []
    with _closing(make) as gen:
        gen.generate(requests, lambda r, i, c: order.append(r.key))
    shorts = [n for n, key in enumerate(order) if key.startswith("short")]
    ok = len(order) == 6 and shorts == [0, 1, 2]
    return Check("each request delivered when it finishes", ok, f"delivery order {order}")


class _Counting:
    """A Generator wrapper that counts the samples asked of it."""

    def __init__(self, inner: Generator) -> None:
        self.inner, self.asked = inner, 0
        self.backend, self.model = inner.backend, inner.model

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        self.asked += sum(len(r.sample_indices) for r in requests)
        self.inner.generate(requests, on_sample)

    def cache_context(self) -> Any:
        context = getattr(self.inner, "cache_context", None)
        return context() if context is not None else None

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()


def ctrl_c_and_resume(make: MakeGenerator, same_samples: bool, after: int = 2) -> Check:
    """A real SIGINT after ``after`` samples were saved; the resume asks only for the rest, through the runner and a
    generation cache; with ``same_samples`` (per-sample seeds) the result equals an uninterrupted run's."""
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.runner import generate_all

    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=24, seed=5)
    prompts = [(_messages(i), 4) for i in range(6)]
    total = 24
    saved = 0

    def press(completion: Completion) -> None:
        nonlocal saved
        saved += 1
        if saved == after:
            os.kill(os.getpid(), signal.SIGINT)

    with tempfile.TemporaryDirectory() as tmp:
        with GenerationCache(Path(tmp) / "c.sqlite") as cache:
            interrupted = False
            with _closing(make) as gen:
                try:
                    generate_all(gen, cache, prompts, params, on_completion=press)
                except (RunInterrupted, KeyboardInterrupt):
                    interrupted = True
            kept = cache.count()
            with _closing(make) as inner:
                counting = _Counting(inner)
                resumed = generate_all(counting, cache, prompts, params)  # type: ignore[arg-type]
        detail = f"interrupted={interrupted}, {kept} kept, resume asked {counting.asked} of {total}"
        ok = interrupted and 0 < kept < total and counting.asked == total - kept
        if same_samples:
            with GenerationCache(Path(tmp) / "whole.sqlite") as cache, _closing(make) as gen:
                whole = generate_all(gen, cache, prompts, params)
            equal = [[c.text for c in row] for row in resumed] == [[c.text for c in row] for row in whole]
            detail += f", equal to an uninterrupted run: {equal}"
            ok = ok and equal
    return Check("Ctrl-C keeps what finished, a resume asks only for the rest", ok, detail)


def memory_freed(make: MakeGenerator, slack_mib: int = 1024) -> Check:
    """GPU memory in use (NVML, all processes: an engine core's too) is back near its level before the engine."""
    before = gpu_used_mib()
    gen = make()
    _collect(gen, _requests(SamplingParams(temperature=1.0, max_tokens=8, seed=0), 2, 2))
    during = gpu_used_mib()
    gen.close()
    del gen
    gc.collect()
    after = gpu_used_mib()
    deadline = time.monotonic() + 30
    while after is not None and before is not None and after > before + slack_mib and time.monotonic() < deadline:
        time.sleep(0.5)
        after = gpu_used_mib()
    ok = before is not None and after is not None and during is not None and after <= before + slack_mib
    return Check(
        "GPU memory freed by close()", ok, f"MiB used: before {before}, with the engine {during}, after {after}"
    )


def gpu_used_mib() -> int | None:
    """MiB used on this process's GPUs by every process (NVML), else this process's torch allocations."""
    from cure_bench.generation.backends.vllm_engine import gpu_memory_used_mib

    used = gpu_memory_used_mib()
    if used is not None:
        return used
    import torch

    if not torch.cuda.is_initialized():
        return 0
    torch.cuda.empty_cache()
    return int(torch.cuda.memory_reserved()) >> 20


def no_leftover_processes(make: MakeGenerator) -> Check:
    """After ``close()`` no child of this process is alive (engine cores, workers, GPU-group processes)."""
    before = set(children())  # what was running already (another test's processes) is not this engine's
    with _closing(make) as gen:
        _collect(gen, _requests(SamplingParams(temperature=1.0, max_tokens=4, seed=0), 1, 1))
    deadline = time.monotonic() + 30
    alive = [c for c in children() if c not in before]
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [c for c in children() if c not in before]
    return Check("no process left after close()", not alive, f"children still alive: {alive}")


def children() -> list[str]:
    """Live child processes of this one (``pid name``), from /proc."""
    me, out = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":\t", 1) for line in (entry / "status").read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(me) and not fields.get("State", "").startswith("Z"):
            out.append(f"{entry.name} {fields.get('Name', '').strip()}")
    return out


def run_all(make: MakeGenerator, per_request: bool, same_samples: bool) -> list[Check]:
    """Every check, in order (``per_request``: the backend claims per-request delivery, as vLLM does)."""
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("samples differ", lambda: samples_differ(make)),
        ("greedy", lambda: greedy_repeats(make)),
        ("max_tokens", lambda: max_tokens_clip(make)),
        ("ctrl-c and resume", lambda: ctrl_c_and_resume(make, same_samples)),
        ("memory", lambda: memory_freed(make)),
        ("processes", lambda: no_leftover_processes(make)),
    ]
    if per_request:
        checks.insert(3, ("per-request delivery", lambda: delivered_per_request(make)))
    out = []
    for name, check in checks:
        try:
            out.append(check())
        except Exception as exc:  # a check that crashes is a failed check, with its reason
            out.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return out
