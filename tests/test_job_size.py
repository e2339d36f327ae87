"""The job-size line: what a run will ask for, said before the first request (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import ConfigError, RunInterrupted
from cure_bench.job import CONFIRM_ANSWERS, estimate_job
from cure_bench.pipeline import run_bench
from cure_bench.types import SamplingParams
from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file


def _cfg(**kw: object) -> BenchConfig:
    base: dict[str, object] = {
        "coder": ModelConfig(model="gpt-4o-mini", backend="openai", base_url="http://127.0.0.1:9/v1"),
        "dataset": "sample",
        "k_code": 4,
        "k_case": 2,
        "sampling": SamplingParams(max_tokens=1000),
    }
    base.update(kw)
    return BenchConfig(**base)  # type: ignore[arg-type]


def test_api_job_counts_answers_tokens_requests_and_cost() -> None:
    job = estimate_job(_cfg(), n_tasks=10, price_per_mtok=0.6)
    assert (job.code_answers, job.test_answers, job.answers) == (40, 20, 60)
    assert job.token_ceiling == 60_000
    assert (job.api_requests, job.api_requests_single) == (20, 60)
    assert job.cost_ceiling == pytest.approx(0.036)
    line = job.describe()
    assert "10 tasks x (4 programs + 2 tests) = 60 answers" in line
    assert "at most 60,000 generated tokens" in line and "20 API requests (60 if n > 1 is refused)" in line
    assert "$0.04 at $0.6/Mtok" in line


def test_single_mode_and_local_backend_make_no_api_requests() -> None:
    local = _cfg(coder=ModelConfig(model="/models/tiny", backend="hf"), single=True)
    job = estimate_job(local, n_tasks=3)
    assert job.answers == 12 and job.api_requests == 0 and "API" not in job.describe()
    assert job.cost_ceiling is None


def test_big_jobs_need_confirmation() -> None:
    assert not estimate_job(_cfg(), n_tasks=10).needs_confirmation
    assert estimate_job(_cfg(), n_tasks=CONFIRM_ANSWERS // 6 + 1).needs_confirmation


def test_negative_price_is_a_flag_error() -> None:
    with pytest.raises(ConfigError, match=r"--price-per-mtok must be >= 0"):
        _cfg(price_per_mtok=-1.0)


def test_declined_job_sends_nothing_and_creates_nothing(tmp_path: Path, fake_openai) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key="k")
    tasks = write_task_file(tmp_path / "tasks.json")
    cfg = _cfg(
        coder=ModelConfig(model="m", backend="openai", base_url=srv.base_url, api_key="k"),
        dataset=str(tasks),
        output_dir=tmp_path / "out",
    )
    seen = []

    def decline(job: object) -> bool:
        seen.append(job)
        return False

    with pytest.raises(RunInterrupted, match="declined"):
        run_bench(cfg, confirm=decline)
    assert len(seen) == 1 and srv.requests_total == 0 and not (tmp_path / "out").exists()
