"""Every metric the toolkit reports, named and defined once.

A metric is a :class:`MetricSpec`: its summary.json name, the label the terminal table and the report print,
one sentence of what it measures, what its numerator and denominator count, and (for the pooled metrics)
the function that gives one task's ``(numerator, denominator)``. The terminal table, the markdown report,
the bootstrap, the trainer's step log and the README's metric table all read this module, so adding a metric
is one entry in :data:`POOLED` (or :data:`BON_FIELDS` / :data:`RESPONSE_LENGTHS`) and nothing else.

Metrics are pooled over tasks, as the CURE paper's evaluation pools them: sum of numerators over sum of
denominators, never a mean of per-task ratios.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

Contribution = tuple[float, float]
"""(numerator, denominator) of one metric on one task."""


class Format(StrEnum):
    """How a value is shown: a share in [0, 1] (a percentage, as in the paper) or a token count."""

    RATIO = "ratio"
    TOKENS = "tokens"


def shown(value: float | None, fmt: Format = Format.RATIO) -> str:
    """A value as people read it everywhere (terminal table, report.md): shares as percentages to one place,
    like the paper's tables; token counts to one place. Full precision lives in summary.json/analysis.json."""
    if value is None:
        return "n/a"
    return f"{value:.1f}" if fmt is Format.TOKENS else f"{100 * value:.1f}"


@dataclass(frozen=True)
class TaskFacts:
    """One task's verdict table reduced to what the metric definitions read (pass bits and correctness).

    ``hidden[i][j]``: program i passes hidden test j; ``generated[i][j]``: program i passes generated test j.
    A program is *correct* when it passes every hidden test (none is correct without hidden tests); a generated
    test is *correct* when every correct program passes it, defined only when some program is correct.
    """

    task_id: str
    hidden: tuple[tuple[bool, ...], ...]
    generated: tuple[tuple[bool, ...], ...]

    @property
    def n_programs(self) -> int:
        return len(self.hidden)

    @property
    def n_hidden(self) -> int:
        return len(self.hidden[0]) if self.hidden else 0

    @property
    def n_generated(self) -> int:
        return len(self.generated[0]) if self.generated else 0

    @cached_property
    def correct(self) -> tuple[bool, ...]:
        return tuple(bool(row) and all(row) for row in self.hidden)

    @cached_property
    def good_tests(self) -> tuple[bool, ...] | None:
        """Which generated tests every correct program passes; None without a correct program."""
        rows = [g for g, ok in zip(self.generated, self.correct, strict=False) if ok]
        if not rows:
            return None
        return tuple(all(row[j] for row in rows) for j in range(self.n_generated))

    @property
    def judgeable(self) -> bool:
        """A task can judge programs at all: it has programs and at least one hidden test."""
        return self.n_programs > 0 and self.n_hidden > 0


Part = Callable[[TaskFacts], Contribution | None]
"""One task's share of a pooled metric; None when the task cannot inform it (it then counts nowhere)."""


@dataclass(frozen=True)
class MetricSpec:
    """One reported number: its summary.json key and everything a reader of it needs.

    ``numerator``/``denominator`` say what is counted (they become the report's "how these numbers are made"
    and the README's table). ``part`` computes a pooled metric per task; families computed elsewhere (BoN cells,
    pass@k, response lengths) have none. ``needs_tests``: only measured with generated tests (absent in
    ``--single`` runs). ``upstream_empty``: what the CURE evaluation script prints when the denominator is empty
    (its ``safe_divide`` gives 0; p01 is printed as ``1 - p``, so 1); the ``cure`` protocol reports that,
    ``chat`` reports None. ``train_log``: also in the trainer's per-step log. ``pairs``: the denominator counts
    (program, test) pairs, which ``counts["<name>_pairs"]`` reports.
    """

    name: str
    label: str
    description: str
    numerator: str
    denominator: str
    fmt: Format = Format.RATIO
    part: Part | None = None
    needs_tests: bool = False
    upstream_empty: float | None = None
    lower_is_better: bool = False
    train_log: bool = False
    pairs: bool = False


