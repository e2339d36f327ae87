"""Finding the response in an OpenRLHF query, built the way OpenRLHF 0.11 builds it: the prompt's tokens cut
from the left to fit the budget, then kept prompt tokens + response tokens decoded into one string."""

from __future__ import annotations

import pytest

from cure_bench.serve.query_split import after_last_marker, prompt_suffix_overlap, split_response

CHATML_PROMPT = (
    "<|im_start|>system\nYou are a coder. Here is an example of a solution:\n```python\nprint(int(input()) * 2)\n```\n"
    "Ünïcödé naïveté — façade.<|im_end|>\n<|im_start|>user\nRead a and b and print a+b.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def openrlhf_query(prompt: str, response: str, keep_bytes: int) -> str:
    """What OpenRLHF's SingleTurnAgentExecutor hands to the reward server, with a byte-level tokenizer:
    ``prompt_token_ids[-max_prompt_length:]`` (here: bytes), + response, decoded with replacement characters
    where the cut fell inside a multi-byte character."""
    kept = prompt.encode("utf-8")[-keep_bytes:]
    return (kept + response.encode("utf-8")).decode("utf-8", errors="replace")


def test_untruncated_query_strips_the_prompt() -> None:
    assert split_response(CHATML_PROMPT + "answer", CHATML_PROMPT) == "answer"


@pytest.mark.parametrize("keep", [40, 60, 95, 101, 150, 170])
def test_left_truncated_prompt_never_leaks_into_the_response(keep: int) -> None:
    response = "No idea."
    query = openrlhf_query(CHATML_PROMPT, response, keep)
    assert not query.startswith(CHATML_PROMPT)
    assert split_response(query, CHATML_PROMPT) == response


def test_cut_inside_a_multibyte_character_is_tolerated() -> None:
    start = CHATML_PROMPT.encode("utf-8").index("ï".encode()) + 1  # half of a two-byte character
    keep = len(CHATML_PROMPT.encode("utf-8")) - start
    query = openrlhf_query(CHATML_PROMPT, "```python\nprint(1)\n```", keep)
    assert query.startswith("\ufffd")
    assert split_response(query, CHATML_PROMPT) == "```python\nprint(1)\n```"


def test_decoding_that_changed_the_prompt_falls_back_to_the_assistant_marker() -> None:
    # e.g. clean_up_tokenization_spaces turned " ." into "." inside the kept prompt: no suffix matches
    prompt = "<|im_start|>user\nRead n , print 2n .<|im_end|>\n<|im_start|>assistant\n"
    query = "user\nRead n, print 2n.<|im_end|>\n<|im_start|>assistant\nprint(2 * int(input()))<|im_end|>"
    assert prompt_suffix_overlap(query, prompt) is None
    assert split_response(query, prompt) == "print(2 * int(input()))<|im_end|>"


def test_unknown_response_is_none_never_the_query() -> None:
    prompt = "Plain prompt without any chat template, long enough to need a real overlap check."
    assert split_response("entirely different text ```python\nprint(1)\n```", prompt) is None


def test_longest_overlap_wins_and_repeats_in_the_response_do_not_fool_it() -> None:
    prompt = "x" * 10 + "Solve the task below and answer in python." + "\n"
    tail = prompt[-30:]
    query = tail + "I repeat: " + prompt[-20:] + " done"
    assert split_response(query, prompt) == "I repeat: " + prompt[-20:] + " done"


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("<|start_header_id|>assistant<|end_header_id|>\n\nhi", "hi"),
        ("[INST] q [/INST] a", " a"),
        ("<start_of_turn>user\nq<end_of_turn>\n<start_of_turn>model\nA", "A"),
        ("<｜User｜>q<｜Assistant｜>A", "A"),
        ("<|im_start|>assistant\none<|im_end|><|im_start|>assistant\ntwo", "two"),
        ("no marker", None),
    ],
)
def test_assistant_markers(text: str, after: str | None) -> None:
    assert after_last_marker(text) == after


def test_without_a_prompt_the_query_is_the_response_after_any_marker() -> None:
    assert split_response("just an answer", None) == "just an answer"
    assert split_response("<|im_start|>assistant\nanswer", "") == "answer"
