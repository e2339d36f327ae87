"""``POST /run_code`` in SandboxFusion's shape, for Python: tools that speak SandboxFusion use our sandbox as is.

verl's sandbox reward (``verl.utils.reward_score.sandbox_fusion``) and other tools POST
``{code, language, stdin, run_timeout, compile_timeout, memory_limit_MB, files, fetch_files}`` and read
``{status, message, compile_result, run_result: {status, execution_time, return_code, stdout, stderr}, files}``.
As in SandboxFusion, the server only runs the program: comparing stdout with an expected output is the
caller's job. Top-level ``status`` follows SandboxFusion's rule: ``SandboxError`` when the run itself is
``Error``, ``Failed`` on a time limit or a non-zero return code, else ``Success``.

Differences, each a clear 4xx rather than a silent change: only ``language: "python"`` runs; ``files`` and
``fetch_files`` must be empty (programs run as one file in the sandbox's private, empty /tmp); ``run_timeout``
is CPU seconds (at most ``MAX_RUN_TIMEOUT_S``, wall time is bounded by the sandbox too); ``memory_limit_MB``
-1 means the server's ``memory_limit_mb``, and a larger value is capped at it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cure_bench.types import ExecResult, ExecStatus

MAX_RUN_TIMEOUT_S = 60.0
LANGUAGES = ("python",)


class RunCodeRequest(BaseModel):
    """SandboxFusion's RunCodeRequest; keys it may grow later are ignored, as SandboxFusion's pydantic does."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(description="The program (Python source).")
    language: str = Field(description="Only 'python' is served here.")
    stdin: str | None = Field(default=None, description="Standard input of the program.")
    run_timeout: float = Field(default=10, gt=0, le=MAX_RUN_TIMEOUT_S, description="CPU seconds for the run.")
    compile_timeout: float = Field(default=10, ge=0, description="Accepted for compatibility; Python has no compile.")
    memory_limit_MB: int = Field(default=-1, description="-1: the server's limit; larger values are capped at it.")
    files: dict[str, str | None] = Field(default_factory=dict, description="Must be empty (not supported).")
    fetch_files: list[str] = Field(default_factory=list, description="Must be empty (not supported).")

    @field_validator("language")
    @classmethod
    def _python_only(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(
                f"language {value!r} is not served: this server runs Python only (send language 'python'), "
                "and leaves other languages to a SandboxFusion server"
            )
        return value

    @field_validator("memory_limit_MB")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value != -1 and value < 1:
            raise ValueError(f"must be -1 (the server's limit) or a positive number of MB, got {value}")
        return value

    @field_validator("files", "fetch_files")
    @classmethod
    def _no_files(cls, value: Any) -> Any:
        if value:
            raise ValueError("files are not supported: the program runs alone in an empty sandbox; inline the data")
        return value


class CommandStatus(StrEnum):
    FINISHED = "Finished"
    ERROR = "Error"
    TIME_LIMIT_EXCEEDED = "TimeLimitExceeded"


class RunStatus(StrEnum):
    SUCCESS = "Success"
    FAILED = "Failed"
    SANDBOX_ERROR = "SandboxError"


class CommandRunResult(BaseModel):
    status: CommandStatus
    execution_time: float | None = None
    return_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None


class RunCodeResponse(BaseModel):
    status: RunStatus
    message: str
    compile_result: CommandRunResult | None = None
    run_result: CommandRunResult | None = None
    executor_pod_name: str | None = None
    files: dict[str, str] = Field(default_factory=dict)


# What our sandbox saw, as SandboxFusion reports it: (run status, message). A limit that killed the program
# is a finished run with a non-zero code (SandboxFusion reports a memory kill the same way).
_STATUS = {
    ExecStatus.OK: (CommandStatus.FINISHED, ""),
    ExecStatus.RUNTIME_ERROR: (CommandStatus.FINISHED, ""),
    ExecStatus.TIME_LIMIT: (CommandStatus.TIME_LIMIT_EXCEEDED, ""),
    ExecStatus.MEMORY_LIMIT: (CommandStatus.FINISHED, "memory limit exceeded"),
    ExecStatus.OUTPUT_LIMIT: (CommandStatus.FINISHED, "output limit exceeded (stdout cut)"),
    ExecStatus.SANDBOX_ERROR: (CommandStatus.ERROR, "the sandbox failed to run the program"),
}


def run_code_response(result: ExecResult) -> RunCodeResponse:
    """SandboxFusion's answer for one execution of our sandbox."""
    status, message = _STATUS[result.status]
    return_code = result.exit_code
    if status is CommandStatus.FINISHED and result.status is not ExecStatus.OK and not return_code:
        return_code = 1  # killed for a limit: never report success's 0
    run = CommandRunResult(
        status=status,
        execution_time=round(result.wall_s, 6),
        return_code=return_code,
        stdout=result.stdout,
        stderr=result.stderr_tail,
    )
    if status is CommandStatus.ERROR:
        overall = RunStatus.SANDBOX_ERROR
        message = f"{message}: {result.stderr_tail.strip()[-300:]}" if result.stderr_tail.strip() else message
    elif status is CommandStatus.TIME_LIMIT_EXCEEDED or return_code:
        overall = RunStatus.FAILED
    else:
        overall = RunStatus.SUCCESS
    return RunCodeResponse(status=overall, message=message, run_result=run)
