"""The vLLM backend with its engine boundary replaced by fakes (no vLLM, no GPU needed).

Two seams: ``engine_factory`` (a fake ``Engine`` streaming from the ``JobFeed``) for the generator's logic,
and a stand-in ``vllm`` module (tests/helpers/fake_vllm.py) for ``VLLMEngine``'s exact calls. What matters:
``n`` samples per prompt, each request delivered the moment it finishes (an interrupt keeps them, a resume asks
only for the rest, with the same per-sample seeds), token counts from the engine, GPU groups pulling from one
feed (each in its own process, seeing only its GPUs, mapped through the parent's), and one-line errors.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cure_bench.errors import BackendError, ConfigError, MissingExtraError, RunInterrupted
from cure_bench.generation.backends.vllm_backend import (
    EngineJob,
    EngineSample,
    EngineSpec,
    JobFeed,
    SubprocessEngine,
    VLLMEngine,
    VLLMGenerator,
    parse_gpu_groups,
)
from cure_bench.types import Completion, GenerationRequest, Generator, SamplingParams
from tests.helpers import fake_vllm as fake_vllm_mod
from tests.helpers.fake_vllm import FakeLLM

PARAMS = SamplingParams(temperature=0.8, top_p=0.9, max_tokens=64, seed=None)
SEEDED = SamplingParams(temperature=0.8, top_p=0.9, max_tokens=64, seed=5)


class FakeEngine:
    """Answers sample k of a prompt with '<question>#k'; records every batch it takes from the feed.

    It takes what the feed gives while it has room, and finishes the batch last-in first-out (a real engine
    finishes requests in no fixed order), yielding each job on its own.
    """

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.calls: list[list[EngineJob]] = []
        self.closed = False

    def answer(self, job: EngineJob, k: int) -> EngineSample:
        return _sample(job, k)

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        while not feed.stopped:
            jobs = feed.take(self.spec.max_in_flight, wait=True)
            if not jobs:
                return
            self.calls.append([job for _, job in jobs])
            for job_id, job in reversed(jobs):
                if feed.stopped:
                    return
                yield job_id, [self.answer(job, k) for k in range(job.n)]

    def close(self) -> None:
        self.closed = True


def _sample(job: EngineJob, k: int) -> EngineSample:
    text = f"{job.messages[-1][1]}#{k}"
    return EngineSample(text, tokens=len(text) + 1, finish_reason="stop")


RENDEZVOUS = "CURE_TEST_ENGINE_RENDEZVOUS"  # a directory and an engine count, "DIR:N", inherited by the children


class EnvEngine(FakeEngine):
    """Answers with the CUDA_VISIBLE_DEVICES its process sees (built inside a spawned child).

    Engines pull from one feed, so on a loaded machine the engine that starts first could answer everything
    before the other takes a job. Each takes one job at a time and, with ``RENDEZVOUS`` set, answers its
    first only once every engine has taken one, so every group answers whatever the machine's load.
    """

    def answer(self, job: EngineJob, k: int) -> EngineSample:
        return EngineSample(f"{os.environ.get('CUDA_VISIBLE_DEVICES')}|pid{os.getpid()}", 1, "stop")

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        first = True
        while not feed.stopped:
            jobs = feed.take(1, wait=True)
            if not jobs:
                return
            if first:
                _meet_the_other_engines()
                first = False
            for job_id, job in jobs:
                yield job_id, [self.answer(job, k) for k in range(job.n)]


def _meet_the_other_engines(timeout_s: float = 60.0) -> None:
    """Mark this engine as holding a job and wait until every engine does (or ``timeout_s`` passes)."""
    where = os.environ.get(RENDEZVOUS)
    if not where:
        return
    directory, count = where.rsplit(":", 1)
    Path(directory, f"engine-{os.getpid()}").touch()
    deadline = time.monotonic() + timeout_s
    while len(list(Path(directory).iterdir())) < int(count) and time.monotonic() < deadline:
        time.sleep(0.01)


class FailingEngine(FakeEngine):
    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        raise RuntimeError("CUDA out of memory\nlong traceback")
        yield  # a generator, like every engine's stream


class DyingEngine(FakeEngine):
    def __init__(self, spec: EngineSpec) -> None:
        os._exit(3)  # what a CUDA driver crash looks like from the parent


class Factory:
    def __init__(self, cls: type[FakeEngine] = FakeEngine) -> None:
        self.cls = cls
        self.engines: list[FakeEngine] = []

    def __call__(self, spec: EngineSpec) -> FakeEngine:
        engine = self.cls(spec)
        self.engines.append(engine)
        return engine


def req(key: str, indices: tuple[int, ...], params: SamplingParams = PARAMS) -> GenerationRequest:
    return GenerationRequest(key, (("system", "sys"), ("user", f"question {key}")), params, indices)


def collect(gen: VLLMGenerator, requests: list[GenerationRequest]) -> list[tuple[str, int, Completion]]:
    got: list[tuple[str, int, Completion]] = []
    gen.generate(requests, lambda r, i, c: got.append((r.key, i, c)))
    return got


@pytest.fixture()
def model_dir(tiny_model_dir: Path) -> str:
    return str(tiny_model_dir)


def test_all_requests_are_one_engine_batch_with_n_per_prompt(model_dir: str) -> None:
    factory = Factory()
    gen = VLLMGenerator(model_dir, engine_factory=factory)
    assert isinstance(gen, Generator)
    requests = [req(f"r{i}", tuple(range(i % 3 + 1))) for i in range(10)]
    got = collect(gen, requests)
    (engine,) = factory.engines
    (batch,) = engine.calls
    assert sorted(job.messages[-1][1] for job in batch) == sorted(f"question r{i}" for i in range(10))
    assert {job.messages[-1][1]: job.n for job in batch} == {f"question r{i}": i % 3 + 1 for i in range(10)}
    assert [job.messages[-1][1] for job in batch] != [f"question r{i}" for i in range(10)], "not shuffled"
    # each sample on its own index, with the engine's token count (delivered as each finished, in no fixed order)
    assert sorted((key, index) for key, index, _ in got) == sorted(
        (r.key, i) for r in requests for i in r.sample_indices
    )
    for key, index, completion in got:
        assert completion.text == f"question {key}#{index}"
        assert completion.tokens == len(completion.text) + 1 and completion.finish_reason == "stop"


def test_missing_indices_map_to_the_engine_samples_in_order(model_dir: str) -> None:
    got = collect(VLLMGenerator(model_dir, engine_factory=Factory()), [req("a", (3, 5, 9)), req("b", ())])
    assert sorted((k, i, c.text) for k, i, c in got) == [
        ("a", 3, "question a#0"),
        ("a", 5, "question a#1"),
        ("a", 9, "question a#2"),
    ]


def test_shuffle_is_fixed_by_the_seed(model_dir: str) -> None:
    requests = [req(f"r{i}", (0,)) for i in range(12)]

    def order(seed: int) -> list[str]:
        factory = Factory()
        collect(VLLMGenerator(model_dir, seed=seed, engine_factory=factory), requests)
        return [job.messages[-1][1] for job in factory.engines[0].calls[0]]

    assert order(0) == order(0)
    assert order(0) != order(1)


def test_sampling_params_and_per_request_seeds_reach_the_engine(model_dir: str) -> None:
    factory = Factory()
    unseeded = SamplingParams(temperature=0.0, max_tokens=7, seed=None)
    collect(
        VLLMGenerator(model_dir, engine_factory=factory),
        [req("a", (0, 1), SEEDED), req("b", (0, 1), SEEDED), req("c", (0,), unseeded)],
    )
    jobs: dict[str, list[EngineJob]] = {}
    for job in factory.engines[0].calls[0]:
        jobs.setdefault(job.messages[-1][1], []).append(job)
    a, b, (c,) = jobs["question a"], jobs["question b"], jobs["question c"]
    assert [(j.temperature, j.top_p, j.max_tokens, j.n) for j in a] == [(0.8, 0.9, 64, 1)] * 2, "one job per sample"
    seeds = {j.seed for j in a + b}
    assert None not in seeds and len(seeds) == 4, "every sample its own seed"
    assert (c.temperature, c.max_tokens, c.seed, c.n) == (0.0, 7, None, 1)


def test_per_sample_seeds_are_identical_across_a_resume(model_dir: str) -> None:
    """Samples 3 and 5 asked for alone (a resume) get the seeds they had in the uninterrupted run."""
    from cure_bench.generation.backends.vllm_backend import sample_seed

    def seeds(indices: tuple[int, ...], key: str = "a") -> dict[int, int | None]:
        factory = Factory(SeedEngine)
        got = collect(VLLMGenerator(model_dir, engine_factory=factory), [req(key, indices, SEEDED)])
        return {i: int(c.text) for _, i, c in got}

    whole = seeds(tuple(range(8)))
    assert len(set(whole.values())) == 8
    resumed = seeds((3, 5))
    assert resumed == {3: whole[3], 5: whole[5]}
    assert whole[3] == sample_seed(5, "a", 3)
    assert seeds((3,), key="b")[3] != whole[3], "the request key is part of the seed"


class SeedEngine(FakeEngine):
    def answer(self, job: EngineJob, k: int) -> EngineSample:
        return EngineSample(str(job.seed), 1, "stop")


def test_nothing_to_generate_starts_no_engine(model_dir: str) -> None:
    factory = Factory()
    gen = VLLMGenerator(model_dir, engine_factory=factory)
    assert collect(gen, [req("a", ())]) == [] and factory.engines == []


def test_engine_is_reused_and_closed(model_dir: str) -> None:
    factory = Factory()
    gen = VLLMGenerator(model_dir, engine_factory=factory)
    collect(gen, [req("a", (0,))])
    collect(gen, [req("b", (0,))])
    assert len(factory.engines) == 1 and len(factory.engines[0].calls) == 2
    gen.close()
    assert factory.engines[0].closed


class BarrierEngine(FakeEngine):
    """No engine answers before every engine has taken its first batch (makes the first shares deterministic)."""

    barrier: ClassVar[threading.Barrier]

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        jobs = feed.take(self.spec.max_in_flight)
        self.calls.append([job for _, job in jobs])
        BarrierEngine.barrier.wait(timeout=10)  # neither answers before both have taken their first batch
        for job_id, job in jobs:
            yield job_id, [self.answer(job, k) for k in range(job.n)]
        yield from super().stream(feed)


def test_gpu_groups_split_prompts_across_engines(model_dir: str) -> None:
    BarrierEngine.barrier = threading.Barrier(2)
    factory = Factory(BarrierEngine)
    gen = VLLMGenerator(model_dir, gpu_groups="[[0,1],[2,3]]", engine_factory=factory)
    requests = [req(f"r{i}", (0, 1)) for i in range(9)]
    got = collect(gen, requests)
    assert [e.spec.gpus for e in factory.engines] == [(0, 1), (2, 3)]
    assert all(e.spec.tensor_parallel_size == 2 for e in factory.engines)
    shares = [len(e.calls[0]) for e in factory.engines]
    assert shares == [5, 4], "each engine starts with its own lane, about half"
    assert sorted((k, i) for k, i, _ in got) == sorted((r.key, i) for r in requests for i in (0, 1))
    assert all(c.text == f"question {k}#{i}" for k, i, c in got)
    assert gen.describe()["gpu_groups"] == [[0, 1], [2, 3]]


def test_one_engine_failing_to_start_stops_the_others(model_dir: str) -> None:
    factory = Factory()

    def flaky(spec: EngineSpec) -> FakeEngine:
        if spec.gpus == (1,):
            raise BackendError("vLLM could not start on GPU 1")
        return factory(spec)

    gen = VLLMGenerator(model_dir, gpu_groups=[[0], [1], [2]], engine_factory=flaky)
    with pytest.raises(BackendError, match="could not start on GPU 1"):
        collect(gen, [req("a", (0,))])
    assert len(factory.engines) == 2 and all(e.closed for e in factory.engines)


def test_engine_failure_raises_and_delivers_nothing(model_dir: str) -> None:
    gen = VLLMGenerator(model_dir, engine_factory=Factory(FailingEngine))
    delivered: list[object] = []
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        gen.generate([req("a", (0,))], lambda *a: delivered.append(a))
    assert delivered == []


def _start_in_child(cls: type[FakeEngine]):
    def factory(spec: EngineSpec) -> SubprocessEngine:
        engine = SubprocessEngine(spec, builder=cls)
        engine.wait_ready()
        return engine

    return factory


@pytest.mark.slow
def test_each_gpu_group_runs_in_its_own_process_with_its_devices(
    model_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RENDEZVOUS, f"{tmp_path}:2")
    gen = VLLMGenerator(model_dir, gpu_groups=[[0, 1], [2, 3]], engine_factory=_start_in_child(EnvEngine))
    try:
        got = collect(gen, [req(f"r{i}", (0,)) for i in range(6)])
    finally:
        gen.close()
    seen = {c.text for _, _, c in got}
    assert {s.split("|")[0] for s in seen} == {"0,1", "2,3"}
    assert len({s.split("|")[1] for s in seen} | {f"pid{os.getpid()}"}) == 3, "two child processes"


@pytest.mark.slow
def test_an_error_inside_the_child_is_one_backend_error_line(model_dir: str) -> None:
    gen = VLLMGenerator(model_dir, gpu_groups=[[0]], engine_factory=_start_in_child(FailingEngine))
    try:
        with pytest.raises(BackendError, match=r"^vLLM engine on GPUs \[0\]: RuntimeError: CUDA out of memory$"):
            collect(gen, [req("a", (0,))])
    finally:
        gen.close()


@pytest.mark.slow
def test_an_engine_process_that_dies_is_a_backend_error(model_dir: str) -> None:
    gen = VLLMGenerator(model_dir, gpu_groups=[[0]], engine_factory=_start_in_child(DyingEngine))
    with pytest.raises(BackendError, match=r"engine on GPUs \[0\] died \(exit code 3\)"):
        collect(gen, [req("a", (0,))])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[[0,1],[1,2]]", "more than one group"),
        ("[[0,1],[2]]", "same number of GPUs"),
        ("[[0],[-1]]", "not a non-empty list of GPU indices"),
        ("0,1", "is not JSON"),
        ("[]", "non-empty list"),
    ],
)
def test_bad_gpu_groups_name_the_flag(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="--gpu-groups") as err:
        parse_gpu_groups(value)
    assert message in str(err.value)


def test_gpu_groups_parse() -> None:
    assert parse_gpu_groups("[[0,1],[2,3]]") == [(0, 1), (2, 3)]
    assert parse_gpu_groups([[4], [5]]) == [(4,), (5,)]
    assert parse_gpu_groups(None) is None


def test_option_errors_name_their_flags(model_dir: str) -> None:
    with pytest.raises(ConfigError, match="--tensor-parallel-size 4 disagrees with --gpu-groups"):
        VLLMGenerator(model_dir, tensor_parallel_size=4, gpu_groups=[[0, 1]], engine_factory=Factory())
    with pytest.raises(ConfigError, match="--gpu-memory-utilization"):
        VLLMGenerator(model_dir, gpu_memory_utilization=1.5, engine_factory=Factory())
    with pytest.raises(BackendError, match=r"^--model .*: no such model directory"):
        VLLMGenerator(str(Path(model_dir) / "missing"), engine_factory=Factory())


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_without_vllm_the_error_says_what_to_install(model_dir: str) -> None:
    with pytest.raises(MissingExtraError) as err:
        VLLMGenerator(model_dir)
    assert "pip install 'cure-toolkit[vllm]'" in str(err.value) and "--backend hf" in str(err.value)


def test_without_a_gpu_the_error_says_use_hf(model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real_find_spec(n, *a))
    with pytest.raises(BackendError, match=r"needs a CUDA GPU.*use --backend hf") as err:
        VLLMGenerator(model_dir)
    assert "\n" not in str(err.value)


def test_describe_names_the_engine_settings(model_dir: str) -> None:
    info = VLLMGenerator(model_dir, max_model_len=4096, engine_factory=Factory()).describe()
    assert info["backend"] == "vllm" and info["model"] == model_dir and info["path"] == str(Path(model_dir).resolve())
    assert (info["tensor_parallel_size"], info["max_model_len"], info["enable_prefix_caching"]) == (1, 4096, True)
    assert "vllm" in info and info["torch"]


# --- VLLMEngine against a stand-in ``vllm`` module: the exact calls it makes ---------------------------


@pytest.fixture()
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> type[FakeLLM]:
    return fake_vllm_mod.install(monkeypatch)


def run_engine(engine: VLLMEngine, jobs: list[EngineJob]) -> list[list[EngineSample]]:
    """All of a stream's answers, in job order."""
    got = dict(engine.stream(JobFeed(enumerate(jobs))))
    return [got[i] for i in range(len(jobs))]