# ---------------------------------------------------------------------------------------------------------
# per-task parts of the pooled metrics
# ---------------------------------------------------------------------------------------------------------


def _code_acc(t: TaskFacts) -> Contribution | None:
    if not t.judgeable:
        return None
    return float(sum(t.correct)), float(t.n_programs)


def _code_accumulate_acc(t: TaskFacts) -> Contribution | None:
    if not t.judgeable:
        return None
    return float(sum(sum(row) for row in t.hidden)), float(t.n_programs * t.n_hidden)


def _tested(t: TaskFacts) -> tuple[tuple[bool, ...], list[tuple[bool, ...]], list[tuple[bool, ...]]] | None:
    """(correct tests, rows of correct programs, rows of wrong programs), for tasks where tests can be judged."""
    good = t.good_tests if t.judgeable else None
    if good is None:
        return None
    right = [g for g, ok in zip(t.generated, t.correct, strict=True) if ok]
    wrong = [g for g, ok in zip(t.generated, t.correct, strict=True) if not ok]
    return good, right, wrong


def _unit_test_acc(t: TaskFacts) -> Contribution | None:
    tested = _tested(t)
    return None if tested is None else (float(sum(tested[0])), float(t.n_generated))


def _unit_test_accumulate_acc(t: TaskFacts) -> Contribution | None:
    tested = _tested(t)
    if tested is None:
        return None
    right = tested[1]
    return float(sum(sum(row) for row in right)), float(len(right) * t.n_generated)


def _wrong_program_passes(t: TaskFacts, on_good: bool) -> Contribution | None:
    tested = _tested(t)
    if tested is None:
        return None
    good, _, wrong = tested
    cols = [j for j, g in enumerate(good) if g == on_good]
    return float(sum(row[j] for row in wrong for j in cols)), float(len(wrong) * len(cols))


def _p01(t: TaskFacts) -> Contribution | None:
    return _wrong_program_passes(t, on_good=True)


def _p00(t: TaskFacts) -> Contribution | None:
    return _wrong_program_passes(t, on_good=False)


# ---------------------------------------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------------------------------------

POOLED: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="code_acc",
        label="code accuracy",
        description="share of programs that pass every hidden test (at most `--max-test` of them)",
        numerator="programs passing all hidden tests",
        denominator="programs",
        part=_code_acc,
        upstream_empty=0.0,
        train_log=True,
    ),
    MetricSpec(
        name="code_accumulate_acc",
        label="code accumulate accuracy",
        description="share of (program, hidden test) pairs passed",
        numerator="(program, hidden test) pairs passed",
        denominator="(program, hidden test) pairs",
        part=_code_accumulate_acc,
        pairs=True,
        upstream_empty=0.0,
    ),
    MetricSpec(
        name="unit_test_acc",
        label="unit-test accuracy",
        description="over tasks with a correct program, share of generated tests that every correct program passes",
        numerator="generated tests every correct program passes",
        denominator="generated tests of tasks with a correct program",
        part=_unit_test_acc,
        needs_tests=True,
        upstream_empty=0.0,
        train_log=True,
    ),
    MetricSpec(
        name="unit_test_accumulate_acc",
        label="unit-test accumulate accuracy",
        description="share of (correct program, generated test) pairs passed",
        numerator="(correct program, generated test) pairs passed",
        denominator="(correct program, generated test) pairs",
        part=_unit_test_accumulate_acc,
        pairs=True,
        needs_tests=True,
        upstream_empty=0.0,
    ),
    MetricSpec(
        name="p01",
        label="p01 (wrong program passes a correct test)",
        description="share of (wrong program, correct test) pairs in which the wrong program passes",
        numerator="(wrong program, correct test) pairs where the wrong program passes",
        denominator="(wrong program, correct test) pairs",
        part=_p01,
        pairs=True,
        needs_tests=True,
        upstream_empty=1.0,  # upstream prints 1 - safe_divide(fails, pairs): 1 - 0 when there are no pairs
        lower_is_better=True,
        train_log=True,
    ),
    MetricSpec(
        name="p00",
        label="p00 (wrong program passes a wrong test)",
        description="share of (wrong program, wrong test) pairs in which the wrong program passes",
        numerator="(wrong program, wrong test) pairs where the wrong program passes",
        denominator="(wrong program, wrong test) pairs",
        part=_p00,
        pairs=True,
        needs_tests=True,
        upstream_empty=0.0,
        train_log=True,
    ),
)
"""The headline metrics, in report order."""

