"""`cure refine`'s repair rounds judge while generating: a task whose repairs are in is judged while another
task's repair request is still unanswered; Ctrl-C at that moment leaves caches whose resume gives the files of
an uninterrupted ``--no-overlap`` run, asking nothing twice. (Same files overlapped or not: test_overlap.py.)"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.refine import RefineConfig, run_refine
from tests.helpers.refine_script import ADD, ADD1, KEY, Responder, _code, kind, refine_args, write_tasks
from tests.helpers.run_snapshot import generation_rows, refine_files

REPAIR_STAGE = "generate repairs (round 1)"


def slow_task_repair(body: dict[str, Any]) -> bool:
    """Task X's round-1 repair request (X has one program to repair there, Y two)."""
    text = json.dumps(body)
    return "repair round 1)" in text and "TASK-X" in text


class Watch:
    """A pipeline Progress logging (event, stage) in order; ``judged`` is set once judging in round 1 has
    finished an execution (the judge bar counts executions)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.judged = threading.Event()
        self._repairing = False
        self._lock = threading.Lock()

    def start(self, stage: str, total: int) -> None:
        with self._lock:
            self.log.append(("start", stage))
            self._repairing = self._repairing or stage == REPAIR_STAGE

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None:
        with self._lock:
            if stage == "judge" and self._repairing and done > 0:
                self.judged.set()

    def finish(self, stage: str) -> None:
        with self._lock:
            self.log.append(("finish", stage))


@pytest.mark.slow
@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "no-overlap"])
def test_a_task_is_judged_while_another_tasks_repair_is_unanswered(
    tmp_path: Path, fake_openai: Any, overlap: bool
) -> None:
    """The server holds X's round-1 repair until round 1's judging has finished an execution (at most 60 s).
    Overlapped, Y's two repairs come back, Y is judged, and only then is X answered; sequentially nothing is
    judged until every repair is in, so the held request sees no judging (it is not held there)."""
    watch = Watch()
    seen: list[bool] = []

    def latency(body: dict[str, Any]) -> float:
        if slow_task_repair(body):
            seen.append(watch.judged.wait(60) if overlap else watch.judged.is_set())
        return 0.0

    srv = fake_openai(responder=Responder(), api_key=KEY, latency=latency)
    bench = BenchConfig(dataset=str(write_tasks(tmp_path / "tasks.jsonl")),
                        coder=ModelConfig("fake", base_url=srv.base_url, api_key=KEY, options={"concurrency": 4}),
                        k_code=2, k_case=2, bon="2x2", workers=2, output_dir=tmp_path / "run",
                        overlap=overlap)  # fmt: skip
    result = run_refine(RefineConfig(bench=bench, rounds=2), progress=watch)

    assert seen == [overlap]  # overlapped: Y's new table was being judged while X's repair was unanswered
    rounds = result.summary["metrics"]["rounds"]
    assert [(r["repaired"], r["fixed"], r["broken"]) for r in rounds] == [(0, 0, 0), (3, 2, 1), (2, 1, 1)]
    log = watch.log
    start, end = log.index(("start", REPAIR_STAGE)), log.index(("finish", REPAIR_STAGE))
    judge = log.index(("start", "judge"), start)
    assert (start < judge < end) == overlap  # both bars at once, or the judge bar after the repairs
    assert log.index(("finish", "judge"), start) > end


@pytest.mark.slow
def test_ctrl_c_while_a_repair_round_judges_then_resume_gives_the_sequential_files(
    tmp_path: Path, fake_openai: Any
) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl")
    ref_srv = fake_openai(responder=Responder(), api_key=KEY)
    reference = refine_args(ref_srv, tasks, tmp_path / "reference", "--rounds", "2", "--concurrency", "4")
    ref = CliRunner().invoke(app, [*reference, "--no-overlap"])
    assert ref.exit_code == 0, ref.output
    expected = refine_files(tmp_path / "reference", [ref_srv.base_url])

    held, release = threading.Event(), threading.Event()

    def latency(body: dict[str, Any]) -> float:
        if slow_task_repair(body):
            held.set()
            release.wait(60)
        return 0.0

    srv = fake_openai(responder=Responder(), api_key=KEY, latency=latency)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cure_bench.cli.main", *refine_args(srv, tasks, out, "--rounds", "2"),
           "--concurrency", "4"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert held.wait(120), "X's round-1 repair never came"
        executions = exec_rows(out)  # the feedback runs', from before the repair requests
        deadline = time.time() + 60
        while exec_rows(out) == executions and time.time() < deadline:  # Y's new table is being judged
            time.sleep(0.02)
        assert exec_rows(out) > executions
        proc.send_signal(signal.SIGINT)  # stop sending, wait for X's answer...
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # ...no: abandon it
        _, stderr = proc.communicate(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert not (out / "summary.json").exists()
    stored = [text for _, _, text, _, _ in generation_rows(out / "refine_generations.sqlite")]
    assert sorted(stored) == sorted([_code(ADD1), _code(ADD)])  # Y's two repairs are kept, X's never came
    before = srv.requests_total

    resumed = CliRunner().invoke(app, refine_args(srv, tasks, out, "--rounds", "2", "--concurrency", "4"))
    assert resumed.exit_code == 0, resumed.output
    asked = srv.requests[before:]
    assert [kind(r) for r in asked] == ["repair"] * len(asked)  # round 0 and Y's round-1 repairs: from the caches
    round1 = [r for r in asked if "repair round 1)" in json.dumps(r.messages)]
    assert len(round1) == 1 and "TASK-X" in json.dumps(round1[0].messages)  # only the abandoned request again
    got = refine_files(out, [srv.base_url])
    for key in expected:
        assert got[key] == expected[key], key  # exec cache rows included: nothing half-written


def exec_rows(run_dir: Path) -> int:
    path = run_dir / "exec_cache" / "results.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
