"""Judge while generating (issue 17): the per-prompt hook, the table stream, and whole runs whose files must be
those of the sequential path (``overlap=False`` / ``--no-overlap``), Ctrl-C and resume included."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import SandboxError
from cure_bench.generation.cache import GenerationCache
from cure_bench.generation.runner import generate_all
from cure_bench.pipeline import run_bench
from cure_bench.sandbox import Sandbox, TableSpec, build_tables
from cure_bench.sandbox.stream import TableStream, executions
from cure_bench.types import (
    ChatMessages,
    Completion,
    ExecJob,
    GenerationRequest,
    SampleCallback,
    SamplingParams,
    TestCase,
)
from tests.helpers.fake_openai import FakeOpenAIServer
from tests.helpers.run_snapshot import normalised, refine_files
from tests.helpers.scripted_tasks import TASKS, ScriptedResponder, write_task_file

KEY = "sk-test"
PARAMS = SamplingParams(temperature=0.7, max_tokens=64)
MSG_A: ChatMessages = (("user", "task A"),)
MSG_B: ChatMessages = (("user", "task B"),)


class Events:
    """A Generator answering '<message>#<index>' that logs each delivered sample, sharing a log with the hook."""

    backend = "scripted"
    model = "m"

    def __init__(self) -> None:
        self.log: list[tuple[str, Any, Any]] = []

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        self.log.append(("request", len(requests), None))
        for req in requests:
            for i in req.sample_indices:
                self.log.append(("sample", req.messages[-1][1], i))
                on_sample(req, i, Completion(text=f"{req.messages[-1][1]}#{i}", tokens=1, finish_reason="stop"))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model}

    def close(self) -> None:
        pass


def test_prompt_done_fires_once_per_prompt_as_its_last_sample_arrives(tmp_path: Path) -> None:
    gen = Events()
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        generate_all(gen, cache, [(MSG_A, 2)], PARAMS)  # A's two samples are cached from here on
        gen.log.clear()
        prompts = [(MSG_B, 2), (MSG_A, 2), (MSG_B, 3), (MSG_A, 0)]
        hook = lambda i, got: gen.log.append(("done", i, [c.text for c in got]))  # noqa: E731
        out = generate_all(gen, cache, prompts, PARAMS, on_prompt_done=hook)
    assert gen.log == [
        ("done", 1, ["task A#0", "task A#1"]),  # cached: reported before any request
        ("done", 3, []),  # k = 0 needs nothing
        ("request", 1, None),  # B once, with the largest k (3)
        ("sample", "task B", 0),
        ("sample", "task B", 1),
        ("done", 0, ["task B#0", "task B#1"]),  # prompt 0 wants 2: done before B's third sample
        ("sample", "task B", 2),
        ("done", 2, ["task B#0", "task B#1", "task B#2"]),
    ]
    assert [[c.text for c in row] for row in out] == [e[2] for e in sorted(x for x in gen.log if x[0] == "done")]


PRINT_N = "print(int(input()))"
DOUBLE = "print(2 * int(input()))"


def specs() -> list[TableSpec]:
    cases = [TestCase("1\n", "1\n"), TestCase("3\n", "6\n")]
    return [
        TableSpec(f"t{i}", [PRINT_N, DOUBLE, None][: i + 1], cases[: 1 + i % 2], cases[::-1], time_limit_s=2.0)
        for i in range(3)
    ]


def test_table_stream_builds_the_tables_build_tables_builds_in_any_submission_order() -> None:
    with Sandbox(workers=2, use_cache=False) as box:
        expected = build_tables(box, specs())
        seen: list[tuple[int, int]] = []
        lock = threading.Lock()

        def on_progress(done: int, total: int) -> None:
            with lock:
                seen.append((done, total))

        with TableStream(box, 3, on_progress=on_progress) as stream:
            for i in (2, 0, 1):
                stream.submit(i, specs()[i])
            tables = stream.finish()
    assert tables == expected
    assert tables[2].hidden[2] == ["no_program"] * 1 and tables[2].hidden[1] == ["wrong_answer"]
    total = sum(executions(s) for s in specs())
    assert total == 3 + 8 + 6  # cells with a program: t0 1x(1+2), t1 2x(2+2), t2 2x(1+2) (its third is None)
    assert seen[-1] == (total, total)
    assert all(d1 <= d2 for (d1, _), (d2, _) in itertools.pairwise(seen))  # never counts backwards


def test_table_stream_refuses_a_double_or_missing_submission() -> None:
    with Sandbox(workers=1, use_cache=False) as box, TableStream(box, 2) as stream:
        stream.submit(0, specs()[0])
        with pytest.raises(ValueError, match="submitted twice"):
            stream.submit(0, specs()[0])
        with pytest.raises(IndexError, match="out of range"):
            stream.submit(2, specs()[0])
        with pytest.raises(ValueError, match="1 spec\\(s\\) never submitted, first 1"):
            stream.finish()


def test_a_judging_error_reaches_the_caller_and_stops_its_submissions() -> None:
    box = Sandbox(workers=1, use_cache=False)
    box.close()  # every run on it now fails
    with TableStream(box, 2) as stream:
        stream.submit(0, specs()[0])
        with pytest.raises(SandboxError, match="closed"):
            stream.finish()
        with pytest.raises(SandboxError, match="closed"):
            stream.submit(1, specs()[1])


def test_a_judging_block_left_unused_stops_its_threads_and_one_left_unawaited_is_an_error(tmp_path: Path) -> None:
    """``overlap.judging``, the block bench and refine judge in: a refine step that changed nothing leaves it
    without submitting (fine: its judging threads stop); leaving it with tables submitted but not awaited is a
    bug, said so rather than the tables being dropped silently."""
    from cure_bench.overlap import judging
    from cure_bench.pipeline import NullProgress

    cfg = BenchConfig(dataset="sample", coder=ModelConfig("m"), workers=1, output_dir=tmp_path, exec_cache=False)
    threads = set(threading.enumerate())
    with judging(cfg, tmp_path, 2, NullProgress()) as judge:
        pass
    assert set(threading.enumerate()) <= threads and judge.sandbox["workers"] == 1
    unawaited = pytest.raises(RuntimeError, match="submitted but never awaited")
    with unawaited, judging(cfg, tmp_path, 2, NullProgress()) as again:
        again.submit(0, specs()[0])
    assert set(threading.enumerate()) <= threads


# -- whole runs -------------------------------------------------------------------------------------


class Recorder:
    """A pipeline Progress that logs (event, stage) in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def start(self, stage: str, total: int) -> None:
        with self._lock:
            self.log.append(("start", stage))

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None:
        pass

    def finish(self, stage: str) -> None:
        with self._lock:
            self.log.append(("finish", stage))


