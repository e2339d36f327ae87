"""Evaluation protocols: how a task becomes a prompt, how it is sampled, and how answers are read back.

``cure`` (the default) is the CURE authors' evaluation (evaluation/eval.py of github:Gen-Verse/CURE), so
numbers compare with the paper's tables:

* the prompt is one raw pseudo-ChatML string (``<|im_start|>... User: ... <|im_end|>\\n<|im_start|>Assistant: ``),
  given to a local engine (vLLM, transformers) *without* the tokenizer's chat template, or to an
  OpenAI-compatible ``/v1/completions`` endpoint as is; over a chat API it becomes upstream's payload,
  ``[system: "You are a helpful coding assistant.", user: <the raw string>]``;
* sampling: temperature 0.8, top_p 0.95, top_k 40, min_p 0, 10,000 new tokens and six stop strings for a raw
  prompt; temperature 0.8 and no other field over a chat API (upstream's API payload);
* extraction: the last case-sensitive ```` ```python ```` block of the whole answer, reasoning included.

``chat`` is our own protocol: chat messages through the model's chat template, our sampling defaults, and
lenient extraction after removing reasoning. Explicit ``--temperature``/``--top-p``/``--top-k``/``--max-tokens``/
``--stop`` override either protocol; ``resolve_sampling`` says which value came from where, for the manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.generation import extract
from cure_bench.generation.prompts import (
    PromptTemplate,
    coder_messages,
    examples_sentence,
    fill_placeholders,
    prompt_hash,
    tester_messages,
)
from cure_bench.types import ChatMessages, SamplingParams, Task, TestCase

TEXT_ROLE = "text"
"""A prompt of one ``("text", s)`` message is a raw completion prompt: sent as is, never through a chat template."""

CURE_API_SYSTEM = "You are a helpful coding assistant."

CURE_CODER_TEXT = (
    "<|im_start|>You are a helpful assistant help user solve problems. <|im_end|>\n"
    "<|im_start|>User: You need to think first then write python script. "
    "You should use input() to input and print() to output in your script. "
    "Your code should output the results based on the input read in, rather than generating the given test example.\n"
    "This is the problem:\n{{problem}} <|im_end|>\n"
    "<|im_start|>Assistant: "
)

CURE_TESTER_TEXT = (
    "<|im_start|>You are a helpful assistant help user generate test examples for coding tasks. <|im_end|>\n"
    "<|im_start|>User: Given a coding task, instead of providing the final script, your task is to generate a new "
    "test example (both input, output and explanation).\n"
    "This is the problem:\n{{problem}}\n\n"
    "{{example_intro}}\n"
    "You need to provide a new test example. A good test example should be completely accurate and conform to the "
    "problem\u2019s format requirements, while also possessing enough discriminative power to distinguish correct "
    "code from incorrect code.\n"
    "Before providing a test example, you must think carefully and reason step by step to derive an input and output "
    "you are very confident are correct. For example, start by designing an input you can reliably handle, then "
    "compute the output step by step. If you're unsure about the output, revise or re-design the input to ensure "
    "accuracy. Directly providing input/output pairs without this process is discouraged, as it often results in "
    "low accuracy.\n"
    "Finally, after completing these previous thinking and derivation steps (you should not write the final test "
    "example unless you have gone through these steps very thoroughly), you MUST put your final test example in the "
    "following format:\n\n"
    "**Test Input:**\n```input here```\n\n**Test Output:**\n```output here```\n\n**Explanation:**\n\n"
    "explanation here.\n <|im_end|>\n"
    "<|im_start|>Assistant: "
)

CURE_STOP = ("</answer>", "User:", "Human:", "Assistant:", "<|im_end|>", "<|endoftext|>")

# The values each protocol sets, by prompt form ("text": raw string; "chat": chat messages).
_CURE_TEXT_SAMPLING: dict[str, Any] = {
    "temperature": 0.8,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.0,
    "max_tokens": 10_000,
    "stop": CURE_STOP,
}
_CURE_CHAT_SAMPLING: dict[str, Any] = {"temperature": 0.8, "top_p": None, "max_tokens": None}
_CHAT_SAMPLING: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0, "max_tokens": 8192}

OVERRIDABLE = ("temperature", "top_p", "top_k", "max_tokens", "stop", "seed")


@dataclass(frozen=True)
class SamplingOverrides:
    """Sampling values a user set explicitly (``None``: let the protocol decide). They win over any protocol."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        t, p, k, m = self.temperature, self.top_p, self.top_k, self.max_tokens
        checks = [
            (t is None or 0.0 <= t <= 2.0, f"--temperature must be in [0, 2] (got {t})"),
            (p is None or 0.0 < p <= 1.0, f"--top-p must be in (0, 1] (got {p})"),
            (k is None or k >= 1, f"--top-k must be at least 1 (got {k}); leave it out for no top-k limit"),
            (m is None or m >= 1, f"--max-tokens must be at least 1 (got {m})"),
            (self.stop is None or all(s for s in self.stop), f"--stop strings must be non-empty (got {self.stop!r})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def set_values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_params(cls, params: SamplingParams) -> SamplingOverrides:
        """A full ``SamplingParams`` given by a library caller: every value in it counts as set."""
        values = {name: getattr(params, name) for name in OVERRIDABLE}
        return cls(**values)


@dataclass(frozen=True)
class ResolvedSampling:
    """The params sent, and which values the protocol set and which the user overrode (for the manifest)."""

    params: SamplingParams
    from_protocol: dict[str, Any]
    overridden: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "sent": _plain({k: v for k, v in vars(self.params).items() if v is not None}),
            "set_by_protocol": _plain(self.from_protocol),
            "overridden": _plain(self.overridden),
        }


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: prompts, sampling defaults, extraction."""

    name: str
    description: str
    extract_program: Callable[[str], str | None]
    extract_test: Callable[[str], TestCase | None]

    def sampling_defaults(self, text_prompt: bool) -> dict[str, Any]:
        if self.name == "cure":
            return dict(_CURE_TEXT_SAMPLING if text_prompt else _CURE_CHAT_SAMPLING)
        return dict(_CHAT_SAMPLING)

    def coder_prompt(self, task: Task, template: PromptTemplate | None, text_prompt: bool) -> ChatMessages:
        if self.name != "cure":
            return coder_messages(task, template)
        raw = fill_placeholders(_raw_template(template, CURE_CODER_TEXT, "--coder-prompt"), problem=task.question)
        return _wrap(raw, text_prompt)

    def tester_prompt(
        self, task: Task, template: PromptTemplate | None, text_prompt: bool, show_examples: bool, k_case: int
    ) -> ChatMessages:
        if self.name != "cure":
            return tester_messages(task, show_examples, template)
        intro = cure_example_intro(task, k_case) if show_examples else " "
        raw_template = _raw_template(template, CURE_TESTER_TEXT, "--tester-prompt")
        return _wrap(fill_placeholders(raw_template, problem=task.question, example_intro=intro), text_prompt)

    def prompt_sha256(
        self, templates: tuple[PromptTemplate | None, PromptTemplate | None], text_prompt: tuple[bool, bool]
    ) -> str:
        """sha256 of the prompts as sent (placeholders unfilled); the chat protocol keeps its old hash."""
        if self.name != "cure":
            return prompt_hash(*templates)
        forms = [
            _wrap(_raw_template(templates[0], CURE_CODER_TEXT, "--coder-prompt"), text_prompt[0]),
            _wrap(_raw_template(templates[1], CURE_TESTER_TEXT, "--tester-prompt"), text_prompt[1]),
        ]
        canonical = json.dumps(["cure", [[list(m) for m in f] for f in forms]], ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _raw_template(template: PromptTemplate | None, default: str, flag: str) -> str:
    if template is None:
        return default
    if template.raw is None:
        raise ConfigError(
            f"{flag} {template.source}: --protocol cure sends one raw prompt string, so give a .txt template "
            "(the whole string, with {{problem}}); .json chat messages need --protocol chat"
        )
    return template.raw


def _wrap(raw: str, text_prompt: bool) -> ChatMessages:
    if text_prompt:
        return ((TEXT_ROLE, raw),)
    return (("system", CURE_API_SYSTEM), ("user", raw))


def cure_example_intro(task: Task, k_case: int) -> str:
    """Upstream's sentence presenting the public examples (shown only with --show-examples, as with no_example)."""
    n = min(k_case, len(task.example_tests))
    return examples_sentence(task, n) if n else " "


PROTOCOLS: dict[str, Protocol] = {
    "cure": Protocol(
        "cure",
        "the CURE authors' evaluation: raw prompt string, upstream sampling, strict ```python extraction",
        extract.extract_program_cure,
        extract.extract_test_cure,
    ),
    "chat": Protocol(
        "chat",
        "ours: chat template, our sampling defaults, lenient extraction after removing reasoning",
        extract.extract_program,
        extract.extract_test,
    ),
}


def get_protocol(name: str) -> Protocol:
    """The named protocol; an unknown name is a ConfigError naming --protocol and the choices."""
    protocol = PROTOCOLS.get((name or "").strip().lower())
    if protocol is None:
        raise ConfigError(f"--protocol {name!r} is not one of: {', '.join(PROTOCOLS)}")
    return protocol


def is_text_prompt(messages: ChatMessages) -> bool:
    return len(messages) == 1 and messages[0][0] == TEXT_ROLE


def resolve_sampling(protocol: Protocol, text_prompt: bool, overrides: SamplingOverrides) -> ResolvedSampling:
    """The protocol's values for this prompt form, with every explicitly set value on top."""
    from_protocol = protocol.sampling_defaults(text_prompt)
    overridden = overrides.set_values()
    values: dict[str, Any] = {**from_protocol, **overridden}
    params = SamplingParams(
        temperature=float(values["temperature"]),
        top_p=values.get("top_p"),
        max_tokens=values.get("max_tokens"),
        seed=values.get("seed"),
        top_k=values.get("top_k"),
        min_p=values.get("min_p"),
        stop=values.get("stop"),
    )
    return ResolvedSampling(params, {k: v for k, v in from_protocol.items() if k not in overridden}, overridden)
