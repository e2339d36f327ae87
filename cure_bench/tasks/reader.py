"""Task files in the CURE upstream schema: streaming reader, validation, fingerprints.

A task file is a JSON array of objects or JSONL (one object per line); the format is detected from the
first non-blank character. The schema (CURE's ``question``, ``test_time_limit``, ``example_input`` /
``example_output``, ``test_input`` / ``test_output``) is checked row by row by :mod:`cure_bench.tasks.schema`
and every other field is kept as :attr:`Task.metadata`; rows upstream's evaluation skips are left out
(reported to the caller) unless the reader is strict.

Files can be huge (LiveCodeBench's test file is ~4 GB), so nothing here calls ``json.load`` on a whole
file: :func:`iter_task_rows` decodes one row at a time from a growing text buffer with
``json.JSONDecoder.raw_decode`` and drops what it has consumed, so memory stays around one row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cure_bench.errors import SkippableRowError, TaskFileError, place_in_file, row_number
from cure_bench.tasks.schema import (
    DEFAULT_TIME_LIMIT,
    SCHEMA_FIELDS,
    SkippedRow,
    check_row,
    json_type,
    row_task_id,
    row_to_task,
    skip_summary,
    task_to_row,
)
from cure_bench.types import Task

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "SCHEMA_FIELDS",
    "Problem",
    "SkippedRow",
    "TaskFingerprint",
    "ValidationReport",
    "file_sha256",
    "iter_task_rows",
    "iter_tasks",
    "load_tasks",
    "row_to_task",
    "task_fingerprint",
    "task_to_row",
    "validate_task_file",
]

_CHUNK_CHARS = 1 << 20  # read 1 Mi characters at a time; a row larger than that grows the read size
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


# --------------------------------------------------------------------------------------------------
# Streaming reader
# --------------------------------------------------------------------------------------------------


def _open_text(path: Path) -> TextIO:
    if not path.exists():
        raise TaskFileError(str(path), "no such file")
    if path.is_dir():
        raise TaskFileError(str(path), "is a directory, expected a JSON or JSONL task file")
    return path.open("r", encoding="utf-8-sig")


def _first_char(fh: TextIO) -> str:
    """First non-whitespace character, without consuming anything (the handle is rewound)."""
    while True:
        chunk = fh.read(4096)
        if not chunk:
            fh.seek(0)
            return ""
        stripped = chunk.lstrip(_WHITESPACE)
        if stripped:
            fh.seek(0)
            return stripped[0]


def iter_task_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_index, row)`` for every object in a JSON array or JSONL file, one at a time.

    Rows are yielded as parsed (not validated); a row that is not an object, or text that is not
    JSON, raises :class:`TaskFileError` naming the file, the row and the line/column.
    """
    for index, value in _iter_values(path):
        if not isinstance(value, dict):
            raise TaskFileError(str(path), f"expected a JSON object, got {json_type(value)}", row=index)
        yield index, value


