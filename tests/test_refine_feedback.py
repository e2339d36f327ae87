"""Refinement feedback keeps what the prompts show, not what the programs printed (issue 13: bounded harness).

A program printing megabytes on a generated test costs the feedback its first OUTPUT_CAP characters: the
repair prompt and the trajectory get that excerpt, and the tester's output groups are keyed by a digest of
the whitespace-normalised output, so programs printing the same megabytes with different spacing still
form one group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.refine.feedback import Runner, output_groups, program_feedback
from cure_bench.refine.prompts import OUTPUT_CAP, repair_prompt
from cure_bench.refine.state import TaskState
from cure_bench.types import Task, TaskTable, TestCase, Verdict

BIG = 2_000_000
PROGRAMS = [
    f"import sys\nsys.stdout.write('x' * {BIG})",  # wrong, two megabytes
    f"import sys\nsys.stdout.write('x' * {BIG} + '\\n\\n   ')",  # the same output, other trailing whitespace
    "print(7)",
    "raise SystemExit(3)",  # does not finish cleanly: no output shown
]


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    bench = BenchConfig(dataset="unused", coder=ModelConfig(model="unused"), workers=1)
    box = Runner(bench, hide=(), cache_dir=None)
    yield box
    box.close()


def state() -> TaskState:
    task = Task("T", "print 2*n", 2.0, example_tests=[TestCase("1\n", "2\n")], hidden_tests=[TestCase("5\n", "10\n")])
    n = len(PROGRAMS)
    wrong = [[Verdict.WRONG_ANSWER] for _ in range(n)]
    table = TaskTable("T", hidden=[row[:] for row in wrong], generated=wrong)
    return TaskState(task, list(PROGRAMS), [TestCase("3\n", "6\n")], table, [[{}] for _ in range(n)], [[{}]])


def test_feedback_keeps_an_excerpt_and_judges_the_whole_output(runner: Runner) -> None:
    (st,) = states = [state()]
    got = {i: fb for _, i, fb in program_feedback(runner, states, limit=2, public=True)}
    assert sorted(got) == [0, 1, 2, 3]
    big = got[0][0]
    assert big.printed == "x" * OUTPUT_CAP and big.verdict == "wrong_answer" and big.source == "generated"
    assert got[1][0].printed == "x" * OUTPUT_CAP
    # the public example (1 -> 2) is judged on the whole output, then shown as an excerpt
    assert [(f.source, f.verdict, f.printed) for f in got[2]] == [
        ("generated", "wrong_answer", "7\n"), ("public", "wrong_answer", "7\n")]  # fmt: skip
    assert [(f.source, f.verdict, f.printed) for f in got[3]] == [
        ("generated", "wrong_answer", None), ("public", "runtime_error", None)]  # fmt: skip
    prompt = repair_prompt(st.task, PROGRAMS[0], got[0], 1, text_prompt=False)[-1][1]
    assert "x" * OUTPUT_CAP in prompt and "x" * (OUTPUT_CAP + 1) not in prompt


def test_output_groups_are_keyed_by_the_normalised_output(runner: Runner) -> None:
    (groups,) = output_groups(runner, [state()], [(0, 0)])
    assert [(g.programs, g.printed, g.verdict) for g in groups] == [
        (2, "x" * OUTPUT_CAP, "wrong_answer"), (1, "7\n", "wrong_answer"), (1, None, "runtime_error")]  # fmt: skip
