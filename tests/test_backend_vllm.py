"""The vLLM backend with its engine boundary replaced by fakes (no vLLM, no GPU needed).

What matters for throughput and correctness: one engine call per ``generate``, ``n`` samples per prompt,
results back in request order after the seeded shuffle, token counts from the engine, GPU groups split
across engines (each in its own process, seeing only its GPUs), and one-line errors.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cure_bench.errors import BackendError, ConfigError, MissingExtraError
from cure_bench.generation.backends.vllm_backend import (
    EngineJob,
    EngineSample,
    EngineSpec,
    SubprocessEngine,
    VLLMEngine,
    VLLMGenerator,
    parse_gpu_groups,
)
from cure_bench.types import Completion, GenerationRequest, Generator, SamplingParams

PARAMS = SamplingParams(temperature=0.8, top_p=0.9, max_tokens=64, seed=None)
SEEDED = SamplingParams(temperature=0.8, top_p=0.9, max_tokens=64, seed=5)


class FakeEngine:
    """Answers sample k of a prompt with '<question>#k'; records every batch it is given."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.calls: list[list[EngineJob]] = []
        self.closed = False

    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        self.calls.append(list(jobs))
        return [[_sample(job, k) for k in range(job.n)] for job in jobs]

    def close(self) -> None:
        self.closed = True


def _sample(job: EngineJob, k: int) -> EngineSample:
    text = f"{job.messages[-1][1]}#{k}"
    return EngineSample(text, tokens=len(text) + 1, finish_reason="stop")


class EnvEngine(FakeEngine):
    """Answers with the CUDA_VISIBLE_DEVICES its process sees (built inside a spawned child)."""

    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        seen = f"{os.environ.get('CUDA_VISIBLE_DEVICES')}|pid{os.getpid()}"
        return [[EngineSample(seen, 1, "stop")] * job.n for job in jobs]


class FailingEngine(FakeEngine):
    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        raise RuntimeError("CUDA out of memory\nlong traceback")


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


def test_all_requests_are_one_engine_call_with_n_per_prompt(model_dir: str) -> None:
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
    # results come back in request order, each sample on its own index, with the engine's token count
    assert [(key, index) for key, index, _ in got] == [(r.key, i) for r in requests for i in r.sample_indices]
    for key, index, completion in got:
        assert completion.text == f"question {key}#{index}"
        assert completion.tokens == len(completion.text) + 1 and completion.finish_reason == "stop"


def test_missing_indices_map_to_the_engine_samples_in_order(model_dir: str) -> None:
    got = collect(VLLMGenerator(model_dir, engine_factory=Factory()), [req("a", (3, 5, 9)), req("b", ())])
    assert [(k, i, c.text) for k, i, c in got] == [
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
    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        return [[EngineSample(str(job.seed), 1, "stop")] * job.n for job in jobs]


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


def test_gpu_groups_split_prompts_across_engines_and_restore_order(model_dir: str) -> None:
    factory = Factory()
    gen = VLLMGenerator(model_dir, gpu_groups="[[0,1],[2,3]]", engine_factory=factory)
    requests = [req(f"r{i}", (0, 1)) for i in range(9)]
    got = collect(gen, requests)
    assert [e.spec.gpus for e in factory.engines] == [(0, 1), (2, 3)]
    assert all(e.spec.tensor_parallel_size == 2 for e in factory.engines)
    shares = [len(e.calls[0]) for e in factory.engines]
    assert sorted(shares) == [4, 5], "each engine gets about half, in one call"
    assert [(k, i) for k, i, _ in got] == [(r.key, i) for r in requests for i in (0, 1)]
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
def test_each_gpu_group_runs_in_its_own_process_with_its_devices(model_dir: str) -> None:
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


class _FakeLLM:
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        _FakeLLM.made.append(kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=80))
        self.generate_calls: list[tuple[list[dict[str, Any]], list[Any]]] = []

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, prompts: list[dict[str, Any]], params: list[Any], use_tqdm: bool = True) -> list[Any]:
        self.generate_calls.append((prompts, params))
        outs = []
        for p in params:
            samples = [
                types.SimpleNamespace(text=f"s{k}", token_ids=[7] * (k + 2), finish_reason="length") for k in range(p.n)
            ]
            outs.append(types.SimpleNamespace(outputs=samples))
        return outs