def bench_config(tasks: Path, out: Path, coder: str, tester: str | None, overlap: bool) -> BenchConfig:
    return BenchConfig(
        dataset=str(tasks),
        coder=ModelConfig("coder", base_url=coder, api_key=KEY, options={"concurrency": 1}),
        tester=None if tester is None else ModelConfig("tester", base_url=tester, api_key=KEY),
        k_code=4,
        k_case=4,
        bon="4x1,4x4,2x2",
        workers=2,
        output_dir=out,
        overlap=overlap,
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["bench", "bon"])
def test_overlap_writes_the_files_of_the_sequential_path(tmp_path: Path, mode: str) -> None:
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    got: dict[bool, tuple[list[Any], dict[str, Any]]] = {}
    logs: dict[bool, list[tuple[str, str]]] = {}
    roles: list[str] = []
    for overlap in (False, True):
        coder = FakeOpenAIServer(responder=ScriptedResponder(), api_key=KEY, latency=0.05)
        tester = FakeOpenAIServer(responder=ScriptedResponder(), api_key=KEY, latency=0.05)
        with coder, tester:
            progress = Recorder()
            cfg = bench_config(
                tasks, tmp_path / str(overlap), coder.base_url, tester.base_url if mode == "bon" else None, overlap
            )
            result = run_bench(cfg, progress=progress)
            assert not result.reused
            got[overlap] = normalised(result.run_dir, [coder.base_url, tester.base_url])
            logs[overlap] = progress.log
            if overlap and mode == "bench":
                roles = ["tests" if "**Test Input:**" in r.messages[-1]["content"] else "code" for r in coder.requests]
    assert got[True] == got[False]
    assert [row["task_id"] for row in got[True][0]] == [t["task_id"] for t in TASKS]

    def judge_starts_before_generation_ends(log: list[tuple[str, str]]) -> bool:
        generation_ends = max(i for i, (event, stage) in enumerate(log) if stage.startswith("generate"))
        return log.index(("start", "judge")) < generation_ends

    assert judge_starts_before_generation_ends(logs[True])
    assert not judge_starts_before_generation_ends(logs[False])
    if mode == "bench":  # one shared generator is asked task by task, so tasks complete early
        assert roles == ["code", "tests"] * len(TASKS)


