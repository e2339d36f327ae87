"""The two protocols' prompts, sampling and extraction (no server, no sandbox).

The expected prompt strings below are typed out from upstream's evaluation_config.py templates as rendered
by jinja2 (not derived from our constants), so a drift in either direction fails here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cure_bench.errors import ConfigError
from cure_bench.generation.extract import extract_program, extract_program_cure, extract_test, extract_test_cure
from cure_bench.generation.prompts import load_template
from cure_bench.generation.protocols import (
    CURE_STOP,
    SamplingOverrides,
    get_protocol,
    resolve_sampling,
)
from cure_bench.types import SamplingParams, Task, TestCase

CURE = get_protocol("cure")
CHAT = get_protocol("chat")

TASK = Task("t1", "Read n, print n+1.", 1.0, [TestCase("1\n", "2\n"), TestCase("5\n", "6\n")], [TestCase("2\n", "3\n")])

EXPECTED_CODER = (
    "<|im_start|>You are a helpful assistant help user solve problems. <|im_end|>\n<|im_start|>User: You need to "
    "think first then write python script. You should use input() to input and print() to output in your script. "
    "Your code should output the results based on the input read in, rather than generating the given test "
    "example.\nThis is the problem:\nRead n, print n+1. <|im_end|>\n<|im_start|>Assistant: "
)
EXPECTED_TESTER_HEAD = (
    "<|im_start|>You are a helpful assistant help user generate test examples for coding tasks. <|im_end|>\n"
    "<|im_start|>User: Given a coding task, instead of providing the final script, your task is to generate a new "
    "test example (both input, output and explanation).\nThis is the problem:\nRead n, print n+1.\n\n \nYou need to "
    "provide a new test example. A good test example should be completely accurate and conform to the problem\u2019s "
    "format requirements, "
)
EXPECTED_TESTER_TAIL = (
    "you MUST put your final test example in the following format:\n\n**Test Input:**\n```input here```\n\n"
    "**Test Output:**\n```output here```\n\n**Explanation:**\n\nexplanation here.\n <|im_end|>\n<|im_start|>Assistant: "
)


# -- extraction ----------------------------------------------------------------------------------------------------

PROSE_THEN_CODE = "Wrap it in a ```python``` fence like this:\n```python\nprint(2)\n```\n"
CASES = [
    # (answer, cure program, chat program)
    ("```python\nprint(1)\n```", "print(1)", "print(1)"),
    ("a\n```python\nprint(1)\n```\nb\n```python\nprint(2)\n```", "print(2)", "print(2)"),
    (PROSE_THEN_CODE, "print(2)", "print(2)"),
    ("```python print(1)```", "print(1)", "print(1)"),
    ("```Python\nprint(1)\n```", None, "print(1)"),
    ("```py\nprint(1)\n```", None, "print(1)"),
    ("```\nprint(1)\n```", None, "print(1)"),
    ("```python3\nprint(1)\n```", "3\nprint(1)", "print(1)"),  # upstream's regex keeps the "3"
    ("<think>```python\nprint('draft')\n```</think>no code here", "print('draft')", None),  # only while thinking
    ("<think>let me try\n```python\nprint(1)\n```\nhmm, more", "print(1)", None),  # cut off inside <think>
    ("<think>```python\nprint(1)\n```</think>\n```python\nprint(2)\n```", "print(2)", "print(2)"),
    ("```python\nprint(2)\n```\n<think>```python\nprint(9)\n```</think>", "print(9)", "print(2)"),
    ("```python\n\n```", "", None),  # upstream runs the empty program
    ("print(1)", None, None),
]


@pytest.mark.parametrize(("answer", "cure", "chat"), CASES)
def test_program_extraction_under_each_protocol(answer: str, cure: str | None, chat: str | None) -> None:
    assert extract_program_cure(answer) == cure
    assert extract_program(answer) == chat
    assert CURE.extract_program(answer) == cure and CHAT.extract_program(answer) == chat


def test_chat_regex_no_longer_runs_over_a_closing_fence() -> None:
    """The bug: the tag pattern ate "``` fence ...", so the prose's fence opened a block that swallowed the code."""
    text = "I will use a ```python``` block, then explain.\nHere:\n```python\nx = 3\nprint(x)\n```\nDone."
    assert extract_program(text) == "x = 3\nprint(x)"
    assert extract_program("```python\nprint(5)\n```\nThat was a ```python``` block.") == "print(5)"


TEST_ANSWER = "**Test Input:**\n```\n4\n```\n\n**Test Output:**\n```\n5\n```\n\n**Explanation:**\nplus one."


