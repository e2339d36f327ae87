"""CURE's evaluation metrics as pure functions over verdict tables.

Every metric is *pooled over tasks* the way the CURE paper's evaluation pools them: a ratio of two sums
(e.g. correct programs over programs), not a mean of per-task ratios. Each task therefore contributes a
``(numerator, denominator)`` pair per metric (:func:`task_contributions`); :func:`compute_metrics` adds them
up. Keeping the per-task pairs explicit is what lets the analysis package bootstrap every headline metric by
resampling tasks with the exact same code path. The metrics themselves are defined once, in
:mod:`cure_bench.scoring.catalogue`; Best-of-N picks through the ranker registry (:mod:`.rankers`).

Definitions (names are the DESIGN.md contract):

- a program is *correct* when it passes every hidden test of its task (the table already holds only the
  first ``max_test`` hidden tests); a task without hidden tests cannot judge programs and is left out of
  every metric;
- a generated test is *correct* when every correct program of its task passes it; this is only defined for
  tasks with at least one correct program, so the unit-test metrics, ``p01`` and ``p00`` use those tasks only;
- a program that could not be extracted (NO_PROGRAM everywhere) is a *wrong program*, as upstream, where an
  empty answer simply fails its tests.

Two protocols (``--protocol``) differ in three rules, nothing else:

- ``cure`` (default; the CURE evaluation script's non-single mode): a task with no parsable generated test is
  left out of *every* metric, code_acc and BoN included (``counts`` says how many, and ``metrics["all_tasks"]``
  holds the same metrics over every task); BoN ``accumulate_acc`` pools the picked programs' hidden-test cells
  over tasks; an empty denominator gives what upstream prints (0, and 1 for p01) for upstream's metrics.
- ``chat``: every task counts, BoN ``accumulate_acc`` is the mean of per-task shares, and an empty
  denominator is ``None`` (JSON null): "not measurable here" never reads as 0.

``single=True`` keeps every task under both protocols, as upstream's single mode does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cure_bench.errors import ConfigError
from cure_bench.scoring import catalogue
from cure_bench.scoring.catalogue import ALL_TASKS_KEY, Contribution, TaskFacts
from cure_bench.scoring.rankers import RankerSpec, TaskArrays, expected_pick, get_ranker, summary_rankers
from cure_bench.types import TaskTable

DEFAULT_BON: tuple[tuple[int, int], ...] = ((4, 4), (16, 16))
DEFAULT_PROTOCOL = "cure"
PROTOCOLS = ("cure", "chat")  # the metric rules of cure_bench.generation.protocols' two protocols
DROP_NO_GENERATED_TEST = "no_generated_test"


def protocol_of(manifest: dict[str, Any]) -> str:
    """The metric protocol a run was scored under; runs written before protocols existed used ``chat``'s rules.

    The manifest records ``protocol`` as ``{"name": ..., <what it set per role>}`` (a bare name is read too).
    """
    value = manifest.get("protocol")
    if isinstance(value, dict):
        value = value.get("name")
    return check_protocol(str(value)) if value else "chat"


def check_protocol(protocol: str) -> str:
    """The protocol name, or a ConfigError naming ``--protocol`` and the choices."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    return protocol


@dataclass
class MetricsResult:
    """The ``metrics`` and ``counts`` objects of summary.json.

    ``metrics`` holds the DESIGN.md names (``bon`` is a dict ``"NxM" -> {"acc", "accumulate_acc"}`` plus one
    ``<prefix>acc``/``<prefix>accumulate_acc`` pair per other summary ranker, e.g. ``"tie_aware_acc"``; pass@k
    keys are ``"pass@<k>"``; ``"all_tasks"`` when the protocol dropped tasks); ``counts`` says how many tasks,
    programs, tests and pairs lie behind them, and how many tasks were dropped and why.
    """

    metrics: dict[str, Any]
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "counts": self.counts}


@dataclass
class TaskContributions:
    """One task's share of every pooled metric, its raw counts, and why the protocol drops it (None: kept)."""

    task_id: str
    parts: dict[str, Contribution] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    dropped: str | None = None


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


def facts(table: TaskTable) -> TaskFacts:
    """The pass bits the catalogue's definitions read (one empty generated row per program when none)."""
    hidden = tuple(tuple(row) for row in table.hidden_pass())
    gen = tuple(tuple(row) for row in table.generated_pass()) or tuple(() for _ in hidden)
    return TaskFacts(table.task_id, hidden, gen)


