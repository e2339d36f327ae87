"""Options shared by every converter, and the shape of what a converter yields."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.tasks.convert.common import Skip
from cure_bench.tasks.convert.verify import Candidate

Item = tuple[str, "Candidate | dict[str, Any] | Skip"]
"""(row id, what the row became): a Candidate to verify, a finished task row, or the reason it was skipped."""


MBPP_SPLITS = ("test", "train", "validation", "prompt", "all")


@dataclass
class ConvertOptions:
    """How to convert; every field has a CLI flag of the same name on `cure data convert`."""

    time_limit: float | None = field(default=None, metadata={"help": "seconds per test; default: the source's own"})
    verify: bool = field(default=True, metadata={"help": "run reference solutions on the converted tests"})
    verify_margin: float = field(
        default=2.0,
        metadata={"help": "a reference must finish within time_limit / margin, so the kept tasks have slack"},
    )
    workers: int | None = field(default=None, metadata={"help": "sandbox workers for verification"})
    isolation: str = field(default="auto", metadata={"help": "sandbox isolation level for verification"})
    limit: int | None = field(default=None, metadata={"help": "stop after this many source rows"})
    split: str | None = field(default=None, metadata={"help": "mbpp: test (11-510), train, validation, prompt, all"})
    max_tests: int | None = field(default=None, metadata={"help": "keep at most this many hidden tests per task"})

    def __post_init__(self) -> None:
        if self.time_limit is not None and not self.time_limit > 0:
            raise ConfigError(f"--time-limit must be > 0 seconds, got {self.time_limit}")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"--limit must be >= 0, got {self.limit}")
        if self.split is not None and self.split not in MBPP_SPLITS:
            raise ConfigError(f"--split {self.split!r}: use one of {', '.join(MBPP_SPLITS)}")
        if not self.verify_margin >= 1:
            raise ConfigError(f"--verify-margin must be >= 1, got {self.verify_margin}")
        if self.max_tests is not None and self.max_tests < 1:
            raise ConfigError(f"--max-tests must be >= 1, got {self.max_tests}")


RowConverter = Callable[[dict[str, Any], str, "ConvertOptions"], "Candidate | dict[str, Any]"]


def convert_rows_each(
    rows: Iterable[dict[str, Any]],
    row_id: Callable[[int, dict[str, Any]], str],
    convert_row: RowConverter,
    options: ConvertOptions,
) -> Iterator[Item]:
    """Every converter's loop: name each row, convert it, and turn a Skip into the row's outcome."""
    for index, row in enumerate(rows):
        rid = row_id(index, row)
        try:
            yield rid, convert_row(row, rid, options)
        except Skip as skip:
            yield rid, skip
