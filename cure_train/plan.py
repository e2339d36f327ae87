"""`cure train CONFIG --plan`: the batch plan per rank and a per-GPU memory estimate, without a GPU.

The estimate is arithmetic on the model's shape (read from its ``config.json``: a local directory, the hub
cache, or a built-in table of Qwen2.5 shapes) and the config's lengths. It is meant to catch the plans that
cannot work (a 7B full fine-tune on one 24 GB card, a reference model that does not fit beside vLLM), not to
predict the allocator to the gigabyte: every assumption is printed beside the numbers. Terms, per GPU:

* weights, gradients, optimiser: the ZeRO paper's accounting. Without DeepSpeed, AdamW keeps its two moments in
  the weights' dtype (bf16 weights: 2 + 2 + 4 bytes per parameter). With DeepSpeed and bf16: 2 bytes of weights,
  2 of gradients and 12 of fp32 master weights and moments; ZeRO-2 shards the last 14 over the GPUs, ZeRO-3 all 16.
* reference model: bf16 weights, only with ``optim.kl_reference: initial`` and ``kl_coef > 0`` (sharded by ZeRO-3).
* vLLM share: ``rollout.vllm_gpu_memory_utilization`` of the card (colocate mode; vLLM reserves it up front).
* logits: micro-batch x generated tokens x vocabulary x 6 bytes (bf16 logits, their temperature-scaled copy and
  their gradient; TRL takes the log-softmax row by row).
* activations: with checkpointing, one bf16 hidden state per layer plus one layer's working set
  (about 12 x hidden + 3 x intermediate values per token); without, the working set of every layer.
* a fixed 2.5 GB for the CUDA context, NCCL buffers and allocator slack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError
from cure_train.config import TrainConfig

GB = 1024**3
OVERHEAD_GB = 2.5
PROMPT_TOKENS = 2000  # the authors' prompt_max_len

# Shapes of the Qwen2.5 family (public config.json values), used when the model's config cannot be read offline.
KNOWN_SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": {"hidden": 896, "layers": 24, "inter": 4864, "vocab": 151936, "heads": 14, "kv": 2, "tied": True},
    "qwen2.5-1.5b": {"hidden": 1536, "layers": 28, "inter": 8960, "vocab": 151936, "heads": 12, "kv": 2, "tied": True},
    "qwen2.5-3b": {"hidden": 2048, "layers": 36, "inter": 11008, "vocab": 151936, "heads": 16, "kv": 2, "tied": True},
    "qwen2.5-7b": {"hidden": 3584, "layers": 28, "inter": 18944, "vocab": 152064, "heads": 28, "kv": 4, "tied": False},
    "qwen2.5-14b": {"hidden": 5120, "layers": 48, "inter": 13824, "vocab": 152064, "heads": 40, "kv": 8, "tied": False},
    "qwen2.5-32b": {"hidden": 5120, "layers": 64, "inter": 27648, "vocab": 152064, "heads": 40, "kv": 8, "tied": False},
}


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    inter: int
    vocab: int
    heads: int
    kv: int
    tied: bool
    source: str

    @property
    def params(self) -> int:
        head_dim = self.hidden // self.heads
        kv_dim = self.kv * head_dim
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv_dim + self.hidden + 2 * kv_dim
        per_layer = attention + 3 * self.hidden * self.inter + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * per_layer + self.hidden


@dataclass
class MemoryPlan:
    """Per-GPU memory terms in GB, what they assume, and the knob that shrinks each."""

    terms: dict[str, float] = field(default_factory=dict)
    knobs: dict[str, str] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.terms.values())


def model_shape(model: str) -> ModelShape:
    """The policy's shape from its config.json (local dir, hub cache) or the built-in table; error names ``model``."""
    data = _read_config_json(model)
    if data is not None:
        try:
            return ModelShape(
                hidden=int(data["hidden_size"]),
                layers=int(data["num_hidden_layers"]),
                inter=int(data["intermediate_size"]),
                vocab=int(data["vocab_size"]),
                heads=int(data["num_attention_heads"]),
                kv=int(data.get("num_key_value_heads") or data["num_attention_heads"]),
                tied=bool(data.get("tie_word_embeddings", False)),
                source="config.json",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"model {model}: its config.json lacks {exc} (needed for --plan)") from None
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, shape in KNOWN_SHAPES.items():
        if name.startswith(prefix):
            return ModelShape(**shape, source=f"built-in {prefix} shape")
    raise ConfigError(
        f"model {model}: cannot read its config.json offline for --plan; download it first "
        "(huggingface-cli download MODEL config.json) or give a local model directory"
    )


