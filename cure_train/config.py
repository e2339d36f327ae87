"""`cure train` configuration: one YAML file, validated once by pydantic, errors that name the key.

Where the defaults come from (``configs/default.yaml`` says it key by key):

* the authors' ``optimization/optimization_config.py`` (github:Gen-Verse/CURE): k_code = k_case = 16 rollouts
  per task and role, 100 tasks per step, learning rate 1e-6, KL coefficient 0.01 (k3), temperature 1.0,
  120 steps, evaluation every 10, checkpoint every 40, 10,000 generated tokens, 8 hidden tests, 1 public example;
* the authors' trainer (``optimization/train_utils``, what ``optim.dynamics: cure`` reproduces): two updates per
  step (code answers, then test answers), a fresh AdamW per step with betas (0.9, 0.95), the KL term taken
  against the policy at the start of the update, a token-mean loss, no-signal groups dropped, raw prompt strings,
  a 1 s execution limit (``execute.py``);
* ours (no upstream counterpart): batch sizes, sandbox and logging settings, evaluation sizes.

``optim.dynamics: grpo`` switches the five dynamics keys to TRL's standard GRPO behaviour; any key set in the
file wins over what the dynamics implies. ``cure train --print-default-config`` prints ``configs/default.yaml``;
a test keeps it and the models below from drifting apart.

Paths in the file (datasets, prompt templates, output_dir) are taken relative to the working directory,
as every other ``cure`` command does.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cure_bench.errors import ConfigError

DEFAULT_CONFIG_RESOURCE = "default.yaml"


class _Section(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RolloutConfig(_Section):
    """How each step samples programs and tests from the current policy."""

    backend: Literal["auto", "vllm", "hf", "transformers"] = "auto"
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_url: str | None = None
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_importance_sampling: bool = True
    vllm_importance_sampling_mode: Literal["sequence_mask", "sequence_truncate", "token_mask", "token_truncate"] = (
        "sequence_mask"
    )
    vllm_importance_sampling_cap: float = Field(3.0, gt=0.0)
    k_code: int = Field(16, ge=2)
    k_case: int = Field(16, ge=2)
    n_tasks_per_step: int = Field(100, ge=1)
    temperature: float = Field(1.0, gt=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(10000, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    max_hidden_tests: int = Field(8, ge=1)
    show_examples: bool = True
    max_examples: int = Field(1, ge=0)
    exec_time_limit_s: float | None = Field(1.0, gt=0)
    prompt_format: Literal["raw", "chat"] | None = None

    @model_validator(mode="after")
    def _one_num_generations(self) -> RolloutConfig:
        if self.k_code != self.k_case:
            raise ValueError(
                f"k_code: must equal rollout.k_case (TRL uses one num_generations for every prompt); "
                f"got k_code={self.k_code}, k_case={self.k_case}. Set both to the same value, e.g. {self.k_code}"
            )
        if self.vllm_mode == "server" and self.backend not in ("auto", "vllm"):
            raise ValueError(f"vllm_mode: 'server' needs rollout.backend vllm (got {self.backend!r})")
        if self.vllm_mode == "server" and not self.vllm_server_url:
            raise ValueError("vllm_server_url: vllm_mode 'server' needs the URL of `trl vllm-serve`")
        if self.vllm_server_url and self.vllm_mode != "server":
            raise ValueError("vllm_server_url: only read with rollout.vllm_mode 'server' (it is 'colocate')")
        return self

    def vllm_keys_set(self) -> list[str]:
        """vLLM-only keys set to something other than their default (errors when the engine is not vLLM)."""
        fields = type(self).model_fields
        keys = [k for k in fields if k.startswith("vllm_") or k == "max_model_len"]
        return sorted(k for k in keys if getattr(self, k) != fields[k].default)

    @property
    def k(self) -> int:
        return self.k_code

    @property
    def engine(self) -> str:
        """``vllm`` or ``hf`` once ``auto`` is resolved (vLLM only with CUDA and the package installed)."""
        if self.backend in ("hf", "transformers"):
            return "hf"
        if self.backend == "vllm":
            return "vllm"
        return "vllm" if _cuda_available() and _has_module("vllm") else "hf"


class TesterConfig(_Section):
    """Where label-free mode gets the tests that stand in for hidden tests."""

    url: str | None = None
    model: str | None = None
    backend: str = "auto"
    base_url: str | None = None
    api_key: str | None = None
    num_tests: int = Field(8, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(4096, ge=1)
    timeout_s: float = Field(600.0, gt=0)


class RewardSection(_Section):
    """CURE's reward assignment switches, plus where the hidden-test columns come from."""

    enable_efficient: bool = False
    max_len_threshold: int = Field(8000, ge=1)
    min_len_threshold: int = Field(1000, ge=0)
    post_stage: bool = False
    labels: Literal["ground_truth", "tester"] = "ground_truth"
    tester: TesterConfig = Field(default_factory=TesterConfig)
    sandbox_workers: int | None = Field(None, ge=1)
    sandbox_isolation: str = "auto"
    sandbox_executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    memory_limit_mb: int = Field(2048, ge=64)

    @model_validator(mode="after")
    def _consistent(self) -> RewardSection:
        if self.min_len_threshold > self.max_len_threshold:
            raise ValueError(
                f"min_len_threshold: {self.min_len_threshold} is above reward.max_len_threshold "
                f"({self.max_len_threshold})"
            )
        if self.labels == "tester" and not (self.tester.url or self.tester.model):
            raise ValueError(
                "tester: labels 'tester' needs reward.tester.url (a `cure reward-serve` server) "
                "or reward.tester.model (a model to generate the tests)"
            )
        from cure_bench.errors import ConfigError
        from cure_bench.sandbox.executor import check_executor

        try:
            check_executor(self.sandbox_executor, self.ray_address)
        except ConfigError as exc:
            raise ValueError(
                f"sandbox_executor/ray_address: {exc}".replace("--executor", "sandbox_executor").replace(
                    "--ray-address", "ray_address"
                )
            ) from None
        return self


