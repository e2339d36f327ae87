"""CURE's own execution harness, loaded from a CURE checkout at run time and run inside our sandbox.

    python benchmarks/upstream_harness.py --upstream-repo ~/src/CURE            # exec_throughput's workload
    python benchmarks/upstream_harness.py --upstream-repo ~/src/CURE --quick    # 6 tasks x 16 programs x 8 tests
    python benchmarks/upstream_harness.py --dataset sample                      # the bundled tasks' solutions
    CURE_UPSTREAM_REPO=/work/.mirror/Gen-Verse+CURE/repo python benchmarks/exec_throughput.py --exec-harness

Why: comparing our judge with "an exec() harness" means nothing unless the harness is upstream's own. So
nothing here re-implements it: the harness functions (``worker``, ``run_scripts_with_timeout``, ``test_if_eq``
of ``evaluation/eval.py``) and the imports they use are cut out of the user's checkout with ``ast`` each run,
and executed unchanged. A checkout or a bare mirror both work (a bare one is read with ``git show``).

Why inside our sandbox: the harness exec()s untrusted programs in forked processes of itself. Here one sandboxed
execution runs a small driver that loads upstream's functions and hands them a batch of (program, input, time
limit, expected output), as upstream's ``run_scripts_with_chunk`` hands a chunk to ``run_scripts_with_timeout``;
the driver reports ``test_if_eq`` of each result, the bool upstream's tables hold, on a channel of its own.
What programs print to the real stdout (a thread still printing after the harness put ``sys.stdout`` back)
goes where upstream's goes, the evaluation's console: here /dev/null. A batch's processes run at once, with
upstream's wall-clock deadlines (upstream's chunks are n / num_chunks executions, often hundreds at once; here
``--batch``, 4 by default, per sandbox worker, so false time limits under load are fewer here than there).
The driver gets the memory of the whole batch and no per-program memory limit, like upstream; its stdin is
read before the programs run, so a program that reads the real fd 0 (``sys.stdin.buffer``, ``open(0)``) sees
an empty stdin, as upstream's do when the evaluation runs without a terminal.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cure_bench.sandbox import Sandbox, default_workers  # noqa: E402
from cure_bench.types import ExecJob  # noqa: E402

UPSTREAM_ENV = "CURE_UPSTREAM_REPO"
EVAL_PATH = "evaluation/eval.py"
HARNESS_FUNCTIONS = ("worker", "run_scripts_with_timeout", "test_if_eq")

# Our driver; HARNESS is upstream's code, cut from the checkout at run time (harness_source).
DRIVER = """\
import json, os, sys
report_fd = os.dup(1)  # the report's own channel: what programs print to the real stdout is upstream's console
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
namespace = {"__name__": "cure_upstream_eval"}
exec(compile(HARNESS, "evaluation/eval.py", "exec"), namespace)
batch = json.loads(sys.stdin.read())
results = namespace["run_scripts_with_timeout"](
    [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch], namespace["worker"]
)
report = []
for result, item in zip(results, batch):
    text = result if isinstance(result, str) else repr(result)
    kind = "timeout" if text == "Timeout Error" else "error" if text.startswith("error: ") else (
        "no_result" if text.startswith("Execution Error: ") else "output")
    report.append([bool(namespace["test_if_eq"](result, item[3])), kind, text[:160] if kind != "output" else ""])
os.write(report_fd, json.dumps(report).encode())
"""


class UpstreamError(Exception):
    """The checkout cannot give us upstream's harness; the message names the path and what is missing."""


@dataclass(frozen=True)
class UpstreamResult:
    """One execution under upstream's harness: what its bool table would hold, and how the run ended."""

    passed: bool
    kind: str  # output, timeout, error (an exception the harness caught), no_result, harness_died
    detail: str = ""


def upstream_repo(arg: str | None) -> Path | None:
    """The CURE checkout from ``--upstream-repo`` or $CURE_UPSTREAM_REPO (None: neither is set)."""
    value = arg or os.environ.get(UPSTREAM_ENV)
    return Path(value).expanduser() if value else None


