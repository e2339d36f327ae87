"""LiveCodeBench ``code_generation_lite`` rows to CURE tasks.

Rows hold ``question_content``, ``platform``, ``question_id``, ``contest_date``, ``starter_code``,
``public_test_cases`` (JSON text) and ``private_test_cases`` (JSON text, or base64+zlib+pickle, decoded
by :mod:`cure_bench.tasks.convert.safe_pickle`), ``metadata`` (JSON text with ``func_name`` for LeetCode).

AtCoder/Codeforces problems are stdio already. LeetCode problems are "functional": their tests are
already one JSON value per line per argument, which is exactly our stdio rule, so inputs stay as they
are and outputs are re-serialised with ``json.dumps`` (the form the program is told to print). There is
no reference solution in the dataset, so nothing is verified; ``contest_date`` feeds date windows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.functional import NO_TESTS, io_paragraph
from cure_bench.tasks.convert.options import ConvertOptions, Item, convert_rows_each
from cure_bench.tasks.convert.safe_pickle import UnsafePickleError, decode_test_cases

DEFAULT_TIME_LIMIT = 6.0  # LiveCodeBench's own evaluator gives each test 6 seconds
UNDECODABLE = "undecodable tests"
UNSAFE_PICKLE = "unsafe pickle"
MIXED = "mixed test types"
BAD_OUTPUT = "non-JSON functional output"


def convert_lcb(rows: Iterable[dict[str, Any]], options: ConvertOptions) -> Iterator[Item]:
    return convert_rows_each(rows, lambda index, row: f"lcb/{row.get('question_id') or index}", _task, options)


def _cases(row: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = row.get(key)
    if value in (None, "", []):
        return []
    try:
        return decode_test_cases(value)
    except UnsafePickleError as exc:
        raise Skip(UNSAFE_PICKLE, f"{key}: {exc}") from None
    except ValueError as exc:
        raise Skip(UNDECODABLE, f"{key}: {exc}") from None


def _func_name(row: dict[str, Any]) -> str | None:
    meta = row.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError:
            meta = {}
    return meta.get("func_name") if isinstance(meta, dict) else None


def _canonical_output(text: str, row_id: str) -> str:
    try:
        return json.dumps(json.loads(text)) + "\n"
    except json.JSONDecodeError:
        raise Skip(BAD_OUTPUT, f"{row_id}: {text[:80]!r}") from None


def _task(row: dict[str, Any], row_id: str, options: ConvertOptions) -> dict[str, Any]:
    public, private = _cases(row, "public_test_cases"), _cases(row, "private_test_cases")
    everything = public + private
    if not everything:
        raise Skip(NO_TESTS)
    kinds = {str(c.get("testtype", "stdin")) for c in everything}
    if len(kinds) != 1:
        raise Skip(MIXED, ", ".join(sorted(kinds)))
    functional = kinds == {"functional"}
    question = str(row.get("question_content") or "").strip()
    func_name = _func_name(row)
    if functional:
        if not func_name:
            raise Skip(NO_TESTS, "functional tests without metadata.func_name")
        n_args = len([line for line in str(everything[0].get("input", "")).splitlines() if line.strip()])
        call = f"Solution().{func_name}"
        starter = str(row.get("starter_code") or "").strip()
        if starter:
            question += f"\n\nThe function to implement (LeetCode starter code):\n```python\n{starter}\n```"
        question += io_paragraph(call, n_args)
    inputs = [str(c.get("input", "")) for c in everything]
    outputs = [
        _canonical_output(str(c.get("output", "")), row_id) if functional else str(c.get("output", ""))
        for c in everything
    ]
    hidden_in, hidden_out = inputs, outputs
    if options.max_tests:
        hidden_in, hidden_out = inputs[: options.max_tests], outputs[: options.max_tests]
    n_public = len(public)
    return {
        "task_id": row_id,
        "question": question,
        "test_time_limit": options.time_limit or DEFAULT_TIME_LIMIT,
        "example_input": inputs[:n_public],
        "example_output": outputs[:n_public],
        "test_input": hidden_in,
        "test_output": hidden_out,
        "source": "livecodebench",
        "platform": row.get("platform"),
        "question_title": row.get("question_title"),
        "contest_id": row.get("contest_id"),
        "contest_date": row.get("contest_date"),
        "difficulty": row.get("difficulty"),
        "func_name": func_name,
        "io_format": "functional-json-lines" if functional else "stdin",
    }
