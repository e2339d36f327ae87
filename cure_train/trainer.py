"""The CURE co-evolution loop on TRL's GRPOTrainer: configuration mapping, data order, entry point.

TRL does the RL mechanics (rollouts with transformers or vLLM, clipped policy-gradient loss, k3 KL to the
reference model, DeepSpeed/accelerate, checkpoints); CURE contributes three things:

* the data: one row per (task, role), ordered by :class:`~cure_train.data.TaskPairSampler` so a task's
  programs and tests are generated in the same batch;
* the reward: :class:`~cure_train.reward_fn.CureJudge` returns CURE's advantages, and ``scale_rewards="none"``
  makes TRL's group normalisation (``r - mean(group)``) the identity on them;
* the bookkeeping: step log, checkpoint and evaluation schedule in CURE steps
  (:class:`~cure_train.steplog.CureStepCallback`).

One CURE step = one generation batch of ``n_tasks_per_step * 2 * k`` answers = ``updates_per_step``
optimizer updates: 2 with ``optim.update: separate`` (code, then tests: the authors'), 1 with ``joint`` and
``gradient_accumulation: auto``. How the update itself is made lives in :mod:`cure_train.dynamics`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError, MissingExtraError, RunInterrupted
from cure_bench.types import Task, TestCase
from cure_train.config import TrainConfig
from cure_train.data import PromptSettings, build_dataset
from cure_train.dynamics import seeded_vllm, trainer_class
from cure_train.rewards import RewardConfig
from cure_train.steplog import LOG_NAME, StepTimer, TrainProgress

log = logging.getLogger(__name__)

CONFIG_COPY = "train_config.yaml"
# keys whose change on --resume would change the data order or what a checkpoint number means
ORDER_KEYS = ("train_dataset", "train_limit", "seed", "rollout.n_tasks_per_step", "rollout.k_code", "optim.update")


@dataclass(frozen=True)
class StepPlan:
    """How one CURE step's answers map onto TRL batches."""

    rows_per_step: int  # answers generated per step (both roles)
    micro_batches: int  # forward/backward passes per step on each process (TRL steps_per_generation)
    grad_accum: int  # micro-batches per optimizer update
    updates_per_step: int


@dataclass
class TrainResult:
    output_dir: Path
    steps: int
    last_checkpoint: Path | None
    log_path: Path


