"""The CURE task schema, one row at a time: checks, the rows upstream skips, and row <-> Task.

Every field is checked on its own so that no problem hides another. A problem is either an *error* (the
file is broken: a number where a list belongs, a negative time limit) or a *skippable row*: a row CURE's
own evaluation leaves out instead of failing on. Upstream's ``evaluation/eval.py`` builds no verdict table
for a task whose ``test_input`` is empty and drops that task from every metric; a task without hidden
tests, with hidden inputs and outputs that do not pair up, or without a problem statement cannot be
scored by anyone, so those rows are skipped too. Under ``--strict`` a skippable row refuses the file.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure_bench.errors import SkippableRowError, TaskFileError, row_number
from cure_bench.types import Task, TestCase

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "ID_FIELDS",
    "NO_HIDDEN_TESTS",
    "NO_QUESTION",
    "SCHEMA_FIELDS",
    "SKIP_REASONS",
    "UNPAIRED_HIDDEN_TESTS",
    "SkippedRow",
    "check_row",
    "json_type",
    "row_task_id",
    "row_to_task",
    "skip_summary",
    "task_to_row",
]

DEFAULT_TIME_LIMIT = 1.0
"""Seconds per execution when a row has no ``test_time_limit`` (CURE's own default)."""

SCHEMA_FIELDS = ("question", "test_time_limit", "example_input", "example_output", "test_input", "test_output")
ID_FIELDS = ("task_id", "id", "name")

# Skip reasons: stable strings, they are the keys of summary.json's counts.
NO_HIDDEN_TESTS = "no hidden tests"
UNPAIRED_HIDDEN_TESTS = "hidden inputs and outputs do not pair up"
NO_QUESTION = "no question"
SKIP_REASONS = (NO_HIDDEN_TESTS, UNPAIRED_HIDDEN_TESTS, NO_QUESTION)


@dataclass(frozen=True)
class SkippedRow:
    """A row left out of a run because upstream's evaluation would leave it out (see the module doc)."""

    task_id: str
    row: int
    reason: str
    field: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "row": row_number(self.row), "reason": self.reason, "field": self.field}


def json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message ("a number", "an array", "null")."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), type(value).__name__
    )


def _str_list(path: str, row: int, name: str, value: Any) -> list[str]:
    """A list of strings (None reads as empty); a wrong type is an error, whatever the row's other fields."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TaskFileError(path, f"expected a list of strings, got {json_type(value)}", row=row, field=name)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TaskFileError(path, f"item {i} is {json_type(item)}, expected a string", row=row, field=name)
    return value


def _examples(path: str, row: int, data: dict[str, Any]) -> list[TestCase]:
    inputs = _str_list(path, row, "example_input", data.get("example_input"))
    outputs = _str_list(path, row, "example_output", data.get("example_output"))
    if len(inputs) != len(outputs):
        message = f"has {len(outputs)} items but 'example_input' has {len(inputs)}; they must pair up"
        raise TaskFileError(path, message, row=row, field="example_output")
    return [TestCase(i, o) for i, o in zip(inputs, outputs, strict=True)]


def _hidden(path: str, row: int, data: dict[str, Any]) -> list[TestCase]:
    raw_in, raw_out = data.get("test_input"), data.get("test_output")
    inputs = _str_list(path, row, "test_input", raw_in)
    outputs = _str_list(path, row, "test_output", raw_out)
    if not inputs:
        what = "missing (a non-empty list of strings is required)"
        if raw_in is not None:
            what = "is empty (at least one test is required)"
        raise SkippableRowError(path, what, row=row, field="test_input", reason=NO_HIDDEN_TESTS)
    if len(inputs) != len(outputs):
        message = (
            "missing (a non-empty list of strings is required)"
            if raw_out is None
            else f"has {len(outputs)} items but 'test_input' has {len(inputs)}; they must pair up"
        )
        raise SkippableRowError(path, message, row=row, field="test_output", reason=UNPAIRED_HIDDEN_TESTS)
    return [TestCase(i, o) for i, o in zip(inputs, outputs, strict=True)]


def _time_limit(path: str, row: int, value: Any) -> float:
    if value is None:
        return DEFAULT_TIME_LIMIT
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskFileError(
            path, f"expected a number of seconds, got {json_type(value)}", row=row, field="test_time_limit"
        )
    if not math.isfinite(value) or value <= 0:
        raise TaskFileError(path, f"must be a number > 0, got {value}", row=row, field="test_time_limit")
    return float(value)


def _question(path: str, row: int, value: Any) -> str:
    if value is None:
        message = "missing (every task needs its problem statement)"
        raise SkippableRowError(path, message, row=row, field="question", reason=NO_QUESTION)
    if not isinstance(value, str):
        raise TaskFileError(path, f"expected a string, got {json_type(value)}", row=row, field="question")
    if not value.strip():
        raise SkippableRowError(path, "is empty", row=row, field="question", reason=NO_QUESTION)
    return value


def row_task_id(data: dict[str, Any], stem: str, row: int) -> str:
    """The row's own id (``task_id``, ``id`` or ``name``), else ``<file stem>/<row>``."""
    for key in ID_FIELDS:
        value = data.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return f"{stem}/{row}"


