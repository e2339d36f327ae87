"""The Ray executor on a two-node local Ray cluster: the local executor's verdicts, the driver's cache, lost actors.

One cluster serves the whole module (starting Ray costs ~15 s here). The unreachable-address test needs no Ray.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.sandbox import Sandbox, TableSpec, build_tables, open_sandbox
from cure_bench.types import ExecJob, ExecStatus, TestCase, Verdict
from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed: pip install 'cure-toolkit[ray]'")
REPO = Path(__file__).resolve().parents[1]

ADD = "a, b = map(int, input().split())\nprint(a + b)"
PROGRAMS: list[str | None] = [
    ADD,  # accepted everywhere
    "print(0)",  # wrong answer but where the sum is 0
    "raise ValueError('boom')",  # runtime error
    "while True:\n    pass",  # time limit
    None,  # nothing extracted
    "a, b = map(int, input().split())\nprint(a + b if a < 3 else a * b)",  # right on some tests only
]
HIDDEN = [TestCase("1 2\n", "3"), TestCase("3 4\n", "7"), TestCase("0 0\n", "0")]
GENERATED = [TestCase("2 2\n", "4"), TestCase("5 5\n", "25")]


def specs() -> list[TableSpec]:
    return [
        TableSpec("t1", PROGRAMS, HIDDEN, GENERATED, time_limit_s=0.5, memory_limit_mb=256),
        TableSpec("t2", PROGRAMS[:2] + PROGRAMS[5:], HIDDEN[:2], GENERATED[1:], time_limit_s=1.0, memory_limit_mb=256),
    ]


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on this machine; the actors import this checkout's cure_bench."""
    if not HAVE_RAY:
        pytest.skip("ray is not installed: pip install 'cure-toolkit[ray]'")
    import ray
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *([old] if old else [])])
    small = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    cluster.add_node(**small)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def local_tables():
    with Sandbox(workers=1, use_cache=False) as box:
        return build_tables(box, specs())


def as_lists(tables):
    return [(t.task_id, t.hidden, t.generated, t.generated_outputs) for t in tables]


@needs_ray
@pytest.mark.slow
def test_two_node_cluster_gives_the_local_tables(cluster, local_tables):
    with open_sandbox("ray", cluster.address, use_cache=False) as box:
        info = box.describe()
        tables = build_tables(box, specs())
    assert as_lists(tables) == as_lists(local_tables)
    seen = {v for t in tables for row in t.hidden + t.generated for v in row}
    kinds = {Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR, Verdict.TIME_LIMIT, Verdict.NO_PROGRAM}
    assert kinds <= seen
    assert info["executor"] == "ray" and info["workers"] == 2
    assert len({node["node_id"] for node in info["ray"]["nodes"]}) == 2  # one sandbox per node
    assert info["isolation_level"] == box.isolation_level and not info["ray"]["actors_lost"]


@needs_ray
@pytest.mark.slow
def test_exec_cache_lives_on_the_driver(cluster, tmp_path):
    jobs = [ExecJob(ADD, f"{i} {i}\n", 1.0, 256) for i in range(6)] + [ExecJob(ADD, "0 0\n", 1.0, 256)] * 2
    with open_sandbox("ray", cluster.address, cache_dir=tmp_path / "exec") as box:
        first = box.run(jobs)
    assert (tmp_path / "exec" / "results.sqlite").is_file()
    assert [r.stdout.strip() for r in first] == [str(2 * i) for i in range(6)] + ["0", "0"]
    assert not any(r.cached for r in first)
    with open_sandbox("ray", cluster.address, cache_dir=tmp_path / "exec") as box:
        again = box.run(jobs)
    assert all(r.cached for r in again)  # found on the driver: nothing was sent to the cluster
    assert [(r.status, r.stdout) for r in again] == [(r.status, r.stdout) for r in first]


@needs_ray
@pytest.mark.slow
def test_a_killed_actor_s_jobs_finish_elsewhere(cluster):
    import ray

    slow = "import time\nn = int(input())\ntime.sleep(0.2)\nprint(n * n if n % 5 else -1)"
    jobs = [ExecJob(slow + f"\n# variant {p}", f"{i}\n", 2.0, 256) for p in range(4) for i in range(6)]
    with Sandbox(workers=1, use_cache=False) as box:
        expected = [(r.status, r.stdout) for r in box.run(jobs)]
    arrived: dict[int, tuple[ExecStatus, str]] = {}
    killed = threading.Event()
    with open_sandbox("ray", cluster.address, use_cache=False) as box:
        victim = box.actor_handles()[0]

        def on_result(index, result):
            arrived[index] = (result.status, result.stdout)
            if not killed.is_set():
                killed.set()
                ray.kill(victim)  # mid-run: the other actor still has most of the jobs to do

        box.run_each(jobs, on_result)
        info = box.describe()
    assert killed.is_set() and len(arrived) == len(jobs)
    assert [arrived[i] for i in range(len(jobs))] == expected
    assert len(info["ray"]["actors_lost"]) == 1 and info["ray"]["batches_retried"] >= 1


