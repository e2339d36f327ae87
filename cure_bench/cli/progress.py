"""Rich progress bars for the pipeline's stages (the CLI's side of ``pipeline.Progress``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichProgress:
    """One bar per stage, with the stage's rate (samples/s while generating, executions/s while judging)."""

    def __init__(self, console: Console):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing while the user answers a question on the same terminal."""
        self._progress.stop()
        try:
            yield
        finally:
            self._progress.start()

    def start(self, stage: str, total: int) -> None:
        self._tasks[stage] = self._progress.add_task(stage, total=total or None, rate="")

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None:
        task_id = self._tasks[stage]
        self._progress.update(task_id, completed=done, total=total or None)
        task = self._progress.tasks[self._tasks[stage]]
        unit = "samples/s" if stage.startswith("generate") else "exec/s"
        speed = task.speed
        rate = f"{speed:,.1f} {unit}" if speed else ""
        if info.get("tokens_per_s"):
            rate += f" {info['tokens_per_s']:,.0f} tok/s"
        self._progress.update(task_id, rate=rate)

    def finish(self, stage: str) -> None:
        task_id = self._tasks.get(stage)
        if task_id is not None:
            task = self._progress.tasks[task_id]
            if task.total is None:
                self._progress.update(task_id, total=task.completed)
            self._progress.stop_task(task_id)