def test_vllm_engine_sends_chat_templated_token_prompts(model_dir: str, fake_vllm: type[FakeLLM]) -> None:
    spec = EngineSpec(path=model_dir, max_model_len=80, enable_prefix_caching=True, seed=3)
    engine = VLLMEngine(spec)
    (llm,) = fake_vllm.made
    assert llm.kwargs["model"] == model_dir
    assert (llm.kwargs["enable_prefix_caching"], llm.kwargs["seed"]) == (True, 3)
    job = EngineJob((("user", "hi"),), n=3, temperature=0.7, top_p=0.95, max_tokens=1000, seed=11)
    (samples,) = run_engine(engine, [job])
    assert [(s.text, s.finish_reason) for s in samples] == [(f"s{k}", "context_length") for k in range(3)]
    assert all(s.tokens >= 1 for s in samples)
    ((_, prompt, p),) = llm.llm_engine.added
    tok = llm.tokenizer
    expected = tok(
        tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True),
        add_special_tokens=False,
    )["input_ids"]
    assert prompt == {"prompt_token_ids": list(expected)}
    assert (p.n, p.temperature, p.top_p, p.seed) == (3, 0.7, 0.95, 11)
    assert p.output_kind is fake_vllm_mod.RequestOutputKind.FINAL_ONLY, "only the finished output is wanted"
    assert p.max_tokens == 80 - len(expected), "clipped to the context left after the prompt"
    assert set(p.stop_token_ids) == set(tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))