@needs_ray
@pytest.mark.slow
def test_bench_on_ray_gives_the_local_run_s_summary(cluster, tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key="k")
    tasks = write_task_file(tmp_path / "tasks.jsonl")

    def bench(out: Path, *extra: str) -> dict:
        args = ["bench", "--model", "m", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", "k",
                "--k-code", "4", "--k-case", "4", "--bon", "4x4", "-o", str(out), "--workers", "1", "--json",
                *extra]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads((out / "summary.json").read_text())

    local = bench(tmp_path / "local")
    on_ray = bench(tmp_path / "ray", "--executor", "ray", "--ray-address", cluster.address)
    assert on_ray["metrics"] == local["metrics"] and on_ray["counts"] == local["counts"]
    assert on_ray["run"]["sandbox"]["executor"] == "ray" and local["run"]["sandbox"]["executor"] == "local"
    assert len(on_ray["run"]["sandbox"]["ray"]["nodes"]) == 2
    local_rows = (tmp_path / "local" / "samples.jsonl").read_text().splitlines()
    ray_rows = (tmp_path / "ray" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(r)["table"] for r in ray_rows] == [json.loads(r)["table"] for r in local_rows]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_ray_address_is_one_line_before_any_request(tmp_path, fake_openai):
    srv = fake_openai(responder=ScriptedResponder(), api_key="k")
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    address = f"127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(
        app,
        ["bench", "--model", "m", "--dataset", str(tasks), "--base-url", srv.base_url, "--api-key", "k",
         "--k-code", "2", "--k-case", "2", "-o", str(tmp_path / "run"), "--json", "--executor", "ray",
         "--ray-address", address],
    )  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and address in errors[0] and "ray start --head" in errors[0], result.output
    assert "Traceback" not in result.output and not result.stdout.strip().startswith("{")
    assert srv.requests_total == 0 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "dask"], "--executor must be one of local, ray"),
        (["--ray-address", "local"], "--ray-address local is for --executor ray"),
        (["--executor", "ray", "--ray-address", "no-port"], "must be local, auto, HOST:PORT or ray://HOST:PORT"),
    ],
)
def test_bad_executor_flags_are_one_line_errors(args, message, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = CliRunner().invoke(app, ["bench", "--model", "m", *args])
    assert result.exit_code == 1 and message in result.output, result.output


def test_ray_without_an_address_says_where_to_get_one(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = CliRunner().invoke(app, ["bench", "--model", "m", "--executor", "ray"])
    assert result.exit_code == 1 and "--ray-address" in result.output and "RAY_ADDRESS" in result.output


@needs_ray
@pytest.mark.slow
def test_train_judge_on_ray_gives_the_local_advantages(cluster):
    from cure_train.config import parse_config
    from cure_train.trainer import make_judge
    from tests.test_train_judge import DOUBLE, NEG, ROWS_0, ROWS_1

    def score(reward: dict):
        rollout = {"k_code": 3, "k_case": 3}
        cfg = parse_config({"model": "m", "train_dataset": "d", "rollout": rollout, "reward": reward})
        judge = make_judge(cfg, [DOUBLE, NEG], [DOUBLE.hidden_tests, NEG.hidden_tests])
        try:
            return judge.score(ROWS_0 + ROWS_1)
        finally:
            judge.close()

    local = score({"sandbox_workers": 1})
    on_ray = score({"sandbox_workers": 1, "sandbox_executor": "ray", "ray_address": cluster.address})
    assert on_ray.advantages == local.advantages and as_lists(on_ray.tables) == as_lists(local.tables)
    assert any(a != 0 for a in on_ray.advantages)


@needs_ray
@pytest.mark.slow
def test_reward_server_on_ray_scores_like_hand_computed(cluster, tmp_path, fake_openai):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from cure_bench.serve import ServeConfig, create_app, serve_in_background

    def tests_for(inp: str, out: str) -> str:
        return f"**Test Input:**\n```\n{inp}\n```\n\n**Test Output:**\n```\n{out}\n```\n\n**Explanation:**\nok"

    answers = [tests_for("1 2", "3"), tests_for("2 2", "4"), tests_for("5 5", "11")]
    tester = fake_openai(responder=lambda messages, n, body: [answers[i % 3] for i in range(n)])
    config = ServeConfig(tester="t", base_url=tester.base_url, api_key="k", k_case=3, cache_dir=tmp_path,
                         workers=1, executor="ray", ray_address=cluster.address)  # fmt: skip
    items = [
        {"problem": "ADD: print a+b.", "code": ADD},
        {"problem": "ADD: print a+b.", "code": "print(3)"},
        {"problem": "ADD: print a+b.", "code": "raise SystemExit(1)"},
    ]
    with serve_in_background(create_app(config)) as url:
        ready = httpx.get(url + "/ready", timeout=30).json()
        response = httpx.post(url + "/v1/score", json={"items": items}, timeout=120)
    assert response.status_code == 200, response.text
    assert [(r["passed"], r["total"]) for r in response.json()["results"]] == [(2, 3), (1, 3), (0, 3)]
    assert ready["sandbox"]["started"] and ready["sandbox"]["workers"] == 2  # one worker on each of the two nodes


def test_the_base_install_never_imports_ray():
    import subprocess
    import sys

    code = (
        "import sys\nfrom cure_bench.cli import app\nimport cure_bench.sandbox, cure_bench.pipeline, cure_bench.serve\n"
        "from cure_bench.config import BenchConfig, ModelConfig\n"
        "BenchConfig(dataset='sample', coder=ModelConfig('m'), executor='ray', ray_address='local')\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_without_ray_the_error_names_the_extra(monkeypatch):
    import sys

    from cure_bench.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'cure-toolkit\[ray\]'"):
        open_sandbox("ray", "local")


@needs_ray
@pytest.mark.slow
def test_several_threads_share_the_cluster(cluster):
    """The reward server calls ``run`` from several threads at once: each gets its own results, in its order."""
    job_sets = [[ExecJob(ADD, f"{t} {i}\n", 1.0, 256) for i in range(10)] for t in range(3)]
    got: dict[int, list[str]] = {}
    with open_sandbox("ray", cluster.address, use_cache=False) as box:

        def call(t: int) -> None:
            got[t] = [r.stdout.strip() for r in box.run(job_sets[t])]

        threads = [threading.Thread(target=call, args=(t,)) for t in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert got == {t: [str(t + i) for i in range(10)] for t in range(3)}
