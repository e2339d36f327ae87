"""`cure bench --backend vllm` end to end, through the real backend and ``VLLMEngine``, on a stand-in ``vllm``.

Nothing is injected into the generator: the CLI builds it as for a user, the runtime check counts GPUs by NVML
(``torch.cuda.is_available()`` fails the test if called), ``VLLMEngine`` steps the stand-in's ``llm_engine`` one
request per step, and the sandbox judges the answers. Answers are a function of the prompt and the sample's seed,
so an interrupted-then-resumed run must give the metrics of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers import fake_vllm
from tests.helpers.fake_vllm import FakeLLM
from tests.helpers.scripted_tasks import CODE_ANSWERS, TEST_ANSWERS, write_task_file

pytestmark = pytest.mark.slow

K = 3  # samples per role and task: 3 tasks x (3 programs + 3 tests) = 18 seeded samples, one request each


def by_seed(text: str, params: Any) -> list[str]:
    """The scripted answer picked by the sample's seed (a resume must draw the same ones)."""
    task = re.search(r"TASK-([A-Z])", text)
    if task is None:
        return ["no task"] * params.n
    pool = (TEST_ANSWERS if "**Test Input:**" in text else CODE_ANSWERS)[task.group(1)]
    return [pool[(params.seed or 0) % len(pool)]] * params.n


@pytest.fixture()
def vllm_stand_in(monkeypatch: pytest.MonkeyPatch) -> type[FakeLLM]:
    fake = fake_vllm.install(monkeypatch)
    monkeypatch.setattr(FakeLLM, "responder", staticmethod(by_seed))
    monkeypatch.setattr(FakeLLM, "finish_reason", "stop")
    monkeypatch.setattr(FakeLLM, "default_context", 4096)
    return fake


def bench(model: Path, tasks: Path, out: Path, *extra: str) -> Any:
    args = [
        "bench", "--backend", "vllm", "--model", str(model), "--dataset", str(tasks), "--k-code", str(K),
        "--k-case", str(K), "--bon", "3x3", "--max-tokens", "64", "--seed", "7", "-o", str(out), "--workers", "1",
        *extra,
    ]  # fmt: skip
    return CliRunner().invoke(app, args)


def asked(fake: type[FakeLLM]) -> int:
    return sum(len(llm.llm_engine.added) for llm in fake.made)


def test_vllm_bench_streams_survives_ctrl_c_and_resumes_with_the_same_samples(
    tmp_path: Path, tiny_model_dir: Path, vllm_stand_in: type[FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    whole = bench(tiny_model_dir, tasks, tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    expected = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert expected["run"]["coder"]["backend"] == "vllm"
    assert expected["counts"]["code_answers"] == 3 * K and expected["counts"]["test_answers"] == 3 * K
    (llm,) = vllm_stand_in.made
    assert llm.env_method == "spawn", "spawn was forced before the engine started"
    assert len(llm.llm_engine.added) == 6 * K, "one request per seeded sample"
    assert llm.llm_engine.shut_down, "the run's end shut the engine core down"

    def press_after_five(engine: Any) -> None:
        if len(engine.finished) == 5 and not getattr(engine, "pressed", False):
            engine.pressed = True
            os.kill(os.getpid(), signal.SIGINT)

    vllm_stand_in.made.clear()
    monkeypatch.setattr(FakeLLM, "on_step", staticmethod(press_after_five))
    out = tmp_path / "interrupted"
    stopped = bench(tiny_model_dir, tasks, out)
    assert stopped.exit_code == 130, stopped.output
    assert "re-run the same command to resume" in stopped.output
    assert not (out / "summary.json").exists()
    (first,) = vllm_stand_in.made
    kept = len(first.llm_engine.finished)
    assert kept in (5, 6), "the requests finished by the Ctrl-C step are kept"
    assert first.llm_engine.aborted and first.llm_engine.shut_down

    vllm_stand_in.made.clear()
    monkeypatch.setattr(FakeLLM, "on_step", None)
    resumed = bench(tiny_model_dir, tasks, out)
    assert resumed.exit_code == 0, resumed.output
    assert asked(vllm_stand_in) == 6 * K - kept, "the resume asks only for the samples not yet generated"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"] == expected["metrics"], "same per-sample seeds: same samples, same metrics"


def test_vllm_bench_keys_its_cache_on_the_context_and_skips_over_long_prompts(
    tmp_path: Path,
    tiny_model_dir: Path,
    vllm_stand_in: type[FakeLLM],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"

    def press_after_five(engine: Any) -> None:
        if len(engine.finished) == 5 and not getattr(engine, "pressed", False):
            engine.pressed = True
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(FakeLLM, "on_step", staticmethod(press_after_five))
    assert bench(tiny_model_dir, tasks, out, "--max-model-len", "4096").exit_code == 130
    monkeypatch.setattr(FakeLLM, "on_step", None)
    vllm_stand_in.made.clear()
    # resumed under a context too short for any prompt: none of the samples cut under 4096 is reused, every
    # sample is skipped with its reason and the run goes on (the warning's counts: test_backend_vllm)
    short = bench(tiny_model_dir, tasks, out, "--max-model-len", "16")
    assert short.exit_code == 0, short.output
    (llm,) = vllm_stand_in.made
    assert llm.llm_engine.added == [], "over-long prompts never reach the engine"
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    reasons = [a["finish_reason"] for r in rows for a in r["code_answers"] + r["test_answers"]]
    assert reasons == ["prompt_too_long"] * 6 * K, "nothing generated under --max-model-len 4096 was reused"
    vllm_stand_in.made.clear()
    assert bench(tiny_model_dir, tasks, out, "--max-model-len", "16").exit_code == 0
    assert vllm_stand_in.made == [], "the same command reports its finished run and starts no engine"
    other = bench(tiny_model_dir, tasks, out, "--max-model-len", "4096")
    assert other.exit_code != 0 and "other settings" in other.output, "not reported as if made under 4096"
    assert vllm_stand_in.made == []
