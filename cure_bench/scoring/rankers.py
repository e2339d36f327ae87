"""Rankers: given programs x generated tests, which program does a Best-of-N method submit?

Each ranker returns, for a batch of S sub-tables (S draws of n programs x m tests of one task), a weight per
program: the probability that the method submits it. A deterministic rule (CURE's first argmax) puts weight 1
on one program; a rule with random tie-breaking spreads it uniformly over the tied ones, so the expected
accuracy is exact without simulating coin flips. The expected BoN accuracy of a draw is then
``sum(weight * correct)``.

- ``cure_first``: most generated tests passed, first index on ties (the CURE paper's ``argmax``).
- ``cure_tie_aware``: most tests passed, uniform among tied programs: what the same rule is worth when the
  sample order carries no information (it never does for i.i.d. samples).
- ``codet``: CodeT's dual execution agreement. Programs are grouped by the exact set of tests they pass; a
  group scores ``#tests in the set * sqrt(#programs in the group)`` (the square root is what CodeT's released
  code does, damping big clusters of wrong programs); the top-scoring group wins, ties between groups uniform,
  then uniform within the group (CodeT submits any member).
- ``majority_vote``: programs grouped by their outputs on the generated *inputs* (expected outputs ignored, as
  in MBR-exec / AlphaCode clustering); the biggest group wins, ties uniform among the tied programs. "Did not
  finish" is an output like any other, but programs that finish on none of the inputs (and programs that could
  not be extracted) do not vote, so a crowd of crashing programs cannot win; if nobody votes, the pick is
  uniform over all n programs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from cure_bench.scoring.subtables import (
    Draw,
    PrefixDraws,
    SubTables,
    TaskArrays,
    View,
    cell_hash,
    row_keys,
)

__all__ = [
    "PAPER_RANKER",
    "RANKERS",
    "REGISTRY",
    "Draw",
    "PrefixDraws",
    "RankerSpec",
    "SubTables",
    "TaskArrays",
    "View",
    "available_rankers",
    "cell_hash",
    "codet",
    "codet_scores",
    "cure_first",
    "cure_tie_aware",
    "expected_pick",
    "get_ranker",
    "majority_vote",
    "pick",
    "pick_most_passes",
    "register",
    "registered",
    "row_keys",
    "summary_rankers",
]

Weights = Callable[[SubTables], np.ndarray]
"""A ranker: S sub-tables -> (S, n) probability that each program is the one submitted."""


def _group_sizes(keys: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
    """(S, n) keys -> how many programs (among ``members``) share each program's key."""
    same = keys[:, :, None] == keys[:, None, :]
    if members is not None:
        same &= members[:, None, :]
    return same.sum(axis=-1)


def _normalise(w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.full_like(w, 1.0 / w.shape[1]), where=total > 0)


def cure_first(sub: SubTables) -> np.ndarray:
    scores = sub.scores
    tied = scores == scores.max(axis=1, keepdims=True)
    first = np.where(tied, sub.progs, np.iinfo(np.int64).max).argmin(axis=1)  # lowest original index
    w = np.zeros(scores.shape, dtype=float)
    w[np.arange(scores.shape[0]), first] = 1.0
    return w


def cure_tie_aware(sub: SubTables) -> np.ndarray:
    scores = sub.scores
    return _normalise((scores == scores.max(axis=1, keepdims=True)).astype(float))


