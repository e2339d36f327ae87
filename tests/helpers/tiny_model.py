"""A tiny randomly initialised Qwen2 chat model, built on the spot for tests (no download, < 5 s).

Tests of local backends (transformers, vLLM) and of training need a real checkpoint directory that
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` load offline, with the
same moving parts as a real Qwen2.5 chat model: a byte-level BPE tokenizer, the ``<|im_start|>`` /
``<|im_end|>`` chat markers, a chat template, EOS and PAD tokens. Its weights are random, so its text
is garbage: tests assert on plumbing (counts, files, token ids), never on what it says.

Shapes are chosen so vLLM can load it too: head size 32 is supported by every vLLM attention backend.

Use it in a test through the session fixture (import it in ``conftest.py``)::

    from tests.helpers.tiny_model import tiny_model_dir  # noqa: F401

    def test_something(tiny_model_dir): ...

or call :func:`build_tiny_model` directly (``benchmarks/vllm_smoke.py`` does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = [END_OF_TEXT, IM_START, IM_END]
_QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2.5's template without its tool-calling branches: enough for system/user/assistant turns.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# A small corpus of code and English so the BPE merges look like a code model's (indentation,
# keywords, the answer formats of the CURE prompts). Its content only shapes the vocabulary.
_CORPUS = [
    "def solve():\n    n = int(input())\n    a = list(map(int, input().split()))\n    print(sum(a))\n",
    "import sys\nfor line in sys.stdin:\n    x, y = map(int, line.split())\n    print(x + y)\n",
    "class Solution:\n    def two_sum(self, nums, target):\n        seen = {}\n"
    "        for i, v in enumerate(nums):\n            if target - v in seen:\n"
    "                return [seen[target - v], i]\n            seen[v] = i\n",
    "if __name__ == '__main__':\n    main()\n",
    "while True:\n    try:\n        s = input()\n    except EOFError:\n        break\n    print(s[::-1])\n",
    "```python\nn = int(input())\nprint(n * (n + 1) // 2)\n```\n",
    "**Test Input:**\n```\n3\n1 2 3\n```\n**Test Output:**\n```\n6\n```\n**Explanation:**\n"
    "The sum of 1, 2 and 3 is 6.\n",
    "You are a helpful assistant. Read the problem carefully, think step by step, "
    "then write a Python program that reads from standard input and prints the answer.\n",
    "The quick brown fox jumps over the lazy dog. A unit test checks that a program "
    "returns the expected output for a given input.\n",
    "Given an array of integers, return the maximum sum of a contiguous subarray. "
    "The first line contains the number of test cases.\n",
    "for i in range(n):\n    for j in range(i + 1, n):\n        if a[i] > a[j]:\n            count += 1\n",
    "result = []\nreturn sorted(result, key=lambda t: (t[1], -t[0]))\n",
]


def _train_tokenizer(vocab_size: int):  # -> PreTrainedTokenizerFast
    """Train a byte-level BPE (Qwen's kind) on the built-in corpus and wrap it for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # Qwen2's exact normalizer and pre-tokenizer, so transformers' Qwen2Tokenizer class (which
    # rebuilds them) and the raw tokenizer.json give the same ids.
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        additional_special_tokens=[IM_START, IM_END],
        padding_side="left",
        model_max_length=2048,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_model(
    directory: Path, vocab_size: int = 512, seed: int = 0, shape: dict[str, Any] | None = None
) -> Path:
    """Write a 2-layer random Qwen2 chat model and its tokenizer into ``directory``; return it.

    The same ``seed`` and ``vocab_size`` give the same weights and the same tokenizer, so tests that
    compare two runs (seeded sampling, the generation cache) see identical models. ``shape`` overrides
    Qwen2Config fields (``benchmarks/quickstart_time.py`` builds a model of Qwen2.5-0.5B's size).
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    eos_ids = [tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(END_OF_TEXT)]
    fields: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
        # Far above the usual 0.02: with tiny weights a random model emits one token forever, and
        # tests could not tell whether greedy outputs depend on the prompt (left padding bugs).
        "initializer_range": 0.5,
        "bos_token_id": eos_ids[1],
        "eos_token_id": eos_ids[0],
        "pad_token_id": eos_ids[1],
    }
    config = Qwen2Config(**{**fields, **(shape or {})})
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=eos_ids[1], eos_token_id=eos_ids, pad_token_id=eos_ids[1], do_sample=False
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    _make_config_portable(directory / "tokenizer_config.json")
    return directory


def _make_config_portable(path: Path) -> None:
    """Name the tokenizer class and special tokens the way Qwen2.5 checkpoints do.

    transformers 5 writes ``TokenizersBackend`` and a list-valued ``extra_special_tokens``, which
    transformers 4.x (what a vLLM install may pin) cannot read; ``Qwen2Tokenizer`` loads in both, and a
    chat template inside the config is found by versions that do not read ``chat_template.jinja``.
    """
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    config["chat_template"] = CHAT_TEMPLATE
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":  # python -m tests.helpers.tiny_model DIR: a local stand-in for a hub model
    import sys

    print(build_tiny_model(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen2")))
