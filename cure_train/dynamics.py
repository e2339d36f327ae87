"""The optimisation step on top of TRL's GRPOTrainer: TRL's own, or the authors' (``optim.dynamics: cure``).

The authors' ``run.py`` relaunches their trainer every CURE step, and that trainer (``optimization/train_utils``)
makes one update over all code answers, then recomputes log-probs and makes one update over all test answers
(``separate_training``), with a token mean over packed rows, groups without signal left out of the data, and the
KL term taken against the policy of that moment (so, with one update, it never pulls). Relaunching means a fresh
AdamW (betas 0.9, 0.95) each step. This module reproduces those choices inside one long TRL run:

* ``update: separate``: the sampler (``TaskPairSampler(role_blocks=N)``) gives every process equal code and test
  answers; :meth:`_prepare_inputs` buffers the code micro-batches, then the test ones, so the first half of a step's
  micro-batches makes the code update and the second half the test update; at the start of the second half the
  old log-probs of the test answers are recomputed with the updated policy.
* ``optimizer_state: per_step``: the optimiser's moments and step counts are cleared when a step starts.
* ``kl_reference: step_start``: TRL is given ``beta = 0`` (no reference model is built); the k3 term is added
  against the old log-probs, i.e. the policy at the start of the update.
* ``drop_no_signal``: rows of groups without signal get an all-zero completion mask, and the token normaliser of
  the ``dapo`` loss counts only the kept tokens of the update, so those rows are absent from the loss (they still
  take their place in a micro-batch: compute is not saved).
* ``max_trained_tokens``: only the first N tokens of an answer reach the loss (upstream generates up to 10,000
  tokens but tokenises answers for training with truncation to ``generate_max_len`` = 8,000).

Every dynamics also replaces TRL's advantages by the judge's exact values (TRL's ``r - mean(group)`` assumes
groups of consecutive rows, which the role-block order does not keep).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cure_train.data import CODE, TaskPairSampler
from cure_train.steplog import StepTimer


def reset_optimizer_state(optimizer: Any) -> int:
    """Forget AdamW's moments and step counts (what a freshly launched trainer has); returns tensors cleared.

    Unwraps accelerate's ``AcceleratedOptimizer`` and DeepSpeed's ZeRO optimisers (``.optimizer`` attributes) down
    to the torch optimiser whose lazily initialised per-parameter ``state`` is emptied.
    """
    inner = optimizer
    while getattr(inner, "optimizer", None) is not None:
        inner = inner.optimizer
    state = getattr(inner, "state", None)
    if state is None:
        raise RuntimeError(f"optim.optimizer_state: cannot find the state of {type(optimizer).__name__}")
    cleared = len(state)
    state.clear()
    return cleared


def take_rows(batch: dict[str, Any], index: list[int], n_rows: int) -> dict[str, Any]:
    """The rows ``index`` of a TRL generation batch (per-row tensors and lists); other entries are shared."""
    import torch

    out: dict[str, Any] = {}
    picker = None
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.size(0) == n_rows:
            if picker is None:
                picker = torch.tensor(index, dtype=torch.long, device=value.device)
            out[key] = value.index_select(0, picker.to(value.device))
        elif isinstance(value, list) and len(value) == n_rows:
            out[key] = [value[i] for i in index]
        else:
            out[key] = value
    return out


def trainer_class() -> type:
    from trl import GRPOTrainer

    class CureGRPOTrainer(GRPOTrainer):
        """GRPOTrainer with CURE's data order, advantages and (``dynamics: cure``) the authors' update."""

        def __init__(
            self,
            *args: Any,
            tasks_per_step: int,
            timer: StepTimer,
            optim: Any,
            judge: Any,
            **kwargs: Any,
        ):
            self.cure_tasks_per_step = tasks_per_step
            self.cure_timer = timer
            self.cure_optim = optim
            self.cure_judge = judge
            self.cure_kl_coef = optim.kl_coef if optim.kl_reference == "step_start" else 0.0
            self.cure_resets = 0
            super().__init__(*args, **kwargs)

        @property
        def cure_separate(self) -> bool:
            return bool(self.cure_optim.update == "separate")

        @property
        def cure_args(self) -> Any:
            return self.args  # a GRPOConfig (TrainingArguments to the type checker)

        @property
        def cure_training(self) -> bool:
            return bool(getattr(self.model, "training", False))

        def _get_train_sampler(self, dataset: Any = None) -> Any:
            dataset = self.train_dataset if dataset is None else dataset
            return TaskPairSampler(
                n_tasks=len(dataset) // 2,
                tasks_per_batch=self.cure_tasks_per_step,
                mini_repeat_count=int(self.num_generations or 1),
                repeat_count=self.num_iterations * self.cure_args.steps_per_generation,
                seed=self.cure_args.seed,
                role_blocks=self.accelerator.num_processes if self.cure_separate else 0,
            )

        def _generate(self, prompts: list) -> Any:
            started = time.perf_counter()
            try:
                return super()._generate(prompts)
            finally:
                self.cure_timer.rollout_s += time.perf_counter() - started

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            batch = super()._generate_and_score_completions(inputs)
            if not self.cure_training or self.cure_judge.last is None:
                return batch
            import torch

            score = self.cure_judge.last
            start = self.accelerator.process_index * len(inputs)
            local = slice(start, start + len(inputs))
            adv = batch["advantages"]
            batch["advantages"] = torch.tensor(score.advantages[local], dtype=adv.dtype, device=adv.device)
            masked = False
            if self.cure_optim.drop_no_signal:
                keep = torch.tensor(score.signal[local], dtype=torch.bool, device=adv.device)
                batch["completion_mask"] = batch["completion_mask"] * keep.unsqueeze(1).to(batch["completion_mask"])
                masked = True
            cap = int(self.cure_optim.max_trained_tokens or 0)
            if cap and batch["completion_mask"].size(1) > cap:
                batch["completion_mask"] = batch["completion_mask"].clone()
                batch["completion_mask"][:, cap:] = 0
                masked = True
            if masked:
                batch["num_items_in_batch"] = self._global_tokens(batch["completion_mask"])
            if self.cure_separate:
                batch["cure_roles"] = [row["role"] for row in inputs]
            return batch

        def _global_tokens(self, mask: Any) -> Any:
            return self.accelerator.gather(mask.sum().reshape(1).float()).sum()

        def _prepare_inputs(self, generation_batch: Any) -> Any:
            if not self.cure_training:
                return super()._prepare_inputs(generation_batch)
            generate_every = self.cure_args.steps_per_generation * self.num_iterations
            position = self._step % generate_every
            if position == 0 and self.cure_optim.optimizer_state == "per_step" and self.optimizer is not None:
                reset_optimizer_state(self.optimizer)
                self.cure_resets += 1
            if not self.cure_separate:
                return super()._prepare_inputs(generation_batch)
            buffered: Any = self._buffered_inputs
            if position == 0 or buffered is None:
                buffered = self._split_by_role(self._generate_and_score_completions(generation_batch))
                self._buffered_inputs = buffered
            half = self.cure_args.steps_per_generation // 2
            if position == half:
                self._refresh_old_logps(buffered[half:])
            return buffered[position]

        def _split_by_role(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
            """Code micro-batches (first half), then test micro-batches; normalisers per update."""
            roles = batch.pop("cure_roles")
            n = len(roles)
            code = [i for i, role in enumerate(roles) if role == CODE]
            test = [i for i, role in enumerate(roles) if role != CODE]
            half = self.cure_args.steps_per_generation // 2
            size = self.cure_args.per_device_train_batch_size
            if len(code) != half * size or len(test) != half * size:
                raise RuntimeError(
                    f"optim.update separate: this process holds {len(code)} code and {len(test)} test answers, "
                    f"expected {half * size} of each (the sampler's role blocks were not respected)"
                )
            out: list[dict[str, Any]] = []
            for rows in (code, test):
                part = take_rows(batch, rows, n)
                # TRL's dapo normaliser is num_items / processes * accumulation / steps_per_generation; with
                # accumulation = steps_per_generation / 2 this makes it (kept tokens of this update) / processes
                part["num_items_in_batch"] = 2 * self._global_tokens(part["completion_mask"])
                out.extend(take_rows(part, list(range(m * size, (m + 1) * size)), len(rows)) for m in range(half))
            return out

        def _refresh_old_logps(self, micro_batches: list[dict[str, Any]]) -> None:
            """Old log-probs of the test answers under the policy after the code update (the authors' recompute)."""
            import torch
            from trl.models.utils import disable_gradient_checkpointing

            model: Any = self.model
            kwargs: Any = self.cure_args.gradient_checkpointing_kwargs
            with torch.no_grad(), disable_gradient_checkpointing(model, kwargs):
                for micro in micro_batches:
                    ids = torch.cat([micro["prompt_ids"], micro["completion_ids"]], dim=1)
                    mask = torch.cat([micro["prompt_mask"], micro["completion_mask"]], dim=1)
                    logps, _, _ = self._get_per_token_logps_and_entropies(
                        model, ids, mask, micro["completion_ids"].size(1), batch_size=ids.size(0)
                    )
                    micro["old_per_token_logps"] = logps

        def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> Any:
            if not self.cure_kl_coef or "old_per_token_logps" not in inputs:
                # without old log-probs (one update per generation) the step-start policy *is* the current one:
                # the k3 term and its gradient are exactly zero
                return super()._compute_loss(model, inputs)
            self.beta = self.cure_kl_coef
            try:
                return super()._compute_loss(model, {**inputs, "ref_per_token_logps": inputs["old_per_token_logps"]})
            finally:
                self.beta = 0.0

    return CureGRPOTrainer


@contextmanager
def seeded_vllm(seed: int | None) -> Iterator[None]:
    """Make TRL's colocated vLLM engine take ``seed`` into account while the trainer is built.

    TRL seeds each engine with ``process_index // tensor_parallel_size`` whatever ``args.seed`` says; the engine's
    seed becomes ``seed + that`` (still distinct per rank, still equal within a tensor-parallel group). Server
    mode is seeded by the server: start it with ``trl vllm-serve --seed``.
    """
    if seed is None:
        yield
        return
    import importlib

    module: Any
    try:
        module = importlib.import_module("trl.generation.vllm_generation")
    except ImportError:  # a TRL without the module: nothing to patch
        yield
        return
    original = getattr(module, "LLM", None)
    if original is None:
        yield
        return

    def llm(*args: Any, seed_offset: int = seed, **kwargs: Any) -> Any:
        kwargs["seed"] = seed_offset + int(kwargs.get("seed") or 0)
        return original(*args, **kwargs)

    module.LLM = llm
    try:
        yield
    finally:
        module.LLM = original
