"""DeepMind CodeContests rows (the Hugging Face ``deepmind/code_contests`` export) to CURE tasks.

Problems are stdio already. Public tests become the examples; private then generated tests the hidden
tests; the time limit comes from the source. CodeContests has no flag for problems that need a special
checker (several valid answers), so with verification on, the first Python 3 solution in the row is run
on every test in the sandbox: a problem its own accepted solution cannot pass byte-for-byte (modulo
whitespace) is dropped. Problems without a Python 3 solution are kept and counted as unverified.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.functional import NO_TESTS
from cure_bench.tasks.convert.options import ConvertOptions, Item, convert_rows_each
from cure_bench.tasks.convert.verify import Candidate
from cure_bench.types import TestCase

PYTHON3 = 3  # CodeContests' Language enum: 0 unknown, 1 Python 2, 2 C++, 3 Python 3, 4 Java
FILE_IO = "file I/O"
DEFAULT_TIME_LIMIT = 1.0


def convert_codecontests(rows: Iterable[dict[str, Any]], options: ConvertOptions) -> Iterator[Item]:
    return convert_rows_each(rows, lambda index, row: f"codecontests/{row.get('name') or index}", _item, options)


def _tests(block: Any) -> list[TestCase]:
    if not isinstance(block, dict):
        return []
    inputs, outputs = block.get("input") or [], block.get("output") or []
    return [TestCase(str(i), str(o)) for i, o in zip(inputs, outputs, strict=False)]


def _time_limit(row: dict[str, Any]) -> float | None:
    limit = row.get("time_limit")
    if isinstance(limit, dict):
        seconds = float(limit.get("seconds") or 0) + float(limit.get("nanos") or 0) / 1e9
        return seconds or None
    if isinstance(limit, (int, float)) and limit > 0:
        return float(limit)
    return None


def python3_solution(row: dict[str, Any]) -> str | None:
    solutions = row.get("solutions")
    if not isinstance(solutions, dict):
        return None
    for language, code in zip(solutions.get("language") or [], solutions.get("solution") or [], strict=False):
        if language == PYTHON3 and isinstance(code, str) and code.strip():
            return code
    return None


def _item(row: dict[str, Any], row_id: str, options: ConvertOptions) -> Candidate | dict[str, Any]:
    if row.get("input_file") or row.get("output_file"):
        raise Skip(FILE_IO, f"{row.get('input_file')!r} / {row.get('output_file')!r}")
    public = _tests(row.get("public_tests"))
    hidden = _tests(row.get("private_tests")) + _tests(row.get("generated_tests"))
    if not hidden:
        raise Skip(NO_TESTS)
    if options.max_tests:
        hidden = hidden[: options.max_tests]
    time_limit = options.time_limit or _time_limit(row) or DEFAULT_TIME_LIMIT
    task = {
        "task_id": row_id,
        "question": str(row.get("description") or "").strip(),
        "test_time_limit": time_limit,
        "example_input": [t.input for t in public],
        "example_output": [t.output for t in public],
        "test_input": [t.input for t in hidden],
        "test_output": [t.output for t in hidden],
        "source": "codecontests",
        "name": row.get("name"),
        "difficulty": row.get("difficulty"),
        "cf_contest_id": row.get("cf_contest_id"),
        "cf_index": row.get("cf_index"),
        "cf_rating": row.get("cf_rating"),
        "cf_tags": row.get("cf_tags"),
        "memory_limit_bytes": row.get("memory_limit_bytes"),
        "io_format": "stdin",
    }
    if not task["question"]:
        raise Skip(NO_TESTS, "empty description")
    reference = python3_solution(row)
    if reference is None:
        return task
    task["reference_solution"] = reference
    return Candidate(row_id, task, reference, public + hidden, time_limit)