def test_test_extraction_reads_the_whole_text_under_cure() -> None:
    inside = f"<think>{TEST_ANSWER}</think>I am done."
    assert extract_test_cure(inside) == TestCase("4\n", "5\n")
    assert extract_test(inside) is None  # chat reads the answer only
    cut_off = f"<think>drafting\n{TEST_ANSWER}"
    assert extract_test_cure(cut_off) == TestCase("4\n", "5\n") and extract_test(cut_off) is None
    assert extract_test_cure(TEST_ANSWER) == extract_test(TEST_ANSWER) == TestCase("4\n", "5\n")
    assert extract_test_cure("**Test Input:**\n```\n1\n```") is None


# -- prompts ----------------------------------------------------------------------------------------------------


def test_cure_prompts_are_upstreams_raw_strings_for_text_engines() -> None:
    coder = CURE.coder_prompt(TASK, None, text_prompt=True)
    assert coder == (("text", EXPECTED_CODER),)
    ((role, tester),) = CURE.tester_prompt(TASK, None, True, show_examples=False, k_case=16)
    assert role == "text" and tester.startswith(EXPECTED_TESTER_HEAD) and tester.endswith(EXPECTED_TESTER_TAIL)
    assert "If you're unsure" in tester and "**Test Input:**" in tester


def test_cure_prompt_over_a_chat_api_is_upstreams_payload() -> None:
    assert CURE.coder_prompt(TASK, None, text_prompt=False) == (
        ("system", "You are a helpful coding assistant."),
        ("user", EXPECTED_CODER),
    )


def test_cure_example_intro_with_show_examples() -> None:
    ((_, tester),) = CURE.tester_prompt(TASK, None, True, show_examples=True, k_case=16)
    assert (
        "\n\nWe already have 2 test samples:\n The inputs are, respectively, '1\\n', '5\\n'. The corresponding "
        "outputs are '2\\n', '6\\n'.\nYou need to provide" in tester
    )
    one = Task("t", "q", 1.0, [TestCase("1\n", "2\n")], [])
    ((_, tester),) = CURE.tester_prompt(one, None, True, show_examples=True, k_case=16)
    assert "\n\nWe already have one test sample:\n Its input is '1\\n'. Its output is '2\\n'.\nYou need" in tester


def test_chat_protocol_keeps_our_chat_messages() -> None:
    coder = CHAT.coder_prompt(TASK, None, text_prompt=True)
    assert [role for role, _ in coder] == ["system", "user"] and "rather than generating" not in coder[1][1]


def test_templates_under_cure(tmp_path: Path) -> None:
    txt = tmp_path / "coder.txt"
    txt.write_text("RAW {{problem}} END", encoding="utf-8")
    template = load_template(txt, "coder", "--coder-prompt")
    assert CURE.coder_prompt(TASK, template, True) == (("text", "RAW Read n, print n+1. END"),)
    js = tmp_path / "coder.json"
    js.write_text('[{"role": "user", "content": "{{problem}}"}]', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--coder-prompt .*coder\.json.*--protocol chat"):
        CURE.coder_prompt(TASK, load_template(js, "coder", "--coder-prompt"), True)


def test_prompt_hash_reflects_the_prompt_sent() -> None:
    text, chat = CURE.prompt_sha256((None, None), (True, True)), CURE.prompt_sha256((None, None), (False, False))
    assert text != chat != CHAT.prompt_sha256((None, None), (False, False))


def test_unknown_protocol_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="--protocol 'paper' is not one of: cure, chat"):
        get_protocol("paper")


# -- sampling ----------------------------------------------------------------------------------------------------


def test_cure_sampling_per_prompt_form() -> None:
    local = resolve_sampling(CURE, True, SamplingOverrides())
    assert local.params == SamplingParams(
        temperature=0.8, top_p=0.95, top_k=40, min_p=0.0, max_tokens=10_000, stop=CURE_STOP
    )
    assert CURE_STOP == ("</answer>", "User:", "Human:", "Assistant:", "<|im_end|>", "<|endoftext|>")
    api = resolve_sampling(CURE, False, SamplingOverrides())
    assert api.params == SamplingParams(temperature=0.8, top_p=None, max_tokens=None)
    assert resolve_sampling(CHAT, True, SamplingOverrides()).params == SamplingParams()