def read_eval_source(repo: Path) -> tuple[str, str]:
    """(text of evaluation/eval.py, where it came from): the work tree's file, else ``git show HEAD:`` (bare)."""
    if not repo.exists():
        raise UpstreamError(f"--upstream-repo {repo}: no such directory")
    commit = _git(repo, "rev-parse", "HEAD")
    path = repo / EVAL_PATH
    if path.is_file():
        return path.read_text(encoding="utf-8"), f"{path} (HEAD {commit or 'unknown'})"
    text = _git(repo, "show", f"HEAD:{EVAL_PATH}")
    if text is None:
        raise UpstreamError(f"--upstream-repo {repo}: neither {path} nor HEAD:{EVAL_PATH} in its git history")
    return text, f"{repo} HEAD:{EVAL_PATH} ({commit})"


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (
        proc.stdout.strip()
        if args[0] == "rev-parse" and proc.returncode == 0
        else (proc.stdout if proc.returncode == 0 else None)
    )


def harness_source(eval_source: str, origin: str = EVAL_PATH) -> str:
    """Upstream's harness functions and the top-level imports they use, as upstream wrote them."""
    tree = ast.parse(eval_source)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in HARNESS_FUNCTIONS}
    missing = [name for name in HARNESS_FUNCTIONS if name not in functions]
    if missing:
        raise UpstreamError(f"{origin}: no top-level function {', '.join(missing)} (is this a CURE checkout?)")
    used = {n.id for f in functions.values() for n in ast.walk(f) if isinstance(n, ast.Name)}
    imports = [
        node
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any((alias.asname or alias.name).split(".")[0] in used for alias in node.names)
    ]
    parts = [ast.get_source_segment(eval_source, node) for node in [*imports, *functions.values()]]
    return "\n\n".join(p for p in parts if p) + "\n"


class UpstreamHarness:
    """Judge (program, stdin, time limit, expected) items with upstream's harness, inside a Sandbox."""

    def __init__(self, repo: Path, batch: int = 4, memory_mb_per_item: int = 1024) -> None:
        source, self.origin = read_eval_source(repo)
        self.program = f"HARNESS = {harness_source(source, self.origin)!r}\n" + DRIVER
        self.batch = batch
        self.memory_mb_per_item = memory_mb_per_item

    def run(self, sandbox: Sandbox, items: Sequence[tuple[str, str, float, str]]) -> list[UpstreamResult]:
        """One result per item, in order; batches run in parallel over the sandbox's workers."""
        batches = [list(items[i : i + self.batch]) for i in range(0, len(items), self.batch)]
        jobs = [
            ExecJob(
                self.program,
                json.dumps(b),
                time_limit_s=sum(item[2] for item in b) + 2.0 + 0.1 * len(b),
                memory_limit_mb=512 + self.memory_mb_per_item * len(b),
            )
            for b in batches
        ]
        out: list[UpstreamResult] = []
        for b, result in zip(batches, sandbox.run(jobs), strict=True):
            try:
                report = json.loads(result.stdout) if result.status == "ok" else None
            except json.JSONDecodeError:
                report = None
            if report is None or len(report) != len(b):  # upstream's evaluation itself would have died here
                why = f"{result.status}: {result.stderr_tail.strip().splitlines()[-1:] or ''}"
                out += [UpstreamResult(False, "harness_died", why[:160])] * len(b)
            else:
                out += [UpstreamResult(bool(p), str(kind), str(detail)) for p, kind, detail in report]
        return out


# ------------------------------------------------------------------------------------------ measurements


