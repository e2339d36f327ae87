"""`cure report` and `cure rescore`: analyse saved runs offline, or judge their programs again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cure_bench.cli.common import cli_errors, err_console, setup_logging, tidy_help

Runs = Annotated[
    list[Path],
    typer.Argument(
        help="Run directories written by `cure bench`/`cure bon` (or a RUN_DIR/summary.rescore-NAME.json file).",
        show_default=False,
        metavar="RUN_DIR",
    ),
]
Out = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write report.md, report.html, PNG plots and analysis.json into this directory."),
]
Resamples = Annotated[int, typer.Option("--resamples", help="Bootstrap resamples of tasks for the CIs.", min=10)]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and of Monte-Carlo BoN draws.")]
Draws = Annotated[
    int,
    typer.Option(
        "--draws", help="Monte-Carlo draws per task and BoN cell (cells with fewer subsets are exact).", min=1
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the analysis as JSON to stdout instead of the table.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]

RunDir = Annotated[Path, typer.Argument(help="The run directory to re-judge.", show_default=False)]
TimeLimit = Annotated[
    float | None,
    typer.Option(
        "--time-limit", help="Seconds of CPU per execution for every task (default: each task's own).", min=0.01
    ),
]
CompareOpt = Annotated[
    str | None,
    typer.Option("--compare", help="Output comparison: whitespace (CURE's), exact, or float (default: the run's)."),
]
RescoreName = Annotated[
    str | None,
    typer.Option("--out", "-o", help="Name of the new files: summary.rescore-NAME.json (default: from the options)."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", "-d", help="Dataset file, when the path in the run's manifest is not valid here."),
]
Workers = Annotated[int | None, typer.Option("--workers", help="Sandbox worker processes (default: one per core).")]
SandboxOpt = Annotated[
    str, typer.Option("--sandbox", help="Isolation: auto, bwrap, unshare, rlimits, or none (only for trusted code).")
]
NoExecCache = Annotated[
    bool,
    typer.Option(
        "--no-exec-cache",
        help="Re-execute everything instead of reusing the run's cached executions (e.g. after a sandbox fix).",
    ),
]
MemoryLimit = Annotated[int | None, typer.Option("--memory-limit", help="Memory limit per execution in MiB.")]


@cli_errors
def report(
    runs: Runs,
    out: Out = None,
    resamples: Resamples = 1000,
    seed: Seed = 0,
    draws: Draws = 256,
    json_out: JsonOut = False,
    verbose: Verbose = False,
) -> None:
    """Compare runs: metrics with bootstrap CIs, Best-of-N per ranker; --out adds plots and report.md."""
    from rich.console import Console

    from cure_bench.analysis import AnalysisSettings, SurfaceSettings, build_report, rich_table
    from cure_bench.analysis.report import report_json, rich_differences

    setup_logging(verbose)
    settings = AnalysisSettings(resamples=resamples, seed=seed, surface=SurfaceSettings(samples=draws, seed=seed))
    result = build_report(runs, out, settings)
    if json_out:
        typer.echo(json.dumps(report_json(result), indent=2))
    else:
        console = Console()
        console.print(rich_table(result))
        for table in rich_differences(result):
            console.print(table)
        for refine in result.refine.values():
            for r in refine.rounds:
                code, sel = r["code_acc"], r["selected_acc"]
                console.print(f"{refine.path.name} round {r['round']}: code_acc {_pct(code['value'])} "
                              f"[{_pct(code['ci_low'])}, {_pct(code['ci_high'])}] selected {_pct(sel['value'])} "
                              f"[{_pct(sel['ci_low'])}, {_pct(sel['ci_high'])}]")  # fmt: skip
    if result.report_file is not None:
        n_png = sum(1 for f in result.files if f.suffix == ".png")
        err_console.print(f"report: {result.report_file} ({n_png} figures)")


@cli_errors
def rescore(
    run_dir: RunDir,
    time_limit: TimeLimit = None,
    compare: CompareOpt = None,
    out: RescoreName = None,
    dataset: DatasetOpt = None,
    workers: Workers = None,
    sandbox: SandboxOpt = "auto",
    no_exec_cache: NoExecCache = False,
    memory_limit: MemoryLimit = None,
    verbose: Verbose = False,
) -> None:
    """Judge a run's saved programs and tests again (no generation); writes a new summary beside the old one."""
    from cure_bench.analysis.rescore import RescoreOptions, rescore_run
    from cure_bench.cli.progress import RichProgress
    from cure_bench.errors import ConfigError
    from cure_bench.types import CompareMode

    setup_logging(verbose)
    try:
        mode = CompareMode(compare) if compare is not None else None
    except ValueError:
        raise ConfigError(f"--compare must be whitespace, exact or float (got {compare!r})") from None
    options = RescoreOptions(
        time_limit=time_limit,
        compare=mode,
        name=out,
        dataset=dataset,
        memory_limit_mb=memory_limit,
        workers=workers,
        sandbox=sandbox,
        exec_cache=not no_exec_cache,
    )
    with RichProgress(err_console) as progress:
        progress.start("judge", 0)
        result = rescore_run(run_dir, options, on_progress=lambda done, n: progress.advance("judge", done, n))
        progress.finish("judge")
    err_console.print(_comparison(result.previous, result.summary["metrics"]))
    changes = result.summary["run"]["rescore"]["verdict_changes"]
    err_console.print(f"verdicts changed: {changes['hidden']} hidden, {changes['generated']} generated")
    err_console.print(f"wrote {result.summary_path}")


def _flat(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in metrics.items() if k != "bon" and "tokens" not in k and not isinstance(v, dict)}
    for key, cell in (metrics.get("bon") or {}).items():
        for which, value in cell.items():
            out[f"bon {key} {which}"] = value
    return out


def _comparison(before: dict[str, Any], after: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="rescored metrics (%)")
    for col in ("metric", "before", "after", "change"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    old, new = _flat(before), _flat(after)
    for name in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(name), new.get(name)
        if not isinstance(a, int | float | None) or not isinstance(b, int | float | None):
            continue
        delta = f"{100 * (b - a):+.1f}" if a is not None and b is not None else ""
        table.add_row(name, _pct(a), _pct(b), delta)
    return table


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def register(app: typer.Typer) -> None:
    app.command("report")(tidy_help(report))
    app.command("rescore")(tidy_help(rescore))
