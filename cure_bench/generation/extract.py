"""Program and unit-test extraction from raw model answers, under the two protocols.

Pure functions over strings: no file walking, no execution.

* ``cure`` (upstream's evaluation, reproduced): the program is the last match of a case-sensitive
  ```` ```python ... ``` ```` over the *whole* answer, reasoning included, and nothing else; the test pair is
  read over the whole answer too. A block drafted while thinking therefore counts, as it does upstream.
* ``chat`` (our lenient protocol): reasoning (``<think>...</think>``) is removed first, then the last
  non-empty ```` ```python ````/``py``/``python3`` block of any case, else the last fenced block of any kind.
  A fence's language tag never runs over a closing fence, so a prose mention of a ```` ```python``` ````
  fence cannot swallow the real block after it, and a one-line ```` ```python print(1)``` ```` is a program.
"""

from __future__ import annotations

import re

from cure_bench.generation.reasoning import strip_reasoning
from cure_bench.types import TestCase

__all__ = ["extract_program", "extract_program_cure", "extract_test", "extract_test_cure", "strip_reasoning"]

# upstream's rule: greedy-free match from the first "```python" to the next "```", case-sensitive
_CURE_PYTHON = re.compile(r"```python(.*?)```", re.DOTALL)

# chat: the tag is a whole word (python, python3, py), followed by spaces; the body runs to the next fence
_PYTHON_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)(?![\w.+-])[ \t]*(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)

_INPUT_FENCED = re.compile(r"\*\*Test Input:\*\*\s*```(.*?)```", re.DOTALL)
_OUTPUT_FENCED = re.compile(r"\*\*Test Output:\*\*\s*```(.*?)```", re.DOTALL)
_INPUT_PLAIN = re.compile(r"\*\*Test Input:\*\*\s*([\s\S]*?)(?=\*\*Test Output:\*\*)")
_OUTPUT_PLAIN = re.compile(r"\*\*Test Output:\*\*\s*([\s\S]*?)(?=\*\*Explanation:|\*\*Test Input:|$)")


def extract_program_cure(text: str) -> str | None:
    """Upstream's extraction: the last ```` ```python ```` match over the whole text, stripped; else None.

    An empty block gives the empty program (upstream runs it too), not None.
    """
    blocks: list[str] = _CURE_PYTHON.findall(text)
    return str(blocks[-1]).strip() if blocks else None


def extract_program(text: str) -> str | None:
    """The chat protocol's extraction: last non-empty python block of the answer, else any fenced block."""
    answer = strip_reasoning(text)
    for pattern in (_PYTHON_BLOCK, _ANY_BLOCK):
        blocks: list[str] = [str(b).strip() for b in pattern.findall(answer)]
        blocks = [b for b in blocks if b]
        if blocks:
            return blocks[-1]
    return None


def _clean_test_text(raw: str) -> str:
    """CURE's normalisation of an extracted test block: drop a 'plaintext' tag, unescape \\n, end with a newline."""
    text = raw.replace("plaintext\n", "").replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def extract_test_cure(text: str) -> TestCase | None:
    """The last **Test Input:** / **Test Output:** pair over the whole text (fenced first, then plain text).

    Returns None when either part is missing, as the reference scripts do; the caller drops and counts it.
    """
    if "**Test Input:**" not in text:
        return None
    test_input = _last_part(text, _INPUT_FENCED, _INPUT_PLAIN)
    test_output = _last_part(text, _OUTPUT_FENCED, _OUTPUT_PLAIN)
    if test_input is None or test_output is None:
        return None
    return TestCase(input=test_input, output=test_output)


def extract_test(text: str) -> TestCase | None:
    """The chat protocol's test extraction: upstream's rules over the answer with reasoning removed."""
    return extract_test_cure(strip_reasoning(text))


def _last_part(text: str, fenced: re.Pattern[str], plain: re.Pattern[str]) -> str | None:
    blocks = fenced.findall(text)
    if blocks:
        return _clean_test_text(blocks[-1].lstrip("\n"))
    loose = plain.findall(text)
    return _clean_test_text(loose[-1].strip()) if loose else None
