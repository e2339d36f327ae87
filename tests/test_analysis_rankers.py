"""Rankers and the BoN surface against plain-Python reference implementations and hand computation."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from cure_bench.analysis.surface import SurfaceSettings, compute_surface
from cure_bench.scoring.metrics import compute_metrics
from cure_bench.scoring.rankers import TaskArrays, codet_scores, expected_pick, row_keys
from cure_bench.types import TaskTable, Verdict

A, W, N = Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.NO_PROGRAM


def make_table(task_id: str, hidden: list[str], gen: list[str], outs: list[str] | None = None) -> TaskTable:
    """Letters: A accepted, W wrong, R runtime error, N no program; ``outs`` one character per test ('.' = none)."""
    code = {"A": A, "W": W, "N": N, "R": Verdict.RUNTIME_ERROR}
    return TaskTable(
        task_id,
        [[code[c] for c in row] for row in hidden],
        [[code[c] for c in row] for row in gen],
        None if outs is None else [[None if c == "." else c for c in row] for row in outs],
    )


# ------------------------------------------------------------------------------------------------
# plain-Python reference rankers: probability that each program of a sub-table is submitted
# ------------------------------------------------------------------------------------------------


def ref_first(passes: list[list[bool]], outs: list[list[str | None]], extracted: list[bool]) -> list[Fraction]:
    scores = [sum(r) for r in passes]
    best = scores.index(max(scores))
    return [Fraction(int(i == best)) for i in range(len(scores))]


def ref_tie_aware(passes: list[list[bool]], outs: list[list[str | None]], extracted: list[bool]) -> list[Fraction]:
    scores = [sum(r) for r in passes]
    tied = [s == max(scores) for s in scores]
    return [Fraction(int(t), sum(tied)) for t in tied]


def ref_codet(passes: list[list[bool]], outs: list[list[str | None]], extracted: list[bool]) -> list[Fraction]:
    groups: dict[tuple[bool, ...], list[int]] = {}
    for i, row in enumerate(passes):
        groups.setdefault(tuple(row), []).append(i)
    score = {key: sum(key) * math.sqrt(len(members)) for key, members in groups.items()}
    best = max(score.values())
    top = [key for key in groups if math.isclose(score[key], best)]
    w = [Fraction(0)] * len(passes)
    for key in top:
        for i in groups[key]:
            w[i] = Fraction(1, len(top) * len(groups[key]))
    return w


def ref_majority(passes: list[list[bool]], outs: list[list[str | None]], extracted: list[bool]) -> list[Fraction]:
    m = len(passes[0]) if passes else 0
    voters = [e and (m == 0 or any(o is not None for o in row)) for e, row in zip(extracted, outs, strict=True)]
    if not any(voters):
        return [Fraction(1, len(passes))] * len(passes)
    counts = Counter(tuple(row) for row, v in zip(outs, voters, strict=True) if v)
    best = max(counts.values())
    top = [v and counts[tuple(row)] == best for row, v in zip(outs, voters, strict=True)]
    return [Fraction(int(t), sum(top)) for t in top]


REFS = {"cure_first": ref_first, "cure_tie_aware": ref_tie_aware, "codet": ref_codet, "majority_vote": ref_majority}


def brute_expected(table: TaskTable, ranker: str, n: int, m: int) -> Fraction:
    """Average over every (program subset, test subset) of the reference ranker's expected correctness."""
    k, t = table.n_programs, table.n_generated
    n, m = min(n, k), min(m, t)
    hidden_ok = [all(v is A for v in row) for row in table.hidden]
    extracted = [not all(v is N for v in row) for row in table.hidden]
    gen = table.generated_pass()
    outs = table.generated_outputs or [[None] * t for _ in range(k)]
    total, count = Fraction(0), 0
    for progs in itertools.combinations(range(k), n):
        for tests in itertools.combinations(range(t), m):
            passes = [[gen[i][j] for j in tests] for i in progs]
            sub_outs = [[outs[i][j] for j in tests] for i in progs]
            w = REFS[ranker](passes, sub_outs, [extracted[i] for i in progs])
            total += sum(wi * hidden_ok[i] for wi, i in zip(w, progs, strict=True))
            count += 1
    return total / count


def random_table(rng: random.Random, k: int, t: int, task_id: str = "r") -> TaskTable:
    hidden, gen, outs = [], [], []
    for _ in range(k):
        if rng.random() < 0.1:
            hidden.append("NN")
            gen.append("N" * t)
            outs.append("." * t)
            continue
        ok = rng.random() < 0.4
        hidden.append("AA" if ok else rng.choice(["AW", "WW", "WA"]))
        gen.append("".join("A" if (ok and rng.random() < 0.85) or rng.random() < 0.3 else "W" for _ in range(t)))
        outs.append("".join(rng.choice("xy.") if not ok else "x" for _ in range(t)))
    return make_table(task_id, hidden, gen, outs)


