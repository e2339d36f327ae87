"""`cure report` as a library call: analyse runs, build the comparison table, write plots and report.md.

The terminal table and the markdown report show the same numbers: every headline metric as a percentage with
its bootstrap CI and the number of tasks behind it, then Best-of-N per ranker. ``analysis.json`` beside the
report holds every number at full precision for scripts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench import __version__
from cure_bench.analysis.analyze import AnalysisSettings, RunAnalysis, analyze_run, headline_names
from cure_bench.analysis.bootstrap import Interval
from cure_bench.analysis.compare import Difference, comparisons
from cure_bench.analysis.picks import pick_rows
from cure_bench.analysis.trajectories import ROUND_HEADER, RefineRun, refine_run, round_rows
from cure_bench.fileio import atomic_write_json, atomic_write_text
from cure_bench.runs.reader import load_run
from cure_bench.scoring import catalogue
from cure_bench.scoring.metrics import bon_key, drop_reason, metric_names, protocol_of
from cure_bench.scoring.rankers import REGISTRY

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What `cure report` produced: the analyses, their display names, and the files written (if any)."""

    analyses: list[RunAnalysis]
    names: list[str]
    files: list[Path] = field(default_factory=list)
    differences: list[tuple[int, int, list[Difference]]] = field(default_factory=list)
    refine: dict[int, RefineRun] = field(default_factory=dict)  # run index -> its `cure refine` rounds

    @property
    def report_file(self) -> Path | None:
        return next((f for f in self.files if f.suffix == ".md"), None)


def display_names(analyses: Sequence[RunAnalysis]) -> list[str]:
    """Run labels, made unique with the run directory's name where two runs share model and dataset."""
    labels = [a.label for a in analyses]
    return [
        f"{lab} ({a.run.path.name})" if labels.count(lab) > 1 else lab for lab, a in zip(labels, analyses, strict=True)
    ]


def fmt(iv: Interval | None) -> str:
    if iv is None or iv.value is None:
        return "n/a"
    text = catalogue.shown(iv.value)
    if iv.low is not None and iv.high is not None:
        text += f" [{catalogue.shown(iv.low)}, {catalogue.shown(iv.high)}]"
    return text


def _band_interval(analysis: RunAnalysis, ranker: str, n: int, m: int) -> tuple[Interval, dict[str, Any]] | None:
    if analysis.surface is None or ranker not in analysis.surface.rankers:
        return None
    cell = analysis.bon_cell(ranker, n, m)
    n_tasks = len(analysis.surface.task_ids)
    return Interval(cell["expected"], cell["ci_low"], cell["ci_high"], n_tasks), cell


def table_rows(analyses: Sequence[RunAnalysis]) -> list[tuple[str, list[str]]]:
    """(row label, one cell per run): the content shared by the rich table and the markdown table."""
    rows: list[tuple[str, list[str]]] = []
    present = {n for a in analyses for n in headline_names(a)}
    ks = sorted(int(n[5:]) for n in present if n.startswith("pass@"))
    names = [n for n in metric_names([], ks, single=False) if n in present]  # one canonical order
    for name in names:
        rows.append((name, [fmt(a.intervals.get(name)) for a in analyses]))
        rows.append(("  tasks", [_n_tasks(a.intervals.get(name)) for a in analyses]))
    cells = list(dict.fromkeys(c for a in analyses for c in a.run.bon))
    for n, m in cells:
        key = bon_key(n, m)
        paper = [a.intervals.get(f"bon/{key}/acc") for a in analyses]
        rows.append((f"BoN {key} paper (prefix, first index)", [fmt(iv) for iv in paper]))
        for ranker in REGISTRY:
            values = [_band_interval(a, ranker, n, m) for a in analyses]
            if all(v is None for v in values):
                continue
            rows.append((f"BoN {key} expected {ranker}", [fmt(v[0]) if v else "n/a" for v in values]))
        rows.append(("  tasks", [_n_tasks(iv) for iv in paper]))
    return rows


