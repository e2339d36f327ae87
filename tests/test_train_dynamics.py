"""The optimisation step: ``dynamics: cure`` (the authors') against ``dynamics: grpo`` (TRL's), on a tiny model.

Scripted answers with known verdicts (from test_train_loop) make task SUM carry signal and task SQUARE none.
The checks read the trainer's state, not its log lines: optimizer updates and AdamW step counters per CURE step,
the role of every row reaching the loss, its completion mask, its old log-probs, the reference model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cure_train.data import CODE, TEST
from cure_train.rewards import RewardConfig, task_rewards
from tests.test_train_loop import (
    SQUARE,
    SUM,
    SUM_GEN,
    SUM_GT,
    TASKS,
    _lengths,
    _scripted_rollout,
    answer_ids,
    read_log,
    tiny_config,
    write_tasks,
)

pytestmark = pytest.mark.slow


def _adam_steps(optimizer: Any) -> list[int]:
    inner = optimizer
    while getattr(inner, "optimizer", None) is not None:
        inner = inner.optimizer
    return sorted({int(state["step"]) for state in inner.state.values() if "step" in state})


def _run(tiny_model_dir: Path, tmp_path: Path, **overrides: Any) -> tuple[Any, list[dict[str, Any]], list[Any]]:
    """Two CURE steps; returns the trainer, one record per loss call, the AdamW step counters after each update."""
    import torch
    from transformers import TrainerCallback

    from cure_train.trainer import build_trainer, hidden_columns, load_training_tasks

    tasks_file = write_tasks(tmp_path / "tasks.jsonl", TASKS[:2])
    cfg = tiny_config(tiny_model_dir, tasks_file, tmp_path / "run", **{"optim.learning_rate": 1e-3, **overrides})
    tasks = load_training_tasks(cfg)
    ids_of: dict[tuple[int, ...], tuple[str, str, int]] = {}
    trainer = build_trainer(cfg, tasks, hidden_columns(cfg, tasks), rollout_func=_scripted_rollout({}, ids_of))
    eos = trainer.processing_class.eos_token_id
    calls: list[dict[str, Any]] = []
    counters: list[Any] = []
    original = trainer._compute_loss

    def spy(model: Any, inputs: dict[str, Any]) -> Any:
        rows = [ids_of[answer_ids(ids, eos)] for ids in inputs["completion_ids"]]
        record: dict[str, Any] = {
            "rows": rows,
            "mask": inputs["completion_mask"].sum(dim=1).tolist(),
            "advantages": inputs["advantages"].tolist(),
            "num_items": float(inputs["num_items_in_batch"]),
        }
        if "old_per_token_logps" in inputs:
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
            mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            with torch.no_grad():
                now, _, _ = trainer._get_per_token_logps_and_entropies(
                    model, ids, mask, inputs["completion_ids"].size(1), batch_size=ids.size(0)
                )
            keep = inputs["completion_mask"].bool()
            record["old_gap"] = float((now - inputs["old_per_token_logps"])[keep].abs().max()) if keep.any() else 0.0
        calls.append(record)
        return original(model, inputs)

    class Counters(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            counters.append(_adam_steps(kwargs["optimizer"]))

    trainer._compute_loss = spy
    trainer.add_callback(Counters())
    try:
        trainer.train()
    finally:
        trainer.cure_judge.close()
    return trainer, calls, counters


def test_cure_dynamics_make_the_authors_step(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer, calls, counters = _run(tiny_model_dir, tmp_path)

    assert trainer.ref_model is None  # kl_reference step_start: no frozen reference model is built
    assert trainer.state.global_step == 4  # two optimizer updates per CURE step
    # per_step optimizer state: AdamW's step counter restarts at every CURE step (1, 2 | 1, 2), not 1..4
    assert counters == [[1], [2], [1], [2]]
    assert trainer.cure_resets == 2
    # each step: 2 code micro-batches (one update), then 2 test micro-batches (the other)
    assert [{role for _, role, _ in call["rows"]} for call in calls] == [{CODE}, {CODE}, {TEST}, {TEST}] * 2
    code_adv, test_adv = task_rewards(
        SUM_GT, SUM_GEN, _lengths(trainer, SUM, CODE), _lengths(trainer, SUM, TEST), RewardConfig()
    )
    assert code_adv is not None and test_adv is not None
    expected = {(SUM, CODE): code_adv, (SUM, TEST): test_adv}
    for call in calls:
        for (question, role, index), n_mask, adv in zip(call["rows"], call["mask"], call["advantages"], strict=True):
            if question == SQUARE:  # no signal: absent from the loss (no token counts)
                assert n_mask == 0 and adv == 0.0
            else:
                assert n_mask > 0
                assert adv == pytest.approx(float(expected[(question, role)][index]), rel=1e-5, abs=1e-6)
        assert call["num_items"] > 0
        # old log-probs are the policy's at the start of the update: recomputed after the code update
        assert call["old_gap"] < 1e-4
    # the dapo normaliser counts only this update's kept tokens (x2: TRL divides by steps_per_generation / accum)
    for first in (0, 2, 4, 6):
        pair = calls[first : first + 2]
        kept = sum(n for call in pair for (q, _, _), n in zip(call["rows"], call["mask"], strict=True) if q == SUM)
        assert pair[0]["num_items"] == pair[1]["num_items"] == 2 * kept
    # the step log keeps both updates: update1/* is the code update, the plain keys the test update
    log = read_log(tmp_path / "run" / "train_log.jsonl")
    assert [row["update"] for row in log] == [2, 4]
    assert all({"update1/loss", "update1/grad_norm", "loss", "grad_norm"} <= set(row) for row in log)


def test_grpo_dynamics_keep_trl_behaviour(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer, calls, counters = _run(tiny_model_dir, tmp_path, **{"optim.dynamics": "grpo"})

    assert trainer.ref_model is not None  # KL to the frozen initial model
    assert trainer.state.global_step == 2 and counters == [[1], [2]]  # one update per step, one AdamW for the run
    assert len(calls) == 8 and all(len({role for _, role, _ in c["rows"]}) >= 1 for c in calls)
    rows = [row for call in calls for row in call["rows"]]
    assert len(rows) == 32 and all(n > 0 for call in calls for n in call["mask"])  # no-signal rows are kept
    assert np.all(
        [
            adv == 0.0
            for call in calls
            for (q, _, _), adv in zip(call["rows"], call["advantages"], strict=True)
            if q == SQUARE
        ]
    )


def test_cure_dynamics_train_on_the_first_tokens_only(tiny_model_dir: Path, tmp_path: Path) -> None:
    """max_trained_tokens (upstream's generate_max_len): mask positions past the cap reach neither loss nor count."""
    trainer, calls, _ = _run(tiny_model_dir, tmp_path, **{"optim.max_trained_tokens": 2})

    longest = max(max(_lengths(trainer, SUM, role)) for role in (CODE, TEST))
    assert longest > 2  # the cap really cuts answers
    kept = [n for call in calls for (q, _, _), n in zip(call["rows"], call["mask"], strict=True) if q == SUM]
    assert kept and all(n == 2 for n in kept)
    for first in (0, 2, 4, 6):
        pair = calls[first : first + 2]
        assert pair[0]["num_items"] == 2 * sum(n for call in pair for n in call["mask"])
