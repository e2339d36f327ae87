"""`cure train CONFIG`: validate the config, run the CURE loop, draw one progress bar over steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cure_bench.cli.common import cli_errors, err_console, setup_logging
from cure_bench.errors import ConfigError

ConfigArg = Annotated[Path | None, typer.Argument(help="The training config (YAML); see --print-default-config.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint-* in output_dir.")]
PrintDefault = Annotated[
    bool, typer.Option("--print-default-config", help="Print the complete, commented default config and exit.")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key, e.g. --set rollout.k_code=8 (repeatable; YAML values)."),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]

_STEP_COLUMNS = (
    ("code_reward_mean", "code r"),
    ("test_reward_mean", "test r"),
    ("signal_share", "signal"),
    ("code_acc", "code acc"),
    ("unit_test_acc", "UT acc"),
    ("loss", "loss"),
    ("kl", "kl"),
    ("rollout_s", "gen s"),
    ("judge_s", "judge s"),
    ("update_s", "update s"),
)


class RichTrainProgress:
    """A bar over CURE steps and one line of the step log per step."""

    def __init__(self, console: Console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: Any = None

    def start(self, total_steps: int, first_step: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("train", total=total_steps, completed=first_step)

    def step(self, record: dict[str, Any]) -> None:
        parts = [f"step {record.get('step')}"]
        for key, label in _STEP_COLUMNS:
            value = record.get(key)
            if isinstance(value, int | float):
                parts.append(f"{label} {value:.3g}")
        evals = {k: v for k, v in record.items() if k.startswith("eval/") and isinstance(v, int | float)}
        if evals:
            parts.append("eval " + " ".join(f"{k[5:]} {v:.3g}" for k, v in sorted(evals.items())[:4]))
        self._progress.console.print(" | ".join(parts), highlight=False)
        self._progress.update(self._task, completed=record.get("step", 0))

    def finish(self) -> None:
        self._progress.stop()


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["rollout.k_code=8"]`` -> ``{"rollout.k_code": 8}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set rollout.k_code=8")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


def register(app: typer.Typer) -> None:
    @app.command("train")
    @cli_errors
    def train(
        config: ConfigArg = None,
        resume: Resume = False,
        print_default_config: PrintDefault = False,
        set_: SetOpt = None,
        verbose: Verbose = False,
    ) -> None:
        """Train one model as coder and unit tester with CURE's co-evolution RL (TRL GRPO underneath).

        Several GPUs: accelerate launch --config_file cure_train/configs/zero2.yaml -m cure_bench.cli train CONFIG
        (see docs/training.md).
        """
        from cure_train.config import default_config_text, load_config

        if print_default_config:
            typer.echo(default_config_text(), nl=False)
            return
        if config is None:
            raise ConfigError("cure train: give a CONFIG file (start from `cure train --print-default-config`)")
        setup_logging(verbose)
        cfg = load_config(config, parse_overrides(set_))
        from cure_train.trainer import run_training

        progress = RichTrainProgress(err_console)
        result = run_training(cfg, resume=resume, progress=progress)
        err_console.print(
            f"[bold green]done:[/] {result.steps} steps; log {result.log_path}; "
            f"last checkpoint {result.last_checkpoint}",
            highlight=False,
        )
