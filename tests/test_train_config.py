"""`cure train` configuration: paper defaults, errors that name the key, the TRL mapping, the CLI shell."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.errors import ConfigError
from cure_train.config import TrainConfig, default_config_text, load_config, parse_config
from cure_train.trainer import grpo_args, plan_batches

MINIMAL = {"model": "m", "train_dataset": "d"}


def test_default_yaml_is_complete_and_equals_the_model_defaults() -> None:
    data = yaml.safe_load(default_config_text())
    from_file = parse_config(data)
    from_models = TrainConfig(
        model=data["model"], train_dataset=data["train_dataset"], eval_dataset=data["eval_dataset"]
    )
    assert from_file.model_dump() == from_models.model_dump()
    # every key of the model appears in the file (the printed default must be complete)
    assert _keys(from_models.model_dump()) == _keys(data)
    # the paper's numbers
    assert (from_file.rollout.k_code, from_file.rollout.k_case, from_file.rollout.n_tasks_per_step) == (16, 16, 100)
    assert (from_file.optim.learning_rate, from_file.optim.kl_coef, from_file.rollout.temperature) == (1e-6, 0.01, 1.0)


def _keys(data: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= _keys(value, prefix + key + ".")
    return out


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"rollout": {"k_code": 8}}, "rollout.k_code: must equal rollout.k_case (TRL uses one num_generations"),
        ({"rollout": {"k_cas": 8}}, "rollout.k_cas: unknown key; did you mean 'k_case'?"),
        ({"optim": {"learning_rate": 0}}, "optim.learning_rate: Input should be greater than 0"),
        ({"reward": {"labels": "tester"}}, "reward.tester: labels 'tester' needs reward.tester.url"),
        ({"reward": {"min_len_threshold": 9000}}, "reward.min_len_threshold: 9000 is above reward.max_len_threshold"),
        ({"device": "cpu", "rollout": {"backend": "vllm"}}, "rollout.backend: vllm needs CUDA"),
        ({"optim": {"gradient_accumulation": 0}}, "optim.gradient_accumulation"),
        ({"rollout": {"backend": "hf", "vllm_mode": "server"}}, "rollout.vllm_mode: 'server' needs rollout.backend"),
    ],
)
def test_errors_name_the_key(patch: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, **patch}, "train.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("train.yaml: ")


def test_missing_required_key_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model: required key is missing"):
        parse_config({"train_dataset": "d"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nrollout: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line \d+\)"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "missing.yaml")


def test_load_config_with_dotted_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "rollout": {"k_code": 4, "k_case": 4}}))
    cfg = load_config(path, {"rollout.n_tasks_per_step": 3, "optim.kl_coef": 0.0})
    assert (cfg.rollout.k, cfg.rollout.n_tasks_per_step, cfg.optim.kl_coef) == (4, 3, 0.0)


def test_plan_batches_and_errors() -> None:
    cfg = parse_config(
        {
            **MINIMAL,
            "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2},
            "optim": {"dynamics": "grpo", "per_device_batch_size": 4},
        }
    )
    plan = plan_batches(cfg, num_processes=1)  # 2 tasks x 2 roles x 4 = 16 answers, 4 per pass
    assert (plan.rows_per_step, plan.micro_batches, plan.grad_accum, plan.updates_per_step) == (16, 4, 4, 1)
    two = parse_config(
        {
            **MINIMAL,
            "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2},
            "optim": {"dynamics": "grpo", "gradient_accumulation": 2, "per_device_batch_size": 2},
        }
    )
    assert plan_batches(two, num_processes=2).updates_per_step == 2
    with pytest.raises(ConfigError, match=r"optim\.per_device_batch_size: a step has 16 answers"):
        plan_batches(cfg, num_processes=3)
    odd = parse_config(
        {
            **MINIMAL,
            "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2},
            "optim": {"dynamics": "grpo", "gradient_accumulation": 3, "per_device_batch_size": 4},
        }
    )
    with pytest.raises(ConfigError, match=r"optim\.gradient_accumulation: 3 does not divide the 4 micro-batches"):
        plan_batches(odd, num_processes=1)


def test_separate_update_plans_two_updates_with_equal_roles_per_process() -> None:
    cfg = parse_config(
        {**MINIMAL, "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2}, "optim": {"per_device_batch_size": 4}}
    )
    plan = plan_batches(cfg, num_processes=1)  # 8 code + 8 test answers, 4 per pass: 2 + 2 micro-batches
    assert (plan.micro_batches, plan.grad_accum, plan.updates_per_step) == (4, 2, 2)
    assert plan_batches(cfg, num_processes=2).grad_accum == 1
    with pytest.raises(ConfigError, match=r"optim\.per_device_batch_size: with optim\.update separate"):
        plan_batches(cfg, num_processes=3)  # 8 answers per role do not split over 3 processes


def test_grpo_args_make_trl_leave_cure_advantages_alone(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            **MINIMAL,
            "output_dir": str(tmp_path),
            "device": "cpu",
            "total_steps": 3,
            "save_interval": 2,
            "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2},
            "optim": {"per_device_batch_size": 4},
            "logging": {"report_to": ["tensorboard"]},
        }
    )
    plan = plan_batches(cfg, 1)
    args = grpo_args(cfg, plan)
    assert args.scale_rewards == "none"  # TRL only subtracts the group mean, which CURE's advantages have as 0
    assert (args.num_generations, args.generation_batch_size, args.steps_per_generation) == (4, 16, 4)
    # dynamics cure: no reference model (beta 0: the trainer adds the KL to the step-start policy itself),
    # token-mean loss, AdamW betas (0.9, 0.95), two updates per step
    assert (args.beta, args.learning_rate, args.epsilon, args.loss_type) == (0.0, 1e-6, 0.2, "dapo")
    assert (args.adam_beta1, args.adam_beta2) == (0.9, 0.95)
    assert args.gradient_accumulation_steps * 2 == args.steps_per_generation
    assert args.model_init_kwargs == {"dtype": "float32"}  # bf16 only on CUDA
    assert (args.max_steps, args.save_steps, args.num_iterations) == (6, 4, 1)
    std = parse_config(
        {
            **cfg.model_dump(mode="json", include={"model", "train_dataset", "output_dir", "device"}),
            "optim": {"dynamics": "grpo", "per_device_batch_size": 4},
            "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2},
        }
    )
    std_args = grpo_args(std, plan_batches(std, 1))
    assert (std_args.beta, std_args.loss_type, std_args.adam_beta2) == (0.01, "grpo", 0.999)
    assert args.use_vllm is False and args.temperature == 1.0
    assert args.report_to == ["tensorboard"] and args.logging_steps == 1


def test_cli_prints_the_default_config() -> None:
    result = CliRunner().invoke(app, ["train", "--print-default-config"])
    assert result.exit_code == 0
    assert result.output == default_config_text()
    assert "k_case: 16" in result.output and "# " in result.output
    printed = parse_config(yaml.safe_load(result.output))
    # the authors' values (optimization_config.py, their trainer, execute.py)
    assert (printed.total_steps, printed.eval_interval, printed.save_interval) == (120, 10, 40)
    assert (printed.rollout.max_new_tokens, printed.rollout.exec_time_limit_s) == (10000, 1.0)
    optim = printed.optim
    assert (optim.dynamics, optim.update, optim.optimizer_state, optim.kl_reference) == (
        "cure",
        "separate",
        "per_step",
        "step_start",
    )
    assert optim.adam_betas == (0.9, 0.95) and optim.drop_no_signal is True and printed.rollout.prompt_format == "raw"
    assert "[upstream config]" in result.output and "[upstream trainer]" in result.output


def test_cli_reports_config_errors_as_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "rollout": {"k_code": 4, "k_case": 8}}))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 1
    assert "rollout.k_code: must equal rollout.k_case" in result.output
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1 and "give a CONFIG file" in result.output
    result = CliRunner().invoke(app, ["train", str(path), "--set", "novalue"])
    assert result.exit_code == 1 and "expected KEY=VALUE" in result.output


def test_cli_passes_overrides_and_resume_to_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    seen: dict = {}

    def fake_run(cfg: TrainConfig, *, resume: bool, progress: object, memory_check: bool) -> object:
        seen.update(cfg=cfg, resume=resume)
        from cure_train.trainer import TrainResult

        return TrainResult(tmp_path, 0, None, tmp_path / "train_log.jsonl")

    monkeypatch.setattr("cure_train.trainer.run_training", fake_run)
    result = CliRunner().invoke(
        app, ["train", str(path), "--resume", "--set", "rollout.k_code=8", "--set", "rollout.k_case=8"]
    )
    assert result.exit_code == 0, result.output
    assert seen["resume"] is True and seen["cfg"].rollout.k == 8


def test_rich_progress_prints_one_line_per_step() -> None:
    import io

    from rich.console import Console

    from cure_train.cli import RichTrainProgress

    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    progress = RichTrainProgress(console)
    progress.start(total_steps=3, first_step=1)
    progress.step({"step": 2, "code_reward_mean": 0.5, "signal_share": 0.25, "loss": None, "eval/code_acc": 0.125})
    progress.finish()
    text = console.file.getvalue()
    assert "step 2 | code r 0.5 | signal 0.25 | eval code_acc 0.125" in text
    assert "loss" not in text


def test_set_into_a_non_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "rollout": 5}))
    with pytest.raises(ConfigError, match=r"--set rollout\.k_code: rollout is 5 in the file, not a section"):
        load_config(path, {"rollout.k_code": 4})


def test_rollout_engine_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    import cure_train.config as config

    monkeypatch.setattr(config, "_cuda_available", lambda: True)
    monkeypatch.setattr(config, "_has_module", lambda name: name == "vllm")
    assert parse_config(MINIMAL).rollout_engine == "vllm"  # GPU + vLLM installed: vLLM rollouts
    assert parse_config({**MINIMAL, "device": "cpu"}).rollout_engine == "hf"  # never vLLM on CPU
    assert parse_config({**MINIMAL, "rollout": {"backend": "transformers"}}).rollout_engine == "hf"
    assert parse_config(MINIMAL).use_bf16 is True and parse_config(MINIMAL).weights_dtype == "bfloat16"
    monkeypatch.setattr(config, "_has_module", lambda name: False)
    with pytest.raises(ConfigError, match=r"rollout\.backend: 'auto' found CUDA but no vLLM"):
        parse_config(MINIMAL)  # no silent fallback to transformers generate on a GPU
    assert parse_config({**MINIMAL, "rollout": {"backend": "hf"}}).rollout_engine == "hf"  # asked for
    monkeypatch.setattr(config, "_cuda_available", lambda: False)
    assert parse_config(MINIMAL).resolved_device == "cpu" and parse_config(MINIMAL).use_bf16 is False


def test_importance_sampling_correction_is_configured_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TRL's vLLM importance-sampling correction follows the config, and its metrics reach train_log.jsonl."""
    from cure_train import config
    from cure_train.steplog import CureStepCallback, StepTimer, read_log

    monkeypatch.setattr(config, "_cuda_available", lambda: True)
    monkeypatch.setattr(config, "_has_module", lambda name: True)
    rollout = {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2, "vllm_importance_sampling_mode": "token_truncate"}
    rollout["vllm_importance_sampling_cap"] = 2.0
    NO_BF16 = {"optim": {"bf16": False}}  # the machine running the test has no GPU for TrainingArguments' bf16
    cfg = parse_config({**MINIMAL, "output_dir": str(tmp_path), "eval_dataset": None, "rollout": rollout, **NO_BF16})
    args = grpo_args(cfg, plan_batches(cfg, 1))
    assert args.use_vllm is True and args.vllm_importance_sampling_correction is True
    assert (args.vllm_importance_sampling_mode, args.vllm_importance_sampling_clip_max) == ("token_truncate", 2.0)
    off = parse_config({**MINIMAL, "eval_dataset": None, "rollout": {"vllm_importance_sampling": False}, **NO_BF16})
    assert grpo_args(off, plan_batches(off, 1)).vllm_importance_sampling_correction is False

    class State:
        global_step = 1
        is_world_process_zero = True

    class Control:
        should_save = False

    callback = CureStepCallback(
        tmp_path,
        updates_per_step=1,
        total_steps=5,
        save_interval=5,
        eval_interval=0,
        scores=lambda: {},
        timer=StepTimer(),
    )
    callback.on_step_end(None, State(), Control())
    metrics = {"sampling/importance_sampling_ratio/mean": 0.97, "sampling/sampling_logp_difference/max": 0.4}
    callback.on_log(None, State(), Control(), logs={**metrics, "not_a_logged_key": 1.0})
    (row,) = read_log(tmp_path / "train_log.jsonl")
    assert {k: row[k] for k in metrics} == metrics and "not_a_logged_key" not in row