def correct_programs(table: TaskTable) -> list[bool]:
    """Which programs pass every hidden test (all False when the task has no hidden test)."""
    return list(facts(table).correct)


def correct_tests(table: TaskTable, correct: Sequence[bool] | None = None) -> list[bool] | None:
    """Which generated tests every correct program passes; None when the task has no correct program."""
    good = facts(table).good_tests
    return None if good is None else list(good)


def drop_reason(table: TaskTable, protocol: str, single: bool) -> str | None:
    """Why ``protocol`` leaves this task out of every metric (None: it counts).

    Upstream's non-single evaluation skips a task whose tester answers gave no parsable test before it counts
    anything for it; its single mode generates no test and keeps every task.
    """
    if protocol == "cure" and not single and table.n_generated == 0:
        return DROP_NO_GENERATED_TEST
    return None


def _pooled_parts(f: TaskFacts, single: bool, out: TaskContributions) -> None:
    for spec in catalogue.pooled(single):
        assert spec.part is not None
        part = spec.part(f)
        if part is not None:
            out.parts[spec.name] = part


def _code_counts(f: TaskFacts, pass_at: Iterable[int], out: TaskContributions) -> None:
    c = sum(f.correct)
    out.counts = {"n_programs": f.n_programs, "n_correct_programs": c, "n_hidden_tests": f.n_hidden}
    if not f.judgeable:
        return
    for k in pass_at:
        if k <= f.n_programs:
            out.parts[f"pass@{k}"] = (pass_at_k(f.n_programs, c, k), 1.0)


def _test_counts(f: TaskFacts, out: TaskContributions) -> None:
    out.counts["n_generated_tests"] = f.n_generated
    good = f.good_tests
    if good is not None and f.judgeable:
        out.counts["n_correct_generated_tests"] = sum(good)


def _bon_parts(
    table: TaskTable,
    f: TaskFacts,
    bon: Iterable[tuple[int, int]],
    pooled: bool,
    out: TaskContributions,
    extra_rankers: Sequence[str] = (),
) -> None:
    """Per cell and ranker (the summary ones, then ``extra_rankers``): acc and accumulate_acc of the (expected)
    pick among the first N by M."""
    arrays = TaskArrays.from_table(table)
    if arrays is None:
        return
    passes = np.array([sum(row) for row in f.hidden], dtype=float)
    for n_code, n_case in bon:
        key = bon_key(n_code, n_case)
        for spec in bon_rankers([table], extra_rankers):
            w = expected_pick(arrays, spec.name, n_code, n_case)
            n = len(w)
            out.parts[f"bon/{key}/{spec.prefix}acc"] = (float(w @ arrays.hidden_all[:n]), 1.0)
            if pooled:  # upstream: sum of the picked programs' passes over sum of their hidden tests
                accumulate = (float(w @ passes[:n]), float(f.n_hidden))
            else:
                accumulate = (float(w @ arrays.hidden_frac[:n]), 1.0)
            out.parts[f"bon/{key}/{spec.prefix}accumulate_acc"] = accumulate


def bon_rankers(tables: Sequence[TaskTable], extra: Sequence[str] = ()) -> list[RankerSpec]:
    """Summary rankers usable on every table (one needing outputs is left out if some table has none), then the
    ``extra`` rankers named (``cure refine --ranker codet``: its numbers beside the summary ones, never instead)."""
    missing = any(t.generated_outputs is None for t in tables)
    specs = summary_rankers() + [get_ranker(n) for n in extra if not get_ranker(n).summary]
    return [s for s in dict.fromkeys(specs) if not (s.needs_outputs and missing)]


def task_contributions(
    table: TaskTable,
    bon: Iterable[tuple[int, int]] = DEFAULT_BON,
    pass_at: Iterable[int] = (1,),
    single: bool = False,
    protocol: str = DEFAULT_PROTOCOL,
    extra_rankers: Sequence[str] = (),
) -> TaskContributions:
    """One task's (numerator, denominator) per metric; a metric the task cannot inform is absent.

    Parts are computed for every task, dropped or not (the all-tasks view pools them all); ``dropped`` says
    whether the protocol's pooled numbers leave it out. BoN keys are flattened to ``"bon/NxM/acc"`` so every
    metric is one number; :func:`unflatten` nests them again.
    """
    f = facts(table)
    out = TaskContributions(table.task_id, dropped=drop_reason(table, protocol, single))
    _code_counts(f, pass_at, out)
    _pooled_parts(f, single, out)
    if not single:
        _test_counts(f, out)
        _bon_parts(table, f, bon, protocol == "cure", out, extra_rankers)
    return out


