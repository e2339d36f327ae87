"""--judge-compat: upstream harness behaviours on request, python3 semantics by default, recorded in the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench import pipeline
from cure_bench.cli import app
from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import ConfigError
from cure_bench.pipeline import BenchResult
from cure_bench.sandbox import Sandbox, judge
from cure_bench.sandbox.cache import job_key
from cure_bench.types import ExecJob, Verdict

ANNOTATED = {
    "List": "def f(xs: List[int]) -> int:\n    return sum(xs)\nprint(f([1, 2]))",
    "Tuple": "def f(p: Tuple[int, int]) -> int:\n    return p[0] + p[1]\nprint(f((1, 2)))",
    "Optional": "def f(x: Optional[int] = None) -> int:\n    return 3\nprint(f())",
    "Dict": "def f(d: Dict[str, int]) -> int:\n    return 3\nprint(f({}))",  # upstream pre-sets only the three
}


def verdicts(compat: tuple[str, ...]) -> dict[str, Verdict]:
    with Sandbox(workers=1, use_cache=False, compat=compat) as sandbox:
        results = sandbox.run([ExecJob(p, "", 2.0, 256) for p in ANNOTATED.values()])
        assert sandbox.describe()["judge_compat"] == list(compat)
    return {name: judge(r, "3") for name, r in zip(ANNOTATED, results, strict=True)}


def test_typing_names_only_on_request() -> None:
    assert set(verdicts(()).values()) == {Verdict.RUNTIME_ERROR}  # python3: NameError for each
    assert verdicts(("typing-names",)) == {
        "List": Verdict.ACCEPTED,
        "Tuple": Verdict.ACCEPTED,
        "Optional": Verdict.ACCEPTED,
        "Dict": Verdict.RUNTIME_ERROR,
    }


def test_compat_enters_the_exec_cache_key_only_when_set() -> None:
    job = ExecJob("print(1)", "", 1.0, 256)
    assert job_key(job, "bwrap", 1024) == job_key(job, "bwrap", 1024, ())
    assert job_key(job, "bwrap", 1024) != job_key(job, "bwrap", 1024, ("typing-names",))


def test_unknown_value_is_refused_by_the_library() -> None:
    with pytest.raises(ConfigError, match=r"--judge-compat: unknown value 'typing'; choose from typing-names"):
        BenchConfig(dataset="sample", coder=ModelConfig(model="m"), judge_compat=("typing",))
    with pytest.raises(ConfigError, match="--judge-compat"):
        Sandbox(workers=1, compat=("exit-codes",))
    cfg = BenchConfig(dataset="sample", coder=ModelConfig(model="m"), judge_compat=("typing-names", "typing-names"))
    assert cfg.judge_compat == ("typing-names",)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict:
    seen: dict = {}

    def fake_run_bench(config, progress=None, confirm=None):  # type: ignore[no-untyped-def]
        seen["config"] = config
        return BenchResult(run_dir=Path("x"), summary={"run": {}, "metrics": {}, "counts": {}}, tables=[], records=[])

    monkeypatch.setattr(pipeline, "run_bench", fake_run_bench)
    return seen


def test_cli_flag_on_bench_and_bon(captured: dict) -> None:
    assert CliRunner().invoke(app, ["bench", "--model", "m"]).exit_code == 0
    assert captured["config"].judge_compat == ()
    result = CliRunner().invoke(app, ["bon", "--coder", "a", "--tester", "b", "--judge-compat", "typing-names"])
    assert result.exit_code == 0, result.output
    assert captured["config"].judge_compat == ("typing-names",)


def test_cli_unknown_value_is_one_line_error_before_any_work(captured: dict) -> None:
    captured.clear()
    result = CliRunner().invoke(app, ["bench", "--model", "m", "--judge-compat", "exit-codes"])
    assert result.exit_code == 1
    assert "error:" in result.output and "--judge-compat" in result.output and "typing-names" in result.output
    assert "Traceback" not in result.output and "config" not in captured


@pytest.mark.slow
def test_recorded_in_summary_json(tmp_path: Path, fake_openai) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file

    srv = fake_openai(responder=ScriptedResponder(), api_key="sk-test")
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    args = ["bench", "--model", "fake-coder", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key",
            "sk-test", "--k-code", "4", "--single", "--workers", "2", "--judge-compat", "typing-names"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "summary.json").read_text())["run"]
    assert run["judge_compat"] == ["typing-names"]
    assert run["sandbox"]["judge_compat"] == ["typing-names"]