def test_cure_dynamics_train_on_raw_prompts_with_one_public_example() -> None:
    """The authors' training prompts: pseudo-ChatML strings (not the chat template), the tester shown 1 example."""
    from cure_bench.types import Task, TestCase
    from cure_train.data import CODE, TEST, build_rows
    from cure_train.trainer import prompt_settings

    task = Task(
        task_id="t0",
        question="Read two integers and print their sum.",
        time_limit=2.0,
        example_tests=[TestCase("1 1\n", "2\n"), TestCase("40 2\n", "42\n")],
        hidden_tests=[TestCase("1 2\n", "3\n")],
    )
    cure = build_rows([task], prompt_settings(parse_config(MINIMAL)))
    assert [row["role"] for row in cure] == [CODE, TEST]
    assert all(isinstance(row["prompt"], str) and row["prompt"].startswith("<|im_start|>") for row in cure)
    assert all(row["prompt"].rstrip().endswith("Assistant:") for row in cure)
    tester = cure[1]["prompt"]
    assert "1 1" in tester and "40 2" not in tester  # max_examples 1: only the first public example
    grpo = build_rows([task], prompt_settings(parse_config({**MINIMAL, "optim": {"dynamics": "grpo"}})))
    assert all(isinstance(row["prompt"], list) and row["prompt"][-1]["role"] == "user" for row in grpo)
