"""Execution throughput: the sandbox engine against a naive ``subprocess.run([python3, prog.py])`` judge.

    python benchmarks/exec_throughput.py            # 20 tasks x 16 programs x 24 tests = 7,680 executions
    python benchmarks/exec_throughput.py --quick    # 6 tasks x 16 programs x 8 tests
    python benchmarks/exec_throughput.py --quick --skip-naive --ray local   # + the Ray executor against local

A deterministic mixed workload (seeded), written by us (nothing model-generated): per task, 16 programs
(correct ones reading stdin in nine styles, wrong answers, exceptions, non-zero exits, a slow-but-fine one, an
infinite loop on some inputs, a memory hog on some inputs) on 24 tests (two with ~250 KB of input and output).
Every (program, test) has a known true verdict. Both judges run the same jobs with as many executions in
parallel as cores; the script prints executions/s of each, their ratio, wrong verdicts of each against the
truth, and the engine's wall time against the CPU floor (the CPU time the programs themselves used / cores).
The "CPU-light" phase (small inputs, no deliberately slow or memory-hungry program) measures per-execution
overhead; the "heavy" phase is the rest. The machine may be shared: figures are only comparable side by side.
``--against REV`` also measures the CPU-light phase with the engine of an earlier git revision, alternated
with today's in fresh processes, and prints the ratio (benchmarks/engine_revisions.py).
``--ray ADDRESS`` (``local`` starts Ray here; or a cluster's HOST:PORT) also judges each phase with the Ray
executor and prints its executions/s beside the local engine's from the same run, and the ratio (start-up
excluded from both, and printed apart). On ``local`` both use the same cores: the ratio is Ray's overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.upstream_harness import UPSTREAM_ENV, UpstreamError, UpstreamHarness, upstream_repo  # noqa: E402
from cure_bench.sandbox import Sandbox, default_workers, judge, outputs_match  # noqa: E402
from cure_bench.types import ExecJob, Verdict  # noqa: E402

TIME_LIMIT_S = 0.5
MEMORY_LIMIT_MB = 256
SOLVE = (
    "def solve(tokens):\n    n = int(tokens[0])\n    s, out = 0, []\n    for x in tokens[1:1 + n]:\n"
    "        s += int(x) * {m}\n        out.append(s)\n    return ' '.join(map(str, out))\n"
)
# Each variant: (name, body using solve(), true verdict rule on n). Bodies read stdin their own way.
VARIANTS: list[tuple[str, str, str]] = [
    ("input", "n = input()\nprint(solve([n] + input().split()))\n", "AC"),
    ("read", "import sys\nprint(solve(sys.stdin.read().split()))\n", "AC"),
    ("readline", "import sys\nn = sys.stdin.readline()\nprint(solve([n] + sys.stdin.readline().split()))\n", "AC"),
    ("buffer", "import sys\nprint(solve(sys.stdin.buffer.read().split()))\n", "AC"),
    ("open0", "print(solve(open(0).read().split()))\n", "AC"),
    ("fileinput", "import fileinput\nprint(solve(' '.join(fileinput.input()).split()))\n", "AC"),
    ("iterate", "import sys\nprint(solve([t for line in sys.stdin for t in line.split()]))\n", "AC"),
    (
        "main_exit",
        "import sys\ndef main():\n    print(solve(sys.stdin.read().split()))\n"
        "if __name__ == '__main__':\n    main()\n    sys.exit(0)\n",
        "AC",
    ),
    (
        "thread",
        "import sys, threading\nthreading.stack_size(2**24)\n"
        "def main():\n    print(solve(sys.stdin.read().split()))\nthreading.Thread(target=main).start()\n",
        "AC",
    ),
    ("wrong_all", "import sys\nprint(solve(sys.stdin.read().split()) + ' 1')\n", "WA"),
    (
        "wrong_even",
        "import sys\nt = sys.stdin.read().split()\nprint(solve(t) if int(t[0]) % 2 else 'no')\n",
        "WA if n % 2 == 0",
    ),
    (
        "raise_5",
        "import sys\nt = sys.stdin.read().split()\nif int(t[0]) % 5 == 0:\n    raise ValueError(t[0])\n"
        "print(solve(t))\n",
        "RE if n % 5 == 0",
    ),
    ("exit_1", "import sys\nprint(solve(sys.stdin.read().split()))\nsys.exit(1)\n", "RE"),
    (
        "slow_ok",
        "import sys\nw = 0\nfor i in range(400000):\n    w += i\nprint(solve(sys.stdin.read().split()))\n",
        "AC",
    ),
    (
        "loop_6",
        "import sys\nt = sys.stdin.read().split()\nwhile int(t[0]) % 6 == 0:\n    pass\nprint(solve(t))\n",
        "TLE if n % 6 == 0",
    ),
    (
        "hog_7",
        "import sys\nt = sys.stdin.read().split()\nif int(t[0]) % 7 == 0:\n    x = bytearray(600 * 10**6)\n"
        "print(solve(t))\n",
        "MLE if n % 7 == 0",
    ),
]
HEAVY_VARIANTS = {"slow_ok", "loop_6", "hog_7"}
VERDICT = {
    "AC": Verdict.ACCEPTED,
    "WA": Verdict.WRONG_ANSWER,
    "RE": Verdict.RUNTIME_ERROR,
    "TLE": Verdict.TIME_LIMIT,
    "MLE": Verdict.MEMORY_LIMIT,
}


@dataclass(frozen=True)
class Case:
    job: ExecJob
    expected: str
    truth: Verdict
    heavy: bool


def true_verdict(rule: str, n: int) -> Verdict:
    if " if " not in rule:
        return VERDICT[rule]
    verdict, condition = rule.split(" if ")
    return VERDICT[verdict] if eval(condition, {"n": n}) else Verdict.ACCEPTED


def workload(tasks: int, tests: int, seed: int = 0) -> list[Case]:
    """The deterministic job list with each job's expected output and true verdict."""
    rng = random.Random(seed)
    cases = []
    for k in range(tasks):
        m = k + 1
        inputs = []
        for j in range(tests):
            n = 40_000 if j >= tests - 2 else rng.randint(1, 60)
            a = [rng.randint(0, 10**6) for _ in range(n)]
            prefix, s = [], 0
            for x in a:
                s += x * m
                prefix.append(s)
            inputs.append((n, f"{n}\n{' '.join(map(str, a))}\n", " ".join(map(str, prefix))))
        for name, body, rule in VARIANTS:
            program = SOLVE.format(m=m) + body
            for n, stdin, expected in inputs:
                heavy = name in HEAVY_VARIANTS or n == 40_000
                cases.append(
                    Case(ExecJob(program, stdin, TIME_LIMIT_S, MEMORY_LIMIT_MB), expected, true_verdict(rule, n), heavy)
                )
    assert len({(c.job.program, c.job.stdin) for c in cases}) == len(cases), "workload must have no duplicates"
    return cases


