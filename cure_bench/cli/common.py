"""What every `cure` subcommand shares: turning CureError into one red line and an exit code.

Subcommand modules (``cli_bench``, ``cli_data``, ``cli_report``, ``cli_serve``, ``cure_train.cli``) each
expose ``register(app)`` and import nothing heavy at module level, so ``cure --help`` stays fast.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from cure_bench.errors import CureError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True)

DEBUG_ENV = "CURE_DEBUG"


def cli_errors(fn: F) -> F:
    """Show a CureError as one red line and exit with its code; set CURE_DEBUG=1 for the traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CureError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]: re-run the same command to resume", highlight=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool = False) -> None:
    """The library logs with `logging`; the CLI decides how much of it a person sees."""
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
    # Only the CLI draws progress: tqdm bars of transformers / huggingface_hub would interleave with ours
    # (tqdm >= 4.66 reads TQDM_DISABLE). A user who wants them back sets either variable to 0.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # One line per HTTP request drowns the progress bars; the backend logs retries and failures itself.
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