@pytest.mark.parametrize("seed", range(12))
def test_exact_surface_equals_exhaustive_enumeration(seed: int) -> None:
    rng = random.Random(seed)
    tables = [random_table(rng, rng.randint(2, 5), rng.randint(0, 4), f"t{i}") for i in range(3)]
    surface = compute_surface(tables, settings=SurfaceSettings(exact_limit=10**6))
    assert surface.exact.all()
    for ranker in REFS:
        grid = surface.mean(ranker)
        for a, n in enumerate(surface.n_codes):
            for b, m in enumerate(surface.n_cases):
                want = sum(brute_expected(t, ranker, n, m) for t in tables) / len(tables)
                assert grid[a, b] == pytest.approx(float(want), abs=1e-12), (ranker, n, m)


def test_monte_carlo_is_close_to_exact_and_reproducible() -> None:
    rng = random.Random(42)
    tables = [random_table(rng, 8, 6, f"t{i}") for i in range(4)]
    exact = compute_surface(tables, settings=SurfaceSettings(exact_limit=10**6))
    mc = SurfaceSettings(exact_limit=1, samples=3000, seed=7)
    first = compute_surface(tables, settings=mc)
    again = compute_surface(tables, n_codes=[3, 8], n_cases=[5], settings=mc)  # another grid: same numbers
    assert exact.exact.all() and not first.exact[1:-1, 1:-1].any()  # corners have a single subset
    assert "Monte-Carlo" in first.method and "exact" in exact.method
    for ranker in REFS:
        for which in ("acc", "accumulate_acc"):
            assert np.abs(first.mean(ranker, which) - exact.mean(ranker, which)).max() < 0.03, (ranker, which)
        for n in (3, 8):
            assert again.mean(ranker)[again.cell(n, 5)] == first.mean(ranker)[first.cell(n, 5)]


def test_prefix_slice_of_cure_first_is_the_papers_bon() -> None:
    rng = random.Random(3)
    tables = [random_table(rng, 6, 5, f"t{i}") for i in range(5)]
    surface = compute_surface(tables)
    bon = compute_metrics(tables, bon=[(2, 3), (6, 5), (4, 0)], protocol="chat").metrics["bon"]
    for n, m in [(2, 3), (6, 5), (4, 0)]:
        a, b = surface.cell(n, m)
        assert surface.mean("cure_first", kind="prefix")[a, b] == pytest.approx(bon[f"{n}x{m}"]["acc"])
        assert surface.mean("cure_first", "accumulate_acc", kind="prefix")[a, b] == pytest.approx(
            bon[f"{n}x{m}"]["accumulate_acc"]
        )
        assert surface.mean("cure_tie_aware", kind="prefix")[a, b] == pytest.approx(bon[f"{n}x{m}"]["tie_aware_acc"])


def test_tie_aware_differs_from_first_index_exactly_when_ties_mix_right_and_wrong() -> None:
    # programs 0 (wrong) and 2 (right) tie with 2 passes; program 1 passes fewer
    mixed = TaskArrays.from_table(make_table("mixed", ["WA", "WW", "AA"], ["AA", "AW", "AA"]))
    # programs 0 and 2 tie, both right: the rule does not matter
    pure = TaskArrays.from_table(make_table("pure", ["AA", "WW", "AA"], ["AA", "AW", "AA"]))
    # a unique best program: no tie at all
    unique = TaskArrays.from_table(make_table("unique", ["WA", "WW", "AA"], ["AW", "WW", "AA"]))
    for arrays, differs in ((mixed, True), (pure, False), (unique, False)):
        assert arrays is not None
        first = float(expected_pick(arrays, "cure_first") @ arrays.hidden_all)
        tie = float(expected_pick(arrays, "cure_tie_aware") @ arrays.hidden_all)
        assert (first != tie) is differs, arrays.task_id
    assert mixed is not None
    assert expected_pick(mixed, "cure_first").tolist() == [1.0, 0.0, 0.0]
    assert expected_pick(mixed, "cure_tie_aware").tolist() == [0.5, 0.0, 0.5]