def _iter_values(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Every top-level row value of the file, whatever its JSON type."""
    p = Path(path)
    with _open_text(p) as fh:
        first = _first_char(fh)
        if first == "":
            raise TaskFileError(str(p), "file is empty, expected a JSON array or JSONL rows")
        yield from (_iter_array(p, fh) if first == "[" else _iter_jsonl(p, fh))


def _iter_jsonl(path: Path, fh: TextIO) -> Iterator[tuple[int, Any]]:
    index = 0
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = ""
            if index == 0 and line.strip() == "{":
                hint = " (an object spread over several lines? use a JSON array, or JSONL: one object per line)"
            raise TaskFileError(
                str(path), f"malformed JSON at line {lineno}, column {exc.colno}: {exc.msg}{hint}", row=index
            ) from None
        yield index, value
        index += 1


class _ArrayStream:
    """A text buffer over a file that knows the absolute line number of its start (for error messages)."""

    def __init__(self, path: Path, fh: TextIO):
        self.path, self.fh = path, fh
        self.buf, self.pos, self.eof = "", 0, False
        self.line_base = 1  # line number of buf[0]
        self.read_size = _CHUNK_CHARS

    def fill(self) -> bool:
        """Read more text; False at end of file. Drops consumed text so the buffer stays ~one row."""
        if self.eof:
            return False
        if self.pos:
            self.line_base += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos :], 0
        # Grow the read with the pending text so a huge row is read in O(size) total, not O(size^2).
        chunk = self.fh.read(max(self.read_size, len(self.buf)))
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def skip_ws(self) -> str:
        """Advance past whitespace; return the next character ('' at end of file)."""
        while True:
            n = len(self.buf)
            while self.pos < n and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < n:
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def where(self, pos: int) -> str:
        line = self.line_base + self.buf.count("\n", 0, pos)
        col = pos - (self.buf.rfind("\n", 0, pos) + 1) + 1
        return f"line {line}, column {col}"

    def error(self, message: str, row: int | None, pos: int | None = None) -> TaskFileError:
        pos = self.pos if pos is None else pos
        at = "end of file" if self.eof and pos >= len(self.buf) else self.where(pos)
        return TaskFileError(str(self.path), f"malformed JSON at {at}: {message}", row=row)


def _iter_array(path: Path, fh: TextIO) -> Iterator[tuple[int, Any]]:
    s = _ArrayStream(path, fh)
    s.skip_ws()
    s.pos += 1  # the opening '['
    index = 0
    if s.skip_ws() == "]":
        return _expect_end(s, index)
    while True:
        if s.skip_ws() == "":
            raise s.error("unexpected end of file inside the array", row=index)
        yield index, _decode_value(s, index)
        index += 1
        sep = s.skip_ws()
        if sep == ",":
            s.pos += 1
            continue
        if sep == "]":
            return _expect_end(s, index)
        what = "end of file" if sep == "" else repr(sep)
        raise s.error(f"expected ',' or ']' after row {row_number(index - 1)}, found {what}", row=index)


def _decode_value(s: _ArrayStream, index: int) -> Any:
    while True:
        try:
            value, end = _DECODER.raw_decode(s.buf, s.pos)
        except json.JSONDecodeError as exc:
            # Only an error at the end of what is read so far can be cured by reading more; a real
            # syntax error in the middle of a 4 GB file is reported without reading the rest.
            truncated = exc.pos >= len(s.buf) - 8 or exc.msg.startswith("Unterminated string")
            if truncated and s.fill():
                continue
            raise s.error(exc.msg, row=index, pos=exc.pos) from None
        s.pos = end
        return value


def _expect_end(s: _ArrayStream, index: int) -> None:
    s.pos += 1  # the closing ']'
    trailing = s.skip_ws()
    if trailing:
        raise s.error(f"unexpected text after the closing ']': {trailing!r}", row=None)
    return None


OnSkip = Callable[[SkippedRow, dict[str, Any]], None]
"""Told of each row left out, with the raw row (a caller may look at its other fields, e.g. its date)."""

STRICT_HINT = "; this is a row upstream's evaluation skips: without --strict the task is left out"


def iter_tasks(path: str | Path, *, strict: bool = False, on_skip: OnSkip | None = None) -> Iterator[Task]:
    """Stream validated tasks; the first broken row raises. Duplicate ids get a ``#<row>`` suffix (logged).

    A row upstream's evaluation skips (no hidden tests, unpaired hidden tests, no question; see
    :mod:`cure_bench.tasks.schema`) is left out and reported to ``on_skip``; with ``strict`` it raises.
    """
    seen: set[str] = set()
    for index, data in iter_task_rows(path):
        try:
            task = row_to_task(data, path=path, row=index)
        except SkippableRowError as exc:
            if strict:
                raise TaskFileError(str(path), exc.detail + STRICT_HINT, row=exc.row, field=exc.field) from None
            skipped = SkippedRow(row_task_id(data, Path(path).stem, index), index, exc.reason, exc.field, str(exc))
            logger.debug("%s: left out (%s)", exc, exc.reason)
            if on_skip is not None:
                on_skip(skipped, data)
            continue
        if task.task_id in seen:
            new_id = f"{task.task_id}#{index}"
            logger.warning("%s, row %d: duplicate task id %r renamed %r", path, index, task.task_id, new_id)
            task.task_id = new_id
        seen.add(task.task_id)
        yield task


def load_tasks(path: str | Path, *, limit: int | None = None, strict: bool = False) -> list[Task]:
    """Load and validate a task file (JSON array or JSONL); with ``limit``, stop after that many tasks.

    Rows upstream skips are left out with one warning line (``strict``: refused, see :func:`iter_tasks`).
    """
    if limit is not None and limit < 0:
        raise TaskFileError(str(path), f"limit must be >= 0, got {limit}")
    tasks: list[Task] = []
    if limit == 0:
        return tasks
    skipped: list[SkippedRow] = []
    for task in iter_tasks(path, strict=strict, on_skip=lambda s, _: skipped.append(s)):
        tasks.append(task)
        if limit is not None and len(tasks) >= limit:
            break
    if skipped:
        logger.warning(skip_summary(str(path), skipped))
    return tasks


# --------------------------------------------------------------------------------------------------
# Validation report (every problem, not just the first)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a task file; ``row``/``field`` are None when they do not apply.

    ``skip_reason`` is set for a row upstream's evaluation skips: a warning (the task is left out of a run),
    an error only under ``strict``.
    """

    message: str
    row: int | None = None
    field: str | None = None
    skip_reason: str | None = None

    @property
    def severity(self) -> str:
        return "warning" if self.skip_reason else "error"

    def __str__(self) -> str:
        where = place_in_file(self.row, self.field)
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, Any]:
        row = None if self.row is None else row_number(self.row)
        out: dict[str, Any] = {"row": row, "field": self.field, "message": self.message}
        if self.skip_reason:
            out["reason"] = self.skip_reason
        return out


