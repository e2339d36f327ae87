"""Three tasks with scripted coder/tester answers whose verdict tables are known by hand.

Used by the end-to-end bench tests: the fake OpenAI server answers with these texts, the real sandbox judges
them, and the metrics must equal the numbers worked out in ``EXPECTED`` (see the comments there).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any


def _code(body: str) -> str:
    return f"Let me think about it.\n```python\n{body}\n```\n"


def _test(inp: str, out: str) -> str:
    return (
        f"Reasoning...\n**Test Input:**\n```\n{inp}\n```\n\n**Test Output:**\n```\n{out}\n```\n\n**Explanation:**\nok."
    )


TASKS: list[dict[str, Any]] = [
    {
        "task_id": "A",
        "question": "TASK-A: read two integers a and b on one line and print a+b.",
        "test_time_limit": 2,
        "example_input": ["1 1\n"],
        "example_output": ["2\n"],
        "test_input": ["1 2\n", "5 5\n"],
        "test_output": ["3\n", "10\n"],
    },
    {
        "task_id": "B",
        "question": "TASK-B: read n integers on one line and print the largest.",
        "test_time_limit": 2,
        "example_input": ["1 2\n"],
        "example_output": ["2\n"],
        "test_input": ["3 1 2\n", "7 9 8\n", "-1 -5 -3\n"],
        "test_output": ["3\n", "9\n", "-1\n"],
    },
    {
        "task_id": "C",
        "question": "TASK-C: read n and print 2*n.",
        "test_time_limit": 2,
        "example_input": ["1\n"],
        "example_output": ["2\n"],
        "test_input": ["3\n", "0\n"],
        "test_output": ["6\n", "0\n"],
    },
]

ADD = "a, b = map(int, input().split())\nprint(a + b)"
SUB = "a, b = map(int, input().split())\nprint(a - b)"
MIN = "print(min(map(int, input().split())))"

CODE_ANSWERS = {
    # A: P0, P1 correct; P2 wrong (a-b); P3 has no code block.
    "A": [
        _code(ADD),
        _code("import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)"),
        _code(SUB),
        "no idea",
    ],
    # B: every program prints the minimum: no correct program.
    "B": [_code(MIN)] * 4,
    # C: P0 n*n (passes hidden 0->0 only), P1/P2 correct, P3 n+3 (passes hidden 3->6 only).
    "C": [_code("n = int(input())\nprint(n * n)"), _code("print(2 * int(input()))"), _code("n=int(input());print(n+n)"),
          _code("print(int(input()) + 3)")],
}  # fmt: skip

TEST_ANSWERS = {
    # A: T0 (2 3 -> 5) correct, T1 (2 3 -> 6) wrong, an unparsable answer (dropped), T2 (0 0 -> 0) correct.
    "A": [_test("2 3", "5"), _test("2 3", "6"), "I cannot write a test.", _test("0 0", "0")],
    # B: two parsable tests, two dropped.
    "B": [_test("4 2", "4"), "nothing", _test("1 1", "1"), "**Test Input:** only"],
    # C: T0 (2 -> 4), T1 (3 -> 6), both correct; two dropped.
    "C": [_test("2", "4"), _test("3", "6"), "", "no"],
}

# Hand-computed from the tables above, pooled over tasks (B has no correct program, so it only counts for
# the code metrics and BoN):
#   code_acc = (2 + 0 + 2) / 12; code_accumulate_acc = (4 + 0 + 6) / (8 + 12 + 8)
#   unit_test_acc = (2 + 2) / (3 + 2); unit_test_accumulate_acc = (4 + 4) / (6 + 4)
#   p01: A: P2 passes T2 only, P3 nothing -> 1/4; C: P0 passes T0, P3 passes T1 -> 2/4; pooled 3/8
#   p00: A only: P2, P3 against T1 -> 0/2
#   BoN 4x1: A picks P0 (right); B P0 (wrong); C: P0..P2 tie on T0 -> P0 (wrong, 1/2 hidden) -> acc 1/3, acc. 1.5/3
#   BoN 4x4: A P0 (2 passes) right; C P1 (2 passes) right -> 2/3, 2/3;  BoN 2x2: A P0, C P1 -> 2/3, 2/3
# Every task has a parsable generated test, so --protocol cure (the default) leaves none out; its BoN accumulate
# pools the picked programs' hidden cells (A 2, B 3, C 2 hidden tests):
#   4x1: A P0 2 of 2, B P0 0 of 3, C P0 1 of 2 -> 3/7;  4x4: 2 + 0 + 2 -> 4/7;  2x2: the same picks -> 4/7
# while --protocol chat averages the per-task shares (EXPECTED_CHAT): 4x1 (1 + 0 + 1/2) / 3, 4x4 and 2x2 2/3.
EXPECTED_CHAT = {
    "code_acc": 4 / 12,
    "code_accumulate_acc": 10 / 28,
    "unit_test_acc": 4 / 5,
    "unit_test_accumulate_acc": 8 / 10,
    "p01": 3 / 8,
    "p00": 0.0,
    "bon": {
        "4x1": {"acc": 1 / 3, "accumulate_acc": 1.5 / 3},
        "4x4": {"acc": 2 / 3, "accumulate_acc": 2 / 3},
        "2x2": {"acc": 2 / 3, "accumulate_acc": 2 / 3},
    },
    "pass@1": (0.5 + 0.0 + 0.5) / 3,
}
EXPECTED = {
    **EXPECTED_CHAT,
    "bon": {
        "4x1": {"acc": 1 / 3, "accumulate_acc": 3 / 7},
        "4x4": {"acc": 2 / 3, "accumulate_acc": 4 / 7},
        "2x2": {"acc": 2 / 3, "accumulate_acc": 4 / 7},
    },
}


def write_task_file(path: Path) -> Path:
    path.write_text("\n".join(json.dumps(t) for t in TASKS) + "\n", encoding="utf-8")
    return path


class ScriptedResponder:
    """Answers coder prompts from CODE_ANSWERS and tester prompts from TEST_ANSWERS, by sample order.

    A counter per (role, task) continues across requests, so a run that asks for 2 samples then 2 more gets
    answers 0-1 then 2-3, and a resumed run gets the answers it has not seen yet.
    """

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        user = messages[-1]["content"]
        task = re.search(r"TASK-([A-Z])", user)
        if task is None:
            return ["no task"] * n
        role = "tester" if "**Test Input:**" in user else "coder"
        pool = (TEST_ANSWERS if role == "tester" else CODE_ANSWERS)[task.group(1)]
        with self._lock:
            start = self._next.get((role, task.group(1)), 0)
            self._next[(role, task.group(1))] = start + n
        return [pool[(start + i) % len(pool)] for i in range(n)]
