"""CURE's evaluation metrics as pure functions over verdict tables.

Every metric is *pooled over tasks* the way the CURE paper's evaluation pools them: a ratio of two sums
(e.g. correct programs over programs), not a mean of per-task ratios. Each task therefore contributes a
``(numerator, denominator)`` pair per metric (:func:`task_contributions`); :func:`compute_metrics` adds them
up. Keeping the per-task pairs explicit is what lets the analysis package bootstrap every headline metric by
resampling tasks with the exact same code path.

Definitions (names are the DESIGN.md contract):

- a program is *correct* when it passes every hidden test of its task (the table already holds only the
  first ``max_test`` hidden tests); a task without hidden tests cannot judge programs and is left out of
  every metric;
- a generated test is *correct* when every correct program of its task passes it; this is only defined for
  tasks with at least one correct program, so the unit-test metrics, ``p01`` and ``p00`` use those tasks only;
- a program that could not be extracted (NO_PROGRAM everywhere) is a *wrong program*, as upstream, where an
  empty answer simply fails its tests;
- a metric whose denominator is empty is ``None`` (JSON null): "not measurable here" must not read as 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.types import TaskTable

DEFAULT_BON: tuple[tuple[int, int], ...] = ((4, 4), (16, 16))

CODE_METRICS = ("code_acc", "code_accumulate_acc")
TEST_METRICS = ("unit_test_acc", "unit_test_accumulate_acc", "p01", "p00")

BON_FIELDS = ("acc", "accumulate_acc", "tie_aware_acc", "tie_aware_accumulate_acc")
"""Per BoN cell: the paper's first-index pick, then the uniform-among-ties expectation (extra keys)."""

Contribution = tuple[float, float]
"""(numerator, denominator) of one metric on one task."""


@dataclass
class MetricsResult:
    """The ``metrics`` and ``counts`` objects of summary.json.

    ``metrics`` holds the DESIGN.md names (``bon`` is a dict ``"NxM" -> {"acc", "accumulate_acc"}`` plus the
    extra ``"tie_aware_acc"``/``"tie_aware_accumulate_acc"``; pass@k keys are ``"pass@<k>"``); ``counts``
    says how many tasks, programs, tests and pairs lie behind them.
    """

    metrics: dict[str, Any]
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "counts": self.counts}


@dataclass
class TaskContributions:
    """One task's share of every pooled metric, plus its raw counts."""

    task_id: str
    parts: dict[str, Contribution] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def bon_key(n_code: int, n_case: int) -> str:
    return f"{n_code}x{n_case}"


def parse_bon_spec(spec: str, k_code: int, k_case: int) -> list[tuple[int, int]]:
    """Parse ``--bon`` ("4x4,16x16") into (N, M) pairs clipped to (k_code, k_case), duplicates dropped.

    Clipping (not rejecting) keeps the default ``4x4,16x16`` usable with ``--k-code 8``: the user asked for
    "the most there is", and the key names what was actually measured.
    """
    text = (spec or "").strip()
    if not text:
        return []
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
        if match is None:
            raise ConfigError(f"--bon must be a comma list of NxM such as 4x4,16x16 (bad item {part!r})")
        n, m = int(match.group(1)), int(match.group(2))
        if n < 1:
            raise ConfigError(f"--bon: N must be >= 1 in {part.strip()!r} (N programs are needed to pick one)")
        pair = (min(n, max(k_code, 1)), min(m, max(k_case, 0)))
        if pair not in out:
            out.append(pair)
    return out


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def correct_programs(table: TaskTable) -> list[bool]:
    """Which programs pass every hidden test (all False when the task has no hidden test)."""
    return [bool(row) and all(row) for row in table.hidden_pass()]


def correct_tests(table: TaskTable, correct: Sequence[bool] | None = None) -> list[bool] | None:
    """Which generated tests every correct program passes; None when the task has no correct program."""
    correct = correct_programs(table) if correct is None else correct
    if not any(correct):
        return None
    gen = table.generated_pass()
    good_rows = [gen[i] for i, ok in enumerate(correct) if ok]
    return [all(row[j] for row in good_rows) for j in range(table.n_generated)]


