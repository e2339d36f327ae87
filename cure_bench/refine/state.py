"""What refinement carries from round to round, per task, and how it becomes a samples.jsonl line.

A task's state is its current programs and generated tests, the verdict table of the one on the other, and
the trajectory: every version of every program (with the feedback that produced it and its verdicts), every
version of every test (with the program outputs the tester was shown), and per round the program the ranker
picked. Round 0 is read back from the `cure bench` run inside the refine run, so it is exactly bench's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.config import BenchConfig
from cure_bench.runs import directory as rundir
from cure_bench.runs.files import TaskRecord
from cure_bench.scoring.metrics import correct_programs, drop_reason
from cure_bench.scoring.rankers import TaskArrays, pick
from cure_bench.types import Task, TaskTable, TestCase, Verdict


@dataclass
class TaskState:
    task: Task
    programs: list[str | None]
    tests: list[TestCase]
    table: TaskTable
    versions: list[list[dict[str, Any]]]  # per program: every version, its feedback and verdicts
    test_versions: list[list[dict[str, Any]]]  # per generated test: every version, what the tester was shown
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per round: the pick and passes per program

    def record(self, hidden_used: int) -> TaskRecord:
        """The current programs and tests as the judge stage takes them (answers are not needed to judge)."""
        return TaskRecord(task=self.task, coder_messages=(), tester_messages=None, code_answers=[],
                          programs=self.programs, test_answers=[], generated_tests=self.tests,
                          test_answer_index=list(range(len(self.tests))), hidden_used=hidden_used)  # fmt: skip

    def stamp(self, program: int) -> None:
        """Write the current table's verdicts into the program's latest version."""
        v = self.versions[program][-1]
        v["hidden_correct"] = correct_programs(self.table)[program]
        v["hidden"] = [x.value for x in self.table.hidden[program]]
        v["generated"] = [x.value for x in self.table.generated[program]]

    def close_round(self, round_no: int, ranker: str, protocol: str) -> None:
        """Record which program the ranker submits at this round, how many tests each program passes, and
        whether the protocol scores the task (what `cure report` resamples per round)."""
        arrays = TaskArrays.from_table(self.table)
        scored = drop_reason(self.table, protocol, single=False) is None
        chosen = pick(arrays, ranker) if arrays is not None and scored else None
        passed = [sum(v is Verdict.ACCEPTED for v in row) for row in self.table.generated]
        correct = correct_programs(self.table)
        self.rounds.append({"round": round_no, "scored": scored, "selected": chosen,
                            "selected_correct": None if chosen is None else correct[chosen],
                            "passed": passed})  # fmt: skip

    def response_tokens(self) -> tuple[list[int], list[int]]:
        """Token counts of the answers behind the current programs and the current tests (where counted)."""
        code = [v[-1]["tokens"] for v in self.versions if v[-1].get("tokens") is not None]
        tests = [v[-1]["tokens"] for v in self.test_versions if v[-1].get("tokens") is not None]
        return code, tests

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task.task_id, "programs": self.versions, "tests": self.test_versions,
                "rounds": self.rounds}  # fmt: skip


def load_round0(cfg: BenchConfig, round_dir: Path, tasks: list[Task], tables: list[TaskTable]) -> list[TaskState]:
    """Round 0's programs, generated tests and tables, from the `cure bench` run in ``round_dir``."""
    lines = (round_dir / rundir.SAMPLES_FILE).read_text(encoding="utf-8").splitlines()
    rows = {r["task_id"]: r for r in map(json.loads, lines)}
    states = []
    for task, table in zip(tasks, tables, strict=True):
        row = rows[task.task_id]
        programs = list(row["programs"])
        tests = [TestCase(t["input"], t["output"]) for t in row["generated_tests"]]
        code_tokens = [a.get("tokens") for a in row["code_answers"]]
        test_tokens = [a.get("tokens") for a in row["test_answers"]]
        versions: list[list[dict[str, Any]]] = [
            [{"round": 0, "program": p, "feedback": [], "tokens": code_tokens[i]}] for i, p in enumerate(programs)
        ]
        test_versions = [
            [{"round": 0, "input": t["input"], "output": t["output"],
              "tokens": None if t.get("answer_index") is None else test_tokens[t["answer_index"]]}]
            for t in row["generated_tests"]
        ]  # fmt: skip
        state = TaskState(task, programs, tests, table, versions, test_versions)
        for i in range(len(programs)):
            state.stamp(i)
        states.append(state)
    return states


def round0_tokens(round_dir: Path) -> tuple[int, int]:
    """(coder, tester) tokens spent by the `cure bench` run in ``round_dir``."""
    coder = tester = 0
    for line in (round_dir / rundir.SAMPLES_FILE).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        coder += sum(a.get("tokens") or 0 for a in row["code_answers"])
        tester += sum(a.get("tokens") or 0 for a in row["test_answers"])
    return coder, tester
