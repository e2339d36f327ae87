"""`cure data`: list, download, validate, inspect and convert task files (thin shells over the library)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cure_bench.cli.common import cli_errors, err_console, setup_logging

console = Console()

data_app = typer.Typer(
    name="data",
    help="Datasets: list the registry, download, validate, inspect and convert task files.",
    no_args_is_help=True,
)

CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Dataset cache (default: $CURE_CACHE_DIR/datasets, i.e. ~/.cache/cure/datasets)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("list")
@cli_errors
def list_cmd(
    cache_dir: CacheDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the registry as JSON (for scripts).")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="One tab-separated line per dataset, no table.")] = False,
) -> None:
    """Registered datasets: name, aliases, source, size, and whether a local copy exists."""
    from cure_bench.tasks.registry import REGISTRY, cached_path

    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "aliases": list(spec.aliases),
            "source": spec.source,
            "candidates": [str(c) for c in spec.candidates],  # hub locations, in the order they are tried
            "size": spec.approx_size,
            "cached": cached_path(spec, cache_dir).is_file(),
            "dates": spec.has_dates,
        }
        for spec in REGISTRY
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if plain:
        for row in rows:
            cells = [row["name"], ",".join(row["aliases"]), row["source"], row["size"], str(row["cached"]).lower()]
            typer.echo("\t".join(cells))
        return
    table = Table(title="cure datasets", title_justify="left")
    # The name is what users copy into --dataset: it is never cut or wrapped; the other columns wrap.
    table.add_column("name", no_wrap=True, min_width=max(len(r["name"]) for r in rows))
    for column in ("aliases", "source", "size", "cached", "dates"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cached = "[green]yes[/]" if row["cached"] else "no"
        table.add_row(
            row["name"], ", ".join(row["aliases"]), row["source"], row["size"], cached, "yes" if row["dates"] else ""
        )
    console.print(table)


@data_app.command("download")
@cli_errors
def download_cmd(
    name: Annotated[
        str, typer.Argument(help="Registered dataset name or alias (see `cure data list`); NAME@REV pins a revision.")
    ],
    cache_dir: CacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if a copy is cached.")] = False,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Hub revision to pin (commit sha, branch or tag); cached apart.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the name, path and hub source as JSON.")] = False,
) -> None:
    """Download a registered dataset from the Hugging Face hub into the cache (old and new hub names are tried)."""
    from cure_bench.errors import DatasetError
    from cure_bench.tasks.registry import REGISTRY, fetch_dataset, find_spec, split_revision

    setup_logging()
    bare, pinned = split_revision(name)
    spec = find_spec(bare)
    if spec is None:
        raise DatasetError(f"unknown dataset '{name}'; registered: {', '.join(s.name for s in REGISTRY)}")
    path, source = fetch_dataset(spec, cache_dir, force=force, revision=revision or pinned)
    if as_json:
        hub = None if source is None else source.to_json()
        typer.echo(json.dumps({"name": spec.name, "path": str(path), "hub": hub}))
        return
    console.print(f"{spec.name}: {path}", highlight=False, soft_wrap=True)
    if source is not None:
        console.print(f"from {source.url} at {source.sha or 'an unrecorded commit'}", highlight=False, soft_wrap=True)


@data_app.command("validate")
@cli_errors
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="JSON array or JSONL task file to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (for scripts).")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Rows a run would leave out (no hidden tests, no question) are errors.")
    ] = False,
) -> None:
    """Check a task file against the CURE schema: every error (exit 1), and every row a run would leave out."""
    from cure_bench.tasks.reader import validate_task_file

    report = validate_task_file(file, strict=strict)
    if as_json:
        payload = {"path": str(file), "rows": report.n_rows, "valid": report.n_valid, "ok": report.ok}
        payload["skipped"] = report.n_skipped
        problems = [p.to_json() for p in report.errors]
        warnings = [p.to_json() for p in report.warnings]
        typer.echo(json.dumps({**payload, "problems": problems, "warnings": warnings}, indent=2))
        if not report.ok:
            raise typer.Exit(1)
        return
    for problem in report.errors:
        console.print(f"[red]{file}[/], {problem}", highlight=False, soft_wrap=True)
    for problem in report.warnings:
        console.print(
            f"[yellow]{file}[/], {problem} (left out: {problem.skip_reason})", highlight=False, soft_wrap=True
        )
    status = "[green]ok[/]" if report.ok else f"[red]{len(report.errors)} problem(s)[/]"
    if report.warnings:
        status += f", [yellow]{report.n_skipped} row(s) a run leaves out (--strict refuses them)[/]"
    console.print(f"{file}: {report.n_rows} rows, {report.n_valid} valid: {status}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("info")
@cli_errors
def info_cmd(
    dataset: Annotated[str, typer.Argument(help="Registered dataset name or a task file.")],
    cache_dir: CacheDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Counts, fingerprint, time-limit histogram and tests per task of a dataset."""
    from cure_bench.tasks.reader import iter_tasks
    from cure_bench.tasks.registry import resolve_dataset, summarize_tasks

    resolved = resolve_dataset(dataset, cache_dir=cache_dir)
    skipped: list[str] = []
    summary = summarize_tasks(iter_tasks(resolved.path, on_skip=lambda row, _: skipped.append(row.reason)))
    if as_json:
        payload = {"dataset": resolved.describe(), **summary.to_json(), "skipped_rows": len(skipped)}
        typer.echo(json.dumps(payload, indent=2))
        return
    info = summary.to_json()
    console.print(f"[bold]{resolved.name}[/]  {resolved.path}", highlight=False)
    console.print(f"file sha256        {resolved.sha256}", soft_wrap=True)
    if resolved.hub is not None:
        console.print(f"hub source         {resolved.hub.url} @ {resolved.hub.sha or '?'}", soft_wrap=True)
    if skipped:
        console.print(f"left out           {len(skipped)} row(s) upstream skips (see `cure data validate`)")
    console.print(f"task fingerprint   {summary.fingerprint}", soft_wrap=True)
    console.print(
        f"tasks {summary.n_tasks}, example tests {summary.n_example_tests}, hidden tests {summary.n_hidden_tests}"
    )
    if info["first_date"]:
        console.print(f"dates              {info['first_date']} .. {info['last_date']}")
    if summary.difficulties:
        console.print("difficulty         " + ", ".join(f"{k}: {v}" for k, v in info["difficulties"].items()))
    console.print(_histogram("time limit (s)", info["time_limits"], summary.n_tasks))
    console.print(_histogram("hidden tests/task", info["hidden_per_task"], summary.n_tasks))