def pick_most_passes(gen_pass: Sequence[Sequence[bool]], n_code: int, n_case: int) -> int:
    """Index of the program, among the first ``n_code``, passing most of the first ``n_case`` tests.

    First index on ties, as the CURE evaluation's ``argmax``; with no tests every score is 0 and the
    pick is program 0.
    """
    n = min(n_code, len(gen_pass))
    if n < 1:
        raise ValueError("pick_most_passes needs at least one program")
    scores = [sum(bool(v) for v in row[:n_case]) for row in gen_pass[:n]]
    return scores.index(max(scores))


def tied_best(gen_pass: Sequence[Sequence[bool]], n_code: int, n_case: int) -> list[int]:
    """Every program, among the first ``n_code``, passing the most of the first ``n_case`` tests.

    The tie-aware BoN (an extra key beside the paper's number) picks uniformly among them: sample order
    carries no information, so "first index" turns a tie into a coin flip fixed by sampling order.
    """
    n = min(n_code, len(gen_pass))
    scores = [sum(bool(v) for v in row[:n_case]) for row in gen_pass[:n]]
    return [i for i, s in enumerate(scores) if s == max(scores)]


def _code_parts(table: TaskTable, correct: list[bool], pass_at: Iterable[int]) -> TaskContributions:
    hidden = table.hidden_pass()
    out = TaskContributions(table.task_id)
    n, n_hidden = table.n_programs, (len(hidden[0]) if hidden else 0)
    out.counts = {"n_programs": n, "n_correct_programs": sum(correct), "n_hidden_tests": n_hidden}
    if n == 0 or n_hidden == 0:
        return out
    c = sum(correct)
    out.parts["code_acc"] = (c, n)
    out.parts["code_accumulate_acc"] = (sum(sum(row) for row in hidden), n * n_hidden)
    for k in pass_at:
        if k <= n:
            out.parts[f"pass@{k}"] = (pass_at_k(n, c, k), 1.0)
    return out


def _test_parts(table: TaskTable, correct: list[bool], out: TaskContributions) -> None:
    """Unit-test metrics, p01, p00: only on tasks where test correctness is defined."""
    good_tests = correct_tests(table, correct)
    out.counts["n_generated_tests"] = table.n_generated
    if good_tests is None or out.counts["n_hidden_tests"] == 0:
        return
    gen = table.generated_pass()
    m = table.n_generated
    out.counts["n_correct_generated_tests"] = sum(good_tests)
    out.parts["unit_test_acc"] = (sum(good_tests), m)
    right_rows = [gen[i] for i, ok in enumerate(correct) if ok]
    wrong_rows = [gen[i] for i, ok in enumerate(correct) if not ok]
    out.parts["unit_test_accumulate_acc"] = (sum(sum(r) for r in right_rows), len(right_rows) * m)
    n_good, n_bad = sum(good_tests), m - sum(good_tests)
    p01 = sum(row[j] for row in wrong_rows for j in range(m) if good_tests[j])
    p00 = sum(row[j] for row in wrong_rows for j in range(m) if not good_tests[j])
    out.parts["p01"] = (p01, len(wrong_rows) * n_good)
    out.parts["p00"] = (p00, len(wrong_rows) * n_bad)


def _bon_parts(table: TaskTable, bon: Iterable[tuple[int, int]], out: TaskContributions) -> None:
    hidden = table.hidden_pass()
    if table.n_programs == 0 or not hidden[0]:
        return
    gen = table.generated_pass()
    for n_code, n_case in bon:
        picked = pick_most_passes(gen, n_code, n_case)
        row = hidden[picked]
        key = bon_key(n_code, n_case)
        out.parts[f"bon/{key}/acc"] = (float(all(row)), 1.0)
        out.parts[f"bon/{key}/accumulate_acc"] = (sum(row) / len(row), 1.0)
        tied = tied_best(gen, n_code, n_case)
        acc = sum(float(all(hidden[i])) for i in tied) / len(tied)
        out.parts[f"bon/{key}/tie_aware_acc"] = (acc, 1.0)
        out.parts[f"bon/{key}/tie_aware_accumulate_acc"] = (
            sum(sum(hidden[i]) / len(hidden[i]) for i in tied) / len(tied),
            1.0,
        )


