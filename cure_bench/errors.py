"""One error family for the whole toolkit; the CLI alone turns it into exit codes.

CureError                      anything the user can fix; the message names the file/row/field/flag
├── TaskFileError              a task file is missing, unparsable, or a row breaks the schema
│   └── SkippableRowError      a row upstream's evaluation skips (no hidden tests, no question); fatal only if strict
├── DatasetError               unknown dataset name, or a download that cannot happen (offline, 404)
├── ConfigError                a flag or config key has a bad value, or two of them disagree
├── MissingExtraError          an optional dependency is needed: the message says what to pip install
├── BackendError               a model backend failed
│   ├── ServerUnreachableError the API server cannot be reached
│   └── AuthenticationError    the server refused the API key
├── SandboxError               the execution engine could not start or lost its workers
└── RunInterrupted             the user pressed Ctrl-C; what was done is saved, the message says how to resume
"""

from __future__ import annotations


class CureError(Exception):
    """Base of every error the toolkit raises on purpose; its message is shown to the user as is."""

    exit_code = 1


def row_number(index: int) -> int:
    """The number a person reads for the row at 0-based ``index``: rows count from 1, like lines.

    Attributes named ``row`` hold the 0-based index (task ids ``<file stem>/<index>`` keep upstream's
    0-based numbering); every message and every ``--json`` field a person reads goes through here.
    """
    return index + 1


def place_in_file(row: int | None, field: str | None) -> list[str]:
    """``["row N", "field 'x'"]`` (either part absent when unknown): how every message names a place in a file."""
    return ([f"row {row_number(row)}"] if row is not None else []) + ([f"field '{field}'"] if field is not None else [])


class TaskFileError(CureError):
    """A task file is missing, not JSON/JSONL, or a row breaks the task schema."""

    def __init__(self, path: str, message: str, row: int | None = None, field: str | None = None):
        super().__init__(", ".join([str(path), *place_in_file(row, field)]) + f": {message}")
        self.path, self.row, self.field, self.detail = path, row, field, message


class SkippableRowError(TaskFileError):
    """A row CURE's own evaluation leaves out rather than fails on; readers skip it unless asked to be strict.

    ``reason`` is a short stable code (see :mod:`cure_bench.tasks.schema`) counted in summary.json.
    """

    def __init__(self, path: str, message: str, row: int | None = None, field: str | None = None, *, reason: str):
        super().__init__(path, message, row=row, field=field)
        self.reason = reason


class DatasetError(CureError):
    """A dataset name is unknown, or it cannot be downloaded."""


class ConfigError(CureError):
    """A flag or configuration value is invalid."""


class MissingExtraError(CureError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, purpose: str, alternative: str | None = None):
        msg = f"{purpose} needs the '{extra}' extra: pip install 'cure-toolkit[{extra}]'"
        if alternative:
            msg += f" (or {alternative})"
        super().__init__(msg)


class BackendError(CureError):
    """A generation backend failed in a way retries did not fix."""


class ServerUnreachableError(BackendError):
    """The OpenAI-compatible server did not answer at all."""


class AuthenticationError(BackendError):
    """The server rejected the API key."""


class SandboxError(CureError):
    """The execution engine could not be started or kept alive."""


class RunInterrupted(CureError):
    """The run was stopped by Ctrl-C after saving what had completed."""

    exit_code = 130
