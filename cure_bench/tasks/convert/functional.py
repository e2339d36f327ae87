"""Functional tests (``assert f(args) == expected``) to stdio tests, by one fixed rule.

The rule (LiveCodeBench's own functional encoding): stdin holds one JSON value per line, one line per
positional argument; the program prints ``json.dumps(result)``. Tuples travel as JSON arrays. Anything
JSON cannot carry faithfully (sets, bytes, non-string dict keys, NaN) is refused here with a reason,
and whatever slips through (a reference that returns 240.0 where the assert said 240, a dict in
another order) is caught later, when the reference runs on its converted tests in the sandbox.
"""

from __future__ import annotations

import ast
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.verify import Candidate
from cure_bench.types import TestCase

if TYPE_CHECKING:
    from cure_bench.tasks.convert.options import ConvertOptions

# Skip reasons (stable strings: they are the keys of the report's counts).
ISCLOSE = "isclose"
SET_WRAPPED = "set-wrapped"
WRAPPED = "wrapped call"
NOT_EQUALITY = "not an equality assert"
NON_LITERAL = "non-literal test"
KEYWORDS = "keyword arguments"
NON_JSON = "non-JSON values"
DICT_KEYS = "non-string dict keys"
NO_TESTS = "no tests"
NO_REFERENCE = "no reference solution"


@dataclass(frozen=True)
class FunctionalCase:
    """One call and its expected result, both plain Python literals."""

    args: tuple[Any, ...]
    expected: Any

    @property
    def has_tuple(self) -> bool:
        return _contains_tuple(self.args) or _contains_tuple(self.expected)

    def stdin(self) -> str:
        return "".join(json.dumps(a) + "\n" for a in self.args)

    def stdout(self) -> str:
        return json.dumps(self.expected) + "\n"


# --------------------------------------------------------------------------------------------------
# Parsing asserts
# --------------------------------------------------------------------------------------------------


def parse_source(source: str) -> ast.Module:
    """``ast.parse`` without the SyntaxWarnings old benchmark code raises (``'\\w'`` in plain strings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(source)


def parse_assert(source: str, entry: str) -> FunctionalCase:
    """Parse one ``assert entry(...) == literal`` statement (or ``assert entry(...)`` / ``assert not ...``)."""
    try:
        tree = parse_source(source.strip())
    except SyntaxError as exc:
        raise Skip(NON_LITERAL, f"unparsable assert: {exc.msg}") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        raise Skip(NON_LITERAL, f"not a single assert: {source.strip()[:80]}")
    return case_from_test(tree.body[0].test, entry)


def case_from_test(test: ast.expr, entry: str) -> FunctionalCase:
    """The case an assert's test expression states, or Skip naming why it is not a plain equality."""
    if _is_call_to(test, entry):
        return FunctionalCase(_call_args(test, entry), True)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _is_call_to(test.operand, entry):
        return FunctionalCase(_call_args(test.operand, entry), False)
    if _mentions_isclose(test):
        raise Skip(ISCLOSE, ast.unparse(test)[:120])
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        raise Skip(NOT_EQUALITY, ast.unparse(test)[:120])
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if _is_call_to(right, entry) and not _is_call_to(left, entry):
        left, right = right, left
    left, right = _unwrap_sequence(left, right, entry)
    if not _is_call_to(left, entry):
        raise Skip(_wrapper_reason(left, entry), ast.unparse(test)[:120])
    is_singleton = isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value in (True, False, None)
    if not (isinstance(op, ast.Eq) or is_singleton):
        raise Skip(NOT_EQUALITY, ast.unparse(test)[:120])
    return FunctionalCase(_call_args(left, entry), _literal(right))


def _unwrap_sequence(left: ast.expr, right: ast.expr, entry: str) -> tuple[ast.expr, ast.expr]:
    """``tuple(f(x)) == tuple([1, 2])`` or ``list(f(x)) == [1, 2]``: order-preserving wrappers JSON makes moot."""
    if (
        isinstance(left, ast.Call)
        and getattr(left.func, "id", "") in ("tuple", "list")
        and len(left.args) == 1
        and not left.keywords
        and _is_call_to(left.args[0], entry)
    ):
        if isinstance(right, ast.Call) and getattr(right.func, "id", "") in ("tuple", "list") and len(right.args) == 1:
            right = right.args[0]
        if isinstance(right, ast.List | ast.Tuple):
            return left.args[0], right
    return left, right


def _is_call_to(node: ast.AST, entry: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry


def _call_args(call: ast.expr, entry: str) -> tuple[Any, ...]:
    assert isinstance(call, ast.Call)
    if call.keywords:
        raise Skip(KEYWORDS, ast.unparse(call)[:120])
    if any(isinstance(a, ast.Starred) for a in call.args):
        raise Skip(NON_LITERAL, f"starred argument in {ast.unparse(call)[:100]}")
    return tuple(_literal(a) for a in call.args)


def _literal(node: ast.expr) -> Any:
    """A literal, or constant arithmetic over literals (``3 * 19``, ``'ab' + 'c'``, ``[1, 0 ** 0]``).

    Only whitelisted node types are evaluated, with size guards, so nothing from the test text runs.
    """
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return _fold(node)
    except (_NotConstant, ArithmeticError, TypeError, ValueError, RecursionError):
        raise Skip(NON_LITERAL, ast.unparse(node)[:120]) from None


class _NotConstant(Exception):
    pass


_BINOPS: dict[type, Any] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}
_MAX_SIZE = 100_000