def test_vllm_engine_runs_greedy_once_and_repeats_it(model_dir: str, fake_vllm: type[FakeLLM]) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    job = EngineJob((("user", "hi"),), n=3, temperature=0.0, top_p=0.9, max_tokens=5, seed=None)
    (samples,) = run_engine(engine, [job])
    ((_, _, p),) = fake_vllm.made[0].llm_engine.added
    assert (p.n, p.temperature, p.top_p) == (1, 0.0, 1.0)
    assert [s.text for s in samples] == ["s0", "s0", "s0"]
    assert [s.finish_reason for s in samples] == ["length"] * 3, "5 tokens fit: not a context cut"


def test_vllm_engine_skips_a_prompt_longer_than_max_model_len_and_counts_it(
    model_dir: str, fake_vllm: type[FakeLLM], caplog: pytest.LogCaptureFixture
) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    long_job = EngineJob((("user", "word " * 200),), 2, 1.0, 1.0, 10, None)
    clipped_job = EngineJob((("user", "hi"),), 1, 1.0, 1.0, 1000, None)
    with caplog.at_level("WARNING"):
        skipped, ok = run_engine(engine, [long_job, clipped_job])
    assert [(s.text, s.finish_reason) for s in skipped] == [("", "prompt_too_long")] * 2
    assert len(ok) == 1 and (ok[0].text, ok[0].finish_reason) == ("s0", "context_length")
    assert len(fake_vllm.made[0].llm_engine.added) == 1, "the over-long prompt never reaches the engine"
    (line,) = [r.getMessage() for r in caplog.records if "max-model-len" in r.getMessage()]
    assert "2 sample(s) skipped" in line and "1 with max_tokens lowered" in line


