"""open-r1/codeforces problems to CURE tasks: stdio problems with exact-match checking only.

The source marks what a plain output comparison cannot judge: ``interaction_format`` (interactive
problems), ``input_mode`` other than stdio (file I/O) and ``generated_checker`` (several valid answers,
judged by a checker program). Those are skipped with that reason. Examples become the public tests,
``official_tests`` the hidden ones; time limits come from the source, and ``contest_start`` becomes an
ISO ``contest_date`` so ``--start-date/--end-date`` work on the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.functional import NO_TESTS
from cure_bench.tasks.convert.options import ConvertOptions, Item, convert_rows_each
from cure_bench.types import TestCase

INTERACTIVE = "interactive"
FILE_IO = "file I/O"
CHECKER = "special checker"
DEFAULT_TIME_LIMIT = 1.0


def convert_codeforces(rows: Iterable[dict[str, Any]], options: ConvertOptions) -> Iterator[Item]:
    return convert_rows_each(rows, lambda index, row: f"codeforces/{row.get('id') or index}", _task, options)


def _pairs(items: Any) -> list[TestCase]:
    if not isinstance(items, list):
        return []
    return [TestCase(str(t.get("input", "")), str(t.get("output", ""))) for t in items if isinstance(t, dict)]


def _question(row: dict[str, Any]) -> str:
    parts = [str(row.get("title") or "").strip(), str(row.get("description") or "").strip()]
    for heading, key in (("Input", "input_format"), ("Output", "output_format"), ("Note", "note")):
        text = str(row.get(key) or "").strip()
        if text:
            parts.append(f"{heading}\n{text}")
    return "\n\n".join(p for p in parts if p)


def _contest_date(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, tz=UTC).date().isoformat()
    return None


def _task(row: dict[str, Any], row_id: str, options: ConvertOptions) -> dict[str, Any]:
    if str(row.get("interaction_format") or "").strip():
        raise Skip(INTERACTIVE)
    mode = row.get("input_mode") or "stdio"
    if mode != "stdio":
        raise Skip(FILE_IO, str(mode))
    if str(row.get("generated_checker") or "").strip():
        raise Skip(CHECKER)
    hidden = _pairs(row.get("official_tests"))
    if not hidden:
        raise Skip(NO_TESTS)
    if options.max_tests:
        hidden = hidden[: options.max_tests]
    examples = _pairs(row.get("examples"))
    limit = row.get("time_limit")
    source_limit = float(limit) if isinstance(limit, (int, float)) and limit > 0 else None
    return {
        "task_id": row_id,
        "question": _question(row),
        "test_time_limit": options.time_limit or source_limit or DEFAULT_TIME_LIMIT,
        "example_input": [t.input for t in examples],
        "example_output": [t.output for t in examples],
        "test_input": [t.input for t in hidden],
        "test_output": [t.output for t in hidden],
        "source": "codeforces",
        "contest_id": row.get("contest_id"),
        "index": row.get("index"),
        "rating": row.get("rating"),
        "tags": row.get("tags"),
        "memory_limit_mb": row.get("memory_limit"),
        "contest_date": _contest_date(row.get("contest_start")),
        "official_tests_complete": row.get("official_tests_complete"),
        "io_format": "stdin",
    }
