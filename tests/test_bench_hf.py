"""`cure bench --backend hf` end to end on a tiny random Qwen2 built in the test (plumbing, counts, files, cache)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file

pytestmark = pytest.mark.slow


def test_hf_backend_end_to_end_and_rerun_generates_nothing(tmp_path, tiny_model_dir, monkeypatch):
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "hf-run"
    args = [
        "bench", "--backend", "hf", "--model", str(tiny_model_dir), "--dataset", str(tasks), "--limit", "2",
        "--k-code", "2", "--k-case", "2", "--bon", "2x2", "--max-tokens", "12", "--device", "cpu", "--seed", "1",
        "-o", str(out), "--workers", "1",
    ]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["coder"]["backend"] == "hf"
    assert summary["counts"]["code_answers"] == 4 and summary["counts"]["test_answers"] == 4
    assert summary["metrics"]["mean_code_response_tokens"] is not None
    assert 0 < summary["metrics"]["mean_code_response_tokens"] <= 12
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["code_answers"]) == 2 for r in rows)

    from cure_bench.generation.backends import hf_backend

    def must_not_generate(self, requests, on_sample):
        if requests:
            raise AssertionError(f"re-run asked the model for {len(requests)} requests")

    monkeypatch.setattr(hf_backend.HFGenerator, "generate", must_not_generate)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "summary.json").read_text())["metrics"] == summary["metrics"]


def test_bon_mixes_backends_and_manifest_names_both(tmp_path, tiny_model_dir, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key="k")
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "mixed"
    result = CliRunner().invoke(
        app,
        [
            "bon", "--coder", str(tiny_model_dir), "--coder-backend", "hf", "--tester", "fake-tester",
            "--tester-base-url", srv.base_url, "--tester-api-key", "k", "--dataset", str(tasks), "--limit", "1",
            "--k-code", "2", "--k-case", "4", "--bon", "2x4", "--max-tokens", "8", "--device", "cpu", "-o", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = json.loads((out / "summary.json").read_text())["run"]
    assert run["coder"]["backend"] == "hf" and run["tester"]["backend"] == "openai"
    assert run["tester"]["model"] == "fake-tester"
    assert srv.requests_total == 1  # only the tester prompt of the one task went to the API
    row = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert len(row["generated_tests"]) == 3  # task A's scripted tester answers: 3 of 4 parse