def codet_scores(passes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CodeT score of each program's group and the group's size, for (S, n, m) pass matrices."""
    sizes = _group_sizes(row_keys(passes))
    return passes.sum(axis=-1) * np.sqrt(sizes), sizes


def codet(sub: SubTables) -> np.ndarray:
    sizes = _group_sizes(sub.pass_keys)
    scores = sub.scores * np.sqrt(sizes)
    top = np.isclose(scores, scores.max(axis=1, keepdims=True), rtol=1e-12, atol=1e-12)
    return _normalise(top / sizes)  # each tied group gets equal mass, shared by its members


def majority_vote(sub: SubTables) -> np.ndarray:
    if sub.out_keys is None:
        raise ValueError(f"task {sub.task.task_id}: no generated_outputs recorded; majority vote is unavailable")
    voters = sub.task.extracted[sub.progs] & sub.finished
    sizes = _group_sizes(sub.out_keys, voters)
    votes = np.where(voters, sizes, -1)
    top = (votes == votes.max(axis=1, keepdims=True)) & voters
    return _normalise(top.astype(float))  # tied groups have equal size: uniform over their programs


# ------------------------------------------------------------------------------------------------
# the registry: every consumer (summary.json's BoN, the surface, the report, /v1/select) picks through it
# ------------------------------------------------------------------------------------------------

PAPER_RANKER = "cure_first"
"""The CURE paper's rule; summary.json's unprefixed ``bon["NxM"]["acc"|"accumulate_acc"]`` use it."""


@dataclass(frozen=True)
class RankerSpec:
    """One Best-of-N ranker: its name, one line of help, and its weights function.

    ``summary``: summary.json's BoN cells carry its numbers, as ``<key_prefix>acc`` and
    ``<key_prefix>accumulate_acc`` (``key_prefix`` None means ``"<name>_"``); rankers with ``summary=False``
    appear in the report and the surface only. ``needs_outputs``: it reads program outputs on the generated
    inputs (unavailable where a run or a request did not record them). ``title`` and ``color`` style the plots.
    """

    name: str
    help: str
    weights: Weights
    summary: bool = True
    key_prefix: str | None = None
    needs_outputs: bool = False
    title: str | None = None
    color: str | None = None

    @property
    def prefix(self) -> str:
        return f"{self.name}_" if self.key_prefix is None else self.key_prefix


REGISTRY: dict[str, RankerSpec] = {}
"""Registered rankers, in registration order (the order of the report's rows and the plots' panels)."""

RANKERS: Mapping[str, RankerSpec] = MappingProxyType(REGISTRY)
"""A read-only live view of the registry (``cure_bench.RANKERS``); add rankers with :func:`register`."""


def register(spec: RankerSpec) -> RankerSpec:
    """Add a ranker; a name or summary key prefix already taken is an error (it would shadow numbers)."""
    if spec.name in REGISTRY:
        raise ValueError(f"a ranker named {spec.name!r} is already registered")
    taken = {s.prefix for s in REGISTRY.values() if s.summary}
    if spec.summary and spec.prefix in taken:
        raise ValueError(f"ranker {spec.name!r}: summary key prefix {spec.prefix!r} is already used")
    REGISTRY[spec.name] = spec
    return spec


@contextmanager
def registered(spec: RankerSpec) -> Iterator[RankerSpec]:
    """Register ``spec`` for the duration of a ``with`` block (tests, notebooks trying a ranker)."""
    register(spec)
    try:
        yield spec
    finally:
        REGISTRY.pop(spec.name, None)


def get_ranker(name: str) -> RankerSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown ranker {name!r}; registered: {', '.join(REGISTRY)}") from None


def summary_rankers() -> list[RankerSpec]:
    """The rankers whose numbers summary.json's BoN cells carry, the paper's first."""
    return [s for s in REGISTRY.values() if s.summary]


register(
    RankerSpec(
        "cure_first",
        "most tests passed, first index on ties (CURE paper)",
        cure_first,
        key_prefix="",
        title="CURE, first index on ties",
        color="#1f77b4",
    )
)
register(
    RankerSpec(
        "cure_tie_aware",
        "most tests passed, uniform among ties",
        cure_tie_aware,
        key_prefix="tie_aware_",
        title="CURE, uniform among ties",
        color="#ff7f0e",
    )
)
register(
    RankerSpec(
        "codet",
        "CodeT dual agreement: #tests x sqrt(#programs) per pass-set group",
        codet,
        summary=False,
        title="CodeT dual agreement",
        color="#2ca02c",
    )
)
register(
    RankerSpec(
        "majority_vote",
        "largest group of identical outputs on generated inputs",
        majority_vote,
        summary=False,
        needs_outputs=True,
        title="majority vote on outputs",
        color="#d62728",
    )
)


def available_rankers(tasks: Sequence[TaskArrays]) -> list[str]:
    """Every registered ranker, minus those needing outputs when some task has none recorded."""
    missing = any(t.outputs is None for t in tasks)
    return [name for name, spec in REGISTRY.items() if not (spec.needs_outputs and missing)]


def expected_pick(task: TaskArrays, ranker: str, n_code: int | None = None, n_case: int | None = None) -> np.ndarray:
    """Weights of the first ``n_code`` programs judged by the first ``n_case`` tests (a prefix slice)."""
    n = task.k_code if n_code is None else min(n_code, task.k_code)
    m = task.k_case if n_case is None else min(n_case, task.k_case)
    progs = np.arange(n)[None, :]
    tests = np.arange(m)[None, :]
    return get_ranker(ranker).weights(Draw(task, progs, tests))[0]


def pick(task: TaskArrays, ranker: str = PAPER_RANKER, n_code: int | None = None, n_case: int | None = None) -> int:
    """The one program a ranker submits: its heaviest program, the lowest index among equal weights.

    For the paper's rule this *is* CURE's ``argmax`` (weight 1 on the first program with most passes); a
    ranker that spreads weight over ties submits the first of them, so every pick is deterministic.
    """
    w = expected_pick(task, ranker, n_code, n_case)
    return int(np.flatnonzero(w == w.max())[0])


def pick_most_passes(gen_pass: Sequence[Sequence[bool]], n_code: int, n_case: int) -> int:
    """CURE's pick among the first ``n_code`` programs by the first ``n_case`` tests (first index on ties)."""
    if min(n_code, len(gen_pass)) < 1:
        raise ValueError("pick_most_passes needs at least one program")
    return pick(TaskArrays.from_passes("picked", gen_pass), PAPER_RANKER, n_code, n_case)
