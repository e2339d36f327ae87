"""The record one sample task is written as, before its expected outputs exist.

A ``SampleSpec`` holds everything a person writes by hand: statement, example and hidden *inputs*,
a trusted reference solution, and tempting wrong solutions. ``build_sample.py`` runs the reference
to produce the outputs, so no expected output is ever typed by hand.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SampleSpec:
    slug: str
    difficulty: str  # "easy" | "medium" | "hard"
    topic: str
    question: str
    examples: list[str]
    hidden: list[str]
    reference: str
    wrong: list[str] = field(default_factory=list)
    time_limit: float = 1.0

    @property
    def task_id(self) -> str:
        return f"sample/{self.slug}"


def code(text: str) -> str:
    """Dedent a program written inline and end it with exactly one newline."""
    return textwrap.dedent(text).strip("\n") + "\n"


def prose(text: str) -> str:
    """Dedent a problem statement."""
    return textwrap.dedent(text).strip("\n") + "\n"


def lines(*rows: object) -> str:
    """An input file: one row per line, list/tuple rows space-joined, trailing newline."""
    out = []
    for row in rows:
        out.append(" ".join(str(x) for x in row) if isinstance(row, (list, tuple)) else str(row))
    return "\n".join(out) + "\n"
