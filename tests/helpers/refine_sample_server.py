"""A scripted coder and tester for the bundled `sample` dataset, for docs/refine.md's example (no model).

Coder, sample c of a task: c % 4 == 0 a junk program (prints 0), 1 one of the task's known wrong solutions
(which pass its public examples), 2 and 3 the reference solution. Tester, sample c: the task's public example
c (cycled) as a test, except every third sample, which keeps the example's input but expects a wrong output
(the example's output followed by WRONG_MARK), so no program passes it. A repair prompt gets the reference
solution when one of the failing tests shown is a right one, and the program back unchanged when the only
failures shown are wrong tests (a coder that trusts its program). A test-revision prompt gets the first public
example back. Hidden tests are never read. The numbers say nothing about any model: they show the mechanics.

    python -m tests.helpers.refine_sample_server --port 8000
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
from collections.abc import Sequence
from typing import Any

from cure_bench.tasks.registry import load_dataset_tasks
from cure_bench.types import Task
from tests.helpers.fake_openai import FakeOpenAIServer

WRONG_MARK = " 31337"
JUNK = "print(0)"


def _code(program: str) -> str:
    return f"Here is my solution.\n```python\n{program}\n```\n"


def _test(inp: str, out: str) -> str:
    return (
        f"Let me work it out.\n**Test Input:**\n```\n{inp}\n```\n\n**Test Output:**\n```\n{out}\n```\n\n"
        "**Explanation:**\nok."
    )


class SampleResponder:
    """The fake server's ``responder`` for prompts about the sample's tasks."""

    def __init__(self) -> None:
        tasks, _ = load_dataset_tasks("sample")
        self.tasks = tasks

    def task_of(self, prompt: str) -> Task:
        return max((t for t in self.tasks if t.question in prompt), key=lambda t: len(t.question))

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        prompt = messages[-1]["content"]
        task = self.task_of(prompt)
        reference = str(task.metadata["reference_solution"])
        wrong = [str(w) for w in task.metadata.get("wrong_solutions") or []] or [reference]
        examples = task.example_tests
        if "test revision round" in prompt:
            return [_test(examples[0].input.strip(), examples[0].output.strip())] * n
        if "repair round" in prompt:
            expected = re.findall(r"Expected output:\n```\n(.*?)\n```", prompt, re.S)
            shown = re.search(r"```python\n(.*?)\n```", prompt, re.S)
            trusted = shown.group(1) if shown is not None else reference
            fix = any(not e.rstrip().endswith(WRONG_MARK.strip()) for e in expected)
            return [_code(reference if fix else trusted)] * n
        if "**Test Input:**" in prompt:
            out = []
            for c in range(n):
                e = examples[c % len(examples)]
                out.append(_test(e.input.strip(), e.output.strip() + (WRONG_MARK if c % 3 == 2 else "")))
            return out
        choices = [JUNK, wrong[0], reference, reference]
        return [_code(choices[c % 4]) for c in range(n)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    with FakeOpenAIServer(responder=SampleResponder(), port=args.port) as srv:
        print(f"scripted sample coder/tester at {srv.base_url}", flush=True)
        try:
            for _ in itertools.count():
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