def test_codet_scores_match_hand_computation() -> None:
    # pass sets: p0 {t0,t1}, p1 {t0,t1}, p2 {t0,t1,t2}, p3 {t2}, p4 {}
    passes = np.array(
        [[[1, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1], [0, 0, 0]]],
        dtype=bool,
    )
    scores, sizes = codet_scores(passes)
    assert sizes.tolist() == [[2, 2, 1, 1, 1]]
    assert scores[0].tolist() == pytest.approx([2 * math.sqrt(2), 2 * math.sqrt(2), 3.0, 1.0, 0.0])
    # group {t0,t1} (2 x sqrt 2 = 2.83) loses to {t0,t1,t2} (3 x 1 = 3): p2 is picked
    arrays = TaskArrays.from_table(make_table("c", ["AA", "AA", "WA", "AA", "WW"], ["AAW", "AAW", "AAA", "WWA", "WWW"]))
    assert arrays is not None
    assert expected_pick(arrays, "codet").tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    # three programs in the {t0,t1} group: 2 x sqrt 3 = 3.46 beats 3; mass split among the group
    arrays = TaskArrays.from_table(make_table("c3", ["AA", "AA", "AA", "WA"], ["AAW", "AAW", "AAW", "AAA"]))
    assert arrays is not None
    assert expected_pick(arrays, "codet").tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])


def test_codet_ties_between_groups_share_mass_per_group() -> None:
    # {t0} with 4 programs: 1 x 2 = 2; {t0,t1} with 1 program: 2 x 1 = 2 -> two tied groups, 1/2 each
    arrays = TaskArrays.from_table(make_table("g", ["A", "A", "W", "W", "A"], ["AW", "AW", "AW", "AW", "AA"]))
    assert arrays is not None
    assert expected_pick(arrays, "codet").tolist() == pytest.approx([1 / 8, 1 / 8, 1 / 8, 1 / 8, 1 / 2])


def test_majority_vote_groups_outputs_and_ignores_non_voters() -> None:
    # outputs: p0 "xy", p1 "xy", p2 "xz", p3 nothing extracted, p4 crashed everywhere ("..")
    table = make_table(
        "mv", ["AA", "AA", "WA", "NN", "WW"], ["AW", "AW", "AA", "NN", "WW"], ["xy", "xy", "xz", "..", ".."]
    )
    arrays = TaskArrays.from_table(table)
    assert arrays is not None
    assert expected_pick(arrays, "majority_vote").tolist() == [0.5, 0.5, 0.0, 0.0, 0.0]
    # a tie between groups of one: uniform over the voters only
    tied = make_table("mv2", ["A", "W", "N", "W"], ["A", "W", "N", "W"], ["x", "y", ".", "."])
    arrays = TaskArrays.from_table(tied)
    assert arrays is not None
    assert expected_pick(arrays, "majority_vote").tolist() == [0.5, 0.5, 0.0, 0.0]


def test_majority_vote_is_left_out_without_recorded_outputs() -> None:
    tables = [make_table("a", ["A", "W"], ["A", "W"])]
    surface = compute_surface(tables)
    assert surface.rankers == ["cure_first", "cure_tie_aware", "codet"]


def test_no_tests_means_first_program_or_uniform() -> None:
    arrays = TaskArrays.from_table(make_table("z", ["W", "A", "A", "W"], ["", "", "", ""]))
    assert arrays is not None
    assert expected_pick(arrays, "cure_first").tolist() == [1.0, 0.0, 0.0, 0.0]
    assert expected_pick(arrays, "cure_tie_aware").tolist() == [0.25] * 4
    surface = compute_surface([make_table("z", ["W", "A", "A", "W"], ["", "", "", ""])])
    assert surface.n_cases == [0]
    # expectation over random single programs is the pass@1 of the task, whatever the rule
    assert surface.mean("cure_first")[surface.cell(1, 0)] == pytest.approx(0.5)


def test_tasks_without_programs_or_hidden_tests_are_left_out() -> None:
    tables = [make_table("empty", [], []), make_table("nohidden", ["", ""], ["A", "W"]), make_table("ok", ["A"], ["A"])]
    surface = compute_surface(tables)
    assert surface.task_ids == ["ok"]


def test_row_keys_group_equal_rows_only() -> None:
    rows = np.array([[[1, 0, 2], [1, 0, 2], [0, 1, 2], [2, 0, 1]]])
    keys = row_keys(rows)[0]
    assert keys[0] == keys[1]
    assert len({int(k) for k in keys}) == 3


def test_monte_carlo_draws_depend_on_the_task_id_not_its_position() -> None:
    rng = random.Random(9)
    t1, t2 = random_table(rng, 8, 6, "one"), random_table(rng, 8, 6, "two")
    mc = SurfaceSettings(exact_limit=1, samples=64, seed=3)
    both = compute_surface([t1, t2], settings=mc)
    alone = compute_surface([t2], settings=mc)
    for key, values in alone.expected.items():
        assert np.array_equal(values[0], both.expected[key][1]), key