class KeepsTests:
    """The refine script, except that a test-revision answer is the test as it stands: asked, changes nothing."""

    def __init__(self) -> None:
        from tests.helpers.refine_script import Responder

        self.script = Responder()

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        from tests.helpers.refine_script import REVISION_MARK, TESTS

        if REVISION_MARK in messages[-1]["content"]:
            return [TESTS["Y"][0]] * n  # Y's 2 3 -> 6, the only test no program passes
        return self.script(messages, n, request)


@pytest.mark.slow
@pytest.mark.parametrize("tester", ["none", "revises", "keeps"])
def test_refine_overlap_writes_the_files_of_the_sequential_path(tmp_path: Path, tester: str) -> None:
    """Every round overlapped (round 0 as bench; each repair and test-revision step task by task) against
    ``--no-overlap``: the same round-0 files, summary.json, trajectories, and the same rows in both runs'
    generation and exec caches. ``keeps``: revision steps that change nothing, so judge nothing either way."""
    from tests.helpers.refine_script import Responder, refine_args, write_tasks

    tasks = write_tasks(tmp_path / "tasks.jsonl")
    extra = [] if tester == "none" else ["--refine-tests"]
    got = {}
    for flag in ([], ["--no-overlap"]):
        out = tmp_path / ("sequential" if flag else "overlap")
        with FakeOpenAIServer(responder=KeepsTests() if tester == "keeps" else Responder(), api_key=KEY) as srv:
            result = CliRunner().invoke(app, refine_args(srv, tasks, out, "--rounds", "3", *extra, *flag))
            assert result.exit_code == 0, result.output
            got[bool(flag)] = refine_files(out, [srv.base_url])
    assert got[True] == got[False]
    rounds = got[False]["summary"]["metrics"]["rounds"]
    assert [(r["repaired"], r["fixed"], r["broken"]) for r in rounds] == REFINE_REPAIRS[tester]
    if extra:  # revisions asked per round, and how many changed a test
        assert [r["tester_requests"] for r in rounds] == REFINE_REVISIONS[tester][0]
        assert [r["tests_revised"] for r in rounds] == REFINE_REVISIONS[tester][1]


# repaired, fixed, broken per round. none/keeps: as test_refine_e2e works out by hand (round 3 repeats round 2:
# Y's a+b+1 and a+b swap again). revises: Y's test becomes 2 3 -> 5 in round 1, so only X.P1 and Y.P1 are
# repaired, both fixed, and nothing fails a test after that.
REFINE_REPAIRS = {
    "none": [(0, 0, 0), (3, 2, 1), (2, 1, 1), (2, 1, 1)],
    "keeps": [(0, 0, 0), (3, 2, 1), (2, 1, 1), (2, 1, 1)],
    "revises": [(0, 0, 0), (2, 2, 0), (0, 0, 0), (0, 0, 0)],
}
# tester requests (cumulative: 2 at round 0) and tests revised per round: only round 1 has a test no program
# passes (Y's 2 3 -> 6; from round 2 on one of Y's programs is a+b+1, which passes it)
REFINE_REVISIONS = {
    "revises": ([2, 3, 3, 3], [0, 1, 0, 0]),
    "keeps": ([2, 3, 3, 3], [0, 0, 0, 0]),
}