def metric_names(
    bon: Iterable[tuple[int, int]], pass_at: Iterable[int], single: bool, rankers: Sequence[RankerSpec] | None = None
) -> list[str]:
    """Flat names of every metric computed for these settings, in report order."""
    names = catalogue.names(catalogue.pooled(single))
    if not single:
        specs = summary_rankers() if rankers is None else rankers
        for n_code, n_case in bon:
            key = bon_key(n_code, n_case)
            names += [f"bon/{key}/{r.prefix}{field.name}" for r in specs for field in catalogue.BON_FIELDS]
    names += [f"pass@{k}" for k in pass_at]
    return names


def empty_value(name: str, protocol: str) -> float | None:
    """What a metric with an empty denominator reports: upstream's printout under ``cure``, else None."""
    if protocol != "cure" or name.startswith(("bon/", "pass@")):
        return None  # upstream has no pass@k, and its BoN divides by zero (it crashes) when no task is left
    return catalogue.get(name).upstream_empty


def pool_flat(
    parts: Sequence[TaskContributions], names: Sequence[str], protocol: str = "chat"
) -> dict[str, float | None]:
    """Pooled value of each flat metric name: sum of numerators over sum of denominators.

    An empty denominator gives :func:`empty_value` (None under ``chat``).
    """
    out: dict[str, float | None] = {}
    for name in names:
        num = sum(p.parts[name][0] for p in parts if name in p.parts)
        den = sum(p.parts[name][1] for p in parts if name in p.parts)
        out[name] = empty_value(name, protocol) if den == 0 else num / den
    return out


def scored(parts: Sequence[TaskContributions]) -> list[TaskContributions]:
    """The tasks the protocol counts."""
    return [p for p in parts if p.dropped is None]


def part_of(p: TaskContributions, name: str) -> Contribution:
    """One task's (numerator, denominator) of ``name`` as pooled: (0, 0) when absent or dropped."""
    return (0.0, 0.0) if p.dropped is not None else p.parts.get(name, (0.0, 0.0))


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
    for name in (s.name for s in catalogue.pooled(single) if s.pairs):
        counts[f"{name}_pairs"] = int(sum(p.parts[name][1] for p in parts if name in p.parts))
    return counts


def _drop_counts(parts: Sequence[TaskContributions]) -> dict[str, int]:
    reasons = [p.dropped for p in parts if p.dropped is not None]
    out = {"n_tasks_scored": len(parts) - len(reasons), "dropped_tasks": len(reasons)}
    for reason in sorted(set(reasons)):
        out[f"dropped_{reason}"] = reasons.count(reason)
    return out


def compute_metrics(
    tables: Sequence[TaskTable],
    bon: Iterable[tuple[int, int]] = DEFAULT_BON,
    pass_at: Iterable[int] = (1,),
    single: bool = False,
    protocol: str = DEFAULT_PROTOCOL,
    extra_rankers: Sequence[str] = (),
) -> MetricsResult:
    """Every CURE metric over ``tables``, pooled over tasks, under ``protocol`` (see the module docstring).

    ``single=True`` (one-shot coding, no generated tests): only code_acc, code_accumulate_acc and pass@k;
    the test metrics and BoN are *absent* (not None), because they were not measured at all.
    """
    check_protocol(protocol)
    bon, pass_at = list(bon), sorted(set(pass_at))
    parts = [task_contributions(t, bon, pass_at, single, protocol, extra_rankers) for t in tables]
    names = metric_names(bon, pass_at, single, bon_rankers(tables, extra_rankers))
    kept = scored(parts)
    metrics = unflatten(pool_flat(kept, names, protocol))
    counts = _counts(kept, names, single)
    counts["n_tasks"] = len(parts)
    if protocol == "cure" and not single:
        counts.update(_drop_counts(parts))
        if len(kept) < len(parts):
            metrics[ALL_TASKS_KEY] = unflatten(pool_flat(parts, names, protocol))
    return MetricsResult(metrics=metrics, counts=counts)