def _fold(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_fold(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_fold(k): _fold(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _fold(node.operand)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _NotConstant
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _fold(node.left), _fold(node.right)
        if isinstance(node.op, ast.Pow):
            if not all(isinstance(v, int | float) for v in (left, right)) or abs(right) > 64 or abs(left) > 10**6:
                raise _NotConstant
            return left**right
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise _NotConstant
        if isinstance(node.op, ast.Mult) and _too_big(left, right):
            raise _NotConstant
        return op(left, right)
    raise _NotConstant


def _too_big(a: Any, b: Any) -> bool:
    """A sequence repeated into something huge (``'a' * 10**9``) is refused before it is built."""
    for seq, times in ((a, b), (b, a)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > _MAX_SIZE:
            return True
    return False


def _mentions_isclose(test: ast.expr) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("isclose", "allclose", "approx"):
                return True
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call):
            func = node.left.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("abs", "fabs") and isinstance(node.ops[0], (ast.Lt, ast.LtE)):
                return True
    return False


def _wrapper_reason(node: ast.expr, entry: str) -> str:
    inner = any(_is_call_to(n, entry) for n in ast.walk(node))
    if not inner:
        return NOT_EQUALITY
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("set", "frozenset"):
        return SET_WRAPPED
    return WRAPPED


# --------------------------------------------------------------------------------------------------
# JSON faithfulness
# --------------------------------------------------------------------------------------------------


def check_json_value(value: Any, where: str) -> None:
    """Refuse values the stdio rule cannot carry: JSON would change or reject them."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Skip(NON_JSON, f"{where}: {value!r} is not a JSON number")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_json_value(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise Skip(DICT_KEYS, f"{where}: key {key!r}")
            check_json_value(item, where)
        return
    raise Skip(NON_JSON, f"{where}: {type(value).__name__} {value!r:.60}")


def check_case(case: FunctionalCase) -> None:
    for i, arg in enumerate(case.args):
        check_json_value(arg, f"argument {i + 1}")
    check_json_value(case.expected, "expected result")


def _contains_tuple(value: Any) -> bool:
    if isinstance(value, tuple):
        return True
    if isinstance(value, list):
        return any(_contains_tuple(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_tuple(v) for v in value.values())
    return False


# --------------------------------------------------------------------------------------------------
# Programs and statements
# --------------------------------------------------------------------------------------------------

_HARNESS = """{code}


def _cure_stdio_main():
    import json as _cure_json
    import sys as _cure_sys

    _args = [_cure_json.loads(_line) for _line in _cure_sys.stdin.read().splitlines() if _line.strip()]
    print(_cure_json.dumps({entry}(*_args)))


_cure_stdio_main()
"""


def stdio_program(code: str, entry: str) -> str:
    """A function-style solution wrapped into a stdio program obeying the rule."""
    return _HARNESS.format(code=code.rstrip(), entry=entry)


def signature(code: str, entry: str) -> str | None:
    """``entry(a, b)`` from the solution's ``def``, or None when it is not a plain top-level def."""
    try:
        tree = parse_source(code)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry:
            names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
            if node.args.vararg:
                names.append("*" + node.args.vararg.arg)
            return f"{entry}({', '.join(names)})"
    return None


def io_paragraph(call: str, n_args: int) -> str:
    """The paragraph appended to a converted question: the exact stdin/stdout contract."""
    if n_args == 0:
        reading = "The standard input is empty."
    else:
        lines = "one line" if n_args == 1 else f"{n_args} lines"
        reading = (
            f"The standard input holds {lines}: line i is the i-th argument of `{call}`, written as one "
            "JSON value (strings in double quotes, lists and tuples as JSON arrays, dictionaries as JSON "
            "objects, True/False/None as true/false/null). Read each line with json.loads."
        )
    return (
        "\n\nInput/Output format: write a complete Python program that reads standard input and writes "
        f"standard output. {reading} Compute the value the function should return and print it with "
        "print(json.dumps(result)) on a single line (a tuple is printed as a JSON array)."
    )


def functional_candidate(
    row_id: str,
    question: str,
    program: str,
    cases: Sequence[FunctionalCase],
    options: ConvertOptions,
    default_time_limit: float,
    extra: dict[str, Any],
) -> Candidate:
    """The converted task row of a functional problem: its cases become stdio tests, the first one public.

    ``extra`` adds source-specific metadata (source name, entry point, original id) to the row.
    """
    tests_io = [TestCase(c.stdin(), c.stdout()) for c in cases]
    if options.max_tests:
        tests_io = tests_io[: options.max_tests]
    time_limit = options.time_limit or default_time_limit
    task = {
        "task_id": row_id,
        "question": question,
        "test_time_limit": time_limit,
        "example_input": [tests_io[0].input],
        "example_output": [tests_io[0].output],
        "test_input": [t.input for t in tests_io],
        "test_output": [t.output for t in tests_io],
        **extra,
        "reference_solution": program,
        "io_format": "functional-json-lines",
    }
    return Candidate(row_id, task, program, tests_io, time_limit, has_tuple=any(c.has_tuple for c in cases))
