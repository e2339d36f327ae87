"""`cure train CONFIG`: validate the config, run the CURE loop, draw one progress bar over steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cure_bench.cli.common import ExecutorOpt, RayAddress, cli_errors, err_console, setup_logging
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
Plan = Annotated[
    bool,
    typer.Option(
        "--plan",
        help="Validate the config, print the batch plan per rank and a per-GPU memory estimate; no GPU needed.",
    ),
]
Gpus = Annotated[int, typer.Option("--gpus", min=1, help="--plan: number of training processes (GPUs).")]
GpuMemory = Annotated[float, typer.Option("--gpu-memory", min=1.0, help="--plan: memory of each GPU in GB.")]
Zero = Annotated[
    int | None,
    typer.Option(
        "--zero",
        min=0,
        max=3,
        help="--plan: DeepSpeed ZeRO stage (default: optim.deepspeed's, else 2 on several GPUs, else none).",
    ),
]
PrepareLabels = Annotated[
    bool,
    typer.Option(
        "--prepare-labels",
        help="Label-free mode: generate the tester's labels for every task (resumable) and exit; run before launching ranks.",
    ),
]
NoMemoryCheck = Annotated[
    bool, typer.Option("--no-memory-check", help="Start even when the memory estimate says it does not fit.")
]

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
        plan: Plan = False,
        gpus: Gpus = 1,
        gpu_memory: GpuMemory = 80.0,
        zero: Zero = None,
        prepare_labels: PrepareLabels = False,
        no_memory_check: NoMemoryCheck = False,
        executor: ExecutorOpt = None,
        ray_address: RayAddress = None,
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
        overrides = parse_overrides(set_)
        # the flags are shortcuts for the judge's config keys (the config file's value when left out)
        for key, value in (("reward.sandbox_executor", executor), ("reward.ray_address", ray_address)):
            if value is not None:
                overrides[key] = value
        if plan:
            _print_plan(config, overrides, gpus, gpu_memory, zero)
            return
        cfg = load_config(config, overrides)
        if prepare_labels:
            from cure_train.labels import prepare_labels as run_prepare

            path, n_tasks, n_empty = run_prepare(cfg)
            err_console.print(f"[bold green]labels:[/] {n_tasks} tasks ({n_empty} without a usable test) in {path}")
            return
        from cure_train.trainer import run_training

        progress = RichTrainProgress(err_console)
        result = run_training(cfg, resume=resume, progress=progress, memory_check=not no_memory_check)
        err_console.print(
            f"[bold green]done:[/] {result.steps} steps; log {result.log_path}; "
            f"last checkpoint {result.last_checkpoint}",
            highlight=False,
        )


def _print_plan(config: Path, overrides: dict[str, Any], gpus: int, gpu_memory: float, zero: int | None) -> None:
    """``--plan``: everything is checked as on a CUDA box with vLLM; exits 1 (one line naming the knob) if it cannot fit."""
    from cure_train.config import assume_gpu_box, load_config
    from cure_train.plan import check_fits, default_zero, render_plan

    with assume_gpu_box():
        cfg = load_config(config, overrides)
        stage = default_zero(cfg, gpus) if zero is None else zero
        text, memory = render_plan(cfg, gpus, gpu_memory, stage)
    typer.echo(text)
    check_fits(memory, gpu_memory)
