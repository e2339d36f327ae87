"""`cure train --plan`, the preflight checks and the config errors that come before any model is loaded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.errors import ConfigError
from cure_train.config import assume_gpu_box, default_config_text, parse_config
from cure_train.plan import ModelShape, check_fits, estimate_memory, model_shape

MINIMAL = {"model": "Qwen/Qwen2.5-7B-Instruct", "train_dataset": "d"}
SERVER = ["--set", "rollout.vllm_mode=server", "--set", "rollout.vllm_server_url=http://localhost:8000"]


def _default_file(tmp_path: Path, **patch: Any) -> Path:
    data = yaml.safe_load(default_config_text())
    data.update(patch)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _plan(*args: str) -> Any:
    return CliRunner().invoke(app, ["train", *args, "--plan"])


def test_documented_8x80_recipe_fits_and_prints_the_plan_per_rank(tmp_path: Path) -> None:
    result = _plan(str(_default_file(tmp_path)), "--gpus", "8", "--gpu-memory", "80", "--zero", "3")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3200 answers; 2 optimizer update(s)" in out
    assert "per rank: 400 answers (200 code, then 200 test), 400 micro-batches of 1, 200 per update" in out
    assert "-> fits" in out and "7.62 B parameters" in out and "ZeRO-3 over 8 GPUs" in out
    total = float(re.search(r"total\s+([\d.]+) GB", out).group(1))  # type: ignore[union-attr]
    assert 60 < total < 80
    assert "reference model" not in out  # kl_reference step_start builds none


def test_7b_full_finetune_on_one_24gb_gpu_is_refused_naming_the_knob(tmp_path: Path) -> None:
    result = _plan(str(_default_file(tmp_path)), "--gpus", "1", "--gpu-memory", "24")
    assert result.exit_code == 1
    assert "does not fit" in result.output and "24 GB available" in result.output
    assert (
        "DeepSpeed ZeRO-2/3" in result.output and "no DeepSpeed: AdamW moments in the weights' dtype" in result.output
    )


def test_documented_server_example_passes_the_plan(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[1] / "docs" / "training.md").read_text()
    block = next(b for b in docs.split("```") if "vllm_mode=server" in b)
    gpus = re.search(r"--num_processes (\d+)", block)
    assert gpus is not None
    result = _plan(str(_default_file(tmp_path)), "--gpus", gpus.group(1), "--gpu-memory", "80", "--zero", "3", *SERVER)
    assert result.exit_code == 0, result.output
    assert "vLLM share" not in result.output  # the server's GPUs are not the training ones
    six = _plan(str(_default_file(tmp_path)), "--gpus", "6", *SERVER)
    assert six.exit_code == 1 and "optim.per_device_batch_size: with optim.update separate" in six.output


def test_reference_model_and_vllm_share_are_counted_and_named() -> None:
    with assume_gpu_box():
        grpo = parse_config({**MINIMAL, "optim": {"dynamics": "grpo"}})
        shape = model_shape(grpo.model)
        plan = estimate_memory(grpo, shape, gpus=8, gpu_gb=80, zero=2)
    assert plan.terms["reference model"] == pytest.approx(2 * shape.params / 1024**3)
    assert plan.terms["vLLM share"] == pytest.approx(24.0)
    with pytest.raises(ConfigError, match=r"largest term is vLLM share .*rollout\.vllm_gpu_memory_utilization"):
        check_fits(plan, 60)


def test_model_shape_from_a_local_config_and_unknown_models(tiny_model_dir: Path) -> None:
    shape = model_shape(str(tiny_model_dir))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert shape.source == "config.json" and shape.params == sum(p.numel() for p in model.parameters())
    with pytest.raises(ConfigError, match=r"model acme/unknown-9b: cannot read its config\.json offline"):
        model_shape("acme/unknown-9b")
    assert ModelShape(3584, 28, 18944, 152064, 28, 4, False, "t").params == pytest.approx(7.62e9, rel=0.01)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"optim": {"dynamics": "adam"}}, "optim.dynamics: Input should be 'cure' or 'grpo'"),
        ({"optim": {"updte": "joint"}}, "optim.updte: unknown key; did you mean 'update'?"),
        ({"optim": {"adam_betas": [0.9, 1.5]}}, "optim.adam_betas: each must be in [0, 1)"),
        ({"optim": {"adam_betas": "fast"}}, "optim.adam_betas: Input should be a valid tuple"),
        ({"optim": {"gradient_accumulation": 2}}, "optim.gradient_accumulation: update 'separate' makes exactly one"),
        ({"optim": {"loss_type": "grpo"}}, "optim.drop_no_signal (implied by dynamics cure): needs optim.loss_type"),
        ({"optim": {"kl_coef": 0, "kl_reference": "initial"}}, "optim.kl_reference: 'initial' keeps a frozen"),
        ({"total_steps": "many"}, "total_steps: Input should be a valid integer"),
        ({"device": "cpu", "rollout": {"max_model_len": 4096}}, "rollout.max_model_len: only read by the vLLM"),
        ({"device": "cpu", "rollout": {"vllm_gpu_memory_utilization": 0.5}}, "rollout.vllm_gpu_memory_utilization:"),
        ({"rollout": {"vllm_mode": "server"}}, "rollout.vllm_server_url: vllm_mode 'server' needs the URL"),
        ({"rollout": {"vllm_server_url": "http://x"}}, "rollout.vllm_server_url: only read with rollout.vllm_mode"),
    ],
)
def test_bad_values_give_one_error_naming_the_key(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, **patch}, "train.yaml")
    assert message in str(info.value)
    assert str(info.value).count("; ") <= 2  # one problem, one message


def test_evaluation_beside_the_rollout_engine_needs_a_split_that_fits() -> None:
    evaluating = {**MINIMAL, "eval_dataset": "CodeContests", "eval_interval": 10}
    with assume_gpu_box():
        assert parse_config(evaluating).eval_vllm_share == 0.25  # the default split
        with pytest.raises(ConfigError, match=r"evaluation\.backend_options: evaluation starts a vLLM engine"):
            # no share given: bench's vLLM default (0.9 of the GPU) beside training is refused
            parse_config({**evaluating, "evaluation": {"backend_options": {}}})
        with pytest.raises(ConfigError, match=r"S \+ 0\.3 <= 0\.9 \(got 0\.7\)"):
            parse_config({**evaluating, "evaluation": {"backend_options": {"vllm": {"gpu_memory_utilization": 0.7}}}})
        ok = parse_config({**evaluating, "evaluation": {"backend_options": {"vllm": {"gpu_memory_utilization": 0.2}}}})
        assert ok.eval_vllm_share == 0.2
        assert parse_config({**evaluating, "evaluation": {"backend": "hf"}}).eval_vllm_share is None


def test_cure_train_checks_the_batch_plan_before_loading_a_model(tmp_path: Path, monkeypatch: Any) -> None:
    import cure_train.trainer as trainer

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(trainer, "build_trainer", never)
    monkeypatch.setattr(trainer, "load_training_tasks", never)
    cfg = parse_config(
        {
            **MINIMAL,
            "device": "cpu",
            "output_dir": str(tmp_path),
            "rollout": {"k_code": 3, "k_case": 3, "n_tasks_per_step": 1},
            "optim": {"per_device_batch_size": 2},
        }
    )
    with pytest.raises(ConfigError, match=r"optim\.per_device_batch_size: with optim\.update separate"):
        trainer.run_training(cfg)


def test_vllm_engine_is_seeded_from_the_config(monkeypatch: Any) -> None:
    import sys
    import types

    from cure_train.dynamics import seeded_vllm

    made: list[dict[str, Any]] = []
    fake = types.ModuleType("trl.generation.vllm_generation")
    fake.LLM = lambda **kwargs: made.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trl.generation.vllm_generation", fake)
    original = fake.LLM  # type: ignore[attr-defined]
    with seeded_vllm(42):
        fake.LLM(model="m", seed=1)  # type: ignore[attr-defined]  # what TRL passes on rank 1
    assert made == [{"model": "m", "seed": 43}] and fake.LLM is original  # type: ignore[attr-defined]
