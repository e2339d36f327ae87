"""Run each converted task's reference solution on its converted tests, in the sandbox.

Benchmark reference code is still third-party code, so it runs contained like any model output. A task
whose reference does not pass every converted test under CURE's comparator is dropped, and the reason is
guessed from what the reference printed (240.0 for 240 is "int/float", same items in another order is
"dict order", ...) so the report tells which conversion rule a dataset stumbles on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cure_bench.tasks.convert.common import Skip
from cure_bench.types import CompareMode, ExecResult, ExecStatus, TestCase

if TYPE_CHECKING:
    from cure_bench.sandbox import Sandbox

logger = logging.getLogger(__name__)

INT_FLOAT = "int/float"
FLOAT_PRECISION = "isclose"
DICT_ORDER = "dict order"
ORDER = "element order"
TUPLES = "tuples"
NON_JSON_RESULT = "non-JSON values"
TIME_LIMIT = "reference time limit"
RUNTIME = "reference runtime error"
WRONG = "reference fails its own test"
SANDBOX = "sandbox error"


@dataclass
class Candidate:
    """A converted task waiting for its reference to be checked."""

    row_id: str
    row: dict[str, Any]
    program: str
    tests: list[TestCase]
    time_limit: float
    has_tuple: bool = False


def verify_candidates(
    box: Sandbox,
    candidates: Sequence[Candidate],
    *,
    margin: float = 1.0,
    on_result: Callable[[], None] | None = None,
) -> list[Skip | None]:
    """For each candidate: None when its reference passes every test, else the Skip that explains why not.

    References run under ``time_limit / margin``: a task kept only because its reference squeaked in
    under the limit on this machine would flake on the next one. ``on_result()`` is called per execution.
    """
    from cure_bench.sandbox import judge
    from cure_bench.types import ExecJob, Verdict

    jobs, owners = [], []
    for c_index, cand in enumerate(candidates):
        for t_index, test in enumerate(cand.tests):
            jobs.append(ExecJob(cand.program, test.input, cand.time_limit / margin))
            owners.append((c_index, t_index))
    outcome: list[Skip | None] = [None] * len(candidates)
    if not jobs:
        return outcome
    results = box.run(jobs, on_result=(lambda _i, _r: on_result()) if on_result else None)
    for (c_index, t_index), result in zip(owners, results, strict=True):
        cand = candidates[c_index]
        if outcome[c_index] is not None:
            continue
        expected = cand.tests[t_index].output
        if judge(result, expected, CompareMode.WHITESPACE) is not Verdict.ACCEPTED:
            outcome[c_index] = classify_failure(result, expected, cand, t_index, margin)
    return outcome


def classify_failure(result: ExecResult, expected: str, cand: Candidate, test_index: int, margin: float = 1.0) -> Skip:
    """Name the conversion rule a failing reference most likely stumbled on."""
    where = f"test {test_index}"
    if result.status is ExecStatus.TIME_LIMIT:
        return Skip(
            TIME_LIMIT, f"{where}: over {cand.time_limit / margin:g}s ({cand.time_limit:g}s / margin {margin:g})"
        )
    if result.status is ExecStatus.SANDBOX_ERROR:
        return Skip(SANDBOX, f"{where}: {result.stderr_tail[-200:]}")
    if result.status is not ExecStatus.OK:
        tail = (result.stderr_tail.strip().splitlines() or [result.status.value])[-1]
        if "JSON serializable" in tail:
            return Skip(NON_JSON_RESULT, f"{where}: {tail[:200]}")
        if cand.has_tuple:
            return Skip(TUPLES, f"{where}: tuple arguments arrive as lists: {tail[:200]}")
        return Skip(RUNTIME, f"{where}: {tail[:200]}")
    reason = _compare_reason(result.stdout, expected, cand.has_tuple)
    return Skip(reason, f"{where}: printed {result.stdout.strip()[:80]!r}, expected {expected.strip()[:80]!r}")


def _compare_reason(stdout: str, expected: str, has_tuple: bool) -> str:
    try:
        got, want = json.loads(stdout), json.loads(expected)
    except (json.JSONDecodeError, ValueError):
        return WRONG
    return _diff_kind(got, want) or (TUPLES if has_tuple else WRONG)


def _diff_kind(got: Any, want: Any) -> str | None:
    """The kind of the first difference between two JSON values that are unequal as strings."""
    if isinstance(got, bool) or isinstance(want, bool):
        return None
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        if got == want and type(got) is not type(want):
            return INT_FLOAT
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            return FLOAT_PRECISION
        return None
    if isinstance(got, dict) and isinstance(want, dict):
        if got == want:
            return DICT_ORDER
        if got.keys() == want.keys():
            return next((k for k in (_diff_kind(got[key], want[key]) for key in want) if k), None)
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) == len(want):
            kinds = [_diff_kind(g, w) for g, w in zip(got, want, strict=True) if g != w or type(g) is not type(w)]
            kinds = [k for k in kinds if k]
            if kinds:
                return kinds[0]
        if _sorted_key(got) == _sorted_key(want):
            return ORDER
    return None


def _sorted_key(values: list[Any]) -> list[str]:
    return sorted(json.dumps(v, sort_keys=True) for v in values)
