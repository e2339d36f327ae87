"""A user's finished runs are never overwritten, and re-running a finished command reports it (issue 18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.runs import directory as rundir
from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file

pytestmark = pytest.mark.slow

KEY = "sk-test-key"


def _args(srv, tasks: Path, *extra: str) -> list[str]:
    return [
        "bench", "--model", "fake-coder", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", KEY,
        "--k-code", "2", "--k-case", "2", "--bon", "2x2", "--workers", "2", *extra,
    ]  # fmt: skip


def _invoke(args: list[str], cwd: Path | None = None):
    if cwd is None:
        return CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    finally:
        os.chdir(old)


def test_finished_run_is_not_overwritten_by_other_settings(tmp_path: Path, fake_openai) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks, out = write_task_file(tmp_path / "tasks.json"), tmp_path / "out"
    first = _invoke(_args(srv, tasks, "-o", str(out), "--json"))
    assert first.exit_code == 0, first.output
    before = {name: (out / name).read_bytes() for name in ("summary.json", "samples.jsonl", "run.json")}
    requests = srv.requests_total

    other = _invoke(_args(srv, tasks, "-o", str(out), "--k-code", "3"))
    assert other.exit_code == 1
    assert "holds a finished run with other settings (k_code 2 -> 3)" in other.output
    assert "--rerun" in other.output and "Traceback" not in other.output
    assert srv.requests_total == requests  # refused before any request
    assert {name: (out / name).read_bytes() for name in before} == before

    replaced = _invoke(_args(srv, tasks, "-o", str(out), "--k-code", "3", "--rerun", "--json"))
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "summary.json").read_text())["run"]["k_code"] == 3


def test_rerunning_a_finished_command_reports_it_and_asks_nothing(tmp_path: Path, fake_openai) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.json")
    first = _invoke(_args(srv, tasks, "--json"), cwd=tmp_path)
    assert first.exit_code == 0, first.output
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("fake-coder-tasks-")
    requests = srv.requests_total

    again = _invoke(_args(srv, tasks, "--json"), cwd=tmp_path)
    assert again.exit_code == 0, again.output
    assert srv.requests_total == requests
    assert sorted((tmp_path / "runs").iterdir()) == runs
    assert "already finished in runs/" in again.output
    assert json.loads(again.stdout[again.stdout.index("{") :])["metrics"] == json.loads(first.stdout)["metrics"]

    fresh = _invoke(_args(srv, tasks, "--rerun"), cwd=tmp_path)
    assert fresh.exit_code == 0, fresh.output
    assert srv.requests_total > requests and len(list((tmp_path / "runs").iterdir())) == 2


def test_output_dir_that_is_a_file_or_read_only_is_one_line(tmp_path: Path, fake_openai) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.json")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = _invoke(_args(srv, tasks, "-o", str(a_file)))
    assert result.exit_code == 1 and f"-o {a_file}: is a file, not a directory" in result.output
    assert "Traceback" not in result.output and srv.requests_total == 0
    if os.geteuid() == 0:
        return  # root writes anywhere: the read-only case cannot be shown
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = _invoke(_args(srv, tasks, "-o", str(locked / "run")))
    assert result.exit_code == 1 and "is not writable" in result.output and srv.requests_total == 0


@pytest.mark.parametrize(
    ("model", "expected"),
    [("/tmp/x/tiny-model", "tiny-model"), ("Qwen/Qwen2.5-7B", "Qwen2.5-7B"), ("--odd", "odd"), ("gpt-4o", "gpt-4o")],
)
def test_run_directory_names_are_readable_and_never_start_with_a_dash(model: str, expected: str) -> None:
    assert rundir.model_basename(model) == expected
    assert not rundir.slug("--x").startswith("-") and not rundir.slug(".hidden").startswith(".")


def test_bad_sandbox_level_fails_before_any_request_and_creates_nothing(tmp_path: Path, fake_openai) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks, out = write_task_file(tmp_path / "tasks.json"), tmp_path / "out"
    result = _invoke(_args(srv, tasks, "-o", str(out), "--sandbox", "bwarp"))
    assert result.exit_code == 1 and "--sandbox must be one of auto, bwrap" in result.output
    assert "'bwarp'" in result.output and srv.requests_total == 0 and not out.exists()


def test_sandbox_that_cannot_start_fails_before_generation(tmp_path: Path, fake_openai, monkeypatch) -> None:
    from cure_bench.errors import SandboxError
    from cure_bench.sandbox import pool

    def refuse(*args: object, **kwargs: object) -> None:
        raise SandboxError("--sandbox bwrap: bubblewrap cannot start here (simulated)")

    monkeypatch.setattr(pool.Sandbox, "__init__", refuse)
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.json")
    result = _invoke(_args(srv, tasks, "-o", str(tmp_path / "out"), "--sandbox", "bwrap"))
    assert result.exit_code == 1 and "bubblewrap cannot start here" in result.output
    assert srv.requests_total == 0


def test_clipped_bon_is_said(tmp_path: Path, fake_openai) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.json")
    result = _invoke(_args(srv, tasks, "-o", str(tmp_path / "out"), "--bon", "2x2,32x32", "--json"))
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())  # the log line as one line, whatever the terminal width
    assert "measured as 32x32 -> 2x2" in said and "2x2 -> 2x2" not in said
    assert set(json.loads(result.stdout)["metrics"]["bon"]) == {"2x2"}
