"""benchmarks/upstream_harness.py: upstream's harness is cut from a checkout, never re-implemented, run sandboxed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from benchmarks.upstream_harness import UPSTREAM_ENV, UpstreamError, UpstreamHarness, harness_source, read_eval_source
from cure_bench.sandbox import Sandbox

# A stand-in eval.py of our own (not upstream's text): the loader must keep the three functions and only the
# imports they use, and none of the module's other code.
FAKE_EVAL = """\
import io
import sys
import numpy as np
from vllm import LLM
import multiprocessing as mp

SIDE_EFFECT = LLM("never loaded")

def worker(script, input_val, output_queue):
    output_queue.put(io.StringIO(input_val).read() + str(len(sys.argv)))

def run_scripts_with_timeout(scripts, inputs, time_limits, worker):
    q = mp.Queue()
    return [worker(s, i, q) or q.get() for s, i in zip(scripts, inputs)]

def test_if_eq(x, y):
    return x == y

def unrelated():
    return np.zeros(3)
"""


def test_harness_source_keeps_the_functions_and_their_imports_only() -> None:
    source = harness_source(FAKE_EVAL)
    assert "def worker" in source and "def run_scripts_with_timeout" in source and "def test_if_eq" in source
    assert "import io" in source and "import sys" in source and "import multiprocessing as mp" in source
    assert "numpy" not in source and "vllm" not in source and "SIDE_EFFECT" not in source and "unrelated" not in source
    namespace: dict = {}
    exec(compile(source, "fake", "exec"), namespace)  # our own stand-in text, not upstream's or generated code
    assert namespace["test_if_eq"]("a", "a")


def test_missing_function_and_missing_repo_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match="no top-level function test_if_eq"):
        harness_source(FAKE_EVAL.replace("def test_if_eq", "def other"), "x/evaluation/eval.py")
    with pytest.raises(UpstreamError, match="no such directory"):
        read_eval_source(tmp_path / "absent")
    with pytest.raises(UpstreamError, match="neither"):
        read_eval_source(tmp_path)


def test_checkout_and_bare_mirror_are_both_read(tmp_path: Path) -> None:
    work = tmp_path / "CURE"
    (work / "evaluation").mkdir(parents=True)
    (work / "evaluation" / "eval.py").write_text(FAKE_EVAL)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C"]
    subprocess.run([*git, str(work), "init", "-q"], check=True)
    subprocess.run([*git, str(work), "add", "."], check=True)
    subprocess.run([*git, str(work), "commit", "-qm", "x"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(tmp_path / "bare")], check=True)
    for repo in (work, tmp_path / "bare"):
        text, origin = read_eval_source(repo)
        assert text == FAKE_EVAL and "eval.py" in origin


def _upstream() -> Path | None:
    for candidate in (os.environ.get(UPSTREAM_ENV), "/work/.mirror/Gen-Verse+CURE/repo"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


@pytest.mark.slow
@pytest.mark.skipif(_upstream() is None, reason=f"no CURE checkout (set ${UPSTREAM_ENV})")
def test_upstream_semantics_inside_the_sandbox() -> None:
    """What the issue measured on upstream's real harness: sys.stdin reads work, sys.stdin.buffer and open(0) do
    not (they reach the evaluation's own stdin), exit(1) after the answer passes, input()'s prompt is dropped."""
    repo = _upstream()
    assert repo is not None
    harness = UpstreamHarness(repo, batch=4)
    items = [
        ("print(int(input()) * 2)", "3\n", 1.0, "6"),
        ("import sys\nprint(sum(map(int, sys.stdin.read().split())))", "1 2\n", 1.0, "3"),
        ("import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))", "1 2\n", 1.0, "3"),
        ("print(sum(map(int, open(0).read().split())))", "1 2\n", 1.0, "3"),
        ("print(7)\nexit(1)", "", 1.0, "7"),
        ("n = int(input('n? '))\nprint(n)", "5\n", 1.0, "5"),
        ("def f(x: List[int]): return 1\nprint(f([]))", "", 1.0, "1"),
        ("while True:\n    pass", "", 0.3, ""),
    ]
    with Sandbox(workers=2, use_cache=False) as sandbox:
        results = harness.run(sandbox, items)
    assert [r.passed for r in results] == [True, True, False, False, True, True, True, False]
    assert results[2].kind == "error" and results[-1].kind == "timeout"
