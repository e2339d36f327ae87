"""MBPP (google-research ``mbpp.jsonl`` or ``sanitized-mbpp.json``) to stdio tasks.

Rows carry ``task_id``, a one-sentence ``prompt`` (``text`` in the full file), a reference ``code`` and
three ``assert`` lines in ``test_list``. Each assert becomes one stdio test by the functional rule; the
first is also the public example. The splits are MBPP's own id ranges (test = 11..510).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.functional import (
    NO_REFERENCE,
    NO_TESTS,
    NOT_EQUALITY,
    check_case,
    functional_candidate,
    io_paragraph,
    parse_assert,
    parse_source,
    signature,
    stdio_program,
)
from cure_bench.tasks.convert.options import ConvertOptions, Item, convert_rows_each
from cure_bench.tasks.convert.verify import Candidate

SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
DEFAULT_SPLIT = "test"
DEFAULT_TIME_LIMIT = 1.0
_BUILTINS = frozenset(("set", "sorted", "list", "tuple", "abs", "round", "frozenset", "isclose", "len", "str"))


def _in_split(task_id: Any, split: str) -> bool:
    if split == "all":
        return True
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: use one of {', '.join([*SPLITS, 'all'])}")
    lo, hi = SPLITS[split]
    return isinstance(task_id, int) and lo <= task_id <= hi


def entry_point(test_list: list[str]) -> str:
    """The function the asserts call: the first name called in the first assert."""
    for source in test_list:
        try:
            tree = parse_source(source.strip())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in _BUILTINS:
                return node.func.id
    raise Skip(NOT_EQUALITY, "no function call found in the asserts")


def convert_mbpp(rows: Iterable[dict[str, Any]], options: ConvertOptions) -> Iterator[Item]:
    split = options.split or DEFAULT_SPLIT
    in_split = (row for row in rows if _in_split(row.get("task_id"), split))
    return convert_rows_each(in_split, lambda index, row: f"mbpp/{row.get('task_id')}", _candidate, options)


def _candidate(row: dict[str, Any], row_id: str, options: ConvertOptions) -> Candidate:
    code = row.get("code")
    tests = row.get("test_list") or []
    if not isinstance(code, str) or not code.strip():
        raise Skip(NO_REFERENCE)
    if not tests:
        raise Skip(NO_TESTS)
    entry = entry_point(tests)
    cases = [parse_assert(t, entry) for t in tests]
    for case in cases:
        check_case(case)
    call = signature(code, entry) or f"{entry}(...)"
    n_args = len(cases[0].args)
    if any(len(c.args) != n_args for c in cases):
        raise Skip(NOT_EQUALITY, "the asserts call the function with different numbers of arguments")
    prompt = str(row.get("prompt") or row.get("text") or "").strip()
    question = f"{prompt}\n\nThe function is `{call}`." + io_paragraph(call, n_args)
    imports = row.get("test_imports") or []
    setup = "\n".join(imports) if isinstance(imports, list) else str(imports)
    setup = f"{setup}\n{row.get('test_setup_code') or ''}".strip()
    program = stdio_program(f"{setup}\n{code}" if setup else code, entry)
    return functional_candidate(
        row_id,
        question,
        program,
        cases,
        options,
        DEFAULT_TIME_LIMIT,
        {"source": "mbpp", "original_task_id": row.get("task_id"), "entry_point": entry},
    )