def _histogram(title: str, counts: dict[str, int], total: int) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("value", justify="right")
    table.add_column("tasks", justify="right")
    table.add_column("", justify="left")
    for value, count in counts.items():
        table.add_row(value, str(count), "#" * max(1, round(30 * count / total)) if total else "")
    return table


@data_app.command("convert")
@cli_errors
def convert_cmd(
    source: Annotated[
        str, typer.Option("--from", help="Source format: mbpp, humaneval, lcb, codecontests or codeforces.")
    ],
    input_path: Annotated[Path, typer.Argument(help="Source file: JSON array, JSONL (.gz allowed) or Parquet.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Task file to write (.json array or .jsonl).")],
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Seconds per test (default: the source's own).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="mbpp only: test (ids 11-510, default), train, validation, prompt, all."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Convert only the first N source rows.")] = None,
    max_tests: Annotated[int | None, typer.Option("--max-tests", help="Keep at most N hidden tests per task.")] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Do not run reference solutions on the converted tests.")
    ] = False,
    verify_margin: Annotated[
        float, typer.Option("--verify-margin", help="References must finish within time-limit / margin.")
    ] = 2.0,
    workers: Annotated[int | None, typer.Option("--workers", help="Sandbox workers for verification.")] = None,
    sandbox: Annotated[str, typer.Option("--sandbox", help="Sandbox isolation for verification.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome counts as JSON.")] = False,
) -> None:
    """Convert a benchmark original to the CURE task schema; writes OUT and OUT.report.json (skips per reason)."""
    from cure_bench.tasks.convert import ConvertOptions, convert
    from cure_bench.tasks.convert.common import report_path

    setup_logging()
    options = ConvertOptions(
        time_limit=time_limit,
        verify=not no_verify,
        verify_margin=verify_margin,
        workers=workers,
        isolation=sandbox,
        limit=limit,
        split=split,
        max_tests=max_tests,
    )
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed} executions"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        bar = progress.add_task("converting; verifying reference solutions", total=None)
        report = convert(source.lower(), input_path, output, options, on_result=lambda: progress.advance(bar))
    if as_json:
        outcome = {"output": str(output), "report": str(report_path(output)), "total": report.total}
        skipped = dict(report.skipped.most_common())
        typer.echo(
            json.dumps({**outcome, "converted": report.converted, "skipped": skipped, "unverified": report.unverified})
        )
        return
    table = Table(title=f"{source} -> {output}", title_justify="left")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_row("[green]converted[/]", str(report.converted))
    for reason, count in report.skipped.most_common():
        table.add_row(f"skipped: {reason}", str(count))
    table.add_row("total", str(report.total))
    console.print(table)
    if report.unverified:
        console.print(f"{report.unverified} converted task(s) had no reference solution to verify", highlight=False)
    console.print(f"report: {report_path(output)}", highlight=False, soft_wrap=True)