DYNAMICS: dict[str, dict[str, Any]] = {
    # the authors' trainer (optimization/train_utils/rl/{trainer,actors}.py, relaunched by run.py every step)
    "cure": {
        "update": "separate",
        "optimizer_state": "per_step",
        "adam_betas": (0.9, 0.95),
        "kl_reference": "step_start",
        "loss_type": "dapo",
        "drop_no_signal": True,
        "max_trained_tokens": 8000,  # generate_max_len: answers are tokenised with truncation to 8,000 for the loss
    },
    # TRL's GRPOTrainer as it comes
    "grpo": {
        "update": "joint",
        "optimizer_state": "run",
        "adam_betas": (0.9, 0.999),
        "kl_reference": "initial",
        "loss_type": "grpo",
        "drop_no_signal": False,
        "max_trained_tokens": 0,  # the whole answer
    },
}
PROMPT_FORMAT = {"cure": "raw", "grpo": "chat"}


class OptimConfig(_Section):
    """The policy update (TRL GRPOTrainer underneath); ``dynamics`` fills the keys left unset."""

    dynamics: Literal["cure", "grpo"] = "cure"
    update: Literal["separate", "joint"] | None = None
    optimizer_state: Literal["per_step", "run"] | None = None
    adam_betas: tuple[float, float] | None = None
    kl_reference: Literal["step_start", "initial"] | None = None
    drop_no_signal: bool | None = None
    max_trained_tokens: int | None = Field(None, ge=0)
    learning_rate: float = Field(1e-6, gt=0)
    kl_coef: float = Field(0.01, ge=0)
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] | None = None
    epsilon: float = Field(0.2, gt=0)
    epsilon_high: float | None = Field(None, gt=0)
    per_device_batch_size: int = Field(1, ge=1)
    gradient_accumulation: int | Literal["auto"] = "auto"
    bf16: bool | Literal["auto"] = "auto"
    weights_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    gradient_checkpointing: bool = True
    lr_scheduler: str = "constant"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    deepspeed: str | None = None

    @model_validator(mode="after")
    def _accumulation(self) -> OptimConfig:
        if self.gradient_accumulation != "auto" and self.gradient_accumulation < 1:
            raise ValueError(f"gradient_accumulation: must be 'auto' or >= 1 (got {self.gradient_accumulation})")
        for key, value in DYNAMICS[self.dynamics].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        betas = self.adam_betas or (0.9, 0.999)
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"adam_betas: each must be in [0, 1) (got {list(betas)})")
        if self.update == "separate" and self.gradient_accumulation != "auto":
            raise ValueError(
                f"gradient_accumulation: update 'separate' makes exactly one update per role per step; "
                f"got {self.gradient_accumulation}. Use 'auto', or optim.update: joint"
            )
        if self.kl_reference == "initial" and self.kl_coef == 0 and "kl_reference" in self.model_fields_set:
            raise ValueError(
                "kl_reference: 'initial' keeps a frozen reference model but optim.kl_coef is 0; "
                "set kl_coef > 0 or kl_reference: step_start"
            )
        if self.drop_no_signal and self.loss_type != "dapo":
            implied = "" if "drop_no_signal" in self.model_fields_set else f" (implied by dynamics {self.dynamics})"
            raise ValueError(
                f"drop_no_signal{implied}: needs optim.loss_type dapo (a token mean whose normaliser counts only "
                f"the kept tokens); with {self.loss_type!r} the dropped rows would still count in the mean. Set "
                "optim.drop_no_signal: false or optim.loss_type: dapo"
            )
        return self

    @property
    def betas(self) -> tuple[float, float]:
        return self.adam_betas or DYNAMICS[self.dynamics]["adam_betas"]


