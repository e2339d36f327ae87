"""The scripted coder and tester behind the `cure refine` tests: two tasks, their answers, and the repairs.

Round 0 (k_code 2, k_case 2). X: P0 n*n passes both generated tests (2->4, 0->0) yet is wrong on hidden, so it
is never repaired; P1 n+1 fails both. Y: P0 a+b is right, but the wrong test (2 3 -> 6) fails it; P1 a-b fails it.
Repairs, by the program shown: n+1 -> 2n (fixed); a+b -> a+b+1 (broken: passes 2 3 -> 6, fails 0 0 -> 0);
a-b -> a+b (fixed); a+b+1 -> a+b (fixed again). The tester, asked to revise a test, answers REVISION's test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.helpers.scripted_tasks import _code, _test

KEY = "sk-test"
TWICE = "print(2 * int(input()))"
SQUARE = "n = int(input())\nprint(n * n)"
PLUS1 = "print(int(input()) + 1)"
ADD = "a, b = map(int, input().split())\nprint(a + b)"
ADD1 = "a, b = map(int, input().split())\nprint(a + b + 1)"
SUB = "a, b = map(int, input().split())\nprint(a - b)"

TASKS = [
    {"task_id": "X", "question": "TASK-X: read n and print 2*n.", "test_time_limit": 2,
     "example_input": ["1\n"], "example_output": ["2\n"],
     "test_input": ["12345\n", "777\n"], "test_output": ["24690\n", "1554\n"]},
    {"task_id": "Y", "question": "TASK-Y: read a and b and print a+b.", "test_time_limit": 2,
     "example_input": ["1 1\n"], "example_output": ["2\n"],
     "test_input": ["1001 2002\n", "4444 5555\n"], "test_output": ["3003\n", "9999\n"]},
]  # fmt: skip
HIDDEN_STRINGS = ["12345", "24690", "1554", "1001 2002", "3003", "4444 5555", "9999"]

CODE = {"X": [_code(SQUARE), _code(PLUS1)], "Y": [_code(ADD), _code(SUB)]}
TESTS = {"X": [_test("2", "4"), _test("0", "0")], "Y": [_test("2 3", "6"), _test("0 0", "0")]}
REPAIR = {PLUS1: TWICE, ADD: ADD1, SUB: ADD, ADD1: ADD}
REVISION = {"Y": _test("2 3", "5")}

REPAIR_MARK = "repair round"
REVISION_MARK = "test revision round"


class Responder:
    """Answers coder, tester, repair and test-revision prompts; keeps every repair and revision it gave."""

    def __init__(self) -> None:
        self.repair_answers: list[str] = []
        self.revision_answers: list[str] = []

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        user = messages[-1]["content"]
        task = re.search(r"TASK-([A-Z])", user)
        assert task is not None
        if REVISION_MARK in user:
            answer = REVISION[task.group(1)]
            self.revision_answers += [answer] * n
            return [answer] * n
        if REPAIR_MARK in user:
            shown = re.search(r"```python\n(.*?)\n```", user, re.S)
            assert shown is not None
            answer = _code(REPAIR[shown.group(1)])
            self.repair_answers += [answer] * n
            return [answer] * n
        pool = (TESTS if "**Test Input:**" in user else CODE)[task.group(1)]
        return [pool[i % len(pool)] for i in range(n)]


def write_tasks(path: Path) -> Path:
    path.write_text("\n".join(json.dumps(t) for t in TASKS) + "\n", encoding="utf-8")
    return path


def refine_args(srv: Any, tasks: Path, out: Path, *extra: str) -> list[str]:
    return ["refine", "--model", "fake", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
            "--k-code", "2", "--k-case", "2", "--bon", "2x2", "-o", str(out), "--workers", "2", "--json",
            *extra]  # fmt: skip


def words(text: str) -> int:
    """Tokens as the scripted server counts them (whitespace words)."""
    return len(text.split())


def kind(request: Any) -> str:
    """coder, tester, repair or revision: which prompt a logged request carried."""
    text = json.dumps(request.messages)
    if REVISION_MARK in text:
        return "revision"
    if REPAIR_MARK in text:
        return "repair"
    return "tester" if "**Test Input:**" in text else "coder"