@pytest.fixture()
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> type[_FakeLLM]:
    module = types.ModuleType("vllm")
    module.LLM = _FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    _FakeLLM.made = []
    return _FakeLLM


def test_vllm_engine_sends_chat_templated_token_prompts(model_dir: str, fake_vllm: type[_FakeLLM]) -> None:
    spec = EngineSpec(path=model_dir, max_model_len=80, enable_prefix_caching=True, seed=3)
    engine = VLLMEngine(spec)
    assert fake_vllm.made[0]["model"] == model_dir
    assert (fake_vllm.made[0]["enable_prefix_caching"], fake_vllm.made[0]["seed"]) == (True, 3)
    job = EngineJob((("user", "hi"),), n=3, temperature=0.7, top_p=0.95, max_tokens=1000, seed=11)
    (samples,) = engine.run([job])
    assert [(s.text, s.tokens, s.finish_reason) for s in samples] == [
        ("s0", 2, "length"),
        ("s1", 3, "length"),
        ("s2", 4, "length"),
    ]
    ((prompts, params),) = engine._llm.generate_calls
    tok = engine._llm.tokenizer
    expected = tok(
        tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True),
        add_special_tokens=False,
    )["input_ids"]
    assert prompts == [{"prompt_token_ids": list(expected)}]
    (p,) = params
    assert (p.n, p.temperature, p.top_p, p.seed) == (3, 0.7, 0.95, 11)
    assert p.max_tokens == 80 - len(expected), "clipped to the context left after the prompt"
    assert set(p.stop_token_ids) == set(tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))


def test_vllm_engine_runs_greedy_once_and_repeats_it(model_dir: str, fake_vllm: type[_FakeLLM]) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    (samples,) = engine.run([EngineJob((("user", "hi"),), n=3, temperature=0.0, top_p=0.9, max_tokens=5, seed=None)])
    ((_, (p,)),) = engine._llm.generate_calls
    assert (p.n, p.temperature, p.top_p) == (1, 0.0, 1.0)
    assert [s.text for s in samples] == ["s0", "s0", "s0"]


def test_vllm_engine_skips_a_prompt_longer_than_max_model_len_and_counts_it(
    model_dir: str, fake_vllm: type[_FakeLLM], caplog: pytest.LogCaptureFixture
) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    long_job = EngineJob((("user", "word " * 200),), 2, 1.0, 1.0, 10, None)
    clipped_job = EngineJob((("user", "hi"),), 1, 1.0, 1.0, 1000, None)
    with caplog.at_level("WARNING"):
        skipped, ok = engine.run([long_job, clipped_job])
    assert [(s.text, s.finish_reason) for s in skipped] == [("", "prompt_too_long")] * 2
    assert len(ok) == 1 and ok[0].text == "s0"
    ((prompts, _),) = engine._llm.generate_calls
    assert len(prompts) == 1, "the over-long prompt never reaches the engine"
    (line,) = [r.getMessage() for r in caplog.records if "max-model-len" in r.getMessage()]
    assert "2 sample(s) skipped" in line and "1 with max_tokens lowered" in line


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


def test_vllm_engine_without_a_chat_template_says_so(model_dir: str, fake_vllm: type[_FakeLLM]) -> None:
    engine = VLLMEngine(EngineSpec(path=model_dir))
    engine._tokenizer.chat_template = None
    with pytest.raises(BackendError, match=r"cannot render a chat .*use an instruct/chat model"):
        engine.run([EngineJob((("user", "hi"),), 1, 1.0, 1.0, 10, None)])


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


class FailsOnSecondBatch(FakeEngine):
    def run(self, jobs: Sequence[EngineJob]) -> list[list[EngineSample]]:
        if self.calls:
            raise RuntimeError("engine died")
        return super().run(jobs)