def _exec_throughput_cases(quick: bool) -> list:
    from benchmarks.exec_throughput import VARIANTS, workload

    tests = 8 if quick else 24
    cases = workload(6, tests) if quick else workload(20, tests)
    names = [name for name, _, _ in VARIANTS]  # workload() lists, per task, each variant's tests in turn
    return [(names[(index // tests) % len(names)], case) for index, case in enumerate(cases)]


def _sample_cases() -> list:
    """The bundled sample's reference and wrong solutions on its hidden tests; truth = our judge's verdict."""
    from benchmarks.exec_throughput import Case
    from cure_bench.tasks.reader import load_tasks
    from cure_bench.types import Verdict

    labelled = []
    for task in load_tasks(ROOT / "cure_bench" / "data" / "sample.jsonl"):
        meta = task.metadata
        programs = [("reference", meta.get("reference_solution"))]
        programs += [("wrong", p) for p in meta.get("wrong_solutions") or []]
        for label, program in programs:
            if not program:
                continue
            for test in task.hidden_tests:
                job = ExecJob(program, test.input, task.time_limit, 2048)
                labelled.append((label, Case(job, test.output, Verdict.ACCEPTED, False)))  # truth: our judge
    return labelled


def measure(repo: Path, labelled: list, workers: int, batch: int, truth_from_engine: bool) -> dict:
    """Upstream's pass/fail against the truth (and our engine's), in total and per program style."""
    from cure_bench.sandbox import judge
    from cure_bench.types import Verdict

    harness = UpstreamHarness(repo, batch=batch)
    cases = [case for _, case in labelled]
    with Sandbox(workers=workers, use_cache=False) as sandbox:
        engine = sandbox.run([c.job for c in cases])
        upstream = harness.run(sandbox, [(c.job.program, c.job.stdin, c.job.time_limit_s, c.expected) for c in cases])
    per_style: dict[str, Counter] = {}
    total: Counter = Counter()
    for (style, case), ours, theirs in zip(labelled, engine, upstream, strict=True):
        verdict = judge(ours, case.expected)
        truth_pass = (verdict if truth_from_engine else case.truth) is Verdict.ACCEPTED
        row = per_style.setdefault(style, Counter())
        for counter in (row, total):
            counter["executions"] += 1
            counter["upstream_wrong"] += theirs.passed != truth_pass
            counter["engine_wrong"] += (verdict is Verdict.ACCEPTED) != truth_pass
            counter[f"upstream_{theirs.kind}"] += 1
            if theirs.passed != truth_pass:
                counter[f"wrong_{'pass' if theirs.passed else 'fail'}_{theirs.kind}"] += 1
    return {"origin": harness.origin, "batch": batch, "workers": workers, "total": total, "per_style": per_style}


def _print(figures: dict) -> None:
    total = figures["total"]
    print(f"upstream harness: {figures['origin']}; batch {figures['batch']} x {figures['workers']} workers")
    width = max(len(s) for s in figures["per_style"])
    for style, row in [*figures["per_style"].items(), ("whole", total)]:
        kinds = ", ".join(f"{k.removeprefix('wrong_')} {v}" for k, v in sorted(row.items()) if k.startswith("wrong_"))
        print(
            f"{style:>{width}}: {row['executions']:5d} exec | upstream {row['upstream_wrong']:5d} wrong pass/fail "
            f"({row['upstream_wrong'] / row['executions']:.1%}) | engine {row['engine_wrong']} wrong"
            + (f" | {kinds}" if kinds else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-repo", help=f"a CURE checkout or bare mirror (default: ${UPSTREAM_ENV})")
    parser.add_argument("--quick", action="store_true", help="exec_throughput's quick workload (6 x 16 x 8)")
    parser.add_argument("--dataset", choices=["workload", "sample"], default="workload", help="what to judge")
    parser.add_argument("--workers", type=int, default=default_workers(), help="sandbox workers")
    parser.add_argument("--batch", type=int, default=4, help="executions upstream's harness runs at once per worker")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    repo = upstream_repo(args.upstream_repo)
    if repo is None:
        sys.exit(f"upstream_harness: give --upstream-repo PATH or set ${UPSTREAM_ENV} (a CURE checkout)")
    try:
        if args.dataset == "sample":
            figures = measure(repo, _sample_cases(), args.workers, args.batch, truth_from_engine=True)
        else:
            figures = measure(repo, _exec_throughput_cases(args.quick), args.workers, args.batch, False)
    except UpstreamError as exc:
        sys.exit(f"upstream_harness: {exc}")
    _print(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
