"""The CURE loop end to end on CPU with a tiny random Qwen2: steps, step log, checkpoints, resume, advantages.

The second test replaces generation by scripted answers with known verdicts, then checks that the
advantages TRL feeds its loss are exactly CURE's (``task_rewards`` on the hand-worked tables) and that a
step with signal moves the parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cure_bench.errors import ConfigError
from cure_train.config import TrainConfig, parse_config
from cure_train.data import CODE, TEST, TaskPairSampler
from cure_train.rewards import RewardConfig, task_rewards

pytestmark = pytest.mark.slow

SUM = "Read two integers and print their sum."
SQUARE = "Read an integer n and print n squared."
TASKS = [
    {
        "question": SUM,
        "test_time_limit": 2,
        "example_input": ["1 1\n"],
        "example_output": ["2\n"],
        "test_input": ["1 2\n", "5 7\n"],
        "test_output": ["3\n", "12\n"],
    },
    {
        "question": SQUARE,
        "test_time_limit": 2,
        "example_input": ["2\n"],
        "example_output": ["4\n"],
        "test_input": ["3\n", "4\n"],
        "test_output": ["9\n", "16\n"],
    },
    {
        "question": "Read a string and print it reversed.",
        "test_time_limit": 2,
        "example_input": [],
        "example_output": [],
        "test_input": ["abc\n"],
        "test_output": ["cba\n"],
    },
]
LOG_KEYS = {
    "step",
    "code_reward_mean",
    "code_reward_std",
    "test_reward_mean",
    "test_reward_std",
    "signal_share",
    "code_acc",
    "unit_test_acc",
    "p01",
    "p00",
    "code_length_mean",
    "test_length_mean",
    "rollout_s",
    "judge_s",
    "update_s",
    "loss",
    "kl",
}


def write_tasks(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def tiny_config(model: Path, tasks: Path, out: Path, **overrides: Any) -> TrainConfig:
    data: dict[str, Any] = {
        "model": str(model),
        "train_dataset": str(tasks),
        "output_dir": str(out),
        "device": "cpu",
        "total_steps": 2,
        "save_interval": 1,
        "eval_interval": 0,
        "rollout": {"k_code": 4, "k_case": 4, "n_tasks_per_step": 2, "max_new_tokens": 12},
        "optim": {"per_device_batch_size": 4, "gradient_checkpointing": False},
        "reward": {"sandbox_workers": 2},
    }
    for key, value in overrides.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return parse_config(data)


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_two_steps_then_resume_for_a_third(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cure_train.trainer import run_training

    tasks = write_tasks(tmp_path / "tasks.jsonl", TASKS)
    out = tmp_path / "run"
    result = run_training(tiny_config(tiny_model_dir, tasks, out))
    assert result.steps == 2 and result.last_checkpoint == out / "checkpoint-4"  # 2 updates per step
    log = read_log(out / "train_log.jsonl")
    assert [row["step"] for row in log] == [1, 2]
    for row in log:
        assert set(row) >= LOG_KEYS
        assert row["n_tasks"] == 2 and 0.0 <= row["code_reward_mean"] <= 1.0
        assert row["rollout_s"] > 0 and row["update_s"] > 0
        assert row["launch"] == {"processes": 1, "distributed": "NO", "zero_stage": None}
    assert (out / "checkpoint-2").is_dir() and (out / "train_config.yaml").exists()
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoint-4")
    tokenizer = AutoTokenizer.from_pretrained(out / "checkpoint-4")
    assert model.config.num_hidden_layers == 2 and tokenizer.chat_template

    with pytest.raises(ConfigError, match="already holds checkpoint-4: pass --resume"):
        run_training(tiny_config(tiny_model_dir, tasks, out, total_steps=3))
    with pytest.raises(ConfigError, match=r"rollout\.n_tasks_per_step: the run .* used 2"):
        run_training(
            tiny_config(tiny_model_dir, tasks, out, total_steps=3, **{"rollout.n_tasks_per_step": 1}), resume=True
        )
    resumed = run_training(tiny_config(tiny_model_dir, tasks, out, total_steps=3), resume=True)
    assert resumed.steps == 3 and resumed.last_checkpoint == out / "checkpoint-6"
    log = read_log(out / "train_log.jsonl")
    assert [row["step"] for row in log] == [1, 2, 3]
    # same data order as an uninterrupted run: 3 tasks, 2 per step -> one step per epoch, epoch e = step e+1
    sampler = TaskPairSampler(n_tasks=3, tasks_per_batch=2, mini_repeat_count=4, seed=42)
    for row in log:
        assert sorted(row["tasks"]) == sorted(f"tasks/{i}" for i in sampler.batches(row["step"] - 1)[0])


# ---------------------------------------------------------------- scripted answers, known verdicts


def _code(src: str) -> str:
    return f"```python\n{src}\n```"


def _test(inp: str, out: str) -> str:
    return f"**Test Input:**\n```\n{inp}\n```\n**Test Output:**\n```\n{out}\n```\n**Explanation:**\nx"


SCRIPT = {
    (SUM, CODE): [
        _code("a, b = map(int, input().split())\nprint(a + b)"),
        _code("print(3)"),
        "no code (sum)",
        _code("print(0)"),
    ],
    (SUM, TEST): [_test("2 2", "4"), _test("1 2", "3"), _test("1 1", "5"), "no test (sum)"],
    (SQUARE, CODE): [_code("print(1)"), _code("print(2)"), "no code (square)", _code("print(-1)")],
    (SQUARE, TEST): [_test("3", "9"), _test("2", "5"), _test("4", "16"), "no test (square)"],
}
# verdicts by hand. sum: hidden (1 2 -> 3, 5 7 -> 12); generated (2 2 -> 4, 1 2 -> 3, 1 1 -> 5, none)
SUM_GT = [[1, 1], [1, 0], [0, 0], [0, 0]]
SUM_GEN = [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
# square: no program passes any hidden test -> no code signal, no test signal -> zero advantages


def _scripted_rollout(counter: dict[tuple[str, str], int], ids_of: dict[tuple[int, ...], tuple[str, str, int]]):
    def rollout(prompts: list[list[dict[str, str]]], trainer: Any) -> dict[str, Any]:
        tok = trainer.processing_class
        prompt_ids, completion_ids = [], []
        for prompt in prompts:
            if isinstance(prompt, str):  # prompt_format raw: the authors' prompt string, passed through as is
                text, content = prompt, prompt
            else:
                text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
                content = prompt[-1]["content"]
            prompt_ids.append(tok(text, add_special_tokens=False)["input_ids"])
            question = SUM if SUM in content else SQUARE
            role = TEST if "test example" in content else CODE
            index = counter.get((question, role), 0) % 4
            counter[(question, role)] = counter.get((question, role), 0) + 1
            ids = tok(SCRIPT[(question, role)][index], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids_of[tuple(ids)] = (question, role, index)
            completion_ids.append(ids)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


def test_advantages_reaching_the_loss_are_cure_advantages(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    from cure_train.trainer import build_trainer, hidden_columns, load_training_tasks

    tasks_file = write_tasks(tmp_path / "tasks.jsonl", TASKS[:2])
    cfg = tiny_config(tiny_model_dir, tasks_file, tmp_path / "run", total_steps=1, **{"optim.learning_rate": 1e-3})
    tasks = load_training_tasks(cfg)
    counter: dict[tuple[str, str], int] = {}
    ids_of: dict[tuple[int, ...], tuple[str, str, int]] = {}
    trainer = build_trainer(cfg, tasks, hidden_columns(cfg, tasks), rollout_func=_scripted_rollout(counter, ids_of))
    seen: dict[tuple[str, str, int], float] = {}
    original = trainer._compute_loss

    eos = trainer.processing_class.eos_token_id

    def spy(model: Any, inputs: dict[str, Any]) -> Any:
        for ids, adv in zip(inputs["completion_ids"], inputs["advantages"], strict=True):
            seen[ids_of[answer_ids(ids, eos)]] = float(adv)
        return original(model, inputs)

    trainer._compute_loss = spy
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    try:
        trainer.train()
    finally:
        trainer.cure_judge.close()

    assert len(seen) == 16  # every scripted answer reached the loss exactly once
    code_adv, test_adv = task_rewards(
        SUM_GT, SUM_GEN, _lengths(trainer, SUM, CODE), _lengths(trainer, SUM, TEST), RewardConfig()
    )
    assert code_adv is not None and test_adv is not None
    np.testing.assert_allclose([seen[(SUM, CODE, i)] for i in range(4)], code_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([seen[(SUM, TEST, i)] for i in range(4)], test_adv, rtol=1e-5, atol=1e-6)
    # by hand: good tests reject 3/3 and 2/3 of the wrong programs, bad tests let none through
    raw = np.array([1.0, 2 / 3, 0.0, 0.0])
    np.testing.assert_allclose(test_adv, (raw - raw.mean()) / raw.std())
    assert all(seen[(SQUARE, role, i)] == 0.0 for role in (CODE, TEST) for i in range(4))
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "a step with signal must update the policy"
    row = read_log(tmp_path / "run" / "train_log.jsonl")[0]
    assert row["signal_share"] == 0.5 and row["code_acc"] == pytest.approx(1 / 8)


def answer_ids(ids: Any, eos: int) -> tuple[int, ...]:
    """A completion's ids up to and including its EOS (what the scripted rollout returned)."""
    out = ids.tolist()
    return tuple(out[: out.index(eos) + 1])


