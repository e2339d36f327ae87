"""Pure rules of the reward server: which program a completion holds, what a verdict row is worth.

No I/O here, so each rule is tested on plain values and reads the same in the service and the docs:

- reward ``pass_rate`` = passed / total on the tester's tests (0 when there are no tests);
  ``all_pass`` = 1 when every test passes (and there is at least one), else 0.
- Best-of-N picks through the ranker registry (``cure_bench.scoring.rankers``); the default is CURE's rule,
  the candidate passing the most tests, the first index on ties.
- OpenRLHF sends ``query`` = prompt + response; ``query_split`` finds the response in it.
- A label is the problem text, or a JSON object with ``problem`` and/or ``task_id``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cure_bench.generation.extract import extract_program
from cure_bench.scoring.rankers import PAPER_RANKER, TaskArrays, get_ranker, pick
from cure_bench.types import Verdict


class RewardMode(StrEnum):
    PASS_RATE = "pass_rate"
    ALL_PASS = "all_pass"


class ExtractMode(StrEnum):
    LAST_PYTHON_BLOCK = "last_python_block"
    NONE = "none"


@dataclass(frozen=True)
class RowScore:
    """What one program earned on one problem's tests."""

    reward: float
    pass_rate: float
    passed: int
    total: int


def program_from(completion: str | None, code: str | None, extract: ExtractMode) -> str | None:
    """The program to run: ``code`` as is, else the completion's last python block (or the whole
    completion with ``extract=none``); None when there is nothing to run."""
    if code is not None:
        return code if code.strip() else None
    if completion is None:
        return None
    if extract is ExtractMode.NONE:
        return completion if completion.strip() else None
    return extract_program(completion)


def score_row(row: Sequence[Verdict], mode: RewardMode) -> RowScore:
    """The reward of one verdict row under ``mode``."""
    total = len(row)
    passed = sum(1 for v in row if v is Verdict.ACCEPTED)
    pass_rate = passed / total if total else 0.0
    all_pass = 1.0 if total and passed == total else 0.0
    reward = all_pass if mode is RewardMode.ALL_PASS else pass_rate
    return RowScore(reward=reward, pass_rate=pass_rate, passed=passed, total=total)


def select_index(rows: Sequence[Sequence[Verdict]], ranker: str = PAPER_RANKER) -> int:
    """The candidate ``ranker`` submits, from each candidate's verdicts on the same tests.

    A ranker that needs program outputs cannot run here (only verdicts are kept): ValueError naming it.
    """
    if not rows:
        raise ValueError("select_index needs at least one candidate")
    spec = get_ranker(ranker)
    if spec.needs_outputs:
        raise ValueError(f"ranker {ranker!r} compares program outputs, which /v1/select does not record")
    passes = [[v is Verdict.ACCEPTED for v in row] for row in rows]
    return pick(TaskArrays.from_passes("select", passes), ranker)


def prompt_text(prompt: object) -> str | None:
    """The problem a prompt states, for callers that send no label: a string as is, or the content of the last
    user message of a conversation (slime's ``prompt`` is either)."""
    if isinstance(prompt, str):
        return prompt if prompt.strip() else None
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):  # multimodal parts: keep the text ones
                    content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                return content if isinstance(content, str) and content.strip() else None
    return None


def parse_label(label: object) -> tuple[str | None, str | None]:
    """(problem, task_id) from an OpenRLHF label or a verl ground_truth.

    A JSON object (as a string or already decoded) gives its ``problem`` and ``task_id`` fields; any other
    non-empty string is the problem text itself.
    """
    if not isinstance(label, str | dict):
        return None, None  # None, or a JSON value (number, list) that names no problem
    data: object = label
    if isinstance(label, str):
        text = label.strip()
        if not text.startswith("{"):
            return (label if text else None), None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return label, None  # a problem that happens to start with a brace
    if not isinstance(data, dict):
        return None, None
    problem = data.get("problem")
    task_id = data.get("task_id")
    return (
        problem if isinstance(problem, str) and problem.strip() else None,
        str(task_id) if task_id is not None and str(task_id).strip() else None,
    )
