"""What every `cure` subcommand shares: turning CureError into one red line and an exit code.

Subcommand modules (``cli_bench``, ``cli_data``, ``cli_report``, ``cli_serve``, ``cure_train.cli``) each
expose ``register(app)`` and import nothing heavy at module level, so ``cure --help`` stays fast.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from cure_bench.errors import CureError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True)

DEBUG_ENV = "CURE_DEBUG"

# Executor flags, shared by bench, bon, reward-serve and train (one declaration, one help text).
ExecutorOpt = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where programs run: local (this machine's cores) or ray (one sandbox per node of a Ray cluster; "
        "pip install 'cure-toolkit[ray]').",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="--executor ray: HOST:PORT of the head node (`ray start --head`), ray://HOST:PORT, auto, or local "
        "to start Ray on this machine (default: $RAY_ADDRESS).",
    ),
]


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


def tidy_help(fn: F, panels: dict[str, str] | None = None, default_panel: str | None = None) -> F:
    """Make ``--help`` readable at 80 columns: options grouped in panels, flags shown without a value.

    Typer labels a flag ``<bool>`` and a repeatable option ``<list[str]>``; a flag takes no value, so it gets
    none, and a repeatable option shows the value it takes once (``TEXT``, ``PATH``). ``panels`` maps parameter names to panel titles (the rest go to
    ``default_panel``). The option objects are edited in place: shared option types get the same panel in
    every command, which is what keeps bench and bon alike.
    """
    import inspect
    import typing

    from typer.models import OptionInfo

    signature = getattr(fn, "__signature__", None) or inspect.signature(fn, eval_str=True)
    for param in signature.parameters.values():
        annotation = param.annotation
        if typing.get_origin(annotation) is not typing.Annotated:
            continue
        base, *extras = typing.get_args(annotation)
        for info in extras:
            if not isinstance(info, OptionInfo):  # arguments keep their place and their metavar
                continue
            panel = (panels or {}).get(param.name, default_panel)
            if panel is not None:
                info.rich_help_panel = panel
            if info.metavar is not None:
                continue
            inner = [a for a in typing.get_args(base) if a is not type(None)] if _is_optional(base) else [base]
            kind = inner[0] if len(inner) == 1 else base
            if kind is bool:
                info.metavar = " "
            elif typing.get_origin(kind) is list:
                (item,) = typing.get_args(kind) or (str,)
                info.metavar = {"Path": "PATH", "str": "TEXT", "int": "N"}.get(getattr(item, "__name__", ""), "VALUE")
    return fn


def _is_optional(annotation: Any) -> bool:
    import types
    import typing

    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )
