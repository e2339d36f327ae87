"""Task publication dates, for contamination windows (``--start-date`` / ``--end-date``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from cure_bench.errors import DatasetError
from cure_bench.types import Task

__all__ = ["DATE_FIELDS", "date_of", "flag_date", "parse_date", "task_date", "within"]

DATE_FIELDS = ("contest_date", "release_date", "livebench_release_date", "date")
"""Metadata fields read, in this order, for a task's publication date (LiveCodeBench, LiveBench, ...)."""


def parse_date(value: Any) -> date | None:
    """A date from an ISO string ('2024-05-01', '2024-05-01T12:00:00'), a date, or a Unix time (s or ms)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value.strip()) >= 10:
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def task_date(task: Task, fields: tuple[str, ...] = DATE_FIELDS) -> date | None:
    """The publication date in a task's metadata, from the first of ``fields`` that parses."""
    return date_of(task.metadata, fields)


def date_of(fields_of: dict[str, Any], fields: tuple[str, ...]) -> date | None:
    for name in fields:
        if name in fields_of:
            parsed = parse_date(fields_of[name])
            if parsed is not None:
                return parsed
    return None


def within(when: date | None, start: date | None, end: date | None) -> bool:
    return when is not None and (start is None or when >= start) and (end is None or when <= end)


def flag_date(value: str | date | None, flag: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    parsed = parse_date(value) if len(value.strip()) >= 10 else None
    if parsed is None:
        raise DatasetError(f"{flag} {value!r}: expected a date as YYYY-MM-DD")
    return parsed