def _lengths(trainer: Any, question: str, role: str) -> list[int]:
    tok = trainer.processing_class
    return [len(tok(text, add_special_tokens=False)["input_ids"]) for text in SCRIPT[(question, role)]]


def test_evaluation_runs_the_bench_pipeline_on_the_current_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    from cure_train.evaluation import eval_dir
    from cure_train.trainer import run_training

    tasks = write_tasks(tmp_path / "tasks.jsonl", TASKS)
    out = tmp_path / "run"
    cfg = tiny_config(
        tiny_model_dir,
        tasks,
        out,
        total_steps=1,
        eval_interval=1,
        eval_dataset=str(tasks),
        evaluation={"backend": "hf", "k_code": 2, "k_case": 2, "bon": "2x2", "limit": 2, "max_new_tokens": 8},
    )
    run_training(cfg)
    row = read_log(out / "train_log.jsonl")[0]
    assert {"eval/code_acc", "eval/unit_test_acc", "eval/bon/2x2/acc", "eval_s"} <= set(row)
    bench_dir = eval_dir(out, 1) / "bench"
    summary = json.loads((bench_dir / "summary.json").read_text())
    assert summary["metrics"]["code_acc"] == row["eval/code_acc"]
    assert summary["counts"]["n_tasks"] == 2
    assert not (eval_dir(out, 1) / "model").exists()  # the weights copy is removed, the checkpoint stays
    assert (out / "checkpoint-2").is_dir()