def test_vllm_engine_delivers_each_request_when_it_finishes(model_dir: str, fake_vllm: type[FakeLLM]) -> None:
    """The stream yields request k at the step that finished it, not after the whole batch."""
    engine = VLLMEngine(EngineSpec(path=model_dir, max_in_flight=3))
    jobs = [EngineJob((("user", f"q{i}"),), 1, 1.0, 1.0, 5, None) for i in range(5)]
    llm_engine = fake_vllm.made[0].llm_engine
    seen: list[tuple[int, int]] = []
    for job_id, _ in engine.stream(JobFeed(enumerate(jobs))):
        seen.append((job_id, len(llm_engine.finished)))
        assert len(llm_engine.added) - len(llm_engine.finished) <= 3, "never more than max_in_flight samples held"
    assert seen == [(i, i + 1) for i in range(5)]
    assert llm_engine.aborted == []


def test_vllm_engine_aborts_what_is_in_flight_when_the_feed_stops(model_dir: str, fake_vllm: type[FakeLLM]) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    feed = JobFeed(enumerate([EngineJob((("user", f"q{i}"),), 1, 1.0, 1.0, 5, None) for i in range(6)]))
    got = []
    for job_id, _ in engine.stream(feed):
        got.append(job_id)
        if len(got) == 2:
            feed.stop()
    llm_engine = fake_vllm.made[0].llm_engine
    assert got == [0, 1]
    assert sorted(llm_engine.aborted) == sorted(r for r, _, _ in llm_engine.added[2:]) and len(llm_engine.aborted) == 4
    assert not llm_engine.waiting


