"""The repair prompt: the problem, the current program, and the failing generated tests (never hidden ones).

Follows the agentic use of a tester in CURE (arXiv 2506.03136v2: "test-time scaling and agentic coding", abstract):
the coder sees the unit tests its program fails and rewrites it. Only generated tests (and, on request, the
task's public examples) feed the prompt: hidden tests decide the score and must never leak into generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from cure_bench.generation.protocols import _wrap
from cure_bench.types import ChatMessages, Task

STDERR_TAIL = 400
OUTPUT_CAP = 1000


@dataclass(frozen=True)
class Feedback:
    """One failing test as the coder sees it: input, expected output, and what the program did."""

    input: str
    expected: str
    printed: str | None  # stdout when it finished; None when it did not
    verdict: str
    stderr_tail: str = ""
    source: str = "generated"  # or "public"

    def to_json(self) -> dict[str, str | None]:
        return {"input": self.input, "expected": self.expected, "printed": self.printed, "verdict": self.verdict,
                "stderr_tail": self.stderr_tail, "source": self.source}  # fmt: skip


def _describe(f: Feedback) -> str:
    got = (
        f"Your program printed:\n```\n{(f.printed or '')[:OUTPUT_CAP]}\n```"
        if f.printed is not None
        else f"Your program did not finish ({f.verdict})."
    )
    tail = f"\nStderr (tail):\n```\n{f.stderr_tail[-STDERR_TAIL:]}\n```" if f.stderr_tail else ""
    return f"Input:\n```\n{f.input}\n```\nExpected output:\n```\n{f.expected}\n```\n{got}{tail}"


def repair_prompt(task: Task, program: str, feedback: list[Feedback], round_no: int, text_prompt: bool) -> ChatMessages:
    """The messages asking the coder to fix ``program``; ``round_no`` keeps each round's request key distinct."""
    tests = "\n\n".join(f"Failing test {i + 1}:\n{_describe(f)}" for i, f in enumerate(feedback))
    raw = (
        f"{task.question}\n\n"
        f"Here is a Python program written for this problem (repair round {round_no}):\n"
        f"```python\n{program}\n```\n\n"
        f"It fails these unit tests:\n\n{tests}\n\n"
        "Fix the program so that it solves the problem. It reads from standard input and writes to standard "
        "output. Answer with the complete corrected program in one ```python code block."
    )
    return _wrap(raw, text_prompt)