def _read_config_json(model: str) -> dict[str, Any] | None:
    local = Path(model) / "config.json"
    if local.is_file():
        return dict(json.loads(local.read_text(encoding="utf-8")))
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(model, "config.json")
    if isinstance(cached, str) and Path(cached).is_file():
        return dict(json.loads(Path(cached).read_text(encoding="utf-8")))
    return None


def estimate_memory(cfg: TrainConfig, shape: ModelShape, gpus: int, gpu_gb: float, zero: int) -> MemoryPlan:
    """Per-GPU memory of the training processes (see the module docstring for each term)."""
    plan = MemoryPlan()
    p = shape.params
    bf16 = cfg.weights_dtype == "bfloat16"
    w = 2 if bf16 else 4
    n = max(gpus, 1)
    if zero == 0:
        plan.terms["weights"] = w * p / GB
        plan.terms["gradients"] = w * p / GB
        plan.terms["optimizer"] = 2 * w * p / GB
        plan.assumptions.append(f"no DeepSpeed: AdamW moments in the weights' dtype ({'bf16' if bf16 else 'fp32'})")
    else:
        plan.terms["weights"] = 2 * p / GB / (n if zero == 3 else 1)
        plan.terms["gradients"] = 2 * p / GB / (n if zero >= 2 else 1)
        plan.terms["optimizer"] = 12 * p / GB / n
        plan.assumptions.append(f"DeepSpeed ZeRO-{zero} over {n} GPUs, bf16 with fp32 master weights and moments")
    for key in ("weights", "gradients", "optimizer"):
        plan.knobs[key] = "more GPUs with DeepSpeed ZeRO-2/3 (accelerate --num_processes, zero2.yaml/zero3.yaml)"
    if cfg.optim.kl_reference == "initial" and cfg.optim.kl_coef > 0:
        plan.terms["reference model"] = 2 * p / GB / (n if zero == 3 else 1)
        plan.knobs["reference model"] = "optim.kl_reference: step_start (no reference model) or optim.kl_coef: 0"
    if cfg.rollout_engine == "vllm" and cfg.rollout.vllm_mode == "colocate":
        plan.terms["vLLM share"] = cfg.rollout.vllm_gpu_memory_utilization * gpu_gb
        plan.knobs["vLLM share"] = "rollout.vllm_gpu_memory_utilization (or rollout.vllm_mode: server)"
    if cfg.eval_vllm_share is not None:
        plan.terms["evaluation vLLM (rank 0)"] = cfg.eval_vllm_share * gpu_gb
        plan.knobs["evaluation vLLM (rank 0)"] = (
            "evaluation.backend_options.vllm.gpu_memory_utilization, or eval_interval: 0 (evaluate checkpoints later)"
        )
    batch, completion = cfg.optim.per_device_batch_size, cfg.rollout.max_new_tokens
    seq = PROMPT_TOKENS + completion
    plan.terms["logits"] = batch * completion * shape.vocab * 6 / GB
    plan.knobs["logits"] = "optim.per_device_batch_size or rollout.max_new_tokens"
    working = batch * seq * (12 * shape.hidden + 3 * shape.inter) * 2 / GB
    if cfg.optim.gradient_checkpointing:
        plan.terms["activations"] = batch * seq * shape.hidden * 2 * shape.layers / GB + working
    else:
        plan.terms["activations"] = working * shape.layers
    plan.knobs["activations"] = "optim.gradient_checkpointing: true, or optim.per_device_batch_size"
    plan.terms["CUDA context and slack"] = OVERHEAD_GB
    plan.knobs["CUDA context and slack"] = "(fixed)"
    plan.assumptions += [
        f"policy {shape.params / 1e9:.2f} B parameters ({shape.source}), vocabulary {shape.vocab}",
        f"sequences of {PROMPT_TOKENS} prompt + {completion} generated tokens, {batch} per micro-batch",
        "logits: 6 bytes per (token, vocabulary entry); activations with sdpa/flash attention (no S^2 term)",
        f"{OVERHEAD_GB} GB CUDA context, NCCL and allocator slack",
    ]
    return plan


