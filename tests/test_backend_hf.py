"""The transformers backend on a tiny random Qwen2 built in the session (no download, CPU only)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from cure_bench.errors import BackendError, ConfigError, MissingExtraError
from cure_bench.generation.backends.hf_backend import HFGenerator, resolve_model
from cure_bench.types import Completion, GenerationRequest, Generator, SamplingParams
from tests.helpers.tiny_model import build_tiny_model

SAMPLED = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=8, seed=7)
GREEDY = SamplingParams(temperature=0.0, max_tokens=8)


def request(key: str, question: str, params: SamplingParams, indices: tuple[int, ...]) -> GenerationRequest:
    return GenerationRequest(key, (("system", "You write code."), ("user", question)), params, indices)


def run(gen: HFGenerator, requests: list[GenerationRequest]) -> dict[tuple[str, int], Completion]:
    got: dict[tuple[str, int], Completion] = {}

    def on_sample(req: GenerationRequest, index: int, completion: Completion) -> None:
        assert (req.key, index) not in got, "a sample was delivered twice"
        got[(req.key, index)] = completion

    gen.generate(requests, on_sample)
    return got


@pytest.fixture(scope="module")
def gen(tiny_model_dir: Path) -> HFGenerator:
    return HFGenerator(str(tiny_model_dir), device="cpu", batch_size=4)


def test_tiny_model_loads_offline_with_chat_template(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert model.config.model_type == "qwen2" and model.config.num_hidden_layers == 2
    assert tok.decode(tok("def f(x):\n    return x")["input_ids"]) == "def f(x):\n    return x"


def test_tiny_model_is_deterministic(tmp_path: Path) -> None:
    a, b = build_tiny_model(tmp_path / "a", seed=1), build_tiny_model(tmp_path / "b", seed=1)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_generates_every_requested_index_with_token_counts(gen: HFGenerator) -> None:
    assert isinstance(gen, Generator)
    got = run(gen, [request("a", "Sum two numbers.", SAMPLED, (0, 1, 2)), request("b", "Reverse.", SAMPLED, (3, 5))])
    assert sorted(got) == [("a", 0), ("a", 1), ("a", 2), ("b", 3), ("b", 5)]
    for completion in got.values():
        assert isinstance(completion.text, str)
        assert completion.tokens is not None and 1 <= completion.tokens <= SAMPLED.max_tokens
        if completion.finish_reason == "length":
            assert completion.tokens == SAMPLED.max_tokens
        else:
            assert completion.finish_reason == "stop"


def test_left_padded_batches_match_one_prompt_at_a_time(tiny_model_dir: Path) -> None:
    """Greedy text must not depend on which other (longer) prompts share the batch."""
    questions = ["Hi.", "Read n and print n squared, then explain why.", "x " * 40, "Sort a list of words."]
    reqs = [request(f"q{i}", q, GREEDY, (0,)) for i, q in enumerate(questions)]
    batched = run(HFGenerator(str(tiny_model_dir), batch_size=3), reqs)
    alone = {k: v for r in reqs for k, v in run(HFGenerator(str(tiny_model_dir), batch_size=1), [r]).items()}
    assert batched == alone
    assert len({c.text for c in alone.values()}) > 1, "outputs should depend on the prompt"


def test_greedy_samples_are_identical(gen: HFGenerator) -> None:
    got = run(gen, [request("g", "Print hello.", GREEDY, (0, 1, 2))])
    assert len({c.text for c in got.values()}) == 1


def test_seed_makes_a_rerun_reproducible(tiny_model_dir: Path, gen: HFGenerator) -> None:
    reqs = [request("a", "Add numbers.", SAMPLED, (0, 1, 2, 3)), request("b", "Count words.", SAMPLED, (0, 1))]
    first = run(gen, reqs)
    again = run(HFGenerator(str(tiny_model_dir), batch_size=4), reqs)
    assert first == again
    other_seed = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=8, seed=8)
    other = run(gen, [request("a", "Add numbers.", other_seed, (0, 1, 2, 3))])
    assert [other[("a", i)].text for i in range(4)] != [first[("a", i)].text for i in range(4)]
    assert len({first[("a", i)].text for i in range(4)}) > 1, "samples of one prompt should differ"


def test_stop_token_ends_text_and_counts(gen: HFGenerator, monkeypatch: pytest.MonkeyPatch) -> None:
    gen.generate([], lambda *a: None)
    run(gen, [request("warm", "x", GREEDY, (0,))])  # loads the model
    real_generate = gen._model.generate
    im_end = gen._tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate_with_eos(**kwargs):  # the model "answers" 3 tokens, then ends its turn
        out = real_generate(**kwargs)
        out[:, kwargs["input_ids"].shape[1] + 3] = im_end
        return out

    monkeypatch.setattr(gen._model, "generate", generate_with_eos)
    plain = run(gen, [request("s", "Say something.", GREEDY, (0,))])[("s", 0)]
    assert plain.finish_reason == "stop" and plain.tokens == 4
    monkeypatch.undo()
    full = run(gen, [request("s", "Say something.", GREEDY, (0,))])[("s", 0)]
    assert full.text.startswith(plain.text) and full.tokens == GREEDY.max_tokens


def test_nothing_to_do_does_not_load_the_model(tiny_model_dir: Path) -> None:
    lazy = HFGenerator(str(tiny_model_dir))
    lazy.generate([request("a", "q", SAMPLED, ())], lambda *a: pytest.fail("no sample was asked for"))
    assert lazy._model is None


def test_prompt_longer_than_the_context_is_a_clear_error(tiny_model_dir: Path) -> None:
    small = HFGenerator(str(tiny_model_dir))
    small._load()
    small._model.config.max_position_embeddings = 16
    with pytest.raises(BackendError, match=r"--model .* does not fit its context of 16"):
        run(small, [request("long", "word " * 50, GREEDY, (0,))])


def test_describe_names_model_path_device_and_versions(gen: HFGenerator, tiny_model_dir: Path) -> None:
    info = gen.describe()
    assert info["backend"] == "hf" and info["model"] == str(tiny_model_dir)
    assert info["path"] == str(tiny_model_dir.resolve())
    assert (info["device"], info["dtype"]) == ("cpu", "float32")
    assert info["torch"] and info["transformers"]


def test_missing_model_directory_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"^--model .*missing: no such model directory"):
        HFGenerator(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match=r"--model .* no config\.json"):
        HFGenerator(str(tmp_path / "empty"))


def test_hub_id_offline_and_not_cached_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(BackendError) as err:
        HFGenerator("nobody/no-such-model")
    message = str(err.value)
    assert message.startswith("--model nobody/no-such-model:") and "not in the Hugging Face cache" in message
    assert "\n" not in message


def test_hub_id_found_in_the_cache_offline(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-qwen"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model("tiny-org/tiny-qwen") == repo / "snapshots" / commit
    got = run(HFGenerator("tiny-org/tiny-qwen"), [request("a", "q", GREEDY, (0,))])
    assert got[("a", 0)].tokens


def test_bad_device_and_dtype_name_their_flags(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="--dtype 'float8'"):
        HFGenerator(str(tiny_model_dir), dtype="float8")
    with pytest.raises(ConfigError, match="--device 'tpu'"):
        HFGenerator(str(tiny_model_dir), device="tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda"):
            HFGenerator(str(tiny_model_dir), device="cuda")


def test_missing_torch_asks_for_the_hf_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"cure-toolkit\[hf\]"):
        HFGenerator("whatever")


def test_seeded_generation_leaves_the_callers_rng_alone(gen: HFGenerator) -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(gen, [request("a", "Add numbers.", SAMPLED, (0, 1))])
    assert torch.equal(torch.rand(3), expected)


def test_the_factory_builds_it_with_cli_options(tiny_model_dir: Path) -> None:
    from cure_bench.generation.backends import make_generator

    gen = make_generator("hf", str(tiny_model_dir), device="cpu", dtype="auto", trust_remote_code=False, rpm=None)
    assert isinstance(gen, HFGenerator) and (gen.device, gen.dtype) == ("cpu", "float32")


def test_raw_prompt_skips_the_chat_template(gen: HFGenerator) -> None:
    raw = "<|im_start|>User: add <|im_end|>\n<|im_start|>Assistant: "
    gen._load()
    (row,) = list(gen._rows([GenerationRequest("r", (("text", raw),), GREEDY, (0,))]))
    assert list(row.prompt_ids) == gen._tokenizer(raw)["input_ids"]  # no template around it
    (chat,) = list(gen._rows([request("c", raw, GREEDY, (0,))]))
    assert len(chat.prompt_ids) > len(row.prompt_ids)


def test_stop_strings_cut_the_text_as_vllm_does(gen: HFGenerator) -> None:
    from cure_bench.generation.backends.hf_backend import _sampling_kwargs, cut_at_stop

    assert cut_at_stop("print(1)\nUser: next", ("</answer>", "User:")) == ("print(1)\n", True)
    assert cut_at_stop("no stop here", ("User:",)) == ("no stop here", False)
    gen._load()
    ids = gen._tokenizer("answer Human: more")["input_ids"]
    done = gen._completion(ids, ("Human:", "User:"))
    assert (done.text, done.finish_reason) == ("answer ", "stop")
    cure = SamplingParams(temperature=0.8, top_p=0.95, top_k=40, min_p=0.0, max_tokens=4)
    assert _sampling_kwargs(cure) == {"do_sample": True, "temperature": 0.8, "top_p": 0.95, "top_k": 40}
    assert _sampling_kwargs(SamplingParams(temperature=1.0, min_p=0.1))["min_p"] == 0.1
    # a real generate with stop strings and top_k runs (the tiny model rarely hits them; the path must work)
    params = SamplingParams(temperature=0.8, top_p=0.95, top_k=40, min_p=0.0, max_tokens=6, seed=1, stop=("User:",))
    got = run(gen, [GenerationRequest("s", (("text", "Assistant: "),), params, (0, 1))])
    assert len(got) == 2 and all("User:" not in c.text for c in got.values())
