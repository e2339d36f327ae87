"""report.html on a large run: file size and load time in headless Chromium, beside a small run of the same shape.

    python benchmarks/report_html_size.py                      # 500 tasks x 16 programs x 24 tests vs 50 tasks
    python benchmarks/report_html_size.py --tasks 200 --baseline 20

Writes synthetic run directories in the bench's format (summary.json + samples.jsonl: questions, raw coder and
tester answers of realistic length, programs, generated tests, verdict tables with output digests; seeded, so
every run of the script writes the same files), renders them with ``build_report`` as `cure report -o` does,
and opens each report.html in headless Chromium (Debian's, or Playwright's own): the time until the page is
ready (data parsed, first rows drawn), then the time to open one task's drill-down and to apply a filter,
median of ``--repeat`` loads. Prints each figure for both runs and the ratio large / baseline.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cure_bench.analysis import AnalysisSettings, SurfaceSettings, build_report
from cure_bench.scoring.metrics import compute_metrics
from cure_bench.types import TaskTable, Verdict

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "te",
    "vi",
    "do",
    "pa",
    "ge",
    "fu",
    "zo",
    "ri",
    "ma",
    "nu",
    "ta",
    "le",
    "so",
    "ki",
    "be",
    "ra",
    "mo",
    "ti",
    "du",
]
N_HIDDEN = 8


def _words(rng: random.Random, n: int) -> str:
    vocab = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(n * 2)]
    return " ".join(rng.choice(vocab) for _ in range(n))


def _program(rng: random.Random) -> str:
    names = [rng.choice(SYLLABLES) + rng.choice(SYLLABLES) for _ in range(4)]
    lines = ["import sys", f"def {names[0]}({names[1]}):", f"    {names[2]} = 0"]
    for i in range(rng.randint(6, 18)):
        op = rng.choice(["+", "-", "*", "//", "%"])
        lines.append(f"    {names[2]} = ({names[2]} {op} {names[1]}[{i % 4}] * {rng.randint(1, 99)}) % 1000003")
    lines += [f"    return {names[2]}", f"{names[3]} = list(map(int, sys.stdin.read().split()))",
              f"print({names[0]}({names[3]}))"]  # fmt: skip
    return "\n".join(lines)


def _task(rng: random.Random, i: int, k_code: int, k_case: int) -> tuple[dict[str, Any], TaskTable]:
    task_id = f"task-{i:04d}"
    p_correct = rng.random()
    correct = [rng.random() < p_correct for _ in range(k_code)]
    extracted = [rng.random() > 0.05 for _ in range(k_code)]
    n_tests = 0 if rng.random() < 0.03 else k_case
    good = [rng.random() < 0.8 for _ in range(n_tests)]
    hidden, gen, outs = [], [], []
    for ok, ex in zip(correct, extracted, strict=True):
        if not ex:
            hidden.append([Verdict.NO_PROGRAM] * N_HIDDEN)
            gen.append([Verdict.NO_PROGRAM] * n_tests)
            outs.append([None] * n_tests)
            continue
        ok = ok and ex
        hidden.append([Verdict.ACCEPTED if ok or rng.random() < 0.4 else Verdict.WRONG_ANSWER for _ in range(N_HIDDEN)])
        row = [(ok == g) if ok else rng.random() < (0.3 if g else 0.2) for g in good]
        gen.append([Verdict.ACCEPTED if p else rng.choice([Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR]) for p in row])
        outs.append([f"{rng.getrandbits(40):010x}" if not p else f"{j:010x}" for j, p in enumerate(row)])
    programs = [_program(rng) if ex else None for ex in extracted]
    code_answers = [
        {"text": f"{_words(rng, rng.randint(80, 250))}\n```python\n{p}\n```\n" if p else _words(rng, 200),
         "tokens": rng.randint(200, 900), "finish_reason": "stop"}
        for p in programs
    ]  # fmt: skip
    tests = [(f"{rng.randint(1, 99)} {rng.randint(1, 99)} {rng.randint(1, 99)} {rng.randint(1, 99)}\n",
              f"{rng.randint(0, 10**6)}\n") for _ in range(n_tests)]  # fmt: skip
    test_answers = [
        {"text": f"{_words(rng, rng.randint(60, 180))}\n**Test Input:**\n```\n{t[0]}```\n\n**Test Output:**\n```\n"
                 f"{t[1]}```\n\n**Explanation:**\n{_words(rng, 30)}", "tokens": rng.randint(150, 600),
         "finish_reason": "stop"}
        for t in tests
    ]  # fmt: skip
    table = TaskTable(task_id, hidden, gen, outs)
    row = {
        "task_id": task_id,
        "question": _words(rng, rng.randint(120, 300)),
        "time_limit": 1.0,
        "max_test": N_HIDDEN,
        "code_answers": code_answers,
        "programs": programs,
        "test_answers": test_answers,
        "generated_tests": [{"input": a, "output": b, "answer_index": j} for j, (a, b) in enumerate(tests)],
        "dropped_test_answers": 0,
        "table": table.to_json(),
    }
    return row, table


def write_synthetic_run(path: Path, n_tasks: int, k_code: int = 16, k_case: int = 24, seed: int = 0) -> Path:
    """A run directory as `cure bench` writes it, with ``n_tasks`` tasks of ``k_code`` x ``k_case``."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    rows, tables = zip(*(_task(rng, i, k_code, k_case) for i in range(n_tasks)), strict=True)
    bon = [(4, 4), (k_code, k_case)]
    result = compute_metrics(list(tables), bon=bon, protocol="cure")
    manifest = {
        "mode": "bench", "coder": {"model": "synthetic-coder", "backend": "openai"},
        "tester": {"model": "synthetic-coder", "backend": "openai"}, "protocol": {"name": "cure"},
        "dataset": {"name": f"synthetic-{n_tasks}", "sha256": "0" * 64}, "k_code": k_code, "k_case": k_case,
        "bon": [f"{n}x{m}" for n, m in bon], "max_test": N_HIDDEN, "sampling": {"temperature": 1.0},
    }  # fmt: skip
    summary = {"run": manifest, "metrics": result.metrics, "counts": result.counts}
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    with (path / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def _browser() -> str:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        return pw.chromium.executable_path


def measure_page(html: Path, repeat: int) -> dict[str, float]:
    """Median seconds to ready, to open the first task, to apply a filter; JS heap after load (MB)."""
    from playwright.sync_api import sync_playwright

    ready, opened, filtered, heap = [], [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_browser(), args=["--no-sandbox"])
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(html.as_uri(), wait_until="commit")
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=120_000)
            ready.append(time.perf_counter() - t0)
            heap.append(page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0") / 2**20)
            t0 = time.perf_counter()
            page.click("#tasks tbody tr[data-task]")
            page.wait_for_selector(".runpanel table.grid", state="attached")
            opened.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page.click("button[data-filter='unsolved']")
            page.wait_for_function("document.getElementById('count').textContent.includes(' of ')")
            page.evaluate("document.querySelectorAll('#tasks tbody tr').length")
            filtered.append(time.perf_counter() - t0)
            page.close()
        browser.close()
    return {"ready": statistics.median(ready), "open": statistics.median(opened),
            "filter": statistics.median(filtered), "heap": statistics.median(heap)}  # fmt: skip


def run_case(root: Path, n_tasks: int, repeat: int) -> dict[str, float]:
    run = write_synthetic_run(root / f"run-{n_tasks}", n_tasks)
    settings = AnalysisSettings(resamples=200, surface=SurfaceSettings(samples=32))
    t0 = time.perf_counter()
    build_report([run], root / f"report-{n_tasks}", settings)
    render = time.perf_counter() - t0
    html = root / f"report-{n_tasks}" / "report.html"
    data = html.read_bytes()
    samples = (run / "samples.jsonl").stat().st_size
    return {"tasks": n_tasks, "samples_mb": samples / 2**20, "html_mb": len(data) / 2**20,
            "gzip_mb": len(gzip.compress(data, 6)) / 2**20, "render": render, **measure_page(html, repeat)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--baseline", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run_case(Path(tmp), args.baseline, args.repeat)
        large = run_case(Path(tmp), args.tasks, args.repeat)
    cols = [("samples_mb", "samples.jsonl MB", ".1f"), ("html_mb", "report.html MB", ".1f"),
            ("gzip_mb", "html gzipped MB", ".1f"), ("render", "cure report s", ".1f"), ("ready", "page ready s", ".2f"),
            ("open", "open a task s", ".3f"), ("filter", "filter s", ".3f"), ("heap", "JS heap MB", ".0f")]  # fmt: skip
    print(f"report.html, {16} programs x {24} generated tests x {N_HIDDEN} hidden tests per task "
          f"(median of {args.repeat} loads in headless Chromium)")  # fmt: skip
    print(f"{'':18}" + "".join(f"{label:>18}" for _, label, _ in cols))
    for name, row in ((f"baseline {args.baseline} tasks", base), (f"large {args.tasks} tasks", large)):
        print(f"{name:18}" + "".join(f"{format(row[k], f):>18}" for k, _, f in cols))
    ratios = "".join(f"{format(large[k] / base[k], '.1f') + 'x' if base[k] else '-':>18}" for k, _, _ in cols)
    print(f"{'ratio':18}" + ratios)


if __name__ == "__main__":
    main()