@dataclass
class ValidationReport:
    """What :func:`validate_task_file` found: row counts, every error, and every row a run would leave out."""

    path: str
    n_rows: int = 0
    n_valid: int = 0
    problems: list[Problem] = field(default_factory=list)
    strict: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.skip_reason is None or self.strict]

    @property
    def warnings(self) -> list[Problem]:
        return [] if self.strict else [p for p in self.problems if p.skip_reason is not None]

    @property
    def n_skipped(self) -> int:
        """Rows a (non-strict) run leaves out: rows whose every problem is a skippable one."""
        skip_rows = {p.row for p in self.problems if p.skip_reason}
        return len(skip_rows - {p.row for p in self.problems if not p.skip_reason})

    @property
    def ok(self) -> bool:
        """Usable as is: no errors (warnings allowed unless ``strict``)."""
        return not self.errors and self.n_rows > 0


def _row_problems(path: str, row: int, data: dict[str, Any]) -> list[Problem]:
    """All schema problems of one row (each field checked on its own, so none hides another)."""
    return [
        Problem(exc.detail, row=row, field=exc.field, skip_reason=getattr(exc, "reason", None))
        for exc in check_row(path, row, data)
    ]


def validate_task_file(path: str | Path, *, strict: bool = False) -> ValidationReport:
    """Check a whole task file and collect every problem (for ``cure data validate``).

    Rows a run leaves out are warnings (errors with ``strict``). A JSON syntax error ends the scan
    (nothing after it can be trusted) but is reported like any other problem instead of being raised.
    """
    p = str(path)
    report = ValidationReport(path=p, strict=strict)
    ids: dict[str, int] = {}
    try:
        for index, data in _iter_values(path):
            report.n_rows += 1
            if not isinstance(data, dict):
                report.problems.append(Problem(f"expected a JSON object, got {json_type(data)}", row=index))
                continue
            problems = _row_problems(p, index, data)
            report.problems.extend(problems)
            if problems:
                continue
            report.n_valid += 1
            task_id = row_task_id(data, Path(p).stem, index)
            if task_id in ids:
                report.problems.append(
                    Problem(f"duplicate task id {task_id!r} (first at row {row_number(ids[task_id])})", row=index)
                )
            ids.setdefault(task_id, index)
    except TaskFileError as exc:
        report.problems.append(Problem(exc.detail, row=exc.row, field=exc.field))
    if report.n_rows == 0 and not report.problems:
        report.problems.append(Problem("the file holds no tasks"))
    elif report.n_rows and not report.n_valid and not report.errors:
        report.problems.append(Problem("every row would be left out: no task to run"))
    return report


# --------------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------------


def _canonical(task: Task) -> dict[str, Any]:
    return {
        "id": task.task_id,
        "question": task.question,
        "time_limit": task.time_limit,
        "example_tests": [[t.input, t.output] for t in task.example_tests],
        "hidden_tests": [[t.input, t.output] for t in task.hidden_tests],
    }


class TaskFingerprint:
    """Incremental :func:`task_fingerprint`, for one pass over a stream that also does other work."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256(b"cure-tasks-v1\n")

    def update(self, task: Task) -> None:
        line = json.dumps(_canonical(task), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        self._digest.update(line.encode("utf-8"))
        self._digest.update(b"\n")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def task_fingerprint(tasks: Iterable[Task]) -> str:
    """sha256 of the canonical task list, so two runs can be checked to have used the same tasks.

    Covers id, question, time limit and every test, in list order; metadata is left out on purpose
    (a converter's notes or a download date must not change which tasks a run measured).
    """
    fingerprint = TaskFingerprint()
    for task in tasks:
        fingerprint.update(task)
    return fingerprint.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise TaskFileError(str(path), "no such file") from None
    return digest.hexdigest()
