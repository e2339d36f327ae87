"""The two refinement prompts: the coder's repair prompt and the tester's test-revision prompt.

The coder sees the problem, its current program and up to F failing tests (input, the test's expected output,
what the program printed or how it failed); the tester sees the problem, one test that every current program
disagrees with, and what the programs did on its input. Only generated tests (and, with ``--feedback public``,
the task's public examples) ever reach a prompt: hidden tests decide the score and must never leak into
generation. The exact texts are in docs/refine.md.

With a raw-string prompt (``--protocol cure`` on a local engine) the text is framed like CURE's own coder and
tester prompts (``<|im_start|>... User: ... <|im_end|>\\n<|im_start|>Assistant: ``), so the model sees the
format it is evaluated with; over a chat API it is CURE's two-message payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cure_bench.generation.protocols import _wrap
from cure_bench.types import ChatMessages, Task, TestCase

STDERR_TAIL = 400
OUTPUT_CAP = 1000
MAX_OUTPUT_GROUPS = 5

CODER_FRAME = (
    "<|im_start|>You are a helpful assistant help user solve problems. <|im_end|>\n"
    "<|im_start|>User: {body} <|im_end|>\n<|im_start|>Assistant: "
)
TESTER_FRAME = (
    "<|im_start|>You are a helpful assistant help user generate test examples for coding tasks. <|im_end|>\n"
    "<|im_start|>User: {body} <|im_end|>\n<|im_start|>Assistant: "
)

TEST_FORMAT = (
    "**Test Input:**\n```input here```\n\n**Test Output:**\n```output here```\n\n**Explanation:**\n\nexplanation here."
)


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


@dataclass(frozen=True)
class OutputGroup:
    """Programs that did the same thing on a test's input: printed ``printed`` (None: did not finish)."""

    programs: int
    printed: str | None
    verdict: str

    def to_json(self) -> dict[str, str | int | None]:
        return {"programs": self.programs, "printed": self.printed, "verdict": self.verdict}


def _fence(text: str) -> str:
    return f"```\n{text[:OUTPUT_CAP]}\n```"


def _describe(f: Feedback) -> str:
    got = (
        f"Your program printed:\n{_fence(f.printed)}"
        if f.printed is not None
        else f"Your program did not finish ({f.verdict})."
    )
    tail = f"\nStderr (tail):\n```\n{f.stderr_tail[-STDERR_TAIL:]}\n```" if f.stderr_tail else ""
    return f"Input:\n{_fence(f.input)}\nExpected output:\n{_fence(f.expected)}\n{got}{tail}"


def _frame(body: str, frame: str, text_prompt: bool) -> ChatMessages:
    return _wrap(frame.format(body=body) if text_prompt else body, text_prompt)


def repair_prompt(task: Task, program: str, feedback: list[Feedback], round_no: int, text_prompt: bool) -> ChatMessages:
    """The messages asking the coder to fix ``program``; ``round_no`` keeps each round's request key distinct."""
    tests = "\n\n".join(f"Failing test {i + 1}:\n{_describe(f)}" for i, f in enumerate(feedback))
    body = (
        f"{task.question}\n\n"
        f"Here is a Python program written for this problem (repair round {round_no}):\n"
        f"```python\n{program}\n```\n\n"
        f"It fails these unit tests:\n\n{tests}\n\n"
        "Fix the program so that it solves the problem. It reads from standard input and writes to standard "
        "output. Answer with the complete corrected program in one ```python code block."
    )
    return _frame(body, CODER_FRAME, text_prompt)


def _group_line(g: OutputGroup) -> str:
    who = f"{g.programs} program{'s' if g.programs != 1 else ''}"
    return f"{who} printed:\n{_fence(g.printed)}" if g.printed is not None else f"{who} did not finish ({g.verdict})."


def revise_test_prompt(
    task: Task, test: TestCase, groups: Sequence[OutputGroup], round_no: int, text_prompt: bool
) -> ChatMessages:
    """The messages asking the tester to check (and correct) a test that no current program passes."""
    n = sum(g.programs for g in groups)
    shown = "\n\n".join(_group_line(g) for g in groups[:MAX_OUTPUT_GROUPS])
    more = len(groups) - MAX_OUTPUT_GROUPS
    rest = f"\n\n({more} more distinct outputs not shown.)" if more > 0 else ""
    body = (
        f"Given a coding task, your task is to check a unit test written for it (test revision round {round_no}).\n"
        f"This is the problem:\n{task.question}\n\n"
        f"This is the test:\n\n**Test Input:**\n{_fence(test.input)}\n\n**Test Output:**\n{_fence(test.output)}\n\n"
        f"None of the {n} candidate programs written for the problem passes it. On its input:\n\n{shown}{rest}\n\n"
        "Either the programs are wrong or the test is. Work out, step by step from the problem statement, the "
        "correct output for this input. If the test is wrong, correct it (you may also change the input so that "
        "you are sure of the output); if it is right, repeat it unchanged. Finally, you MUST put the test in the "
        f"following format:\n\n{TEST_FORMAT}\n"
    )
    return _frame(body, TESTER_FRAME, text_prompt)