class EvalSection(_Section):
    """The periodic evaluation with the bench pipeline (``eval_dataset`` every ``eval_interval`` steps)."""

    backend: str = "auto"
    k_code: int = Field(4, ge=1)
    k_case: int = Field(4, ge=1)
    bon: str = "4x4"
    limit: int | None = Field(None, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    # beside training on rank 0's GPU the evaluation's vLLM engine needs an explicit share (_check_eval_split)
    backend_options: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"vllm": {"gpu_memory_utilization": 0.25}}
    )


class PromptsConfig(_Section):
    """Template files overriding the default coder/tester prompts (same format as `cure bench`)."""

    coder: str | None = None
    tester: str | None = None


class LoggingConfig(_Section):
    report_to: list[str] = Field(default_factory=list)
    log_completions: bool = False


class TrainConfig(_Section):
    """The whole `cure train` configuration."""

    model: str
    train_dataset: str
    eval_dataset: str | None = None
    output_dir: str = "runs/cure-train"
    total_steps: int = Field(120, ge=1)
    eval_interval: int = Field(10, ge=0)
    save_interval: int = Field(40, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 42
    train_limit: int | None = Field(None, ge=1)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    reward: RewardSection = Field(default_factory=RewardSection)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    evaluation: EvalSection = Field(default_factory=EvalSection)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainConfig:
        if self.rollout.prompt_format is None:
            object.__setattr__(self.rollout, "prompt_format", PROMPT_FORMAT[self.optim.dynamics])
        if self.resolved_device == "cpu" and self.rollout.backend == "vllm":
            raise ValueError("rollout.backend: vllm needs CUDA; use backend hf (or auto) with device cpu")
        if self.rollout.backend == "auto" and self.resolved_device == "cuda" and not _has_module("vllm"):
            raise ValueError(
                "rollout.backend: 'auto' found CUDA but no vLLM; transformers generate over a whole step's prompts "
                "does not fit a GPU at these lengths. pip install 'cure-toolkit[vllm]', or set rollout.backend: hf "
                "to use transformers on purpose"
            )
        self._check_eval_split()
        if self.rollout_engine != "vllm":
            unused = self.rollout.vllm_keys_set()
            if unused:
                raise ValueError(
                    f"rollout.{unused[0]}: only read by the vLLM rollout engine, but the engine is transformers "
                    f"(rollout.backend {self.rollout.backend!r}, device {self.resolved_device}); remove "
                    f"{', '.join('rollout.' + k for k in unused)} or use backend vllm"
                )
        return self

    @property
    def eval_vllm_share(self) -> float | None:
        """GPU share of the evaluation's vLLM engine on rank 0's GPU (beside training), else None."""
        ev = self.evaluation
        if not (self.eval_dataset and self.eval_interval) or ev.backend not in ("auto", "vllm"):
            return None
        if self.resolved_device != "cuda" or (ev.backend == "auto" and not _has_module("vllm")):
            return None
        share = ev.backend_options.get("vllm", {}).get("gpu_memory_utilization")
        return float(share) if share is not None else 0.9

    def _check_eval_split(self) -> None:
        share = self.eval_vllm_share
        if share is None:
            return
        colocated = self.rollout_engine == "vllm" and self.rollout.vllm_mode == "colocate"
        rollout = self.rollout.vllm_gpu_memory_utilization if colocated else 0.0
        if "gpu_memory_utilization" not in self.evaluation.backend_options.get("vllm", {}) or share + rollout > 0.9:
            raise ValueError(
                f"evaluation.backend_options: evaluation starts a vLLM engine on rank 0's GPU beside training "
                f"(and a colocated rollout engine's share {rollout}); give it an explicit share with "
                f"{{vllm: {{gpu_memory_utilization: S}}}}, S + {rollout} <= 0.9 (got {share}), "
                "or set evaluation.backend: hf, or eval_interval: 0 and evaluate checkpoints with `cure bench`"
            )

    @property
    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if _cuda_available() else "cpu"

    @property
    def rollout_engine(self) -> str:
        """``vllm`` or ``hf``: ``rollout.backend`` with ``auto`` resolved (never vLLM on CPU)."""
        return "hf" if self.resolved_device == "cpu" else self.rollout.engine

    @property
    def weights_dtype(self) -> str:
        """dtype the policy is loaded in: ``auto`` is bfloat16 on CUDA (TRL's own default is float32)."""
        if self.optim.weights_dtype != "auto":
            return self.optim.weights_dtype
        return "bfloat16" if self.resolved_device == "cuda" else "float32"

    @property
    def use_bf16(self) -> bool:
        if self.optim.bf16 == "auto":
            return self.resolved_device == "cuda"
        return bool(self.optim.bf16)


def parse_config(data: Any, source: str = "config") -> TrainConfig:
    """Validate a mapping; every problem becomes one ConfigError line naming ``source`` and the key."""
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{source}: expected a mapping of keys (model, train_dataset, ...), got {kind}")
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_describe(err) for err in exc.errors())) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read and validate a YAML config file; ``overrides`` (dotted keys) win over the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    return parse_config(data, str(path))


