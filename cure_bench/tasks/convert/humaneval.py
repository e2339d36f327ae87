"""HumanEval (``HumanEval.jsonl.gz``) to stdio tasks.

Each row has the function ``prompt`` (signature + docstring), a ``canonical_solution`` body, an
``entry_point`` and a ``test`` module whose ``check(candidate)`` holds the asserts. Only literal
``assert candidate(...) == value`` lines convert; a check that computes its tests (loops, helper
calls, random inputs) cannot be written down as fixed stdio pairs, so that task is skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from typing import Any

from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.functional import (
    NO_REFERENCE,
    NO_TESTS,
    NON_LITERAL,
    FunctionalCase,
    case_from_test,
    check_case,
    functional_candidate,
    io_paragraph,
    parse_source,
    signature,
    stdio_program,
)
from cure_bench.tasks.convert.options import ConvertOptions, Item, convert_rows_each
from cure_bench.tasks.convert.verify import Candidate

DEFAULT_TIME_LIMIT = 1.0


def convert_humaneval(rows: Iterable[dict[str, Any]], options: ConvertOptions) -> Iterator[Item]:
    def row_id(index: int, row: dict[str, Any]) -> str:
        return str(row.get("task_id") or f"humaneval/{len(row)}")

    return convert_rows_each(rows, row_id, _candidate, options)


def check_cases(test_source: str) -> list[FunctionalCase]:
    """The literal cases in ``def check(candidate): ...``; Skip when the check computes its tests."""
    try:
        module = parse_source(test_source)
    except SyntaxError as exc:
        raise Skip(NON_LITERAL, f"test module does not parse: {exc.msg}") from None
    check = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None or not check.args.args:
        raise Skip(NON_LITERAL, "no check(candidate) function")
    name = check.args.args[0].arg
    cases: list[FunctionalCase] = []
    for stmt in check.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or a stray string
        if not isinstance(stmt, ast.Assert):
            raise Skip(NON_LITERAL, f"check() computes tests: {ast.unparse(stmt).splitlines()[0][:100]}")
        if isinstance(stmt.test, ast.Constant) and stmt.test.value is True:
            continue  # HumanEval's "assert True, 'This prints if this assert fails'" lines
        cases.append(case_from_test(stmt.test, name))
    if not cases:
        raise Skip(NO_TESTS)
    return cases


def _candidate(row: dict[str, Any], row_id: str, options: ConvertOptions) -> Candidate:
    prompt, body, entry = row.get("prompt"), row.get("canonical_solution"), row.get("entry_point")
    if not (isinstance(prompt, str) and isinstance(body, str) and isinstance(entry, str)) or not body.strip():
        raise Skip(NO_REFERENCE, "needs prompt, canonical_solution and entry_point")
    cases = check_cases(str(row.get("test") or ""))
    for case in cases:
        check_case(case)
    n_args = len(cases[0].args)
    if any(len(c.args) != n_args for c in cases):
        raise Skip(NON_LITERAL, "the asserts call the function with different numbers of arguments")
    code = prompt + body
    call = signature(code, entry) or f"{entry}(...)"
    question = (
        "Implement the Python function below as described by its docstring.\n\n"
        f"```python\n{prompt.rstrip()}\n```" + io_paragraph(call, n_args)
    )
    program = stdio_program(code, entry)
    return functional_candidate(
        row_id, question, program, cases, options, DEFAULT_TIME_LIMIT, {"source": "humaneval", "entry_point": entry}
    )
