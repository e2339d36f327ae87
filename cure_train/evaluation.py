"""Periodic evaluation during training: the current weights through the ordinary bench pipeline.

The weights are saved to ``<output_dir>/eval/step-<N>/model`` and evaluated by
``cure_bench.pipeline.run_bench`` exactly as ``cure bench --model <that dir>`` would, so a training curve
and a later stand-alone evaluation of a checkpoint are the same measurement. The copy of the weights is
deleted afterwards; the run directory (summary.json, samples.jsonl) stays.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from cure_bench.types import SamplingParams
from cure_train.config import TrainConfig

log = logging.getLogger(__name__)


def eval_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "eval" / f"step-{step:06d}"


def bench_config(cfg: TrainConfig, model_dir: Path, run_dir: Path) -> Any:
    """The BenchConfig of one evaluation (the training prompts, the evaluation section's k and sampling)."""
    from cure_bench.config import BenchConfig, ModelConfig

    ev = cfg.evaluation
    assert cfg.eval_dataset is not None
    return BenchConfig(
        dataset=cfg.eval_dataset,
        coder=ModelConfig(model=str(model_dir), backend=ev.backend, options=ev.backend_options),
        k_code=ev.k_code,
        k_case=ev.k_case,
        bon=ev.bon,
        max_test=cfg.rollout.max_hidden_tests,
        sampling=SamplingParams(
            temperature=ev.temperature,
            top_p=cfg.rollout.top_p,
            max_tokens=ev.max_new_tokens or cfg.rollout.max_new_tokens,
            seed=cfg.seed,
        ),
        limit=ev.limit,
        output_dir=run_dir,
        resume=True,
        coder_prompt=Path(cfg.prompts.coder) if cfg.prompts.coder else None,
        tester_prompt=Path(cfg.prompts.tester) if cfg.prompts.tester else None,
        workers=cfg.reward.sandbox_workers,
        sandbox=cfg.reward.sandbox_isolation,
        executor=cfg.reward.sandbox_executor,
        ray_address=cfg.reward.ray_address,
        memory_limit_mb=cfg.reward.memory_limit_mb,
        command=f"cure train (evaluation of {model_dir})",
    )


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``{"bon": {"4x4": {"acc": v}}}`` -> ``{"bon/4x4/acc": v}``, other scalar metrics unchanged."""
    flat: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            for sub, inner in flatten_metrics(value).items():
                flat[f"{name}/{sub}"] = inner
        else:
            flat[name] = value
    return flat


def evaluate_model_dir(cfg: TrainConfig, model_dir: Path, step: int) -> dict[str, Any]:
    """Run the bench pipeline on saved weights; returns its metrics, flat."""
    from cure_bench.pipeline import run_bench

    run_dir = eval_dir(cfg.output_dir, step) / "bench"
    result = run_bench(bench_config(cfg, model_dir, run_dir))
    metrics = flatten_metrics(result.summary.get("metrics", {}))
    log.info("evaluation at step %d: %s", step, {k: v for k, v in metrics.items() if k.startswith("code_acc")})
    return metrics


def make_evaluator(cfg: TrainConfig, trainer: Any) -> Any:
    """``evaluate(step)`` for the step callback: save weights (every process), evaluate (main process)."""

    def evaluate(step: int) -> dict[str, Any]:
        model_dir = eval_dir(cfg.output_dir, step) / "model"
        trainer.save_model(str(model_dir))  # collective under DeepSpeed ZeRO-3: every process calls it
        metrics: dict[str, Any] = {}
        if trainer.accelerator.is_main_process:
            try:
                metrics = evaluate_model_dir(cfg, model_dir, step)
            finally:
                shutil.rmtree(model_dir, ignore_errors=True)
        trainer.accelerator.wait_for_everyone()
        return metrics

    return evaluate