def test_the_cache_key_holds_the_context_length(model_dir: str, tmp_path: Path) -> None:
    """Samples cut under one --max-model-len are not reused under another (the runner keys on cache_context)."""
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.runner import generate_all

    messages = (("user", "hi"),)
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        short = VLLMGenerator(model_dir, max_model_len=512, engine_factory=(f1 := Factory()))
        generate_all(short, cache, [(messages, 2)], PARAMS)
        generate_all(VLLMGenerator(model_dir, max_model_len=512, engine_factory=(f2 := Factory())), cache,
                     [(messages, 2)], PARAMS)  # fmt: skip
        generate_all(VLLMGenerator(model_dir, max_model_len=4096, engine_factory=(f3 := Factory())), cache,
                     [(messages, 2)], PARAMS)  # fmt: skip
        assert (len(f1.engines), len(f2.engines), len(f3.engines)) == (1, 0, 1)
        assert cache.count() == 4
    assert GenerationCache.request_key("hf", "m", messages, PARAMS) == GenerationCache.request_key(
        "hf", "m", messages, PARAMS, None
    ), "backends without a context keep their old keys"


def test_vllm_engine_without_a_chat_template_says_so(model_dir: str, fake_vllm: type[FakeLLM]) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    engine._tokenizer.chat_template = None
    with pytest.raises(BackendError, match=r"cannot render a chat .*use an instruct/chat model"):
        run_engine(engine, [EngineJob((("user", "hi"),), 1, 1.0, 1.0, 10, None)])


def test_the_factory_passes_cli_options_through(model_dir: str) -> None:
    from cure_bench.generation.backends import make_generator

    factory = Factory()
    gen = make_generator(
        "vllm", model_dir, dtype="bfloat16", max_model_len=2048, gpu_memory_utilization=0.5,
        tensor_parallel_size=2, gpu_groups=None, trust_remote_code=False, engine_factory=factory,
    )  # fmt: skip
    collect(gen, [req("a", (0,))])
    spec = factory.engines[0].spec
    assert (spec.dtype, spec.max_model_len, spec.gpu_memory_utilization, spec.tensor_parallel_size) == (
        "bfloat16", 2048, 0.5, 2,
    )  # fmt: skip


# --- per-request delivery, Ctrl-C and resume (issue 20 #2) ----------------------------------------------


class CountingEngine(FakeEngine):
    """Yields one job at a time and records how many samples had been delivered before each yield."""

    delivered: ClassVar[list[tuple[str, int]]]
    before_yield: ClassVar[list[int]]

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        for item in super().stream(feed):
            CountingEngine.before_yield.append(len(CountingEngine.delivered))
            yield item


def test_each_request_reaches_on_sample_before_the_next_one_finishes(model_dir: str) -> None:
    CountingEngine.delivered, CountingEngine.before_yield = [], []
    gen = VLLMGenerator(model_dir, engine_factory=Factory(CountingEngine))
    gen.generate([req(f"r{i}", (0, 1)) for i in range(4)], lambda r, i, c: CountingEngine.delivered.append((r.key, i)))
    assert CountingEngine.before_yield == [0, 2, 4, 6], "request k was delivered before request k+1 was reported"


class InterruptingEngine(FakeEngine):
    """Presses Ctrl-C (a real SIGINT to this process) after ``after`` finished jobs, then keeps going as an engine
    would: the feed being stopped is what must end the stream."""

    after: ClassVar[int] = 3

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        for done, item in enumerate(super().stream(feed), start=1):
            yield item
            if done == InterruptingEngine.after:
                os.kill(os.getpid(), signal.SIGINT)

    def answer(self, job: EngineJob, k: int) -> EngineSample:
        return EngineSample(f"seed={job.seed}", 1, "stop")


