"""Where the response starts in an OpenRLHF ``query`` (prompt + response, decoded from tokens).

OpenRLHF (0.11) cuts prompts longer than its budget from the left, in tokens, then decodes the kept prompt
tokens plus the response tokens into ``query``; ``prompts[i]`` is still the whole original prompt. So the
query starts with a *suffix* of the prompt, possibly with a broken first character where the cut fell inside
a multi-byte token. Scoring the whole query would score prompt text: a python block in the surviving part of
the prompt would earn the response a reward it did not write (a reward hack handed to the policy).

The rules, in order (pure functions, tested on plain strings):

1. the query starts with the prompt: the response is the rest;
2. the longest suffix of the prompt that the query starts with (tolerating ``MAX_GARBLED`` broken characters
   at the cut), when at least ``MIN_OVERLAP`` characters (or the whole prompt) match;
3. the text after the last chat-template assistant marker (``<|im_start|>assistant``, Llama 3's header,
   ``[/INST]``...) in the query, when a decoding quirk (e.g. clean-up of spaces) broke rule 2;
4. otherwise the response is unknown (``None``): the caller gives reward 0 with a message, never the query.

With no prompt at all the query is taken as the response, after its last assistant marker if it has one.
"""

from __future__ import annotations

MIN_OVERLAP = 16
MAX_GARBLED = 4

# Assistant-turn openers of common chat templates (ChatML/Qwen, Llama 3, Llama 2/Mistral, Gemma, DeepSeek,
# Phi-3, Zephyr/TÜLU). The longest match wins at a position, so "<|im_start|>assistant\n" beats its prefix.
ASSISTANT_MARKERS = (
    "<|im_start|>assistant\n",
    "<|im_start|>assistant",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<|start_header_id|>assistant<|end_header_id|>",
    "<start_of_turn>model\n",
    "<｜Assistant｜>",
    "<|assistant|>\n",
    "<|assistant|>",
    "[/INST]",
)


def split_response(query: str, prompt: str | None) -> str | None:
    """The response part of ``query`` (see the module docstring for the rules); None when it cannot be found."""
    if not prompt:
        after = after_last_marker(query)
        return query if after is None else after
    if query.startswith(prompt):
        return query[len(prompt) :]
    overlap = prompt_suffix_overlap(query, prompt)
    if overlap is not None:
        return query[overlap:]
    return after_last_marker(query)


def prompt_suffix_overlap(query: str, prompt: str) -> int | None:
    """End (in ``query``) of the longest prompt suffix the query starts with, or None when none is long enough.

    A candidate end is found by locating the prompt's last ``MIN_OVERLAP`` characters in the query, so the
    work is a few C-level ``find``/``endswith`` calls, not a character loop. The candidate is kept when the
    query up to it, but for its first ``MAX_GARBLED`` characters (the cut token), is a suffix of the prompt.
    The largest such end wins: the whole surviving prompt is stripped.
    """
    tail = prompt[-MIN_OVERLAP:]
    best: int | None = None
    start = query.find(tail)
    while start != -1:
        end = start + len(tail)
        skip = min(MAX_GARBLED, start)
        if prompt.endswith(query[skip:end]) and (skip == 0 or end - skip >= MIN_OVERLAP):
            best = end
        start = query.find(tail, start + 1)
    return best


def after_last_marker(text: str) -> str | None:
    """The text after the last assistant marker in ``text`` (None without one)."""
    best_at, best_len = -1, 0
    for marker in ASSISTANT_MARKERS:
        at = text.rfind(marker)
        if at > best_at or (at == best_at and at != -1 and len(marker) > best_len):
            best_at, best_len = at, len(marker)
    if best_at == -1:
        return None
    return text[best_at + best_len :]
