"""Verdicts from execution results: output comparison happens here, in the parent, never in a worker.

Workers never see expected outputs, so a program cannot read them from its own memory or its parent's.
"""

from __future__ import annotations

import hashlib
import math

from cure_bench.types import CompareMode, ExecResult, ExecStatus, Verdict

FLOAT_TOLERANCE = 1e-6

_STATUS_VERDICT = {
    ExecStatus.TIME_LIMIT: Verdict.TIME_LIMIT,
    ExecStatus.RUNTIME_ERROR: Verdict.RUNTIME_ERROR,
    ExecStatus.MEMORY_LIMIT: Verdict.MEMORY_LIMIT,
    ExecStatus.OUTPUT_LIMIT: Verdict.OUTPUT_LIMIT,
    ExecStatus.SANDBOX_ERROR: Verdict.SANDBOX_ERROR,
}


def normalise(text: str) -> str:
    """CURE's whitespace rule: runs of whitespace become one space, ends are stripped."""
    return " ".join(text.split())


def _float_token_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)


def outputs_match(actual: str, expected: str, mode: CompareMode = CompareMode.WHITESPACE) -> bool:
    """Whether a program's stdout counts as the expected output under ``mode``."""
    if mode is CompareMode.WHITESPACE:
        return normalise(actual) == normalise(expected)
    if mode is CompareMode.EXACT:
        return actual == expected
    if mode is CompareMode.FLOAT:
        got, want = actual.split(), expected.split()
        return len(got) == len(want) and all(map(_float_token_equal, got, want))
    raise ValueError(f"unknown compare mode {mode!r}")


def judge(result: ExecResult, expected: str, mode: CompareMode = CompareMode.WHITESPACE) -> Verdict:
    """The verdict of one execution against one expected output."""
    if result.status is ExecStatus.OK:
        return Verdict.ACCEPTED if outputs_match(result.stdout, expected, mode) else Verdict.WRONG_ANSWER
    return _STATUS_VERDICT[result.status]


def output_digest(result: ExecResult) -> str | None:
    """sha1 of the whitespace-normalised stdout of a clean run, else None (for output-agreement rankers)."""
    if result.status is not ExecStatus.OK:
        return None
    return hashlib.sha1(normalise(result.stdout).encode("utf-8", "surrogatepass")).hexdigest()