def test_ctrl_c_mid_batch_keeps_what_finished_and_a_resume_asks_only_for_the_rest(
    model_dir: str, tmp_path: Path
) -> None:
    """Through the runner and a real generation cache: 12 seeded samples, Ctrl-C after 3 requests finished."""
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.runner import generate_all

    prompts = [((("user", f"question {i}"),), 3) for i in range(4)]
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        first = Factory(InterruptingEngine)
        with pytest.raises(RunInterrupted, match=r"after 3 new samples were saved.*re-run"):
            generate_all(VLLMGenerator(model_dir, engine_factory=first), cache, prompts, SEEDED)
        assert cache.count() == 3, "every finished request is in the cache"
        assert len(first.engines[0].calls[0]) == 12, "one batch: the interrupt came mid-batch"
        got = generate_all(VLLMGenerator(model_dir, engine_factory=(seeded := Factory(SeedEngine))), cache, prompts,
                           SEEDED)  # fmt: skip
        asked = [job for call in seeded.engines[0].calls for job in call]
        assert len(asked) == 9, "the resume asks only for the 9 samples not yet cached"
    with GenerationCache(tmp_path / "whole.sqlite") as cache:
        whole = generate_all(VLLMGenerator(model_dir, engine_factory=Factory(SeedEngine)), cache, prompts, SEEDED)
    interrupted_then_resumed = [[c.text.removeprefix("seed=") for c in row] for row in got]
    assert interrupted_then_resumed == [[c.text for c in row] for row in whole], "same per-sample seeds"


