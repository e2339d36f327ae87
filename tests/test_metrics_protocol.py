"""The two metric protocols on adversarial verdict tables, every value worked out by hand.

``cure`` follows the CURE evaluation script (evaluation/eval.py of Gen-Verse/CURE, non-single mode):
a task whose tester answers gave no parsable test is skipped before anything is counted for it; BoN
accumulate is ``sum(picked program's hidden passes) / sum(its hidden tests)`` over tasks; an empty
denominator prints 0 (``safe_divide``), p01 prints ``1 - safe_divide(...)`` so 1, and BoN divides without a
guard (it would crash; we report null). ``chat`` keeps every task, averages BoN accumulate per task and
reports null for an empty denominator.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import ConfigError
from cure_bench.scoring.metrics import compute_metrics, protocol_of
from tests.test_metrics import table

# U1: p0 correct (AA); tests t0, t1 correct (p0 passes them), t2 wrong.
#   code 1/3, accumulate 3/6; unit-test 2/3, UT accumulate 2/3 (p0 passes 2 of 3);
#   p01: p1 passes t0 (1), p2 passes t0, t1 (2) -> 3/4; p00: p1 fails t2, p2 passes it -> 1/2.
#   BoN 2x2 (scores on t0,t1: 2, 1) -> p0: right, 2 of 2 hidden; 3x3 (2, 1, 3) -> p2: wrong, 0 of 2;
#   3x2 (2, 1, 2): a tie -> first index p0: right, 2 of 2. Tie-aware 3x2: {p0, p2}: acc 1/2, passes 1 of 2.
U1 = table("U1", hidden=["AA", "AW", "WW"], generated=["AAW", "AWW", "AAA"])
# U2: five hidden tests (uneven with the others); p1 correct, p0 passes 4 of 5; both pass both tests.
#   code 1/2, accumulate 9/10; unit-test 2/2, UT accumulate 2/2; p01 2/2; p00 has no pair (0/0).
#   Every BoN cell ties -> p0: wrong, 4 of 5 hidden. Tie-aware: acc 1/2, passes (4 + 5) / 2 = 4.5 of 5.
U2 = table("U2", hidden=["AAAAW", "AAAAA"], generated=["AA", "AA"])
# U3: the tester's answers never parsed (no generated test column). p1 correct.
#   cure: left out of every metric. chat: code 1/2, accumulate 1/2; BoN has no test to rank by -> p0: wrong, 0 of 1.
U3 = table("U3", hidden=["W", "A"], generated=["", ""])
# U4: no correct program (three hidden tests); one generated test that p0 passes.
#   code 0/2, accumulate 2/6; no unit-test metric. BoN (any cell clips to 1 test): p0 alone best: wrong, 2 of 3.
U4 = table("U4", hidden=["AWA", "WWW"], generated=["A", "W"])
# U5: nothing extracted (NO_PROGRAM everywhere): wrong programs; BoN picks p0: wrong, 0 of 1.
U5 = table("U5", hidden=["N", "N"], generated=["NN", "NN"])

ALL = [U1, U2, U3, U4, U5]
CELLS = [(2, 2), (3, 3), (3, 2)]


def exact(x: Fraction | float) -> object:
    return pytest.approx(float(x), abs=1e-12)


def test_cure_drops_tasks_without_a_generated_test_from_every_metric() -> None:
    result = compute_metrics(ALL, bon=CELLS, pass_at=(1,), protocol="cure")
    m, c = result.metrics, result.counts
    # kept: U1, U2, U4, U5
    assert m["code_acc"] == exact(Fraction(1 + 1 + 0 + 0, 3 + 2 + 2 + 2))
    assert m["code_accumulate_acc"] == exact(Fraction(3 + 9 + 2 + 0, 6 + 10 + 6 + 2))
    assert m["unit_test_acc"] == exact(Fraction(2 + 2, 3 + 2))  # U1 and U2 have a correct program
    assert m["unit_test_accumulate_acc"] == exact(Fraction(2 + 2, 3 + 2))
    assert m["p01"] == exact(Fraction(3 + 2, 4 + 2))
    assert m["p00"] == exact(Fraction(1 + 0, 2 + 0))
    # BoN acc over 4 tasks; accumulate pooled over the picked programs' hidden cells (2 + 5 + 3 + 1 = 11)
    assert m["bon"]["2x2"]["acc"] == exact(Fraction(1, 4))
    assert m["bon"]["2x2"]["accumulate_acc"] == exact(Fraction(2 + 4 + 2 + 0, 11))
    assert m["bon"]["3x3"]["acc"] == 0.0
    assert m["bon"]["3x3"]["accumulate_acc"] == exact(Fraction(0 + 4 + 2 + 0, 11))
    assert m["bon"]["3x2"]["acc"] == exact(Fraction(1, 4))  # U1's tie goes to the first index (right)
    assert m["bon"]["3x2"]["accumulate_acc"] == exact(Fraction(8, 11))
    # tie-aware extra, pooled the same way: U1 {p0, p2}, U2 {p0, p1}, U4 {p0}, U5 {p0, p1}
    assert m["bon"]["3x2"]["tie_aware_acc"] == exact(Fraction(1, 2 * 4) + Fraction(1, 2 * 4))
    assert m["bon"]["3x2"]["tie_aware_accumulate_acc"] == exact(Fraction(1 + Fraction(9, 2) + 2 + 0, 11))
    assert m["pass@1"] == exact((Fraction(1, 3) + Fraction(1, 2) + 0 + 0) / 4)
    assert c["n_tasks"] == 5 and c["n_tasks_scored"] == 4
    assert c["dropped_tasks"] == 1 and c["dropped_no_generated_test"] == 1
    assert c["n_programs"] == 9 and c["code_acc_tasks"] == 4 and c["bon_tasks"] == 4
    assert c["p00_pairs"] == 2 and c["p01_pairs"] == 6


def test_cure_carries_the_all_tasks_view_beside() -> None:
    m = compute_metrics(ALL, bon=CELLS, protocol="cure").metrics
    every = m["all_tasks"]
    # U3 back in: code (2 + 1) / (9 + 2), accumulate (14 + 1) / (24 + 2); it has a correct program but no test,
    # so the unit-test metrics do not move; BoN 2x2: U3 picks p0 (wrong, 0 of 1)
    assert every["code_acc"] == exact(Fraction(3, 11))
    assert every["code_accumulate_acc"] == exact(Fraction(15, 26))
    assert every["unit_test_acc"] == exact(Fraction(4, 5)) and every["p01"] == exact(Fraction(5, 6))
    assert every["bon"]["2x2"]["acc"] == exact(Fraction(1, 5))
    assert every["bon"]["2x2"]["accumulate_acc"] == exact(Fraction(8, 12))
    assert "all_tasks" not in compute_metrics([U1, U2], protocol="cure").metrics  # nothing dropped, no second view


def test_chat_counts_every_task_and_averages_bon_accumulate_per_task() -> None:
    result = compute_metrics(ALL, bon=CELLS, protocol="chat")
    m, c = result.metrics, result.counts
    assert m["code_acc"] == exact(Fraction(3, 11))
    assert m["code_accumulate_acc"] == exact(Fraction(15, 26))
    assert m["unit_test_acc"] == exact(Fraction(4, 5))
    assert m["p00"] == exact(Fraction(1, 2))
    # per-task hidden shares of the picks: U1 1, U2 4/5, U3 0, U4 2/3, U5 0
    assert m["bon"]["2x2"]["acc"] == exact(Fraction(1, 5))
    assert m["bon"]["2x2"]["accumulate_acc"] == exact((1 + Fraction(4, 5) + 0 + Fraction(2, 3) + 0) / 5)
    # tie-aware 3x2: U1 (1 + 0) / 2, U2 (4/5 + 1) / 2, U3 (0 + 1) / 2 (no test: all tied), U4 2/3, U5 0
    assert m["bon"]["3x2"]["tie_aware_accumulate_acc"] == exact(
        (Fraction(1, 2) + Fraction(9, 10) + Fraction(1, 2) + Fraction(2, 3)) / 5
    )
    assert "all_tasks" not in m and "dropped_tasks" not in c and c["n_tasks"] == 5


def test_equal_hidden_counts_make_pooled_and_averaged_accumulate_agree() -> None:
    # U1 and U4 trimmed to two hidden tests each: the two protocols' BoN accumulate coincide
    t4 = table("U4b", hidden=["AW", "WW"], generated=["A", "W"])
    cure = compute_metrics([U1, t4], bon=[(3, 3)], protocol="cure").metrics["bon"]["3x3"]
    chat = compute_metrics([U1, t4], bon=[(3, 3)], protocol="chat").metrics["bon"]["3x3"]
    assert cure == pytest.approx(chat, abs=1e-12)
    assert cure["accumulate_acc"] == exact(Fraction(0 + 1, 2 + 2))


def test_empty_denominators_match_upstream_under_cure_and_are_null_under_chat() -> None:
    # only U4 is scored (U3 dropped): no correct program, so no unit-test task and no p01/p00 pair
    cure = compute_metrics([U3, U4], bon=[(2, 2)], protocol="cure").metrics
    assert cure["code_acc"] == 0.0 and cure["code_accumulate_acc"] == exact(Fraction(2, 6))
    assert cure["unit_test_acc"] == 0.0 and cure["unit_test_accumulate_acc"] == 0.0  # safe_divide(0, 0)
    assert cure["p01"] == 1.0  # printed as 1 - safe_divide(0, 0)
    assert cure["p00"] == 0.0
    assert cure["bon"]["2x2"] == {
        "acc": 0.0,
        "accumulate_acc": exact(Fraction(2, 3)),
        "tie_aware_acc": 0.0,
        "tie_aware_accumulate_acc": exact(Fraction(2, 3)),
    }
    chat = compute_metrics([U3, U4], bon=[(2, 2)], protocol="chat").metrics
    assert [chat[k] for k in ("unit_test_acc", "unit_test_accumulate_acc", "p01", "p00")] == [None] * 4


def test_every_task_dropped_leaves_bon_null_and_code_metrics_zero_under_cure() -> None:
    result = compute_metrics([U3], bon=[(2, 2)], pass_at=(1,), protocol="cure")
    m = result.metrics
    assert m["code_acc"] == 0.0 and m["p01"] == 1.0
    assert set(m["bon"]["2x2"].values()) == {None}  # upstream divides by zero here
    assert m["pass@1"] is None  # not an upstream metric: not measurable is null
    assert m["all_tasks"]["code_acc"] == exact(Fraction(1, 2))
    assert result.counts["n_tasks_scored"] == 0 and result.counts["dropped_tasks"] == 1


def test_single_mode_keeps_every_task_under_both_protocols() -> None:
    for protocol in ("cure", "chat"):
        result = compute_metrics(ALL, single=True, protocol=protocol)
        assert result.metrics["code_acc"] == exact(Fraction(3, 11)), protocol
        assert "dropped_tasks" not in result.counts and "all_tasks" not in result.metrics
    assert compute_metrics([], single=True, protocol="cure").metrics["code_acc"] == 0.0
    assert compute_metrics([], single=True, protocol="chat").metrics["code_acc"] is None


def test_protocol_is_validated_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--protocol must be one of cure, chat \(got 'paper'\)"):
        compute_metrics(ALL, protocol="paper")
    with pytest.raises(ConfigError, match="--protocol"):
        BenchConfig(dataset="sample", coder=ModelConfig(model="m"), protocol="paper")
    assert BenchConfig(dataset="sample", coder=ModelConfig(model="m")).protocol == "cure"


def test_runs_scored_before_protocols_existed_read_as_chat() -> None:
    assert protocol_of({}) == "chat"
    assert protocol_of({"protocol": "cure"}) == "cure"
    assert protocol_of({"protocol": {"name": "chat", "coder": {}}}) == "chat"  # the manifest's record
    with pytest.raises(ConfigError, match="--protocol"):
        protocol_of({"protocol": "bogus"})
