"""The run manifest records what generation did, not what it planned: a tester server that refuses ``n``
FastAPI-style (``{"detail": ...}``) still gives the right metrics, and summary.json says ``single``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file
from tests.test_bench_e2e import KEY, assert_expected_metrics, bench_args, invoke

pytestmark = pytest.mark.slow


def test_manifest_records_the_n_mode_after_a_detail_refusal(tmp_path: Path, fake_openai: Any) -> None:
    refuse_n = {"detail": [{"loc": ["body", "n"], "msg": "Input should be less than or equal to 1"}]}
    srv = fake_openai(
        responder=ScriptedResponder(),
        api_key=KEY,
        reject=lambda body: (422, refuse_n) if body.get("n", 1) > 1 else None,
    )
    out = tmp_path / "run"
    # one request in flight: the scripted answers then go to sample indices in order, as with n per request
    result = invoke(*bench_args(srv, write_task_file(tmp_path / "tasks.jsonl"), out, "--concurrency", "1"))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert_expected_metrics(summary["metrics"])
    assert summary["run"]["coder"]["n_per_request"] == "single"
    assert {r.n for r in srv.requests if r.status == 200} == {1}
