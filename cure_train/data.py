"""Training rows and their order: one row per (task, role), a task's two rows always in the same step.

TRL's GRPOTrainer samples ``num_generations`` answers per dataset row and normalises rewards per row.
CURE needs, for each task, the coder's programs *and* the tester's tests of the same step: a test is
rewarded by how the step's programs fare on it. So the dataset has two rows per task (``role`` = code,
test), and :class:`TaskPairSampler` replaces TRL's ``RepeatSampler`` with one that shuffles *tasks* and
emits both rows of each task inside the same generation batch.

Prompts come in two formats: ``chat`` (message lists; TRL applies the tokenizer's chat template) and ``raw``
(the authors' pseudo-ChatML strings, which they use both to evaluate and to train: ``<|im_start|>system text
<|im_end|>`` then ``<|im_start|>User: ...`` and ``<|im_start|>Assistant: ``; TRL passes strings through as they are).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cure_bench.generation.prompts import PromptTemplate, coder_messages, tester_messages
from cure_bench.types import ChatMessages, Task

CODE = "code"
TEST = "test"
ROLES = (CODE, TEST)


def to_openai_messages(messages: ChatMessages) -> list[dict[str, str]]:
    """ChatMessages tuples -> the ``[{"role", "content"}]`` list TRL applies the chat template to."""
    return [{"role": role, "content": content} for role, content in messages]


def raw_prompt(messages: ChatMessages) -> str:
    """The authors' prompt string for ``messages`` (``optimization_config.system_prompts`` layout)."""
    parts = []
    for role, content in messages:
        if role == "system":
            parts.append(f"<|im_start|>{content} <|im_end|>\n")
        elif role == "user":
            parts.append(f"<|im_start|>User: {content} <|im_end|>\n")
        else:
            parts.append(f"<|im_start|>Assistant: {content} <|im_end|>\n")
    return "".join(parts) + "<|im_start|>Assistant: "


@dataclass(frozen=True)
class PromptSettings:
    """How the two prompts of a task are built (the tester may see a few public examples)."""

    coder_template: PromptTemplate | None = None
    tester_template: PromptTemplate | None = None
    show_examples: bool = True
    max_examples: int = 1
    prompt_format: str = "chat"

    def render(self, messages: ChatMessages) -> Any:
        return raw_prompt(messages) if self.prompt_format == "raw" else to_openai_messages(messages)


def view_for_tester(task: Task, max_examples: int) -> Task:
    """The task as the tester sees it: at most ``max_examples`` public examples (upstream: 1)."""
    if len(task.example_tests) <= max_examples:
        return task
    return Task(
        task_id=task.task_id,
        question=task.question,
        time_limit=task.time_limit,
        example_tests=task.example_tests[:max_examples],
        hidden_tests=task.hidden_tests,
        metadata=task.metadata,
    )


def build_rows(tasks: Sequence[Task], settings: PromptSettings) -> list[dict[str, Any]]:
    """Rows ``2 i`` (coder prompt) and ``2 i + 1`` (tester prompt) of task ``i``."""
    rows: list[dict[str, Any]] = []
    show = settings.show_examples and settings.max_examples > 0
    for index, task in enumerate(tasks):
        code_prompt = coder_messages(task, settings.coder_template)
        test_prompt = tester_messages(view_for_tester(task, settings.max_examples), show, settings.tester_template)
        rows.append({"prompt": settings.render(code_prompt), "task_index": index, "role": CODE})
        rows.append({"prompt": settings.render(test_prompt), "task_index": index, "role": TEST})
    return rows


def build_dataset(tasks: Sequence[Task], settings: PromptSettings) -> Any:
    """The rows as a ``datasets.Dataset`` (what GRPOTrainer expects)."""
    from datasets import Dataset

    return Dataset.from_list(build_rows(tasks, settings))


class TaskPairSampler:
    """Index stream for TRL's training dataloader, keeping a task's code and test rows together.

    Same contract as ``trl.trainer.utils.RepeatSampler`` with ``batch_size = 2 * tasks_per_batch``: every
    row index is repeated ``mini_repeat_count`` (= num_generations) times in a row, each generation batch
    (``tasks_per_batch`` tasks, both roles) is repeated ``repeat_count`` times (TRL reads one generation
    batch per gradient-accumulation micro-step and generates only on the first), and an incomplete last
    batch is dropped. The task order of epoch ``e`` depends only on ``(seed, e)``: the trainer calls
    ``set_epoch`` and skips consumed batches on resume, so a resumed run sees exactly the same order.
    """

    def __init__(
        self,
        n_tasks: int,
        tasks_per_batch: int,
        mini_repeat_count: int,
        repeat_count: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        role_blocks: int = 0,
    ):
        if n_tasks < tasks_per_batch:
            raise ValueError(f"{n_tasks} tasks cannot fill one step of {tasks_per_batch} tasks")
        self.n_tasks = n_tasks
        self.tasks_per_batch = tasks_per_batch
        self.mini_repeat_count = mini_repeat_count
        self.repeat_count = repeat_count
        self.seed = seed
        self.shuffle = shuffle
        self.role_blocks = role_blocks
        if role_blocks and (tasks_per_batch * mini_repeat_count) % role_blocks:
            raise ValueError(
                f"{tasks_per_batch} tasks x {mini_repeat_count} answers per role "
                f"do not split over {role_blocks} processes"
            )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def task_order(self, epoch: int) -> list[int]:
        order = list(range(self.n_tasks))
        if self.shuffle:
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
        return order

    def batches(self, epoch: int) -> list[list[int]]:
        """The task indices of each step of ``epoch`` (complete batches only)."""
        order = self.task_order(epoch)
        n_full = len(order) // self.tasks_per_batch
        return [order[i * self.tasks_per_batch : (i + 1) * self.tasks_per_batch] for i in range(n_full)]

    def step_rows(self, chunk: Sequence[int]) -> list[int]:
        """Row indices of one generation batch of tasks ``chunk``, in the order processes receive them.

        Default: task by task, code rows then test rows. With ``role_blocks = N`` (separate updates on N processes),
        process ``p`` (the p-th of N equal consecutive slices, as accelerate deals batches) gets the p-th N-th of the
        step's code answers followed by the p-th N-th of its test answers, so every process holds the same number of
        answers of each role and can make the code update, then the test update, in lockstep with the others.
        """
        k = self.mini_repeat_count
        if not self.role_blocks:
            return [row for task in chunk for row in (2 * task, 2 * task + 1) for _ in range(k)]
        code = [2 * task for task in chunk for _ in range(k)]
        test = [2 * task + 1 for task in chunk for _ in range(k)]
        per = len(code) // self.role_blocks
        return [
            row
            for p in range(self.role_blocks)
            for row in code[p * per : (p + 1) * per] + test[p * per : (p + 1) * per]
        ]

    def __iter__(self) -> Iterator[int]:
        for chunk in self.batches(self.epoch):
            rows = self.step_rows(chunk)
            for _ in range(self.repeat_count):
                yield from rows

    def __len__(self) -> int:
        n_full = self.n_tasks // self.tasks_per_batch
        return n_full * self.repeat_count * self.tasks_per_batch * 2 * self.mini_repeat_count
