"""Errors of the reward server, each carrying the HTTP status it becomes.

CureError
└── ServeError                 a request the server cannot fulfil; ``status_code`` is its HTTP answer
    ├── BadRequestError        422: an item names neither a problem nor a known field, a bad label...
    ├── PayloadTooLargeError   413: a program above the server's max_code_bytes (/run_code)
    ├── UnknownTaskError       404: a ``task_id`` that no /v1/tests call (and no cache) knows
    ├── TaskConflictError      409: a ``task_id`` already bound to another problem
    └── TesterUnavailableError 503: the tester failed or did not answer within --request-timeout
RewardServerError (CureError)  raised by the clients when the server refuses or cannot be reached

The service layer raises these; the app turns them into ``{"detail": message}`` answers, so the same
message reaches a curl user, a trainer log and a test assertion.
"""

from __future__ import annotations

from cure_bench.errors import CureError


class ServeError(CureError):
    """A request the reward server cannot fulfil."""

    status_code = 400


class BadRequestError(ServeError):
    """The body is well-formed JSON of the right types, but its content cannot be scored."""

    status_code = 422


class PayloadTooLargeError(ServeError):
    """A program larger than the server runs (``max_code_bytes``)."""

    status_code = 413


class UnknownTaskError(ServeError):
    """A ``task_id`` that no /v1/tests call registered."""

    status_code = 404


class TaskConflictError(ServeError):
    """A ``task_id`` already names a different problem (or the same problem with another num_tests)."""

    status_code = 409


class TesterUnavailableError(ServeError):
    """The tester raised, or did not answer within the request timeout."""

    status_code = 503


class RewardServerError(CureError):
    """Client side: the reward server answered with an error, or could not be reached."""