def _n_tasks(iv: Interval | None) -> str:
    return "n/a" if iv is None else str(iv.n_tasks)


def rich_table(report: Report) -> Any:
    """A rich Table comparing the runs (built here, printed by the CLI)."""
    from rich.table import Table

    level = round(100 * report.analyses[0].settings.level) if report.analyses else 95
    table = Table(title=f"CURE metrics, % with {level}% bootstrap CI over tasks", show_lines=False)
    table.add_column("metric", style="bold")
    for name in report.names:
        table.add_column(name, justify="right")
    for label, cells in table_rows(report.analyses):
        style = "dim" if label.startswith("  ") else None
        table.add_row(label, *cells, style=style)
    return table


def build_report(
    run_dirs: Sequence[str | Path], out_dir: str | Path | None = None, settings: AnalysisSettings | None = None
) -> Report:
    """Load and analyse each run; with ``out_dir``, write PNGs, report.md, report.html and analysis.json there.

    A `cure refine` run directory is analysed through its round-0 bench run, with its rounds beside it.
    """
    settings = settings or AnalysisSettings()
    analyses = []
    refined: dict[int, RefineRun] = {}
    for i, run_dir in enumerate(run_dirs):
        refine = refine_run(run_dir, settings.resamples, settings.seed, settings.level)
        if refine is not None:
            refined[i] = refine
        run = load_run(refine.round0 if refine is not None else run_dir)
        log.info("analysing %s (%d tasks)", run.path, len(run.tasks))
        analyses.append(analyze_run(run, settings))
    report = Report(analyses, display_names(analyses), differences=comparisons(analyses), refine=refined)
    if out_dir is not None:
        report.files = write_report_files(report, Path(out_dir))
    return report


def report_json(report: Report) -> dict[str, Any]:
    """Every number of the report at full precision (what ``--json`` prints and analysis.json holds)."""
    return {
        "tool": "cure-toolkit",
        "version": __version__,
        "runs": [a.to_json() for a in report.analyses],
        "refine_rounds": {str(r.path): r.rounds for r in report.refine.values()},
        "paired_differences": [
            {
                "baseline": report.names[i],
                "other": report.names[j],
                "differences": [d.to_json() for d in diffs],
            }
            for i, j, diffs in report.differences
        ],
    }


def fmt_diff(d: Difference) -> str:
    iv = d.diff
    if iv.value is None:
        return "n/a"
    text = f"{100 * iv.value:+.1f}"
    if iv.low is not None and iv.high is not None:
        text += f" [{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]"
    return text + (" *" if d.significant else "")


def difference_rows(report: Report) -> list[tuple[str, str, list[list[str]]]]:
    """(baseline, other, rows of [metric, difference, shared tasks]) per comparison."""
    return [
        (report.names[i], report.names[j], [[d.metric, fmt_diff(d), str(d.diff.n_tasks)] for d in diffs])
        for i, j, diffs in report.differences
    ]