@pytest.mark.slow
def test_ctrl_c_mid_run_then_resume_gives_the_sequential_files_and_asks_nothing_twice(tmp_path: Path) -> None:
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    with FakeOpenAIServer(responder=ScriptedResponder(), api_key=KEY) as ref_srv:
        reference = run_bench(bench_config(tasks, tmp_path / "reference", ref_srv.base_url, None, overlap=False))
        expected = normalised(reference.run_dir, [ref_srv.base_url])

    srv = FakeOpenAIServer(responder=ScriptedResponder(), api_key=KEY, latency=0.6).start()
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cure_bench.cli.main", "bench", "--model", "coder", "--dataset", str(tasks),
           "--base-url", srv.base_url, "--api-key", KEY, "--k-code", "4", "--k-case", "4", "--bon", "4x1,4x4,2x2",
           "-o", str(out), "--workers", "2", "--concurrency", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 60
        while srv.requests_total < 3 and time.time() < deadline:  # task A answered (and judging), B under way
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "resume" in stderr and not (out / "summary.json").exists()
        answered = {json.dumps(r.messages) for r in srv.requests if r.choices}
        assert 2 <= len(answered) < 6

        srv.latency = 0.0
        before = srv.requests_total
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        resumed = srv.requests[before:]
    finally:
        srv.stop()
    assert not answered & {json.dumps(r.messages) for r in resumed}  # nothing answered before is asked again
    assert len(resumed) == 6 - len(answered)
    assert srv.samples_delivered == 24  # 3 tasks x (4 programs + 4 tests), each delivered once over both runs
    # the backend counts byte-identical samples among those this session received (the resumed one got B's from
    # the cache): a property of any resume, sequential too, so it is left out here and reported separately
    resumed_files = normalised(out, [srv.base_url])
    for summary in (resumed_files[1], expected[1]):
        for role in ("coder", "tester"):
            summary["run"][role].pop("identical_sample_prompts", None)
    assert resumed_files == expected  # the CLI's command line was dropped with the timings


SLOW_ECHO = "import time\ntime.sleep(0.4)\nprint(int(input()))"


@pytest.mark.slow
def test_cancel_mid_judging_leaves_an_exec_cache_whose_resume_gives_the_same_tables(tmp_path: Path) -> None:
    """Ctrl-C's path while executions are in flight: every cached result is whole, and judging again with the
    same cache gives the tables of an uninterrupted run, running only what was not cached."""
    cases = [TestCase(f"{i}\n", f"{i}\n") for i in range(6)]
    spec = TableSpec("slow", [SLOW_ECHO], cases[:3], cases[3:], time_limit_s=5.0)
    with Sandbox(workers=1, use_cache=False) as box:
        expected = build_tables(box, [spec])
    started = threading.Event()
    box = Sandbox(workers=1, cache_dir=tmp_path / "exec")
    stream = TableStream(box, 1, on_progress=lambda done, total: started.set() if done >= 2 else None)
    stream.submit(0, spec)
    assert started.wait(60)
    stream.cancel()  # what generate_and_judge does on Ctrl-C: the sandbox closes under the running batch
    with sqlite3.connect(tmp_path / "exec" / "results.sqlite") as db:
        cached = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 2 <= cached < 6  # what finished is kept; the execution killed by the close is not recorded
    with Sandbox(workers=1, cache_dir=tmp_path / "exec") as again:
        fresh: list[bool] = []
        again.run_each([ExecJob(SLOW_ECHO, c.input, 5.0) for c in cases], lambda i, r: fresh.append(not r.cached))
        tables = build_tables(again, [spec])  # every cell from the cache now
    assert fresh.count(True) == 6 - cached  # only what the cancelled judging had not finished runs again
    assert tables == expected
