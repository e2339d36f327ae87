"""The `cure` command line: one module per command group, each a thin shell over one library call.

``app`` (the root Typer app) lives in :mod:`cure_bench.cli.main`; ``common`` holds the error edge and the
shared option types; ``render`` and ``progress`` are the only places that draw for people.
"""

from cure_bench.cli.main import app

__all__ = ["app"]
