"""Separate a reasoning model's thinking from its answer.

Backends keep the raw text (thinking included) so nothing is lost; extraction reads the answer only,
because a ```python block or a ``**Test Input:**`` written while thinking is a draft, not the answer.
"""

from __future__ import annotations

import re

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


def strip_reasoning(text: str) -> str:
    """The answer part of ``text``: drop every ``<think>...</think>`` block.

    Two shapes of unbalanced tags are common and handled:
    - the chat template opens ``<think>`` inside the prompt (Qwen3, DeepSeek-R1), so the output has a
      ``</think>`` with no opening: everything up to the last ``</think>`` is thinking;
    - the model ran out of tokens while thinking: a leading ``<think>`` never closed means there is
      no answer at all, so the result is empty.
    """
    out = _BLOCK.sub("", text)
    if THINK_CLOSE in out:
        out = out.rsplit(THINK_CLOSE, 1)[1]
    if out.lstrip().startswith(THINK_OPEN):
        return ""
    return out.strip()


def join_reasoning(reasoning: str | None, content: str | None) -> str:
    """Raw text for a server that sends thinking in a separate ``reasoning_content`` field.

    Wrapping it in ``<think>`` tags keeps the raw text complete while ``strip_reasoning`` still
    returns exactly ``content``.
    """
    body = content or ""
    if not reasoning:
        return body
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{body}"