def _tree_cpu(roots: list[int]) -> float:
    """CPU seconds of the worker process trees (each worker's own time plus the programs it reaped), /proc."""
    stats: dict[int, list[bytes]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
    tree, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, f in stats.items() if int(f[1]) in frontier} - tree
        tree |= frontier
    ticks = sum(sum(int(x) for x in stats[pid][11:15]) for pid in tree if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def run_engine(cases: list[Case], workers: int) -> tuple[list[Verdict], float, float, float]:
    """Judge with the sandbox; returns verdicts, wall seconds, the programs' own CPU seconds, and the CPU
    seconds the whole engine used (this process during the run + the worker trees, programs included)."""
    with Sandbox(workers=workers, use_cache=False) as sandbox:
        roots = sandbox.worker_pids()
        before = _tree_cpu(roots)
        own_before = time.process_time()
        start = time.perf_counter()
        results = sandbox.run([c.job for c in cases])
        wall = time.perf_counter() - start
        engine_cpu = time.process_time() - own_before + _tree_cpu(roots) - before
    verdicts = [judge(r, c.expected) for r, c in zip(results, cases, strict=True)]
    cpu = sum(min(r.cpu_s, c.job.time_limit_s) for r, c in zip(results, cases, strict=True))
    return verdicts, wall, cpu, engine_cpu


def run_ray(cases: list[Case], address: str, workers: int | None) -> tuple[list[Verdict], float, float, dict]:
    """Judge with the Ray executor; returns verdicts, wall seconds of the run, start-up seconds, its record."""
    from cure_bench.sandbox import open_sandbox

    start = time.perf_counter()
    with open_sandbox("ray", address, workers=workers, use_cache=False) as sandbox:
        started = time.perf_counter()
        results = sandbox.run([c.job for c in cases])
        wall = time.perf_counter() - started
        info = sandbox.describe()
    verdicts = [judge(r, c.expected) for r, c in zip(results, cases, strict=True)]
    return verdicts, wall, started - start, info


def ray_line(name: str, cases: list[Case], address: str, workers: int) -> dict:
    """The Ray executor and the local engine on the same jobs, one after the other."""
    start = time.perf_counter()
    local_verdicts, local_wall, _, _ = run_engine(cases, workers)
    local_start = time.perf_counter() - start - local_wall
    verdicts, wall, ray_start, info = run_ray(cases, address, None if address != "local" else workers)
    nodes = info["ray"]["nodes"]
    row = {
        "phase": name,
        "executions": len(cases),
        "ray_address": address,
        "ray_nodes": len(nodes),
        "ray_workers": sum(n["workers"] for n in nodes),
        "ray_exec_per_s": len(cases) / wall,
        "ray_wrong": wrong(verdicts, cases),
        "ray_start_s": ray_start,
        "local_exec_per_s": len(cases) / local_wall,
        "local_wrong": wrong(local_verdicts, cases),
        "local_start_s": local_start,
        "ray_vs_local": local_wall / wall,
        "verdicts_identical": verdicts == local_verdicts,
    }
    print(
        f"{name:>9}: {len(cases):5d} exec | ray ({address}, {row['ray_nodes']} node(s), {row['ray_workers']} workers) "
        f"{row['ray_exec_per_s']:7.1f} exec/s, {row['ray_wrong']} wrong, start {ray_start:.1f} s | local "
        f"{row['local_exec_per_s']:7.1f} exec/s ({workers} workers), start {local_start:.1f} s | "
        f"ray/local {row['ray_vs_local']:.2f}x | verdicts identical: {row['verdicts_identical']}",
        flush=True,
    )
    return row


def naive_one(case: Case, workdir: Path, index: int) -> Verdict:
    """What a simple harness does: a cold interpreter per execution, wall-clock timeout, no limits."""
    path = workdir / f"prog_{index}.py"
    path.write_text(case.job.program)
    try:
        proc = subprocess.run(
            [sys.executable, str(path)],
            input=case.job.stdin,
            capture_output=True,
            text=True,
            timeout=case.job.time_limit_s,
        )
    except subprocess.TimeoutExpired:
        return Verdict.TIME_LIMIT
    finally:
        path.unlink()
    if proc.returncode != 0:
        return Verdict.MEMORY_LIMIT if "MemoryError" in proc.stderr else Verdict.RUNTIME_ERROR
    return Verdict.ACCEPTED if outputs_match(proc.stdout, case.expected) else Verdict.WRONG_ANSWER


def run_exec_harness(cases: list[Case], workers: int, harness: UpstreamHarness) -> tuple[list[bool], float]:
    """Upstream's own harness (benchmarks/upstream_harness.py, inside the sandbox): its pass/fail per execution."""
    items = [(c.job.program, c.job.stdin, c.job.time_limit_s, c.expected) for c in cases]
    with Sandbox(workers=workers, use_cache=False) as sandbox:
        start = time.perf_counter()
        results = harness.run(sandbox, items)
        return [r.passed for r in results], time.perf_counter() - start


def run_naive(cases: list[Case], workers: int) -> tuple[list[Verdict], float]:
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        verdicts = list(pool.map(naive_one, cases, [Path(tmp)] * len(cases), range(len(cases))))
        return verdicts, time.perf_counter() - start


def wrong(verdicts: list[Verdict], cases: list[Case]) -> int:
    return sum(v is not c.truth for v, c in zip(verdicts, cases, strict=True))


def wrong_pass_fail(passed: list[bool], cases: list[Case]) -> int:
    """Executions whose pass/fail (all a CURE bool table holds) differs from the truth's."""
    return sum(p != (c.truth is Verdict.ACCEPTED) for p, c in zip(passed, cases, strict=True))


def phase(name: str, cases: list[Case], workers: int, skip_naive: bool, harness: UpstreamHarness | None) -> dict:
    load = os.getloadavg()[0]
    verdicts, wall, cpu, engine_cpu = run_engine(cases, workers)
    row = {
        "phase": name,
        "executions": len(cases),
        "engine_exec_per_s": len(cases) / wall,
        "engine_wrong": wrong(verdicts, cases),
        "engine_wall_s": wall,
        "cpu_floor_s": cpu / workers,
        "engine_vs_cpu_floor": wall / (cpu / workers),
        "program_cpu_s": cpu,
        "engine_cpu_s": engine_cpu,
        "engine_cpu_vs_program_cpu": engine_cpu / cpu,
        "load_before": load,
    }
    if not skip_naive:
        naive_verdicts, naive_wall = run_naive(cases, workers)
        row |= {
            "naive_exec_per_s": len(cases) / naive_wall,
            "naive_wrong": wrong(naive_verdicts, cases),
            "naive_wall_s": naive_wall,
            "speedup": naive_wall / wall,
        }
    if harness is not None:
        harness_passed, harness_wall = run_exec_harness(cases, workers, harness)
        row |= {
            "exec_harness_exec_per_s": len(cases) / harness_wall,
            "exec_harness_wrong": wrong_pass_fail(harness_passed, cases),
            "exec_harness_wall_s": harness_wall,
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 tasks x 16 programs x 8 tests")
    parser.add_argument("--workers", type=int, default=default_workers(), help="parallel executions (both judges)")
    parser.add_argument("--skip-naive", action="store_true", help="no subprocess baseline")
    parser.add_argument(
        "--exec-harness",
        action="store_true",
        help="also judge with the CURE authors' own exec() harness, loaded from --upstream-repo, run in the sandbox",
    )
    parser.add_argument(
        "--upstream-repo", help=f"CURE checkout or bare mirror for --exec-harness (default ${UPSTREAM_ENV})"
    )
    parser.add_argument("--batch", type=int, default=4, help="executions the upstream harness runs at once per worker")
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="also judge with the Ray executor at ADDRESS (local: start Ray here) and print ray/local per phase",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also judge the CPU-light phase with the engine of git revision REV, alternated with today's (ratio)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    harness = None
    if args.exec_harness:
        repo = upstream_repo(args.upstream_repo)
        if repo is None:
            print(
                f"exec-harness: skipped, no CURE checkout given (--upstream-repo PATH or ${UPSTREAM_ENV})", flush=True
            )
        else:
            try:
                harness = UpstreamHarness(repo, batch=args.batch)
            except UpstreamError as exc:
                sys.exit(f"exec-harness: {exc}")
            print(f"exec-harness: upstream's own, from {harness.origin}", flush=True)
    cases = workload(6, 8) if args.quick else workload(20, 24)
    light = [c for c in cases if not c.heavy]
    heavy = [c for c in cases if c.heavy]
    print(
        f"workload: {len(cases)} executions ({len(light)} CPU-light, {len(heavy)} heavy), "
        f"{args.workers} workers, {os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.1f}; "
        "machine may be shared",
        flush=True,
    )
    rows = [
        phase("cpu-light", light, args.workers, args.skip_naive, harness),
        phase("heavy", heavy, args.workers, args.skip_naive, harness),
    ]
    total: dict[str, Any] = {"phase": "whole", "executions": len(cases)}
    for key in (
        "engine_wall_s",
        "cpu_floor_s",
        "naive_wall_s",
        "engine_wrong",
        "naive_wrong",
        "exec_harness_wall_s",
        "exec_harness_wrong",
        "program_cpu_s",
        "engine_cpu_s",
    ):
        if all(key in r for r in rows):
            total[key] = sum(r[key] for r in rows)
    total["engine_exec_per_s"] = len(cases) / total["engine_wall_s"]
    total["engine_vs_cpu_floor"] = total["engine_wall_s"] / total["cpu_floor_s"]
    total["engine_cpu_vs_program_cpu"] = total["engine_cpu_s"] / total["program_cpu_s"]
    if "naive_wall_s" in total:
        total["naive_exec_per_s"] = len(cases) / total["naive_wall_s"]
        total["speedup"] = total["naive_wall_s"] / total["engine_wall_s"]
    if "exec_harness_wall_s" in total:
        total["exec_harness_exec_per_s"] = len(cases) / total["exec_harness_wall_s"]
    rows.append(total)
    for r in rows:
        line = (
            f"{r['phase']:>9}: {r['executions']:5d} exec | engine {r['engine_exec_per_s']:7.1f} exec/s, "
            f"{r['engine_wrong']} wrong, {r['engine_vs_cpu_floor']:.2f}x CPU floor "
            f"(engine CPU {r['engine_cpu_vs_program_cpu']:.2f}x programs' CPU)"
        )
        if "naive_wall_s" in r:
            line += (
                f" | naive {r['naive_exec_per_s']:6.1f} exec/s, {r['naive_wrong']} wrong"
                f" | engine/naive {r['speedup']:.1f}x"
            )
        if "exec_harness_wall_s" in r:
            line += (
                f" | upstream harness {r['exec_harness_exec_per_s']:6.1f} exec/s, "
                f"{r['exec_harness_wrong']} wrong pass/fail ({r['exec_harness_wrong'] / r['executions']:.1%})"
            )
        print(line, flush=True)
    print(
        f"load average after: {os.getloadavg()[0]:.1f} (a shared machine inflates wall-clock ratios; the "
        "engine-CPU/program-CPU ratio is what an idle machine's wall time would approach)"
    )
    if args.ray:
        print(f"Ray executor against the local engine (same jobs, same run), load average {os.getloadavg()[0]:.1f}:")
        rows += [ray_line("cpu-light", light, args.ray, args.workers), ray_line("heavy", heavy, args.ray, args.workers)]
    if args.against:
        from benchmarks.engine_revisions import compare, print_comparison

        print(f"today's engine against the engine at {args.against} (CPU-light phase, alternated, fresh processes):")
        rows.append(compare(args.against, args.quick, args.workers, rounds=3))
        print_comparison(rows[-1])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