def _checked(path: str, row: int, data: dict[str, Any]) -> tuple[dict[str, Any], list[TaskFileError]]:
    checks: dict[str, Callable[[], Any]] = {
        "question": lambda: _question(path, row, data.get("question")),
        "time_limit": lambda: _time_limit(path, row, data.get("test_time_limit")),
        "examples": lambda: _examples(path, row, data),
        "hidden": lambda: _hidden(path, row, data),
    }
    values: dict[str, Any] = {}
    problems: list[TaskFileError] = []
    for name, check in checks.items():
        try:
            values[name] = check()
        except TaskFileError as exc:
            problems.append(exc)
    return values, problems


def check_row(path: str | Path, row: int, data: dict[str, Any]) -> list[TaskFileError]:
    """Every problem of one row; the :class:`SkippableRowError` ones are rows upstream skips."""
    return _checked(str(path), row, data)[1]


def row_to_task(data: dict[str, Any], *, path: str | Path, row: int) -> Task:
    """Validate one parsed row and build its :class:`Task`.

    Raises the row's first error; a row whose only problems are skippable raises :class:`SkippableRowError`
    (a :class:`TaskFileError`), which a lenient reader catches to leave the task out.
    """
    p = str(path)
    values, problems = _checked(p, row, data)
    errors = [e for e in problems if not isinstance(e, SkippableRowError)]
    if errors or problems:
        raise (errors or problems)[0]
    return Task(
        task_id=row_task_id(data, Path(p).stem, row),
        question=values["question"],
        time_limit=values["time_limit"],
        example_tests=values["examples"],
        hidden_tests=values["hidden"],
        metadata={k: v for k, v in data.items() if k not in SCHEMA_FIELDS},
    )


def task_to_row(task: Task) -> dict[str, Any]:
    """The inverse of :func:`row_to_task`: a row in the upstream schema (metadata fields first)."""
    row: dict[str, Any] = dict(task.metadata)
    if not any(key in row for key in ID_FIELDS):
        row["task_id"] = task.task_id
    row.update(
        question=task.question,
        test_time_limit=task.time_limit,
        example_input=[t.input for t in task.example_tests],
        example_output=[t.output for t in task.example_tests],
        test_input=[t.input for t in task.hidden_tests],
        test_output=[t.output for t in task.hidden_tests],
    )
    return row


def skip_summary(source: str, skipped: Iterable[SkippedRow], *, shown: int = 5) -> str:
    """One line for the log: how many tasks were left out, why, and the first few ids."""
    rows = list(skipped)
    reasons = Counter(s.reason for s in rows)
    ids = ", ".join(s.task_id for s in rows[:shown]) + (", ..." if len(rows) > shown else "")
    why = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common())
    return (
        f"{source}: {len(rows)} task(s) left out as upstream leaves them out ({why}): {ids}; "
        "--strict refuses such files"
    )
