"""Judge while generating: does a run take max(generation, judging) instead of their sum?

One process, two whole ``run_bench`` runs on the same judge-heavy workload, each with fresh caches, against the
scripted OpenAI-compatible server of tests/helpers (a fixed delay per request, ``--concurrency`` requests at
a time, so generation is pure waiting like an API's):

* sequential (``overlap=False``, today's path and ``--no-overlap``): every sample, then every table. Its two
  stages run one after the other with nothing else going on, so the generation stage's wall time is
  *generation alone* and the judge stage's is *judging alone* (both timed through the pipeline's progress
  hooks), and its total is their sum plus start-up.
* overlapped (the default): each task judged as soon as its answers are in.

Prints the four wall times, overlapped / max(generation alone, judging alone) (target <= 1.2x) and overlapped /
sequential, checks the two runs wrote the same summary metrics, and the load average before and after (the
machine may be shared; judging is CPU-bound and slows under load, generation here does not).

The workload: ``--tasks`` tasks, ``--k`` programs and ``--k`` generated tests per task plus ``--hidden`` hidden
tests; every program burns ``--work`` loop iterations of CPU per test (half the programs are wrong), and
programs differ per sample so the exec cache does not collapse them.

    python benchmarks/pipeline_overlap.py            # ~1 minute on 2 cores
    python benchmarks/pipeline_overlap.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers when run as a script

from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.pipeline import run_bench
from tests.helpers.fake_openai import FakeOpenAIServer


def program(task: int, sample: int, work: int) -> str:
    """A CPU-bound program; odd samples are wrong (off by one). The comment makes each sample its own job."""
    off = sample % 2
    return (
        f"# task {task} sample {sample}\nn = int(input())\ns = 0\nfor i in range({work}):\n    s += i % 7\n"
        f"print(2 * n + {off})"
    )


def answer_code(body: str) -> str:
    return f"Here it is.\n```python\n{body}\n```\n"


def answer_test(value: int) -> str:
    return f"**Test Input:**\n```\n{value}\n```\n\n**Test Output:**\n```\n{2 * value}\n```\n"


class Responder:
    """Coder prompts get ``k`` distinct programs, tester prompts ``k`` tests, both per task, in sample order."""

    def __init__(self, work: int) -> None:
        self.work = work
        self._next: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        user = messages[-1]["content"]
        found = re.search(r"TASK-(\d+)", user)
        task = int(found.group(1)) if found else -1
        role = "tester" if "**Test Input:**" in user else "coder"
        with self._lock:
            start = self._next.get((role, task), 0)
            self._next[(role, task)] = start + n
        if role == "tester":
            return [answer_test(100 * task + start + i) for i in range(n)]
        return [answer_code(program(task, start + i, self.work)) for i in range(n)]


def write_tasks(path: Path, n_tasks: int, hidden: int) -> Path:
    rows = [
        {
            "task_id": f"T{t}",
            "question": f"TASK-{t}: read n and print 2*n.",
            "test_time_limit": 10,
            "test_input": [f"{t + j}\n" for j in range(hidden)],
            "test_output": [f"{2 * (t + j)}\n" for j in range(hidden)],
        }
        for t in range(n_tasks)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


class StageClock:
    """A pipeline Progress that records when each stage started and finished (monotonic seconds)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}

    def start(self, stage: str, total: int) -> None:
        self.started.setdefault(stage, time.monotonic())

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None:
        pass

    def finish(self, stage: str) -> None:
        self.finished[stage] = time.monotonic()

    def span(self, prefix: str) -> float:
        names = [s for s in self.started if s.startswith(prefix)]
        return max(self.finished[s] for s in names) - min(self.started[s] for s in names)


def run(args: argparse.Namespace, tasks: Path, out: Path, overlap: bool) -> tuple[float, StageClock, dict[str, Any]]:
    with FakeOpenAIServer(responder=Responder(args.work), latency=args.delay) as srv:
        cfg = BenchConfig(
            dataset=str(tasks),
            coder=ModelConfig(
                "bench-model", base_url=srv.base_url, api_key="k", options={"concurrency": args.concurrency}
            ),
            k_code=args.k,
            k_case=args.k,
            bon=f"{args.k}x{args.k}",
            max_test=args.hidden,
            workers=args.workers,
            output_dir=out,
            overlap=overlap,
        )
        clock = StageClock()
        started = time.monotonic()
        result = run_bench(cfg, progress=clock)
        wall = time.monotonic() - started
        if srv.requests_total != 2 * args.tasks:
            raise SystemExit(f"expected {2 * args.tasks} requests, the server saw {srv.requests_total}")
    return wall, clock, result.summary


def main() -> int:
    parser = argparse.ArgumentParser(description="judge while generating: wall time against generation + judging")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--k", type=int, default=8, help="programs and generated tests per task")
    parser.add_argument("--hidden", type=int, default=8, help="hidden tests per task")
    parser.add_argument("--work", type=int, default=60_000, help="loop iterations per execution (CPU per test)")
    parser.add_argument("--delay", type=float, default=0.5, help="server delay per request, s")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default: one per core)")
    parser.add_argument("--quick", action="store_true", help="8 tasks, shorter delay: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.delay = 8, 0.3

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tasks = write_tasks(Path(tmp) / "tasks.jsonl", args.tasks, args.hidden)
        seq_wall, seq_clock, seq_summary = run(args, tasks, Path(tmp) / "sequential", overlap=False)
        ovl_wall, _, ovl_summary = run(args, tasks, Path(tmp) / "overlapped", overlap=True)
    load_after = os.getloadavg()
    if seq_summary["metrics"] != ovl_summary["metrics"]:
        raise SystemExit("the overlapped run's metrics differ from the sequential run's")

    gen, judge = seq_clock.span("generate"), seq_clock.span("judge")
    executions = seq_summary["counts"]["executions"]
    workers = seq_summary["run"]["sandbox"]["workers"]
    print(f"workload: {args.tasks} tasks x {args.k} programs x ({args.hidden} hidden + {args.k} generated tests) = "
          f"{executions} executions, {args.work} loop iterations each; {2 * args.tasks} requests, "
          f"{args.delay} s each, {args.concurrency} at a time; {workers} sandbox workers")  # fmt: skip
    print(f"load average before: {load_before[0]:.2f}, after: {load_after[0]:.2f} ({os.cpu_count()} cores)")
    print(f"{'generation alone':<28}{gen:8.2f} s")
    print(f"{'judging alone':<28}{judge:8.2f} s   ({executions / judge:,.0f} exec/s)")
    print(f"{'sequential (today: the sum)':<28}{seq_wall:8.2f} s")
    print(f"{'overlapped':<28}{ovl_wall:8.2f} s")
    bound = max(gen, judge)
    print(f"overlapped / max(generation, judging) = {ovl_wall / bound:.2f}x (target <= 1.2x)")
    print(f"overlapped / sequential               = {ovl_wall / seq_wall:.2f}x")
    print("metrics: identical in both runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
