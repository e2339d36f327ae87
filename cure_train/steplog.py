"""The per-step JSONL log and the TrainerCallback that writes it, saves checkpoints and runs evaluations.

One line per CURE step in ``<output_dir>/train_log.jsonl``: reward statistics and rollout metrics from the
judge, the time split (rollout / judging / update), TRL's loss-side metrics (loss, kl, entropy, clip
ratios, grad norm) and, on evaluation steps, the bench metrics under ``eval/``. The log is rewritten on
resume so it never holds a step the restored checkpoint has not seen.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from transformers import TrainerCallback

from cure_bench.fileio import atomic_write_jsonl

log = logging.getLogger(__name__)

LOG_NAME = "train_log.jsonl"
TRL_KEYS = ("loss", "grad_norm", "learning_rate", "kl", "entropy")
TRL_PREFIXES = ("clip_ratio", "sampling/")  # sampling/: TRL's vLLM importance-sampling ratios and log-prob gaps


class TrainProgress(Protocol):
    """What the CLI draws: ``start`` once, ``step`` after every logged step, ``finish`` at the end."""

    def start(self, total_steps: int, first_step: int) -> None: ...

    def step(self, record: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...


class NullTrainProgress:
    def start(self, total_steps: int, first_step: int) -> None:
        log.info("training from step %d to %d", first_step, total_steps)

    def step(self, record: dict[str, Any]) -> None:
        log.info("step %s: %s", record.get("step"), _brief(record))

    def finish(self) -> None:
        log.info("training finished")


@dataclass
class StepTimer:
    """Seconds spent generating in the current step (the trainer adds to it)."""

    rollout_s: float = 0.0


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def truncate_log(path: Path, last_step: int) -> None:
    """Keep only lines up to ``last_step`` (a resumed run re-does the steps after its checkpoint)."""
    rows = read_log(path)
    kept = [row for row in rows if int(row.get("step", 0)) <= last_step]
    if len(kept) != len(rows):
        atomic_write_jsonl(path, kept)


def append_log(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()


class CureStepCallback(TrainerCallback):
    """Turns TRL's optimizer steps into CURE steps: log line, checkpoint schedule, evaluation schedule.

    One CURE step is ``updates_per_step`` optimizer steps (1 by default: one update over every answer of
    the step, as in the paper). ``scores`` returns the judge's statistics of the last generation batch;
    ``evaluate`` (optional) runs the bench pipeline on the current weights and returns flat metrics.
    ``launch`` (see :func:`launch_facts`) goes into every line, so a log says how it was trained (DDP or
    DeepSpeed and its ZeRO stage) from what the trainer's accelerator actually did, not from the config.
    """

    def __init__(
        self,
        output_dir: Path,
        *,
        updates_per_step: int,
        total_steps: int,
        save_interval: int,
        eval_interval: int,
        scores: Callable[[], dict[str, Any] | None],
        timer: StepTimer,
        evaluate: Callable[[int], dict[str, Any]] | None = None,
        progress: TrainProgress | None = None,
        launch: dict[str, Any] | None = None,
    ):
        self.log_path = Path(output_dir) / LOG_NAME
        self.updates_per_step = updates_per_step
        self.total_steps = total_steps
        self.save_interval = save_interval
        self.eval_interval = eval_interval
        self.scores = scores
        self.timer = timer
        self.evaluate = evaluate
        self.progress = progress or NullTrainProgress()
        self.launch = dict(launch or {})
        self._started = time.perf_counter()
        self._pending: dict[str, Any] | None = None
        self._earlier: dict[str, Any] = {}  # TRL metrics of the step's earlier updates (update1/loss, ...)

    def cure_step(self, global_step: int) -> int:
        return global_step // self.updates_per_step

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        first = self.cure_step(state.global_step)
        if state.is_world_process_zero:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            truncate_log(self.log_path, first)
            self.progress.start(self.total_steps, first)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.updates_per_step == 0:
            self._started = time.perf_counter()
            self.timer.rollout_s = 0.0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.updates_per_step:
            return
        step = self.cure_step(state.global_step)
        if step % self.save_interval == 0 or step >= self.total_steps:
            control.should_save = True
        stats = dict(self.scores() or {})
        judge_s = float(stats.pop("judge_s", 0.0) or 0.0)
        step_s = time.perf_counter() - self._started
        record: dict[str, Any] = {"step": step, "update": state.global_step, **stats}
        if self.launch:
            record["launch"] = self.launch
        record.update(
            rollout_s=round(self.timer.rollout_s, 3),
            judge_s=round(judge_s, 3),
            update_s=round(max(step_s - self.timer.rollout_s - judge_s, 0.0), 3),
            step_s=round(step_s, 3),
        )
        if self.evaluate is not None and self.eval_interval and step % self.eval_interval == 0:
            eval_started = time.perf_counter()
            metrics = self.evaluate(step)
            record.update({f"eval/{name}": value for name, value in metrics.items()})
            record["eval_s"] = round(time.perf_counter() - eval_started, 3)
        self._pending = record

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            self._pending = None  # only the main process writes the log
            return
        wanted = {k: v for k, v in (logs or {}).items() if k in TRL_KEYS or k.startswith(TRL_PREFIXES)}
        if self._pending is None:  # an optimizer update inside a step (update: separate, or gradient_accumulation)
            index = state.global_step % self.updates_per_step
            self._earlier.update({f"update{index}/{k}": v for k, v in wanted.items()})
            return
        self._pending.update(self._earlier)
        self._pending.update(wanted)
        self._earlier = {}
        self._pending["time"] = round(time.time(), 3)
        append_log(self.log_path, self._pending)
        self.progress.step(self._pending)
        self._pending = None

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.progress.finish()


def launch_facts(accelerator: Any) -> dict[str, Any]:
    """How the running trainer is distributed, read from its ``accelerate.Accelerator``."""
    kind = getattr(accelerator, "distributed_type", None)
    facts: dict[str, Any] = {
        "processes": int(getattr(accelerator, "num_processes", 1) or 1),
        "distributed": str(getattr(kind, "value", kind) or "NO"),
        "zero_stage": None,
    }
    plugin = getattr(getattr(accelerator, "state", None), "deepspeed_plugin", None)
    if plugin is not None:
        facts["zero_stage"] = int(plugin.zero_stage)
    return facts


def _brief(record: dict[str, Any]) -> str:
    keys = ("code_reward_mean", "test_reward_mean", "signal_share", "code_acc", "unit_test_acc", "loss", "kl")
    parts = [f"{k}={record[k]:.4g}" for k in keys if isinstance(record.get(k), (int, float))]
    return " ".join(parts)