def default_zero(cfg: TrainConfig, gpus: int) -> int:
    """ZeRO stage the plan assumes: the one of optim.deepspeed's JSON when set, else 2 on several GPUs, else 0."""
    if cfg.optim.deepspeed:
        path = Path(cfg.optim.deepspeed)
        try:
            stage = json.loads(path.read_text(encoding="utf-8")).get("zero_optimization", {}).get("stage", 0)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"optim.deepspeed: cannot read {path} ({exc})") from None
        return int(stage)
    return 2 if gpus > 1 else 0


def check_fits(plan: MemoryPlan, gpu_gb: float) -> None:
    """Refuse a plan above ``gpu_gb``, naming the knob of its largest shrinkable term."""
    if plan.total <= gpu_gb:
        return
    shrinkable = {k: v for k, v in plan.terms.items() if plan.knobs.get(k) != "(fixed)"}
    largest = max(shrinkable, key=lambda k: shrinkable[k])
    raise ConfigError(
        f"does not fit: about {plan.total:.1f} GB per GPU needed, {gpu_gb:g} GB available; the largest term is "
        f"{largest} ({plan.terms[largest]:.1f} GB): turn {plan.knobs[largest]}"
    )


def render_plan(cfg: TrainConfig, gpus: int, gpu_gb: float, zero: int) -> tuple[str, MemoryPlan]:
    """The text ``--plan`` prints (batch plan per rank, memory table, assumptions) and the memory plan."""
    from cure_train.trainer import plan_batches

    steps = plan_batches(cfg, gpus)
    ro, opt = cfg.rollout, cfg.optim
    per_rank = steps.rows_per_step // gpus
    lines = [
        f"batch plan: {gpus} rank(s); dynamics {opt.dynamics} (update {opt.update}, optimizer_state "
        f"{opt.optimizer_state}, kl_reference {opt.kl_reference}, loss {opt.loss_type})",
        f"  per step: {ro.n_tasks_per_step} tasks x 2 roles x {ro.k} = {steps.rows_per_step} answers; "
        f"{steps.updates_per_step} optimizer update(s)",
        f"  per rank: {per_rank} answers"
        + (f" ({per_rank // 2} code, then {per_rank // 2} test)" if opt.update == "separate" else "")
        + f", {steps.micro_batches} micro-batches of {opt.per_device_batch_size}, {steps.grad_accum} per update",
        f"  run: {cfg.total_steps} steps = {cfg.total_steps * steps.updates_per_step} optimizer updates; "
        f"checkpoint every {cfg.save_interval} steps (checkpoint-<update>), evaluation every {cfg.eval_interval}",
    ]
    shape = model_shape(cfg.model)
    memory = estimate_memory(cfg, shape, gpus, gpu_gb, zero)
    lines.append(f"memory per GPU (estimate, {gpu_gb:g} GB cards):")
    width = max(len(k) for k in memory.terms)
    lines += [f"  {name:<{width}}  {gb:7.1f} GB" for name, gb in memory.terms.items()]
    verdict = "fits" if memory.total <= gpu_gb else "does NOT fit"
    lines.append(f"  {'total':<{width}}  {memory.total:7.1f} GB  -> {verdict}")
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in memory.assumptions]
    return "\n".join(lines), memory


def preflight(cfg: TrainConfig, num_processes: int, memory_check: bool = True) -> None:
    """What ``cure train`` checks before loading anything: the batch plan, and on CUDA the memory estimate."""
    import logging

    from cure_train.trainer import plan_batches

    plan_batches(cfg, num_processes)
    if not memory_check or cfg.resolved_device != "cuda":
        return
    import torch

    gpu_gb = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GB
    try:
        shape = model_shape(cfg.model)
    except ConfigError as exc:  # not downloaded yet: TRL will fetch it; the estimate is skipped, not the run
        logging.getLogger(__name__).warning("memory estimate skipped: %s", exc)
        return
    memory = estimate_memory(cfg, shape, num_processes, gpu_gb, runtime_zero(cfg))
    try:
        check_fits(memory, gpu_gb)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} (`cure train CONFIG --plan` shows the estimate; --no-memory-check skips it)"
        ) from None


def runtime_zero(cfg: TrainConfig) -> int:
    """ZeRO stage of the running launch: accelerate's DeepSpeed plugin (env), optim.deepspeed, else none (DDP)."""
    import os

    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2") or 2)
    return default_zero(cfg, 1) if cfg.optim.deepspeed else 0
