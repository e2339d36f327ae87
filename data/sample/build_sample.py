"""Build ``cure_bench/data/sample.jsonl``, the bundled ``sample`` dataset, from the specs beside this file.

Run from the repository root:  python data/sample/build_sample.py

Every expected output is produced by running the task's reference solution (code we wrote and trust) in a
plain subprocess; nothing is typed by hand. The script then checks each tempting wrong solution passes the
examples and fails at least one hidden test (wrong answer, crash or time limit), so the file is only
written when every task keeps its promise. ``tests/test_sample_dataset.py`` repeats the checks through
the real sandbox.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from spec import SampleSpec  # noqa: E402

from cure_bench.tasks.convert.common import write_json_array  # noqa: E402

OUT = ROOT / "cure_bench" / "data" / "sample.jsonl"
SPEC_MODULES = ("tasks_basic", "tasks_strings", "tasks_algo", "tasks_dp", "tasks_graph", "tasks_numbers")
"""The task files beside this script, in the order their tasks appear in sample.jsonl."""


def all_specs() -> list[SampleSpec]:
    return [spec for name in SPEC_MODULES for spec in importlib.import_module(name).TASKS]


@dataclass
class Run:
    ok: bool  # exited 0 within the limit
    stdout: str
    seconds: float
    why: str = ""


def run_program(program: str, stdin: str, limit: float) -> Run:
    """Our own trusted code only (references and wrong solutions we wrote): a plain subprocess is enough."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", program],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return Run(False, "", time.perf_counter() - start, "time limit")
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return Run(
            False,
            proc.stdout,
            elapsed,
            f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1][:120]}",
        )
    return Run(True, proc.stdout, elapsed)


def same(a: str, b: str) -> bool:
    """CURE's comparator: whitespace-normalised equality."""
    return " ".join(a.split()) == " ".join(b.split())


def build_row(spec: SampleSpec, pool: ThreadPoolExecutor) -> dict[str, object]:
    inputs = [*spec.examples, *spec.hidden]
    runs = list(pool.map(lambda s: run_program(spec.reference, s, 10 * spec.time_limit), inputs))
    for i, r in enumerate(runs):
        if not r.ok:
            raise SystemExit(f"{spec.task_id}: reference failed on input {i}: {r.why}")
        if r.seconds > spec.time_limit / 2:
            print(f"warning: {spec.task_id}: reference took {r.seconds:.2f}s on input {i}", file=sys.stderr)
    outputs = [r.stdout for r in runs]
    n_ex = len(spec.examples)
    for w, wrong in enumerate(spec.wrong):
        got = list(pool.map(functools.partial(run_program, wrong, limit=spec.time_limit), inputs))
        passed = [g.ok and same(g.stdout, want) for g, want in zip(got, outputs, strict=True)]
        if not all(passed[:n_ex]):
            raise SystemExit(f"{spec.task_id}: wrong solution {w} fails an example; examples must not give it away")
        if all(passed[n_ex:]):
            raise SystemExit(f"{spec.task_id}: wrong solution {w} passes every hidden test")
        reasons = sorted({g.why or "wrong answer" for g, p in zip(got[n_ex:], passed[n_ex:], strict=True) if not p})
        print(f"{spec.task_id}: wrong solution {w} fails {passed[n_ex:].count(False)} hidden test(s): {reasons}")
    return {
        "task_id": spec.task_id,
        "question": spec.question,
        "test_time_limit": spec.time_limit,
        "example_input": list(spec.examples),
        "example_output": outputs[:n_ex],
        "test_input": list(spec.hidden),
        "test_output": outputs[n_ex:],
        "difficulty": spec.difficulty,
        "topic": spec.topic,
        "reference_solution": spec.reference,
        "wrong_solutions": list(spec.wrong),
        "source": "cure-toolkit sample (original problems written for this project)",
    }


def check_specs(specs: list[SampleSpec]) -> None:
    ids = [s.task_id for s in specs]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate task slugs")
    for s in specs:
        if len(s.examples) != 2 or not 4 <= len(s.hidden) <= 10:
            raise SystemExit(f"{s.task_id}: needs 2 examples and 4-10 hidden tests")
        if not 1.0 <= s.time_limit <= 2.0:
            raise SystemExit(f"{s.task_id}: time limit must be 1-2 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    specs = all_specs()
    check_specs(specs)
    with ThreadPoolExecutor(args.workers) as pool:
        rows = [build_row(spec, pool) for spec in specs]
    write_json_array(args.output, rows)  # .jsonl: one row per line, written atomically
    n_wrong = sum(1 for r in rows if r["wrong_solutions"])
    print(f"wrote {len(rows)} tasks ({n_wrong} with wrong solutions) to {args.output}")


if __name__ == "__main__":
    main()