PASS_AT = MetricSpec(
    name="pass@k",
    label="pass@k",
    description="unbiased pass@k (Chen et al. 2021) per task, averaged over tasks; summary key `pass@<k>`",
    numerator="per-task pass@k",
    denominator="tasks",
)

BON_FIELDS: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="acc",
        label="acc",
        description="share of tasks whose picked program passes every hidden test",
        numerator="tasks whose picked program passes all hidden tests",
        denominator="tasks",
        needs_tests=True,
    ),
    MetricSpec(
        name="accumulate_acc",
        label="accumulate",
        description=(
            "hidden-test cells the picked programs pass: pooled over tasks under `--protocol cure`, "
            "a mean of per-task shares under `chat`"
        ),
        numerator="hidden tests passed by the picked programs",
        denominator="hidden tests of the picked programs (cure) / tasks (chat)",
        needs_tests=True,
    ),
)
"""What each BoN cell ``bon["NxM"]`` holds per ranker (the paper's ranker unprefixed, others with a prefix)."""

RESPONSE_LENGTHS: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="mean_code_response_tokens",
        label="mean coder tokens",
        description="mean length of the coder's answers in tokens, as the backend counted them",
        numerator="coder answer tokens",
        denominator="coder answers with a token count",
        fmt=Format.TOKENS,
    ),
    MetricSpec(
        name="mean_test_response_tokens",
        label="mean tester tokens",
        description="mean length of the tester's answers in tokens, as the backend counted them",
        numerator="tester answer tokens",
        denominator="tester answers with a token count",
        fmt=Format.TOKENS,
        needs_tests=True,
    ),
)

ALL_TASKS_KEY = "all_tasks"
"""summary.json ``metrics[ALL_TASKS_KEY]``: the same metrics over every task, when the protocol's task filter
dropped some (``--protocol cure`` drops tasks without a parsable generated test, as upstream does)."""


def pooled(single: bool = False) -> tuple[MetricSpec, ...]:
    """The pooled metrics a run of this kind measures (``--single`` measures no test metric)."""
    return tuple(s for s in POOLED if not (single and s.needs_tests))


def names(specs: Sequence[MetricSpec]) -> list[str]:
    return [s.name for s in specs]


def get(name: str) -> MetricSpec:
    """The spec of a summary.json metric key (``pass@3`` gives :data:`PASS_AT`)."""
    if name.startswith("pass@"):
        return PASS_AT
    for spec in (*POOLED, *RESPONSE_LENGTHS):
        if spec.name == name:
            return spec
    known = ", ".join([*names(POOLED), PASS_AT.name, *names(RESPONSE_LENGTHS)])
    raise KeyError(f"unknown metric {name!r}; the catalogue has {known}")


def label(name: str) -> str:
    """Display label of a metric key (pass@k keys are their own label)."""
    return name if name.startswith("pass@") else get(name).label


def train_log_names() -> list[str]:
    """The pooled metrics the trainer logs per step."""
    return [s.name for s in POOLED if s.train_log]


def markdown_table() -> str:
    """The README's metric table, generated from the catalogue (tests check the README carries it)."""
    rows = ["| metric | what it measures | counts | over |", "|---|---|---|---|"]
    for spec in (*POOLED, PASS_AT):
        rows.append(f"| `{spec.name}` | {spec.description} | {spec.numerator} | {spec.denominator} |")
    for spec in BON_FIELDS:
        rows.append(f"| `bon[NxM].{spec.name}` | {spec.description} | {spec.numerator} | {spec.denominator} |")
    for spec in RESPONSE_LENGTHS:
        rows.append(f"| `{spec.name}` | {spec.description} | {spec.numerator} | {spec.denominator} |")
    return "\n".join(rows)