def test_ctrl_c_through_the_real_vllm_engine_aborts_in_flight_requests(
    model_dir: str, fake_vllm: type[FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    """VLLMEngine stepped by our loop: a Ctrl-C between steps stops the feed, in-flight requests are aborted."""

    def press_after_two(engine: Any) -> None:
        if len(engine.finished) == 2 and not getattr(engine, "pressed", False):
            engine.pressed = True
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(FakeLLM, "on_step", staticmethod(press_after_two))
    gen = VLLMGenerator(model_dir)  # the real runtime check and VLLMEngine, with the stand-in vllm module
    delivered: list[tuple[str, int]] = []
    with pytest.raises(RunInterrupted):
        gen.generate([req(f"r{i}", (0,)) for i in range(5)], lambda r, i, c: delivered.append((r.key, i)))
    llm_engine = fake_vllm.made[0].llm_engine
    # the press came during the third step; the request that step finished is kept, the other two are aborted
    assert len(delivered) == 3 and len(llm_engine.finished) == 3
    assert len(llm_engine.aborted) == 2 and not llm_engine.waiting
    gen.close()
    assert llm_engine.shut_down


def test_max_in_flight_must_be_positive(model_dir: str) -> None:
    with pytest.raises(ConfigError, match="max_in_flight"):
        VLLMGenerator(model_dir, engine_factory=Factory(), max_in_flight=0)


def test_job_feed_lanes_and_stealing_only_when_idle() -> None:
    job = EngineJob((("user", "q"),), 2, 1.0, 1.0, 5, None)
    feed = JobFeed(((i, job) for i in range(10)), lanes=2)
    a, b = feed.lane(0), feed.lane(1)
    assert [i for i, _ in a.take(4)] == [0, 2], "room counts samples: 2 jobs of n=2"
    assert [i for i, _ in a.take(100)] == [4, 6, 8]
    assert a.take(100) == [], "a busy engine does not take another engine's lane"
    assert [i for i, _ in a.take(100, wait=True)] == [9, 7, 5], "an idle one takes half of it, from the back"
    assert [i for i, _ in b.take(100)] == [1, 3]
    feed.stop()
    assert b.take(100, wait=True) == [] and feed.stopped


class SlowEngine(FakeEngine):
    """GPU group (0,) takes one job and answers it only once the other engine has answered everything it will."""

    slow_took: ClassVar[threading.Event]
    fast_done: ClassVar[threading.Event]
    stuck: ClassVar[list[EngineJob]]

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        if self.spec.gpus == (0,):
            jobs = feed.take(1)
            SlowEngine.stuck = [job for _, job in jobs]
            SlowEngine.slow_took.set()
            SlowEngine.fast_done.wait(timeout=10)
            for job_id, job in jobs:
                yield job_id, [self.answer(job, k) for k in range(job.n)]
            return
        SlowEngine.slow_took.wait(timeout=10)
        yield from super().stream(feed)
        SlowEngine.fast_done.set()


def test_gpu_groups_do_not_wait_for_each_other(model_dir: str) -> None:
    """One engine stuck on its first request: the other delivers meanwhile, then takes the stuck one's queue."""
    SlowEngine.slow_took, SlowEngine.fast_done = threading.Event(), threading.Event()
    factory = Factory(SlowEngine)
    gen = VLLMGenerator(model_dir, gpu_groups=[[0], [1]], engine_factory=factory)
    got = collect(gen, [req(f"r{i}", (0,)) for i in range(8)])
    _, fast = factory.engines
    assert len(got) == 8
    assert sum(len(c) for c in fast.calls) == 7, "its own 4, then the 3 the stuck engine had not taken"
    (stuck,) = SlowEngine.stuck
    assert [c.text for _, _, c in got].index(f"{stuck.messages[-1][1]}#0") == 7, "7 delivered before it finished"


def test_cure_sampling_and_raw_prompts_reach_the_engine(model_dir: str) -> None:
    """top_k, min_p and the stop strings travel to the engine; a raw prompt stays one ("text", s) message."""
    from cure_bench.generation.backends.vllm_engine import engine_sampling
    from cure_bench.generation.protocols import CURE_STOP

    factory = Factory()
    cure = SamplingParams(temperature=0.8, top_p=0.95, top_k=40, min_p=0.0, max_tokens=10_000, stop=CURE_STOP)
    raw = GenerationRequest("r", (("text", "<|im_start|>User: hi <|im_end|>\n<|im_start|>Assistant: "),), cure, (0, 1))
    collect(VLLMGenerator(model_dir, engine_factory=factory), [raw])
    (job,) = factory.engines[0].calls[0]
    assert job.messages == raw.messages
    assert (job.temperature, job.top_p, job.top_k, job.min_p, job.max_tokens, job.stop) == (
        0.8, 0.95, 40, 0.0, 10_000, CURE_STOP,
    )  # fmt: skip
    kwargs = engine_sampling(job, room=20_000, stop_ids=[7])
    assert kwargs == {"n": 2, "temperature": 0.8, "top_p": 0.95, "max_tokens": 10_000, "seed": None,
                      "stop_token_ids": [7], "top_k": 40, "min_p": 0.0, "stop": list(CURE_STOP)}  # fmt: skip
    unset = EngineJob((("user", "hi"),), 1, 1.0, 1.0, 10, None)
    assert "top_k" not in engine_sampling(unset, 100, []) and "stop" not in engine_sampling(unset, 100, [])
    api = SamplingParams(temperature=0.8, top_p=None, max_tokens=None)
    collect(VLLMGenerator(model_dir, engine_factory=(f := Factory())), [req("a", (0,), api)])
    (job,) = f.engines[0].calls[0]
    assert (job.top_p, job.max_tokens) == (1.0, 8192)  # unset: the engine's neutral values


def test_vllm_options_are_checked_early() -> None:
    from cure_bench.generation.backends.vllm_backend import VLLMOptions

    assert VLLMOptions(gpu_groups="[[0,1],[2,3]]").gpu_groups == "[[0,1],[2,3]]"
    with pytest.raises(ConfigError, match="--gpu-groups"):
        VLLMOptions(gpu_groups="[[0]")
    with pytest.raises(ConfigError, match="--gpu-memory-utilization"):
        VLLMOptions(gpu_memory_utilization=1.5)


# --- issue 20: start-up on the default path, the parent's devices --------------------------------------


def test_vllm_engine_forces_spawn_before_the_engine_starts(
    model_dir: str, fake_vllm: type[FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    VLLMEngine(EngineSpec(path=model_dir))
    assert fake_vllm.made[-1].env_method == "spawn", "vLLM must see spawn when it builds its engine core"
    monkeypatch.setenv("VLLM_WORKER_MULTIPROC_METHOD", "fork")
    VLLMEngine(EngineSpec(path=model_dir))
    assert fake_vllm.made[-1].env_method == "fork", "a method the user chose is kept"


def test_the_default_path_never_calls_cuda_is_available(
    model_dir: str, fake_vllm: type[FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--backend auto` and `--backend vllm`'s runtime check count GPUs by NVML (is_available() would fail here)."""
    from cure_bench.generation.backends import choose_backend, cuda_probe, open_generator

    assert choose_backend(model_dir, None, "auto")[0] == "vllm"
    opened = open_generator(model_dir, "auto")  # the real runtime check and VLLMEngine, nothing injected
    assert opened.backend == "vllm"
    collect(opened.generator, [req("a", (0,))])  # type: ignore[arg-type]
    assert len(fake_vllm.made) == 1 and fake_vllm.made[0].env_method == "spawn"
    opened.generator.close()
    import torch

    monkeypatch.setattr(cuda_probe, "_nvml_count", lambda: None)  # no NVML: torch's NVML-first device_count
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert choose_backend(model_dir, None, "auto")[0] == "hf"


def test_nvml_count_honours_the_parent_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    from cure_bench.generation.backends import cuda_probe

    monkeypatch.setattr(cuda_probe, "_nvml_count", lambda: 8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cuda_probe.cuda_device_count() == 8
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,,7")
    assert cuda_probe.parent_visible_devices() == ["4", "5"] and cuda_probe.cuda_device_count() == 2


def test_gpu_groups_map_through_the_parent_cuda_visible_devices(
    model_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    factory = Factory()
    collect(VLLMGenerator(model_dir, gpu_groups="[[0,1],[3,2]]", engine_factory=factory), [req("a", (0,))])
    assert [e.spec.visible_devices for e in factory.engines] == ["4,5", "7,6"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaa,GPU-bbb")
    with pytest.raises(ConfigError, match=r"names GPU 2, but CUDA_VISIBLE_DEVICES=GPU-aaa,GPU-bbb leaves 2"):
        VLLMGenerator(model_dir, gpu_groups=[[2]], engine_factory=Factory())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    again = Factory()
    collect(VLLMGenerator(model_dir, gpu_groups=[[1]], engine_factory=again), [req("a", (0,))])
    assert again.engines[0].spec.visible_devices == "1"


def test_close_shuts_the_engine_core_down_and_waits_for_the_memory(
    model_dir: str, fake_vllm: type[FakeLLM], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cure_bench.generation.backends import vllm_engine

    readings = iter([1000, 9000, 5000, 1200])  # before start, then polled after shutdown until back
    monkeypatch.setattr(vllm_engine, "gpu_memory_used_mib", lambda: next(readings))
    monkeypatch.setattr(vllm_engine.time, "sleep", lambda s: None)
    gen = VLLMGenerator(model_dir)
    collect(gen, [req("a", (0,))])
    llm_engine = fake_vllm.made[0].llm_engine
    assert not llm_engine.shut_down
    gen.close()
    assert llm_engine.shut_down, "close() stops the engine core, not just the reference"
    assert next(readings, "done") == "done", "polled until the memory came back"
    assert not [r for r in caplog.records if "still in use" in r.getMessage()]
    gen.close()  # idempotent


def test_close_warns_when_the_memory_does_not_come_back(
    model_dir: str, fake_vllm: type[FakeLLM], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cure_bench.generation.backends import vllm_engine

    readings = iter([1000] + [9000] * 100)
    monkeypatch.setattr(vllm_engine, "gpu_memory_used_mib", lambda: next(readings))
    monkeypatch.setattr(vllm_engine.time, "sleep", lambda s: None)
    monkeypatch.setattr(vllm_engine.time, "monotonic", iter(range(0, 10_000, 10)).__next__)
    engine = VLLMEngine(EngineSpec(path=model_dir))
    with caplog.at_level("WARNING"):
        engine.close()
    assert any("8000 MiB of GPU memory is still in use" in r.getMessage() for r in caplog.records)
    assert vllm_engine.wait_memory_freed(None) is True


class SlowStartEngine(FakeEngine):
    def __init__(self, spec: EngineSpec) -> None:
        import time

        time.sleep(60)


@pytest.mark.slow
def test_wait_ready_times_out_and_stops_the_child(model_dir: str) -> None:
    engine = SubprocessEngine(EngineSpec(path=model_dir, gpus=(0,)), builder=SlowStartEngine)
    with pytest.raises(BackendError, match=r"did not start within 2 s"):
        engine.wait_ready(timeout_s=2)
    assert not engine._proc.is_alive()


class TwoStepEngine(FakeEngine):
    """Inside the child: yields one job per step, slowly enough for the parent to stop it mid-way."""

    def stream(self, feed: Any) -> Iterator[tuple[int, list[EngineSample]]]:
        import time

        held: list[tuple[int, EngineJob]] = []
        while True:
            held += [] if feed.stopped else feed.take(2, wait=not held)
            if not held or feed.stopped:
                return
            time.sleep(0.05)
            job_id, job = held.pop(0)
            yield job_id, [self.answer(job, k) for k in range(job.n)]


@pytest.mark.slow
def test_a_subprocess_engine_streams_per_job_and_can_be_stopped_and_reused(model_dir: str) -> None:
    engine = SubprocessEngine(EngineSpec(path=model_dir, gpus=(0,), max_in_flight=2), builder=TwoStepEngine)
    try:
        engine.wait_ready(timeout_s=120)
        jobs = [EngineJob((("user", f"q{i}"),), 1, 1.0, 1.0, 5, None) for i in range(6)]
        feed = JobFeed(enumerate(jobs))
        got = []
        for job_id, samples in engine.stream(feed):
            got.append((job_id, samples[0].text))
            if len(got) == 2:
                feed.stop()
        # a job the child finished before the abort reached it still arrives (it is a finished sample); no more
        assert [i for i, _ in got][:2] == [0, 1] and len(got) <= 3 and got[0][1] == "q0#0"
        again = dict(engine.stream(JobFeed(enumerate(jobs))))  # no stale message left from the stopped stream
        assert sorted(again) == list(range(6)) and again[5][0].text == "q5#0"
    finally:
        engine.close()
    assert not engine._proc.is_alive()


def test_the_gpu_smoke_test_collects_without_initialising_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/gpu/test_vllm_smoke.py decides its skips by NVML: importing it never calls torch.cuda.is_available()."""
    import importlib

    import torch

    def poisoned() -> bool:
        raise AssertionError("torch.cuda.is_available() at collection poisons vLLM's fork")

    monkeypatch.setattr(torch.cuda, "is_available", poisoned)
    monkeypatch.delitem(sys.modules, "tests.gpu.test_vllm_smoke", raising=False)
    module = importlib.import_module("tests.gpu.test_vllm_smoke")
    assert any(getattr(m, "name", "") == "skipif" for m in module.pytestmark)
