"""What `cure bench` / `cure bon` pass to the library (no generation, no sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench import pipeline
from cure_bench.cli import app
from cure_bench.pipeline import BenchResult
from cure_bench.types import CompareMode


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    def fake_run_bench(config, progress=None, confirm=None):
        seen["config"] = config
        seen["confirm"] = confirm
        return BenchResult(
            run_dir=Path("x"), summary={"run": {}, "metrics": {"code_acc": 0.5}, "counts": {}}, tables=[], records=[]
        )

    monkeypatch.setattr(pipeline, "run_bench", fake_run_bench)
    return seen


def test_bench_flags_reach_the_config(captured, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(
        app,
        ["bench", "--model", "gpt-4o-mini", "--dataset", "MBPP", "--k-code", "8", "--k-case", "4", "--bon", "2x2",
         "--max-test", "3", "--temperature", "0.5", "--top-p", "0.9", "--max-tokens", "100", "--rpm", "60",
         "--tpm", "1000", "--concurrency", "4", "--limit", "7", "--seed", "3", "-o", "out", "--no-resume",
         "--show-examples", "--workers", "1", "--sandbox", "rlimits", "--no-exec-cache", "--compare", "float",
         "--memory-limit", "512", "--start-date", "2024-01-01", "--end-date", "2024-12-31", "--single",
         "--no-overlap"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = captured["config"]
    assert cfg.overlap is False
    assert (cfg.dataset, cfg.k_code, cfg.k_case, cfg.bon, cfg.max_test, cfg.limit) == ("MBPP", 8, 4, "2x2", 3, 7)
    assert (cfg.sampling.temperature, cfg.sampling.top_p, cfg.sampling.max_tokens, cfg.sampling.seed) == (
        0.5,
        0.9,
        100,
        3,
    )
    assert cfg.output_dir == Path("out") and cfg.resume is False and cfg.exec_cache is False
    assert cfg.show_examples and cfg.single and cfg.workers == 1 and cfg.sandbox == "rlimits"
    assert cfg.compare is CompareMode.FLOAT and cfg.memory_limit_mb == 512
    assert (cfg.start_date, cfg.end_date) == ("2024-01-01", "2024-12-31")
    assert cfg.coder.model == "gpt-4o-mini" and cfg.tester is None
    assert cfg.coder.options == {"rpm": 60, "tpm": 1000, "concurrency": 4}  # only what was set
    assert cfg.protocol == "cure"  # the default
    assert cfg.command.startswith("cure ")
    assert cfg.rerun is False and cfg.price_per_mtok is None and captured["confirm"] is not None


def test_yes_rerun_and_price_reach_the_library(captured, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["bench", "--model", "gpt-4o-mini", "--yes", "--rerun", "--price-per-mtok", "0.6"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cfg = captured["config"]
    assert cfg.rerun is True and cfg.price_per_mtok == 0.6 and captured["confirm"] is None
    assert cfg.overlap is True  # judging while generating is the default


def test_strict_reaches_the_config_on_both_commands(captured):
    assert CliRunner().invoke(app, ["bench", "--model", "m"]).exit_code == 0
    assert captured["config"].strict is False
    assert CliRunner().invoke(app, ["bench", "--model", "m", "--strict"]).exit_code == 0
    assert captured["config"].strict is True
    assert CliRunner().invoke(app, ["bon", "--coder", "a", "--tester", "b", "--strict"]).exit_code == 0
    assert captured["config"].strict is True


def test_bon_gives_each_role_its_own_server(captured, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    result = CliRunner().invoke(
        app,
        ["bon", "--coder", "a", "--tester", "b", "--coder-base-url", "http://c/v1", "--tester-backend", "hf",
         "--device", "cpu", "--batch-size", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = captured["config"]
    assert (cfg.coder.model, cfg.coder.base_url, cfg.coder.api_key) == ("a", "http://c/v1", "env-key")
    assert (cfg.tester.model, cfg.tester.backend) == ("b", "hf")
    assert cfg.tester.options == {"device": "cpu", "batch_size": 2}


def test_backend_flags_sampling_overrides_and_protocol_reach_the_config(captured):
    result = CliRunner().invoke(
        app,
        ["bench", "--model", "m", "--backend", "vllm", "--gpu-groups", "[[0],[1]]", "--trust-remote-code",
         "--protocol", "chat", "--top-k", "20", "--stop", "END", "--stop", "###", "--endpoint", "chat"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = captured["config"]
    assert cfg.coder.options == {"gpu_groups": "[[0],[1]]", "trust_remote_code": True, "endpoint": "chat"}
    assert cfg.protocol == "chat"
    assert (cfg.sampling.top_k, cfg.sampling.stop) == (20, ("END", "###"))
    assert cfg.sampling.temperature is None and cfg.sampling.max_tokens is None  # left to the protocol


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--compare", "fuzzy"], "--compare"), (["--gpu-groups", "[[0"], "--gpu-groups"), (["--k-code", "0"], "--k-code"),
     (["--protocol", "paper"], "--protocol"), (["--top-k", "0"], "--top-k"), (["--top-k", "-3"], "--top-k"),
     (["--endpoint", "responses"], "--endpoint"), (["--device", "tpu"], "--device")],
)  # fmt: skip
def test_bad_flags_are_one_line_errors(captured, args, flag):
    result = CliRunner().invoke(app, ["bench", "--model", "m", *args])
    assert result.exit_code == 1
    assert "error:" in result.output and flag in result.output and "Traceback" not in result.output
    assert "config" not in captured


def test_base_url_for_a_local_backend():
    """Typed on the command line it is refused, naming the backend; from $OPENAI_BASE_URL it is ambient and dropped."""
    result = CliRunner().invoke(app, ["bench", "--model", "m", "--backend", "hf", "--base-url", "http://x/v1"])
    assert result.exit_code == 1 and "the hf backend does not take a base URL" in result.output


def test_ambient_base_url_is_dropped_for_an_explicit_local_backend(captured, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    result = CliRunner().invoke(app, ["bench", "--model", "m", "--backend", "vllm"])
    assert result.exit_code == 0, result.output
    assert captured["config"].coder.base_url is None
    result = CliRunner().invoke(app, ["bench", "--model", "m"])
    assert captured["config"].coder.base_url == "http://env/v1"  # auto: the URL picks the openai backend
