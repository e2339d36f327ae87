"""The functional -> stdio rule: assert parsing, constant folding, JSON faithfulness, failure reasons."""

from __future__ import annotations

import json

import pytest

from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.functional import (
    DICT_KEYS,
    ISCLOSE,
    KEYWORDS,
    NON_JSON,
    NON_LITERAL,
    NOT_EQUALITY,
    SET_WRAPPED,
    WRAPPED,
    FunctionalCase,
    check_case,
    io_paragraph,
    parse_assert,
    signature,
    stdio_program,
)
from cure_bench.tasks.convert.verify import (
    DICT_ORDER,
    FLOAT_PRECISION,
    INT_FLOAT,
    NON_JSON_RESULT,
    ORDER,
    RUNTIME,
    TIME_LIMIT,
    TUPLES,
    WRONG,
    Candidate,
    classify_failure,
)
from cure_bench.types import ExecResult, ExecStatus


@pytest.mark.parametrize(
    ("source", "args", "expected"),
    [
        ('assert f("hello", "l") == "heo"', ("hello", "l"), "heo"),
        ("assert f([1, 2], (3, 4)) == [(1, 3)]", ([1, 2], (3, 4)), [(1, 3)]),
        ("assert [1] == f(1)", (1,), [1]),  # swapped sides
        ("assert f(3)", (3,), True),
        ("assert not f(3)", (3,), False),
        ("assert f(0) is None", (0,), None),
        ("assert f(3 * 19, -2) == 'ab' + 'c'", (57, -2), "abc"),  # constant arithmetic folds
        ("assert f([1, 0 ** 0]) == {'a': 1}", ([1, 1],), {"a": 1}),
        ("assert f() == 7, 'message'", (), 7),
        ("assert tuple(f([3, 1])) == tuple([1, 3])", ([3, 1],), [1, 3]),  # order-preserving wrappers
        ("assert list(f(2)) == [2]", (2,), [2]),
    ],
)
def test_parse_assert(source: str, args: tuple[object, ...], expected: object) -> None:
    assert parse_assert(source, "f") == FunctionalCase(args, expected)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("assert math.isclose(f(1), 2.0, rel_tol=0.001)", ISCLOSE),
        ("assert abs(f(1.33) - 0.33) < 1e-6", ISCLOSE),
        ("assert set(f([1, 2])) == set([2, 1])", SET_WRAPPED),
        ("assert sorted(f([1, 2])) == [1, 2]", WRAPPED),
        ("assert f(1) != 2", NOT_EQUALITY),
        ("assert f(1) > 2", NOT_EQUALITY),
        ("assert g(1) == 2", NOT_EQUALITY),
        ("assert f(x=1) == 2", KEYWORDS),
        ("assert f(len('ab')) == 2", NON_LITERAL),
        ("assert f(*[1, 2]) == 3", NON_LITERAL),
        ("assert f('a' * 10**9) == 1", NON_LITERAL),  # refused before anything huge is built
        ("assert f(2 ** 10000) == 1", NON_LITERAL),
        ("x = 1", NON_LITERAL),
        ("assert f(", NON_LITERAL),
    ],
)
def test_parse_assert_refusals(source: str, reason: str) -> None:
    with pytest.raises(Skip) as info:
        parse_assert(source, "f")
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (FunctionalCase(({1, 2},), 1), NON_JSON),
        (FunctionalCase((1,), {(1, 2)}), NON_JSON),
        (FunctionalCase((b"x",), 1), NON_JSON),
        (FunctionalCase((float("nan"),), 1), NON_JSON),
        (FunctionalCase(({1: "a"},), 1), DICT_KEYS),
        (FunctionalCase((1,), {"a": {2: 3}}), DICT_KEYS),
    ],
)
def test_values_json_cannot_carry_are_refused(case: FunctionalCase, reason: str) -> None:
    with pytest.raises(Skip) as info:
        check_case(case)
    assert info.value.reason == reason


def test_case_io_is_one_json_value_per_line() -> None:
    case = FunctionalCase(("a\nb", [1, (2, 3)], {"k": None}, True), (1, "x"))
    check_case(case)
    assert case.stdin() == '"a\\nb"\n[1, [2, 3]]\n{"k": null}\ntrue\n'
    assert case.stdout() == '[1, "x"]\n'
    assert case.has_tuple
    assert [json.loads(line) for line in case.stdin().splitlines()] == ["a\nb", [1, [2, 3]], {"k": None}, True]


def test_signature_and_io_paragraph() -> None:
    code = "import math\n\ndef helper(): pass\n\ndef area(w, h, *rest):\n    return w * h\n"
    assert signature(code, "area") == "area(w, h, *rest)"
    assert signature(code, "missing") is None
    text = io_paragraph("area(w, h)", 2)
    assert "2 lines" in text and "json.loads" in text and "print(json.dumps(result))" in text
    assert "is empty" in io_paragraph("f()", 0)


def test_stdio_program_shape() -> None:
    program = stdio_program("def f(a, b):\n    return [a, b]\n", "f")
    compile(program, "<program>", "exec")  # valid Python; it is only ever run in the sandbox
    assert program.startswith("def f(a, b):") and "f(*_args)" in program and "dumps" in program


def _cand(has_tuple: bool = False) -> Candidate:
    return Candidate("t", {}, "", [], 1.0, has_tuple=has_tuple)


@pytest.mark.parametrize(
    ("stdout", "expected", "has_tuple", "reason"),
    [
        ("240.0\n", "240\n", False, INT_FLOAT),
        ("[1, 2.0]\n", "[1, 2]\n", False, INT_FLOAT),
        ("0.30000000000000004\n", "0.3\n", False, FLOAT_PRECISION),
        ('{"b": 1, "a": 2}\n', '{"a": 2, "b": 1}\n', False, DICT_ORDER),
        ("[2, 1]\n", "[1, 2]\n", False, ORDER),
        ("5\n", "3\n", True, TUPLES),
        ("5\n", "3\n", False, WRONG),
        ("not json\n", "3\n", False, WRONG),
    ],
)
def test_failure_reasons_from_output(stdout: str, expected: str, has_tuple: bool, reason: str) -> None:
    result = ExecResult(status=ExecStatus.OK, stdout=stdout)
    assert classify_failure(result, expected, _cand(has_tuple), 0).reason == reason


@pytest.mark.parametrize(
    ("status", "stderr", "has_tuple", "reason"),
    [
        (ExecStatus.TIME_LIMIT, "", False, TIME_LIMIT),
        (ExecStatus.RUNTIME_ERROR, "TypeError: Object of type set is not JSON serializable", False, NON_JSON_RESULT),
        (ExecStatus.RUNTIME_ERROR, 'TypeError: can only concatenate tuple (not "list") to tuple', True, TUPLES),
        (ExecStatus.RUNTIME_ERROR, "ZeroDivisionError: division by zero", False, RUNTIME),
    ],
)
def test_failure_reasons_from_status(status: ExecStatus, stderr: str, has_tuple: bool, reason: str) -> None:
    result = ExecResult(status=status, stdout="", stderr_tail=stderr)
    assert classify_failure(result, "1\n", _cand(has_tuple), 0).reason == reason