def test_batches_of_chunk_prompts_deliver_before_the_next_starts(model_dir: str) -> None:
    """What a crash or Ctrl-C loses is bounded by one batch: earlier batches were already delivered (and cached)."""
    factory = Factory(FailsOnSecondBatch)
    gen = VLLMGenerator(model_dir, engine_factory=factory, chunk_prompts=3)
    delivered: list[tuple[str, int]] = []
    requests = [req(f"r{i}", (0, 1)) for i in range(7)]
    with pytest.raises(RuntimeError, match="engine died"):
        gen.generate(requests, lambda r, i, c: delivered.append((r.key, i)))
    assert len(factory.engines[0].calls) == 1 and len(factory.engines[0].calls[0]) == 3
    assert len(delivered) == 6 and len({k for k, _ in delivered}) == 3

    whole = Factory()
    got = collect(VLLMGenerator(model_dir, engine_factory=whole, chunk_prompts=3), requests)
    assert [len(c) for c in whole.engines[0].calls] == [3, 3, 1]
    assert sorted((k, i) for k, i, _ in got) == sorted((r.key, i) for r in requests for i in (0, 1))
    assert all(c.text.endswith(f"#{i}") for _, i, c in got)


def test_chunk_prompts_must_be_positive(model_dir: str) -> None:
    with pytest.raises(ConfigError, match="chunk_prompts"):
        VLLMGenerator(model_dir, engine_factory=Factory(), chunk_prompts=0)


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
    model_dir: str, fake_vllm: type[_FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VLLM_WORKER_MULTIPROC_METHOD", raising=False)
    seen: list[str | None] = []
    real_init = _FakeLLM.__init__

    def spying_init(self: _FakeLLM, **kwargs: Any) -> None:
        seen.append(os.environ.get("VLLM_WORKER_MULTIPROC_METHOD"))
        real_init(self, **kwargs)

    monkeypatch.setattr(_FakeLLM, "__init__", spying_init)
    VLLMEngine(EngineSpec(path=model_dir))
    assert seen == ["spawn"], "vLLM must see spawn when it builds its engine core"
    monkeypatch.setenv("VLLM_WORKER_MULTIPROC_METHOD", "fork")
    VLLMEngine(EngineSpec(path=model_dir))
    assert seen[-1] == "fork", "a method the user chose is kept"


def test_the_default_path_never_calls_cuda_is_available(model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both `--backend vllm`'s runtime check and `--backend auto` count GPUs without cudaGetDeviceCount."""
    import torch

    from cure_bench.generation.backends import choose_backend, cuda_probe

    def poisoned() -> bool:
        raise AssertionError("torch.cuda.is_available() poisons vLLM's fork")

    monkeypatch.setattr(torch.cuda, "is_available", poisoned)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(cuda_probe, "_nvml_count", lambda: None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real_find_spec(n, *a))
    assert choose_backend(model_dir, None, "auto")[0] == "vllm"
    factory = Factory()
    from cure_bench.generation.backends import vllm_backend

    monkeypatch.setattr(vllm_backend, "VLLMEngine", factory)
    gen = VLLMGenerator(model_dir)  # the real runtime check, with the engine replaced
    collect(gen, [req("a", (0,))])
    assert len(factory.engines) == 1
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
    model_dir: str, fake_vllm: type[_FakeLLM], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cure_bench.generation.backends import vllm_engine

    readings = iter([1000, 9000, 5000, 1200])  # before start, then polled after shutdown until back
    monkeypatch.setattr(vllm_engine, "gpu_memory_used_mib", lambda: next(readings))
    monkeypatch.setattr(vllm_engine.time, "sleep", lambda s: None)
    engine = VLLMEngine(EngineSpec(path=model_dir))
    stopped: list[bool] = []
    engine._llm.llm_engine.engine_core = types.SimpleNamespace(shutdown=lambda: stopped.append(True))
    engine.close()
    assert stopped == [True] and engine._llm is None
    assert next(readings, "done") == "done", "polled until the memory came back"
    assert not [r for r in caplog.records if "still in use" in r.getMessage()]
    engine.close()  # idempotent
    assert stopped == [True]


def test_close_warns_when_the_memory_does_not_come_back(model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cure_bench.generation.backends import vllm_engine

    monkeypatch.setattr(vllm_engine, "gpu_memory_used_mib", lambda: 9000)
    monkeypatch.setattr(vllm_engine.time, "sleep", lambda s: None)
    assert vllm_engine.wait_memory_freed(1000, timeout_s=0.0) is False
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