def task_contributions(
    table: TaskTable,
    bon: Iterable[tuple[int, int]] = DEFAULT_BON,
    pass_at: Iterable[int] = (1,),
    single: bool = False,
) -> TaskContributions:
    """One task's (numerator, denominator) per metric; a metric the task cannot inform is absent.

    BoN keys are flattened to ``"bon/NxM/acc"`` so every metric is one number; :func:`pool` unflattens.
    """
    correct = correct_programs(table)
    out = _code_parts(table, correct, pass_at)
    if not single:
        _test_parts(table, correct, out)
        _bon_parts(table, bon, out)
    return out


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def metric_names(bon: Iterable[tuple[int, int]], pass_at: Iterable[int], single: bool) -> list[str]:
    """Flat names of every metric computed for these settings, in report order."""
    names = list(CODE_METRICS)
    if not single:
        names += list(TEST_METRICS)
        for n_code, n_case in bon:
            key = bon_key(n_code, n_case)
            names += [f"bon/{key}/{which}" for which in BON_FIELDS]
    names += [f"pass@{k}" for k in pass_at]
    return names


def pool_flat(parts: Sequence[TaskContributions], names: Sequence[str]) -> dict[str, float | None]:
    """Pooled value of each flat metric name: sum of numerators over sum of denominators, None if empty."""
    out: dict[str, float | None] = {}
    for name in names:
        num = sum(p.parts[name][0] for p in parts if name in p.parts)
        den = sum(p.parts[name][1] for p in parts if name in p.parts)
        out[name] = _ratio(num, den)
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"bon/4x4/acc": v}`` -> ``{"bon": {"4x4": {"acc": v}}}``; other keys unchanged."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        if name.startswith("bon/"):
            _, key, which = name.split("/")
            out.setdefault("bon", {}).setdefault(key, {})[which] = value
        else:
            out[name] = value
    return out


def _n_tasks(parts: Sequence[TaskContributions], name: str) -> int:
    """Tasks that actually inform ``name`` (a task with an empty denominator informs nothing)."""
    return sum(1 for p in parts if name in p.parts and p.parts[name][1] > 0)


def _counts(parts: Sequence[TaskContributions], names: Sequence[str], single: bool) -> dict[str, int]:
    counts: dict[str, int] = {"n_tasks": len(parts)}
    for key in ("n_programs", "n_correct_programs", "n_hidden_tests", "n_generated_tests", "n_correct_generated_tests"):
        if single and key in ("n_generated_tests", "n_correct_generated_tests"):
            continue
        counts[key] = sum(p.counts.get(key, 0) for p in parts)
    for name in names:
        if name.startswith("bon/"):
            continue
        counts[f"{name}_tasks"] = _n_tasks(parts, name)
    if not single:
        first_bon = next((n for n in names if n.startswith("bon/")), None)
        counts["bon_tasks"] = _n_tasks(parts, first_bon) if first_bon else 0
        for name in ("code_accumulate_acc", "unit_test_accumulate_acc", "p01", "p00"):
            counts[f"{name}_pairs"] = int(sum(p.parts[name][1] for p in parts if name in p.parts))
    else:
        counts["code_accumulate_acc_pairs"] = int(
            sum(p.parts["code_accumulate_acc"][1] for p in parts if "code_accumulate_acc" in p.parts)
        )
    return counts


def compute_metrics(
    tables: Sequence[TaskTable],
    bon: Iterable[tuple[int, int]] = DEFAULT_BON,
    pass_at: Iterable[int] = (1,),
    single: bool = False,
) -> MetricsResult:
    """Every CURE metric over ``tables``, pooled over tasks.

    ``single=True`` (one-shot coding, no generated tests): only code_acc, code_accumulate_acc and pass@k;
    the test metrics and BoN are *absent* (not None), because they were not measured at all.
    """
    bon, pass_at = list(bon), sorted(set(pass_at))
    parts = [task_contributions(t, bon, pass_at, single) for t in tables]
    names = metric_names(bon, pass_at, single)
    return MetricsResult(metrics=unflatten(pool_flat(parts, names)), counts=_counts(parts, names, single))