def default_config_text() -> str:
    """The complete, commented default config (what ``--print-default-config`` prints)."""
    return resources.files("cure_train.configs").joinpath(DEFAULT_CONFIG_RESOURCE).read_text(encoding="utf-8")


def config_path(name: str) -> Path:
    """Path of a file shipped in ``cure_train/configs`` (accelerate/DeepSpeed configs)."""
    return Path(str(resources.files("cure_train.configs").joinpath(name)))


def _describe(err: Any) -> str:
    loc = ".".join(str(part) for part in err["loc"])
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key{_suggest(err['loc'])}"
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "value_error":
        # our validators start their message with the key they are about, relative to the section
        text = msg.removeprefix("Value error, ")
        section = ".".join(str(part) for part in err["loc"])
        return f"{section + '.' if section else ''}{text}"
    return f"{loc}: {msg} (got {err.get('input')!r})"


def _suggest(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = TrainConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(model.model_fields)}"


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, last = dotted.split(".")
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = ".".join(parents[: depth + 1])
            raise ConfigError(f"--set {dotted}: {section} is {child!r} in the file, not a section of keys")
        node = child
    node[last] = value


_GPU_BOX = ContextVar("cure_train_assume_gpu_box", default=False)


@contextmanager
def assume_gpu_box() -> Iterator[None]:
    """Validate and resolve configs as on a CUDA machine with vLLM installed (``--plan`` runs without one)."""
    token = _GPU_BOX.set(True)
    try:
        yield
    finally:
        _GPU_BOX.reset(token)


def _cuda_available() -> bool:
    if _GPU_BOX.get():
        return True
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _has_module(name: str) -> bool:
    import importlib.util

    if _GPU_BOX.get() and name == "vllm":
        return True
    return importlib.util.find_spec(name) is not None