def plan_batches(cfg: TrainConfig, num_processes: int) -> StepPlan:
    """Check that a step's answers split evenly into micro-batches and updates; errors name the keys."""
    rows = cfg.rollout.n_tasks_per_step * 2 * cfg.rollout.k
    per_pass = cfg.optim.per_device_batch_size * num_processes
    if cfg.optim.update == "separate":
        per_role = rows // 2
        if per_role % per_pass:
            raise ConfigError(
                f"optim.per_device_batch_size: with optim.update separate each role's {per_role} answers "
                f"(rollout.n_tasks_per_step x rollout.k_code) must split into micro-batches of "
                f"{cfg.optim.per_device_batch_size} per device x {num_processes} processes, which does not divide "
                f"them; pick a per_device_batch_size (or process count) that divides {per_role // num_processes}"
                if per_role % num_processes == 0
                else f"optim.per_device_batch_size: with optim.update separate each role's {per_role} answers "
                f"must split evenly over {num_processes} processes, which does not divide them; change the process "
                "count or rollout.n_tasks_per_step"
            )
        micro = per_role // per_pass
        return StepPlan(rows_per_step=rows, micro_batches=2 * micro, grad_accum=micro, updates_per_step=2)
    if rows % per_pass:
        raise ConfigError(
            f"optim.per_device_batch_size: a step has {rows} answers (rollout.n_tasks_per_step x 2 x rollout.k_code), "
            f"which {cfg.optim.per_device_batch_size} per device x {num_processes} processes does not divide; "
            "pick a per_device_batch_size that divides it"
        )
    micro = rows // per_pass
    accum = micro if cfg.optim.gradient_accumulation == "auto" else int(cfg.optim.gradient_accumulation)
    if micro % accum:
        raise ConfigError(
            f"optim.gradient_accumulation: {accum} does not divide the {micro} micro-batches of a step "
            f"({rows} answers / ({cfg.optim.per_device_batch_size} per device x {num_processes} processes)); "
            "use 'auto' (one update per step) or a divisor"
        )
    return StepPlan(rows_per_step=rows, micro_batches=micro, grad_accum=accum, updates_per_step=micro // accum)


def grpo_args(cfg: TrainConfig, plan: StepPlan) -> Any:
    """The GRPOConfig equivalent of ``cfg`` (CURE-specific settings are fixed here, not configurable)."""
    from trl import GRPOConfig

    ro, opt = cfg.rollout, cfg.optim
    use_vllm = cfg.rollout_engine == "vllm"
    # transformers >= 5.x renamed gradient_checkpointing (the old name still works, with a warning)
    checkpointing_key = (
        "activation_checkpointing"
        if "activation_checkpointing" in GRPOConfig.__dataclass_fields__
        else "gradient_checkpointing"
    )
    checkpointing: dict[str, Any] = {checkpointing_key: opt.gradient_checkpointing}
    betas = opt.betas
    return GRPOConfig(
        output_dir=cfg.output_dir,
        seed=cfg.seed,
        use_cpu=cfg.resolved_device == "cpu",
        bf16=cfg.use_bf16,
        model_init_kwargs={"dtype": cfg.weights_dtype},
        adam_beta1=betas[0],
        adam_beta2=betas[1],
        max_steps=cfg.total_steps * plan.updates_per_step,
        per_device_train_batch_size=opt.per_device_batch_size,
        gradient_accumulation_steps=plan.grad_accum,
        steps_per_generation=plan.micro_batches,
        num_generations=ro.k,
        num_iterations=1,
        # CURE's advantages are centred per group already; TRL must only subtract the (zero) group mean
        scale_rewards="none",
        loss_type=opt.loss_type or "grpo",
        # step_start: no reference model; the trainer adds the k3 term against the old log-probs itself
        beta=opt.kl_coef if opt.kl_reference == "initial" else 0.0,
        epsilon=opt.epsilon,
        epsilon_high=opt.epsilon_high,
        learning_rate=opt.learning_rate,
        lr_scheduler_type=opt.lr_scheduler,
        warmup_steps=opt.warmup_steps,
        weight_decay=opt.weight_decay,
        max_grad_norm=opt.max_grad_norm,
        **checkpointing,
        deepspeed=opt.deepspeed,
        temperature=ro.temperature,
        top_p=ro.top_p,
        max_completion_length=ro.max_new_tokens,
        use_vllm=use_vllm,
        vllm_mode=ro.vllm_mode,
        vllm_server_base_url=ro.vllm_server_url,
        vllm_gpu_memory_utilization=ro.vllm_gpu_memory_utilization,
        vllm_tensor_parallel_size=ro.vllm_tensor_parallel_size,
        vllm_max_model_length=ro.max_model_len,
        vllm_importance_sampling_correction=ro.vllm_importance_sampling,
        vllm_importance_sampling_mode=ro.vllm_importance_sampling_mode,
        vllm_importance_sampling_clip_max=ro.vllm_importance_sampling_cap,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_interval * plan.updates_per_step,
        report_to=cfg.logging.report_to or "none",
        log_completions=cfg.logging.log_completions,
        disable_tqdm=True,
        remove_unused_columns=False,
    )


def load_training_tasks(cfg: TrainConfig) -> list[Task]:
    from cure_bench.tasks.registry import load_dataset_tasks

    tasks, resolved = load_dataset_tasks(cfg.train_dataset, limit=cfg.train_limit)
    if len(tasks) < cfg.rollout.n_tasks_per_step:
        raise ConfigError(
            f"train_dataset {cfg.train_dataset}: {len(tasks)} tasks, fewer than rollout.n_tasks_per_step "
            f"({cfg.rollout.n_tasks_per_step})"
        )
    log.info("training on %d tasks from %s", len(tasks), getattr(resolved, "name", cfg.train_dataset))
    return tasks


def hidden_columns(cfg: TrainConfig, tasks: list[Task], ranks: int = 1) -> list[list[TestCase]]:
    """The tests programs are judged on: the dataset's (first max_hidden_tests) or a tester's (label-free).

    Label-free labels are a stage of their own (``cure train CONFIG --prepare-labels``); with one process a
    missing label set is made here, with several every rank only reads the finished file.
    """
    if cfg.reward.labels == "tester":
        from cure_train.labels import labels_for_training

        return labels_for_training(cfg, tasks, generate=ranks == 1)
    without = [t.task_id for t in tasks if not t.hidden_tests]
    if without:
        log.warning("%d tasks have no hidden tests and give no signal (first: %s)", len(without), without[0])
    return [t.hidden_tests[: cfg.rollout.max_hidden_tests] for t in tasks]


def prompt_settings(cfg: TrainConfig) -> PromptSettings:
    """The two prompts of a task, as configured (post_stage hides the public examples, as upstream)."""
    from cure_bench.generation.prompts import load_template

    return PromptSettings(
        coder_template=load_template(cfg.prompts.coder, "coder", "prompts.coder") if cfg.prompts.coder else None,
        tester_template=load_template(cfg.prompts.tester, "tester", "prompts.tester") if cfg.prompts.tester else None,
        show_examples=cfg.rollout.show_examples and not cfg.reward.post_stage,
        max_examples=cfg.rollout.max_examples,
        prompt_format=cfg.rollout.prompt_format or "chat",
    )


def make_judge(cfg: TrainConfig, tasks: list[Task], hidden: list[list[TestCase]]) -> Any:
    """The reward function: CURE's reward assignment over a sandbox started on first use."""
    from cure_train.reward_fn import CureJudge, sandbox_builder

    rcfg = cfg.reward
    return CureJudge(
        tasks,
        hidden,
        RewardConfig(rcfg.enable_efficient, rcfg.max_len_threshold, rcfg.min_len_threshold, rcfg.post_stage),
        k=cfg.rollout.k,
        open_builder=sandbox_builder(
            rcfg.sandbox_workers, rcfg.sandbox_isolation, executor=rcfg.sandbox_executor, ray_address=rcfg.ray_address
        ),
        memory_limit_mb=rcfg.memory_limit_mb,
        time_limit_s=cfg.rollout.exec_time_limit_s,
    )


def build_trainer(
    cfg: TrainConfig,
    tasks: list[Task],
    hidden: list[list[TestCase]],
    *,
    progress: TrainProgress | None = None,
    rollout_func: Callable[..., dict[str, Any]] | None = None,
) -> Any:
    """A ready CureGRPOTrainer (model loaded, judge and step callback attached).

    ``rollout_func`` is TRL's hook to replace generation (tests feed scripted answers through it).
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer

    from cure_train.evaluation import make_evaluator
    from cure_train.steplog import CureStepCallback, launch_facts

    # the same process-group set-up TrainingArguments makes (on CPU, PartialState() alone would not see torchrun's
    # processes and would count 1)
    plan = plan_batches(cfg, PartialState(cpu=cfg.resolved_device == "cpu").num_processes)
    judge = make_judge(cfg, tasks, hidden)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    timer = StepTimer()
    with seeded_vllm(cfg.seed if cfg.rollout_engine == "vllm" else None):
        trainer = trainer_class()(
            model=cfg.model,
            reward_funcs=[judge],
            args=grpo_args(cfg, plan),
            train_dataset=build_dataset(tasks, prompt_settings(cfg)),
            processing_class=tokenizer,
            rollout_func=rollout_func,
            tasks_per_step=cfg.rollout.n_tasks_per_step,
            timer=timer,
            optim=cfg.optim,
            judge=judge,
        )
    _quiet_default_printing(trainer)
    judge.eos_token_ids = frozenset(int(i) for i in getattr(trainer, "eos_token_ids", []) or [])
    if cfg.eval_interval and not cfg.eval_dataset:
        log.warning("eval_interval is %d but eval_dataset is not set: no evaluation during training", cfg.eval_interval)
    evaluate = make_evaluator(cfg, trainer) if cfg.eval_dataset and cfg.eval_interval else None
    trainer.add_callback(
        CureStepCallback(
            Path(cfg.output_dir),
            updates_per_step=plan.updates_per_step,
            total_steps=cfg.total_steps,
            save_interval=cfg.save_interval,
            eval_interval=cfg.eval_interval,
            scores=lambda: judge.last.stats if judge.last is not None else None,
            timer=timer,
            evaluate=evaluate,
            progress=progress,
            launch=launch_facts(trainer.accelerator),
        )
    )
    trainer.cure_judge = judge
    trainer.cure_plan = plan
    return trainer


def run_training(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: TrainProgress | None = None,
    rollout_func: Callable[..., dict[str, Any]] | None = None,
    memory_check: bool = True,
) -> TrainResult:
    """Train for ``cfg.total_steps`` CURE steps (or what is left of them with ``resume``).

    Checks first, before any model is loaded: the batch plan, the memory estimate on CUDA
    (:func:`cure_train.plan.preflight`), the checkpoint state and, in label-free mode, that the labels exist
    (several processes) or can be made here (one process).
    """
    _require_train_extra()
    from accelerate import PartialState

    from cure_train.plan import preflight

    state = PartialState(cpu=cfg.resolved_device == "cpu")
    preflight(cfg, state.num_processes, memory_check=memory_check)
    output_dir = Path(cfg.output_dir)
    checkpoint = resume_checkpoint(output_dir, resume)
    tasks = load_training_tasks(cfg)
    with state.main_process_first():
        _check_or_save_config(cfg, output_dir, resuming=checkpoint is not None)
    hidden = hidden_columns(cfg, tasks, ranks=state.num_processes)
    trainer = build_trainer(cfg, tasks, hidden, progress=progress, rollout_func=rollout_func)
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        saved = latest_checkpoint(output_dir)
        where = f"the last checkpoint is {saved}" if saved else "no checkpoint was saved yet"
        raise RunInterrupted(
            f"training interrupted at step {trainer.state.global_step // trainer.cure_plan.updates_per_step}; "
            f"{where}: re-run with --resume to continue from it"
        ) from None
    finally:
        trainer.cure_judge.close()
    last = latest_checkpoint(output_dir)
    return TrainResult(
        output_dir=output_dir,
        steps=trainer.state.global_step // trainer.cure_plan.updates_per_step,
        last_checkpoint=last,
        log_path=output_dir / LOG_NAME,
    )


def latest_checkpoint(output_dir: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not output_dir.is_dir():
        return None
    found = get_last_checkpoint(str(output_dir))
    return Path(found) if found else None


def resume_checkpoint(output_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to continue from; refuses to silently restart over an existing run."""
    last = latest_checkpoint(output_dir)
    if resume and last is None:
        raise ConfigError(f"--resume: no checkpoint-* directory in output_dir {output_dir} to resume from")
    if not resume and last is not None:
        raise ConfigError(
            f"output_dir {output_dir} already holds {last.name}: pass --resume to continue that run, "
            "or choose another output_dir"
        )
    return last


def _check_or_save_config(cfg: TrainConfig, output_dir: Path, resuming: bool) -> None:
    """Keep a copy of the config; on resume, refuse settings that would change the data order."""
    import yaml

    from cure_bench.fileio import atomic_write_text

    path = output_dir / CONFIG_COPY
    current = cfg.model_dump(mode="json")
    if resuming and path.exists():
        saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for dotted in ORDER_KEYS:
            old, new = _dig(saved, dotted), _dig(current, dotted)
            if old != new:
                raise ConfigError(
                    f"{dotted}: the run in {output_dir} used {old!r}, the config now says {new!r}; "
                    "resuming with a different value would change the data order"
                )
    atomic_write_text(path, yaml.safe_dump(current, sort_keys=False))


def _dig(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _quiet_default_printing(trainer: Any) -> None:
    """The library logs through the step callback; transformers' own printer would duplicate it."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _require_train_extra() -> None:
    import importlib.util

    missing = [m for m in ("torch", "transformers", "trl", "accelerate", "datasets") if not importlib.util.find_spec(m)]
    if missing:
        raise MissingExtraError("train", f"cure train (missing: {', '.join(missing)})")
