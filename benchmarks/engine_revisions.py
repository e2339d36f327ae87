"""Today's sandbox engine against the engine of an earlier git revision, on the same jobs, in the same run.

    python benchmarks/exec_throughput.py --against 6fc8b54      # the CPU-light phase, old vs new, alternated
    python benchmarks/engine_revisions.py --against 6fc8b54 --quick

Why a same-run comparison: the machine is shared, so an exec/s figure from another day says little; a change
that made the engine slower only shows when both engines judge the same jobs minutes apart. The old engine is
exported with ``git archive REV cure_bench`` into a temporary directory (no checkout is touched) and each
measurement runs in a fresh child process that imports either that copy or this tree's ``cure_bench``,
alternating old, new, old, new, ... so that a change in machine load hits both alike. Each child judges the
CPU-light phase of ``exec_throughput``'s workload (the per-execution overhead; the heavy phase is bound by the
programs themselves) and reports exec/s, wrong verdicts and the CPU time all processes of the engine spent per
execution (parent, workers, programs: what a loaded machine disturbs least); the parent prints each engine's
medians and the ratios new / old.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SRC_ENV = "CURE_BENCH_ENGINE_SRC"  # set in a child: the directory whose cure_bench it imports


def export_engine(rev: str, dest: Path) -> str:
    """``cure_bench`` as of ``rev`` under ``dest``; returns the full commit hash. Exits naming a bad revision."""
    git = ["git", "-C", str(ROOT)]
    found = subprocess.run([*git, "rev-parse", "--verify", f"{rev}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        sys.exit(f"--against {rev}: not a commit of {ROOT} ({found.stderr.strip() or 'git rev-parse failed'})")
    archive = subprocess.run([*git, "archive", found.stdout.strip(), "cure_bench"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return found.stdout.strip()


def child_run(engine_src: Path | None, quick: bool, workers: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter importing ``engine_src``'s cure_bench (None: this tree's)."""
    env = dict(os.environ)
    env.pop(ENGINE_SRC_ENV, None)
    if engine_src is not None:
        env[ENGINE_SRC_ENV] = str(engine_src)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--workers", str(workers)]
    done = subprocess.run([*argv, *(["--quick"] if quick else [])], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"engine child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(rev: str, quick: bool, workers: int, rounds: int) -> dict[str, Any]:
    """Alternate old and new ``rounds`` times each; medians, ratio and wrong verdicts of both."""
    with tempfile.TemporaryDirectory(prefix="cure-engine-") as tmp:
        commit = export_engine(rev, Path(tmp))
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for i in range(rounds):
            for name, src in (("old", Path(tmp)), ("new", None)):
                got = child_run(src, quick, workers)
                runs[name].append(got)
                print(
                    f"  round {i + 1}/{rounds} {name} engine: {got['exec_per_s']:7.1f} exec/s, {got['wrong']} wrong, "
                    f"{got['cpu_ms_per_exec']:.2f} CPU-ms per execution, all processes (load {got['load_before']:.1f})",
                    flush=True,
                )
    old = statistics.median(r["exec_per_s"] for r in runs["old"])
    new = statistics.median(r["exec_per_s"] for r in runs["new"])
    old_cpu = statistics.median(r["cpu_ms_per_exec"] for r in runs["old"])
    new_cpu = statistics.median(r["cpu_ms_per_exec"] for r in runs["new"])
    return {
        "phase": "cpu-light, engine vs older engine",
        "against": rev,
        "against_commit": commit,
        "executions": runs["new"][0]["executions"],
        "rounds": rounds,
        "old_exec_per_s": old,
        "new_exec_per_s": new,
        "new_vs_old": new / old,
        "old_wrong": sum(r["wrong"] for r in runs["old"]),
        "new_wrong": sum(r["wrong"] for r in runs["new"]),
        "old_cpu_ms_per_exec": old_cpu,
        "new_cpu_ms_per_exec": new_cpu,
        "cpu_new_vs_old": new_cpu / old_cpu,
        "runs": runs,
    }


def print_comparison(row: dict[str, Any]) -> None:
    print(
        f"cpu-light: {row['executions']:5d} exec | engine now {row['new_exec_per_s']:7.1f} exec/s, "
        f"{row['new_wrong']} wrong | engine at {row['against']} {row['old_exec_per_s']:7.1f} exec/s, "
        f"{row['old_wrong']} wrong | now/then {row['new_vs_old']:.2f}x (median of {row['rounds']} alternated runs "
        f"each) | CPU per execution (engine + programs) {row['new_cpu_ms_per_exec']:.2f} ms now, "
        f"{row['old_cpu_ms_per_exec']:.2f} ms then, now/then {row['cpu_new_vs_old']:.2f}x "
        "(load moves wall time more than CPU time)",
        flush=True,
    )


def _child(quick: bool, workers: int) -> None:
    """Runs in the child: import the chosen cure_bench first, then measure the CPU-light phase once."""
    src = os.environ.get(ENGINE_SRC_ENV)
    sys.path.insert(0, str(ROOT))
    if src:
        sys.path.insert(0, src)
    import cure_bench
    from benchmarks import exec_throughput as et

    expected_home = Path(src) if src else ROOT
    if not Path(cure_bench.__file__).resolve().is_relative_to(expected_home.resolve()):
        sys.exit(f"child imported {cure_bench.__file__}, not the engine under {expected_home}")
    cases = [c for c in (et.workload(6, 8) if quick else et.workload(20, 24)) if not c.heavy]
    load = os.getloadavg()[0]
    verdicts, wall, cpu, engine_cpu = et.run_engine(cases, workers)
    print(
        json.dumps(
            {
                "executions": len(cases),
                "exec_per_s": len(cases) / wall,
                "wrong": et.wrong(verdicts, cases),
                "engine_cpu_vs_program_cpu": engine_cpu / cpu,
                "cpu_ms_per_exec": 1000 * engine_cpu / len(cases),
                "load_before": load,
                "engine": cure_bench.__file__,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="REV", help="git revision of the older engine")
    parser.add_argument("--rounds", type=int, default=3, help="alternated measurements of each engine")
    parser.add_argument("--quick", action="store_true", help="the quick workload's CPU-light phase")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel executions")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.quick, args.workers)
        return
    if not args.against:
        parser.error("--against REV is required")
    row = compare(args.against, args.quick, args.workers, args.rounds)
    print_comparison(row)
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