def test_ctrl_c_names_the_checkpoint_to_resume_from(tiny_model_dir: Path, tmp_path: Path) -> None:
    from cure_bench.errors import RunInterrupted
    from cure_train.trainer import run_training

    tasks = write_tasks(tmp_path / "tasks.jsonl", TASKS[:2])
    scripted = _scripted_rollout({}, {})
    calls = []

    def interrupted_on_second_step(prompts: list, trainer: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return scripted(prompts, trainer)

    out = tmp_path / "run"
    with pytest.raises(RunInterrupted, match=r"interrupted at step 1; the last checkpoint is .*checkpoint-2: re-run"):
        run_training(tiny_config(tiny_model_dir, tasks, out, total_steps=3), rollout_func=interrupted_on_second_step)
    assert [row["step"] for row in read_log(out / "train_log.jsonl")] == [1]


def test_launch_facts_name_deepspeed_and_its_zero_stage() -> None:
    """The log's `launch` comes from the accelerator that ran, so a DeepSpeed launch is told from a plain one."""
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from cure_train.steplog import launch_facts

    deepspeed = SimpleNamespace(
        num_processes=8,
        distributed_type=DistributedType.DEEPSPEED,
        state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=2)),
    )
    assert launch_facts(deepspeed) == {"processes": 8, "distributed": "DEEPSPEED", "zero_stage": 2}
    ddp = SimpleNamespace(num_processes=2, distributed_type=DistributedType.MULTI_GPU, state=SimpleNamespace())
    assert launch_facts(ddp) == {"processes": 2, "distributed": "MULTI_GPU", "zero_stage": None}
