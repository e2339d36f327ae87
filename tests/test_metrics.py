"""CURE metrics against tables computed by hand (see the comments beside each table)."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from cure_bench.errors import ConfigError
from cure_bench.scoring.metrics import MetricsResult, correct_tests, parse_bon_spec, pass_at_k
from cure_bench.scoring.metrics import compute_metrics as _compute_metrics
from cure_bench.scoring.rankers import pick_most_passes
from cure_bench.types import TaskTable, Verdict


def compute_metrics(*args: object, **kwargs: object) -> MetricsResult:
    """These tables pin today's numbers: the ``chat`` protocol (every task counted, BoN accumulate averaged per
    task, None for empty denominators). ``tests/test_metrics_protocol.py`` checks the ``cure`` protocol."""
    return _compute_metrics(*args, protocol="chat", **kwargs)  # type: ignore[arg-type]


CODES = {
    "A": Verdict.ACCEPTED,
    "W": Verdict.WRONG_ANSWER,
    "T": Verdict.TIME_LIMIT,
    "R": Verdict.RUNTIME_ERROR,
    "N": Verdict.NO_PROGRAM,
}


def table(task_id: str, hidden: list[str], generated: list[str]) -> TaskTable:
    """Rows as strings, one letter per test: A accepted, W wrong, T time limit, R runtime error, N no program."""
    return TaskTable(
        task_id=task_id,
        hidden=[[CODES[c] for c in row] for row in hidden],
        generated=[[CODES[c] for c in row] for row in generated],
    )


# t1: p0 correct; tests 0,1 correct (p0 passes them), test 2 wrong.
#   code 1/3, accumulate 3/6; unit_test_acc 2/3, accumulate 2/3; p01 3/4 (p1: 1, p2: 2); p00 1/2 (p2).
#   BoN 3x3: scores 2,1,3 -> p2 (wrong); 2x2: scores 2,1 -> p0; 3x2: scores 2,1,2 tie -> first index p0.
T1 = table("t1", hidden=["AA", "AW", "WW"], generated=["AAW", "AWW", "AAA"])
# t2: no correct program: code 0/2, accumulate 0/2; no unit-test metrics; every BoN pick is wrong.
T2 = table("t2", hidden=["W", "T"], generated=["AW", "WW"])
# t3: no generated tests: p1 correct; code 1/2, accumulate 3/4; BoN picks index 0 (wrong, half the tests).
T3 = table("t3", hidden=["WA", "AA"], generated=["", ""])
# t4: nothing extracted: NO_PROGRAM everywhere.
T4 = table("t4", hidden=["N", "N"], generated=["NN", "NN"])

ALL = [T1, T2, T3, T4]


def approx(x: Fraction | float) -> object:
    return pytest.approx(float(x), abs=1e-12)


def test_pooled_metrics_match_hand_computation() -> None:
    result = compute_metrics(ALL, bon=[(4, 4), (2, 2), (3, 2)], pass_at=(1, 2, 3, 4))
    m, c = result.metrics, result.counts
    assert m["code_acc"] == approx(Fraction(2, 9))
    assert m["code_accumulate_acc"] == approx(Fraction(6, 14))
    assert m["unit_test_acc"] == approx(Fraction(2, 3))
    assert m["unit_test_accumulate_acc"] == approx(Fraction(2, 3))
    assert m["p01"] == approx(Fraction(3, 4))
    assert m["p00"] == approx(Fraction(1, 2))
    # 4x4 clips to 3x3 on t1 -> p2 wrong; t3 picks p0 (W A): accumulate 0.5
    # no ties among the best in 4x4 and 2x2 except t3 (no tests: all tied) and t4 (all NO_PROGRAM)
    assert m["bon"]["4x4"] == {
        "acc": 0.0,
        "accumulate_acc": approx(0.125),
        "tie_aware_acc": approx(0.5 / 4),  # t3: p0 wrong, p1 right, uniform
        "tie_aware_accumulate_acc": approx((0.5 * 0.5 + 0.5 * 1.0) / 4),
    }
    assert m["bon"]["2x2"]["acc"] == approx(0.25) and m["bon"]["2x2"]["accumulate_acc"] == approx(0.375)
    # the tie in t1 (p0 right, p2 wrong, both 2 passes) goes to the first index: same as 2x2
    assert m["bon"]["3x2"]["acc"] == approx(0.25) and m["bon"]["3x2"]["accumulate_acc"] == approx(0.375)
    # tie-aware: t1 0.5 (p0 or p2), t3 0.5 (p0 or p1); accumulate t1 (1 + 0) / 2, t3 (0.5 + 1) / 2
    assert m["bon"]["3x2"]["tie_aware_acc"] == approx((0.5 + 0.5) / 4)
    assert m["bon"]["3x2"]["tie_aware_accumulate_acc"] == approx((0.5 + 0.75) / 4)
    assert m["pass@1"] == approx(Fraction(1, 3 * 4) + Fraction(1, 2 * 4))
    assert m["pass@2"] == approx((Fraction(2, 3) + 1) / 4)
    assert m["pass@3"] == approx(1.0)  # only t1 has 3 samples, and it has a correct one
    assert m["pass@4"] is None
    assert c["n_tasks"] == 4
    assert c["n_programs"] == 9
    assert c["n_correct_programs"] == 2
    assert c["n_generated_tests"] == 3 + 2 + 0 + 2
    assert c["n_correct_generated_tests"] == 2 + 0  # t3 has a correct program but no tests
    assert c["code_acc_tasks"] == 4
    assert c["unit_test_acc_tasks"] == 1  # t3's denominator is empty: it informs nothing
    assert c["p01_pairs"] == 4 and c["p00_pairs"] == 2
    assert c["p01_tasks"] == 1
    assert c["bon_tasks"] == 4
    assert c["pass@3_tasks"] == 1 and c["pass@4_tasks"] == 0


def test_empty_denominators_are_none_not_zero() -> None:
    m = compute_metrics([T2, T4]).metrics
    assert m["code_acc"] == 0.0
    for name in ("unit_test_acc", "unit_test_accumulate_acc", "p01", "p00"):
        assert m[name] is None
    empty = compute_metrics([])
    assert empty.metrics["code_acc"] is None
    assert set(empty.metrics["bon"]["4x4"].values()) == {None}
    assert empty.counts["n_tasks"] == 0


def test_p00_is_none_when_every_test_is_correct() -> None:
    t = table("t", hidden=["A", "W"], generated=["AA", "AW"])
    m = compute_metrics([t]).metrics
    assert m["p00"] is None
    assert m["p01"] == approx(0.5)


def test_all_no_program_task_counts_as_wrong() -> None:
    m = compute_metrics([T4], bon=[(2, 2)]).metrics
    assert m["code_acc"] == 0.0 and m["code_accumulate_acc"] == 0.0
    assert m["bon"]["2x2"]["acc"] == 0.0
    assert m["unit_test_acc"] is None


def test_single_mode_reports_code_metrics_on_every_task() -> None:
    result = compute_metrics(ALL, single=True, pass_at=(1,))
    assert set(result.metrics) == {"code_acc", "code_accumulate_acc", "pass@1"}
    assert result.metrics["code_acc"] == approx(Fraction(2, 9))
    assert result.counts["code_acc_tasks"] == 4
    assert "n_generated_tests" not in result.counts


def test_bon_ties_go_to_first_index() -> None:
    gen = [[True, False], [False, True], [True, True], [True, True]]
    assert pick_most_passes(gen, 4, 2) == 2
    assert pick_most_passes(gen, 2, 2) == 0
    assert pick_most_passes(gen, 4, 0) == 0  # no tests: every score 0
    assert pick_most_passes(gen, 99, 99) == 2  # clipped


def test_task_without_hidden_tests_is_left_out() -> None:
    t = table("nohidden", hidden=["", ""], generated=["A", "W"])
    result = compute_metrics([t, T1])
    assert result.counts["code_acc_tasks"] == 1
    assert result.metrics["code_acc"] == approx(Fraction(1, 3))
    assert result.counts["bon_tasks"] == 1


def test_correct_tests_only_defined_with_a_correct_program() -> None:
    assert correct_tests(T1) == [True, True, False]
    assert correct_tests(T2) is None


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(any(samples[i] for i in s) for s in subsets)
    return Fraction(hits, len(subsets))


def test_pass_at_k_matches_enumeration() -> None:
    rng = random.Random(0)
    for _ in range(60):
        n = rng.randint(1, 10)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_pass_at_k_averaged_per_task() -> None:
    m = compute_metrics([T1, T3], pass_at=(2,)).metrics
    assert m["pass@2"] == approx((brute_pass_at_k(3, 1, 2) + brute_pass_at_k(2, 1, 2)) / 2)


@pytest.mark.parametrize(
    ("spec", "k_code", "k_case", "expected"),
    [
        ("4x4,16x16", 16, 16, [(4, 4), (16, 16)]),
        ("4x4,16x16", 8, 8, [(4, 4), (8, 8)]),
        (" 4X4 , 8x8 ,8x8", 16, 16, [(4, 4), (8, 8)]),
        ("16x16,32x32", 16, 16, [(16, 16)]),
        ("4x0", 16, 16, [(4, 0)]),
        ("", 16, 16, []),
    ],
)
def test_parse_bon_spec(spec: str, k_code: int, k_case: int, expected: list[tuple[int, int]]) -> None:
    assert parse_bon_spec(spec, k_code, k_case) == expected


@pytest.mark.parametrize("spec", ["4by4", "4x", "x4", "4x4;8x8", "0x4", "-1x4"])
def test_parse_bon_spec_rejects_bad_syntax(spec: str) -> None:
    with pytest.raises(ConfigError, match="--bon"):
        parse_bon_spec(spec, 16, 16)


def test_result_is_json_ready() -> None:
    import json

    out = compute_metrics(ALL).to_json()
    assert json.loads(json.dumps(out)) == out
