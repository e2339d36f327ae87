"""Two training processes (CPU, gloo): the batch is gathered, judged once, and each process gets its slice.

The test launches this same file with ``torchrun --nproc_per_node 2`` (accelerate's CPU launcher runs a single
process; accelerate picks the torchrun environment up and uses gloo); each rank trains one step on
the scripted answers of ``test_train_loop`` and writes the advantages that reached its loss.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_processes_see_cure_advantages(tiny_model_dir: Path, tmp_path: Path) -> None:
    from cure_train.data import CODE, TEST
    from cure_train.rewards import RewardConfig, task_rewards
    from tests.test_train_loop import SCRIPT, SUM, SUM_GEN, SUM_GT, TASKS, write_tasks

    tasks = write_tasks(tmp_path / "tasks.jsonl", TASKS[:2])
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        __file__,
        str(tiny_model_dir),
        str(tasks),
        str(tmp_path / "run"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRL_EXPERIMENTAL_SILENCE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-12000:-2500]
    assert (tmp_path / "run" / "rank1.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    seen: dict[tuple[str, str, int], float] = {}
    for rank in (0, 1):
        rows = json.loads((tmp_path / "run" / f"rank{rank}.json").read_text())
        # update separate: each rank trains on 4 code answers (first update), then 4 test answers (second)
        assert [role for _, role, _, _ in rows] == [CODE] * 4 + [TEST] * 4
        for question, role, index, adv in rows:
            assert (question, role, index) not in seen  # every answer is trained on by exactly one process
            seen[(question, role, index)] = adv
    assert len(seen) == 16
    tok_lengths = json.loads((tmp_path / "run" / "lengths.json").read_text())
    code_adv, test_adv = task_rewards(SUM_GT, SUM_GEN, tok_lengths[CODE], tok_lengths[TEST], RewardConfig())
    assert code_adv is not None and test_adv is not None
    np.testing.assert_allclose([seen[(SUM, CODE, i)] for i in range(4)], code_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([seen[(SUM, TEST, i)] for i in range(4)], test_adv, rtol=1e-5, atol=1e-6)
    assert sum(abs(v) for k, v in seen.items() if k[0] != SUM) == 0.0
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["n_tasks"] == 2  # the main process judged the whole batch
    assert len(SCRIPT) == 4


def _main(model: str, tasks: str, out: str) -> None:
    """One rank of the launched run: scripted step, record what reached the loss."""
    from accelerate import PartialState

    from cure_train.data import CODE, TEST
    from cure_train.trainer import build_trainer, hidden_columns, load_training_tasks
    from tests.test_train_loop import _lengths, _scripted_rollout, answer_ids, tiny_config

    cfg = tiny_config(Path(model), Path(tasks), Path(out), total_steps=1, **{"optim.per_device_batch_size": 2})
    task_list = load_training_tasks(cfg)
    ids_of: dict[tuple[int, ...], tuple[str, str, int]] = {}
    trainer = build_trainer(cfg, task_list, hidden_columns(cfg, task_list), rollout_func=_scripted_rollout({}, ids_of))
    seen: list[list[Any]] = []
    original = trainer._compute_loss

    eos = trainer.processing_class.eos_token_id

    def spy(model_: Any, inputs: dict[str, Any]) -> Any:
        for ids, adv in zip(inputs["completion_ids"], inputs["advantages"], strict=True):
            seen.append([*ids_of[answer_ids(ids, eos)], float(adv)])
        return original(model_, inputs)

    trainer._compute_loss = spy
    try:
        trainer.train()
    finally:
        trainer.cure_judge.close()
    state = PartialState()
    Path(out, f"rank{state.process_index}.json").write_text(json.dumps(seen))
    if state.is_main_process:
        from tests.test_train_loop import SUM

        lengths = {role: _lengths(trainer, SUM, role) for role in (CODE, TEST)}
        Path(out, "lengths.json").write_text(json.dumps(lengths))


if __name__ == "__main__":
    _main(*sys.argv[1:4])