def test_overrides_win_and_are_recorded() -> None:
    resolved = resolve_sampling(CURE, True, SamplingOverrides(temperature=0.2, top_k=7, stop=("X",), max_tokens=50))
    p = resolved.params
    assert (p.temperature, p.top_k, p.stop, p.max_tokens, p.top_p, p.min_p) == (0.2, 7, ("X",), 50, 0.95, 0.0)
    described = resolved.describe()
    assert described["overridden"] == {"temperature": 0.2, "top_k": 7, "max_tokens": 50, "stop": ["X"]}
    assert described["set_by_protocol"] == {"top_p": 0.95, "min_p": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [({"top_k": 0}, "--top-k"), ({"top_k": -1}, "--top-k"), ({"temperature": 3.0}, "--temperature"),
     ({"top_p": 0.0}, "--top-p"), ({"max_tokens": 0}, "--max-tokens"), ({"stop": ("",)}, "--stop")],
)  # fmt: skip
def test_bad_overrides_name_the_flag(kwargs: dict, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        SamplingOverrides(**kwargs)


def test_old_cache_keys_survive_the_new_sampling_fields() -> None:
    """Fields added later (top_k, min_p, stop) stay out of the key while unset: chat-protocol caches still hit."""
    import hashlib
    import json

    from cure_bench.generation.cache import GenerationCache

    messages = (("user", "hi"),)
    old_payload = {
        "backend": "openai",
        "model": "m",
        "messages": [["user", "hi"]],
        "params": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 8192, "seed": None},
    }
    canonical = json.dumps(old_payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert GenerationCache.request_key("openai", "m", messages, SamplingParams()) == (
        hashlib.sha256(canonical.encode()).hexdigest()
    )
    assert GenerationCache.request_key("openai", "m", messages, SamplingParams(top_k=40)) != (
        hashlib.sha256(canonical.encode()).hexdigest()
    )


# -- held out: upstream's own templates, rendered by jinja2 (needs a checkout of github:Gen-Verse/CURE) ------------


@pytest.mark.skipif(not os.environ.get("CURE_UPSTREAM_REPO"), reason="set CURE_UPSTREAM_REPO to a CURE checkout")
def test_prompts_equal_upstream_rendering() -> None:
    jinja2 = pytest.importorskip("jinja2")
    config = Path(os.environ["CURE_UPSTREAM_REPO"]) / "evaluation" / "evaluation_config.py"
    names: dict = {}
    exec(compile(config.read_text(encoding="utf-8"), str(config), "exec"), names)  # plain assignments only
    coder = jinja2.Template(names["system_prompts"]).render(
        language="python", special_requirements=names["special_requirements"], problem=TASK.question
    )
    tester = jinja2.Template(names["system_case_prompts"]).render(problem=TASK.question, example_intro=" ")
    assert CURE.coder_prompt(TASK, None, True)[0][1] == coder
    assert CURE.tester_prompt(TASK, None, True, False, 16)[0][1] == tester


def _upstream_functions(names: tuple[str, ...]) -> dict:
    """The named top-level functions of upstream's eval.py, loaded from the checkout (eval.py itself imports
    vLLM and runs at import, so only these pure functions are compiled, with ``re`` in their globals)."""
    import ast
    import re

    path = Path(os.environ["CURE_UPSTREAM_REPO"]) / "evaluation" / "eval.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    namespace: dict = {"re": re}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), namespace)
    return {name: namespace[name] for name in names}


TEST_ANSWERS = [
    TEST_ANSWER,
    f"<think>{TEST_ANSWER}</think>done",
    "**Test Input:**\n```plaintext\n2\\n5\n```\n**Test Output:**\n```\n7```",
    "**Test Input:**\n4 5\n**Test Output:**\n9\n**Explanation:** add",
    "**Test Input:**\n```\n1\n```\n**Test Output:**\n```\n1\n```\n**Test Input:**\n```\n2\n```\n**Test Output:**\n3",
    "**Test Input:** only",
    "**Test Output:**\n```\n1\n```",
    "nothing here",
    "",
]


@pytest.mark.skipif(not os.environ.get("CURE_UPSTREAM_REPO"), reason="set CURE_UPSTREAM_REPO to a CURE checkout")
def test_cure_extraction_equals_upstreams_own_functions() -> None:
    up = _upstream_functions(("extract_code", "modify", "extract_test_cases"))
    for answer, _, _ in CASES:
        theirs = up["extract_code"](answer)
        ours = extract_program_cure(answer)
        if theirs == "We can not extract the code in the output. ":
            assert ours is None, answer
        else:
            assert ours == theirs, answer
    for answer in TEST_ANSWERS + [a for a, _, _ in CASES]:
        inputs, outputs, _ = up["extract_test_cases"](answer)
        expected = TestCase(inputs[0], outputs[0]) if inputs else None
        assert extract_test_cure(answer) == expected, answer
