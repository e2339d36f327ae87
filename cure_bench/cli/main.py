"""The `cure` command: a root Typer app onto which each subcommand module registers itself."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="cure",
    help=(
        "Evaluate, train and serve co-evolving LLM coders and unit testers (CURE, arXiv 2506.03136). "
        "Errors are one line; set CURE_DEBUG=1 for the traceback."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from cure_bench import __version__

        typer.echo(f"cure-toolkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version."),
) -> None:
    """Set CURE_DEBUG=1 to see tracebacks instead of one-line errors."""


_SUBCOMMAND_MODULES = (
    "cure_bench.cli.bench",
    "cure_bench.cli.data",
    "cure_bench.cli.refine",
    "cure_bench.cli.report",
    "cure_bench.cli.serve",
    "cure_train.cli",
)

for _name in _SUBCOMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:  # during development a module may not exist yet
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
