"""Program and unit-test extraction from raw model answers, with the CURE reference rules.

Pure functions over strings: no file walking, no execution. Reasoning (``<think>...</think>``) is removed
first so a code block drafted while thinking is never taken for the answer.
"""

from __future__ import annotations

import re

from cure_bench.generation.reasoning import strip_reasoning
from cure_bench.types import TestCase

__all__ = ["extract_program", "extract_test", "strip_reasoning"]

_PYTHON_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)\b[^\n]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)

_INPUT_FENCED = re.compile(r"\*\*Test Input:\*\*\s*```(.*?)```", re.DOTALL)
_OUTPUT_FENCED = re.compile(r"\*\*Test Output:\*\*\s*```(.*?)```", re.DOTALL)
_INPUT_PLAIN = re.compile(r"\*\*Test Input:\*\*\s*([\s\S]*?)(?=\*\*Test Output:\*\*)")
_OUTPUT_PLAIN = re.compile(r"\*\*Test Output:\*\*\s*([\s\S]*?)(?=\*\*Explanation:|\*\*Test Input:|$)")


def extract_program(text: str) -> str | None:
    """The last ```python block of the answer; else the last fenced block of any kind; else None."""
    answer = strip_reasoning(text)
    for pattern in (_PYTHON_BLOCK, _ANY_BLOCK):
        blocks = pattern.findall(answer)
        if blocks:
            program = blocks[-1].strip()
            return program or None
    return None


def _clean_test_text(raw: str) -> str:
    """CURE's normalisation of an extracted test block: drop a 'plaintext' tag, unescape \\n, end with a newline."""
    text = raw.replace("plaintext\n", "").replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def extract_test(text: str) -> TestCase | None:
    """The last **Test Input:** / **Test Output:** pair (fenced first, then CURE's plain-text fallback).

    Returns None when either part is missing, as the reference scripts do; the caller drops and counts it.
    """
    answer = strip_reasoning(text)
    if "**Test Input:**" not in answer:
        return None
    fenced_in = _INPUT_FENCED.findall(answer)
    if fenced_in:
        test_input = _clean_test_text(fenced_in[-1].lstrip("\n"))
    else:
        plain_in = _INPUT_PLAIN.findall(answer)
        if not plain_in:
            return None
        test_input = _clean_test_text(plain_in[-1].strip())
    fenced_out = _OUTPUT_FENCED.findall(answer)
    if fenced_out:
        test_output = _clean_test_text(fenced_out[-1].lstrip("\n"))
    else:
        plain_out = _OUTPUT_PLAIN.findall(answer)
        if not plain_out:
            return None
        test_output = _clean_test_text(plain_out[-1].strip())
    return TestCase(input=test_input, output=test_output)