def rich_differences(report: Report) -> list[Any]:
    from rich.table import Table

    tables = []
    for base, other, rows in difference_rows(report):
        table = Table(title=f"{other} minus {base}, paired over shared tasks (pp; * = CI excludes 0)")
        for col in ("metric", "difference [CI]", "tasks"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for row in rows:
            table.add_row(*row)
        tables.append(table)
    return tables


def write_report_files(report: Report, out: Path) -> list[Path]:
    from cure_bench.analysis import plots
    from cure_bench.analysis.html import build_html

    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    figures: dict[int, list[tuple[str, Path]]] = {}
    for i, a in enumerate(report.analyses):
        if a.surface is None or not a.surface.task_ids:
            continue  # --single run, or no task with a program and a hidden test: nothing to draw
        stem = f"run{i + 1}"
        figures[i] = [
            (
                "Expected BoN accuracy over (n_code, n_case), one panel per ranker",
                plots.heatmap(a, out / f"{stem}_bon_heatmap.png"),
            ),
            ("BoN accuracy vs n per ranker, with bootstrap bands", plots.curves(a, out / f"{stem}_bon_curves.png")),
        ]
        files += [p for _, p in figures[i]]
    for i, refine in report.refine.items():
        from cure_bench.analysis.rounds import rounds_plot

        plot = rounds_plot(report.names[i], refine.rounds, out / f"{refine.path.name}_rounds.png")
        figures.setdefault(i, []).append(("Accuracy per refinement round, with bootstrap CI", plot))
        files.append(plot)
    models = _bar_names(report)
    bars = plots.dataset_bars(report.analyses, models, out / "per_dataset.png", _bar_metrics(report.analyses))
    files.append(bars)
    json_path = out / "analysis.json"
    atomic_write_json(json_path, report_json(report))
    md_path = out / "report.md"
    atomic_write_text(md_path, render_markdown(report, figures, bars, json_path))
    html_path = out / "report.html"
    atomic_write_text(html_path, build_html(report, figures, bars))
    return [*files, json_path, md_path, html_path]


def _bar_names(report: Report) -> list[str]:
    """Legend names for the per-dataset bars: the model, so one model keeps one colour across datasets."""
    keys = [(a.run.model_label, a.run.dataset_name) for a in report.analyses]
    return [
        a.run.model_label if keys.count(key) == 1 else name
        for a, key, name in zip(report.analyses, keys, report.names, strict=True)
    ]


def _bar_metrics(analyses: Sequence[RunAnalysis]) -> list[tuple[str, str]]:
    metrics = [("code_acc", "code_acc: programs correct")]
    if any(not a.run.single for a in analyses):
        metrics.append(("unit_test_acc", "unit_test_acc: generated tests correct"))
        cells = [c for a in analyses for c in a.run.bon]
        if cells:
            n, m = max(cells)
            metrics.append((f"bon/{bon_key(n, m)}/acc", f"BoN {bon_key(n, m)} (paper's rule)"))
    return metrics


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _runs_section(report: Report) -> str:
    rows = []
    for name, a in zip(report.names, report.analyses, strict=True):
        m = a.run.manifest
        ds = a.run.dataset_info
        sha = str(ds.get("sha256") or "")[:12] or "?"
        rows.append(
            [
                name,
                f"`{a.run.path}`",
                f"{a.run.dataset_name or '?'} (sha256 {sha}…)",
                str(m.get("k_code", "?")),
                str(m.get("k_case", "?")),
                str(m.get("max_test", "?")),
                str(len(a.run.tasks)),
            ]
        )
    return _md_table(["run", "directory", "dataset", "k_code", "k_case", "max_test", "tasks"], rows)


PICK_HEADER = ["cell", "scored tasks", "pick correct", "missed", "no correct program among first N", "missed tasks"]
PICK_NOTE = (
    "The paper's pick (most generated tests passed among the first N programs, first M tests, first index on ties) "
    "per task: *missed* tasks had a correct program among the first N, but the tests led the pick to a wrong one. "
    "report.html shows each task's pass counts and every ranker's pick."
)


def picks_section(report: Report) -> list[str]:
    """report.md's per-task BoN section, from the same per-task picks report.html and analysis.json show."""
    parts = []
    for name, a in zip(report.names, report.analyses, strict=True):
        rows = pick_rows(a.picks)
        if rows:
            parts.append(f"**{name}**\n\n" + _md_table(PICK_HEADER, rows))
    return ["## Best-of-N per task", PICK_NOTE, *parts] if parts else []


def rounds_section(report: Report) -> list[str]:
    """report.md's refinement rounds: code_acc per round (bootstrap CI over tasks) and what the repairs did."""
    parts = [
        f"**{report.names[i]}** (`{r.path}`)\n\n" + _md_table(ROUND_HEADER, round_rows(r))
        for i, r in report.refine.items()
    ]
    return ["## Refinement rounds (`cure refine`)", *parts] if parts else []


def _method_notes(report: Report) -> str:
    settings = report.analyses[0].settings if report.analyses else AnalysisSettings()
    methods = sorted({a.surface.method for a in report.analyses if a.surface is not None})
    rankers = "\n".join(f"- **{spec.name}**: {spec.help}" for spec in REGISTRY.values())
    metrics = "\n".join(
        f"- **{spec.name}**: share of {spec.numerator}" + (" (lower is better)" if spec.lower_is_better else "")
        for spec in catalogue.POOLED
    )
    return f"""## How these numbers are made

Metrics are pooled over tasks as in the CURE paper (a ratio of summed counts, not a mean of per-task ratios;
pass@k and BoN acc are means over tasks; BoN accumulate is pooled over the picked programs' hidden tests under
`--protocol cure` and a mean of per-task shares under `chat`):

{metrics}

{_protocol_note(report)}

Confidence intervals: {round(100 * settings.level)}% percentile bootstrap, {settings.resamples} resamples of
whole tasks (seed {settings.seed}); the "tasks" row under a metric counts the tasks behind it (those with a
non-empty denominator). A metric with no task behind it is n/a, never 0.

Best-of-N: the paper's number ("prefix, first index") picks among the *first* N programs by the *first* M tests,
one draw whose value depends on sample order. "Expected" numbers average over random subsets of N programs and M
tests of the run's table ({"; ".join(methods) or "no BoN surface"}); they are what a re-run with only N and M
samples would score on average. Rankers:

{rankers}

The bands show task-sampling uncertainty only (the Monte-Carlo error of the expectation is far smaller).
"""


def _protocol_note(report: Report) -> str:
    """Which tasks the numbers cover: under ``cure`` the tasks without a parsable generated test are left out."""
    lines = []
    for name, a in zip(report.names, report.analyses, strict=True):
        protocol = protocol_of(a.run.manifest)
        dropped = sum(1 for t in a.run.tables if drop_reason(t, protocol, a.run.single) is not None)
        rule = (
            "tasks without a parsable generated test are left out of every metric, as upstream's evaluation does"
            if protocol == "cure" and not a.run.single
            else "every task counts"
        )
        lines.append(f"- {name}: protocol `{protocol}`: {rule} ({dropped} of {len(a.run.tasks)} tasks left out).")
    return "Tasks behind the numbers:\n\n" + "\n".join(lines)


def render_markdown(report: Report, figures: dict[int, list[tuple[str, Path]]], bars: Path, json_path: Path) -> str:
    level = round(100 * report.analyses[0].settings.level) if report.analyses else 95
    header = ["metric (%)", *report.names]
    body = [["↳ tasks" if label == "  tasks" else label, *cells] for label, cells in table_rows(report.analyses)]
    parts = [
        "# CURE evaluation report",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by cure-toolkit {__version__}; every number is "
        "recomputed from the runs' verdict tables (`samples.jsonl`). "
        f"Full-precision values: [`{json_path.name}`]({json_path.name}).",
        "## Runs",
        _runs_section(report),
        f"## Metrics ({level}% bootstrap CI in brackets)",
        _md_table(header, body),
        *picks_section(report),
        *rounds_section(report),
        "## Per dataset",
        f"![Headline metrics per dataset]({bars.name})",
    ]
    for i, figs in figures.items():
        parts.append(f"## BoN surface: {report.names[i]}")
        parts += [f"**{caption}**\n\n![{caption}]({path.name})" for caption, path in figs]
    for base, other, rows in difference_rows(report):
        parts.append(f"## Paired difference: {other} minus {base}")
        parts.append(
            "Percentage points over the tasks both runs share, with a paired bootstrap CI (tasks resampled "
            "jointly); `*` marks a CI that excludes 0."
        )
        parts.append(_md_table(["metric", "difference (pp) [CI]", "shared tasks"], rows))
    parts.append(_method_notes(report))
    return "\n\n".join(parts) + "\n"
