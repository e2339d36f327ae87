"""The records every stage exchanges.

Stages meet only through these small types (see DESIGN.md, "The path of the data"): a loader makes
``Task``s, a backend turns ``GenerationRequest``s into ``Completion``s, the sandbox turns ``ExecJob``s into
``ExecResult``s and verdicts, and metrics read ``TaskTable``s. Keeping them in one module means a reader
can learn the whole contract in one screen, and no stage has to import another stage to talk to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Verdict(StrEnum):
    """Outcome of one (program, test) execution; string values are what files store."""

    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT = "time_limit"
    RUNTIME_ERROR = "runtime_error"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    NO_PROGRAM = "no_program"
    SANDBOX_ERROR = "sandbox_error"


class CompareMode(StrEnum):
    """How a program's stdout is compared with the expected output."""

    WHITESPACE = "whitespace"  # CURE's rule: " ".join(a.split()) == " ".join(b.split())
    EXACT = "exact"  # byte-for-byte after decoding, trailing newline differences included
    FLOAT = "float"  # whitespace tokens equal, or both floats within 1e-6 relative/absolute


@dataclass(frozen=True)
class TestCase:
    """One stdin/stdout pair."""

    __test__ = False  # not a pytest class

    input: str
    output: str


@dataclass
class Task:
    """A coding problem in the CURE upstream schema, validated.

    ``time_limit`` is seconds of CPU time per execution (the upstream ``test_time_limit``).
    ``metadata`` keeps every field of the source row that is not part of the schema.
    """

    task_id: str
    question: str
    time_limit: float
    example_tests: list[TestCase]
    hidden_tests: list[TestCase]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings shared by every backend; part of the generation cache key.

    ``None`` means "not sent": the server's (or engine's) own default applies. The CURE protocol's API
    payload, for one, carries a temperature and nothing else. ``top_k``/``min_p``/``stop`` exist for local
    engines and vLLM servers (upstream's evaluation samples with top_k 40, min_p 0 and six stop strings).
    """

    temperature: float = 1.0
    top_p: float | None = 1.0
    max_tokens: int | None = 8192
    seed: int | None = None
    top_k: int | None = None
    min_p: float | None = None
    stop: tuple[str, ...] | None = None


ChatMessages = tuple[tuple[str, str], ...]
"""Chat messages as ((role, content), ...): hashable, so they can be part of a cache key."""


@dataclass(frozen=True)
class GenerationRequest:
    """Ask a backend for ``n`` samples of one prompt.

    ``key`` identifies the request across runs (it is derived from backend, model, messages and
    sampling params by the cache); ``sample_indices`` are the indices the caller still lacks, so a
    resumed run asks only for what is missing.
    """

    key: str
    messages: ChatMessages
    params: SamplingParams
    sample_indices: tuple[int, ...]


@dataclass(frozen=True)
class Completion:
    """One sampled answer. ``text`` is raw (reasoning included); ``tokens`` from the server when known."""

    text: str
    tokens: int | None = None
    finish_reason: str | None = None


SampleCallback = Callable[[GenerationRequest, int, Completion], None]
"""Called once per sample the moment it arrives: (request, sample index, completion)."""


@runtime_checkable
class Generator(Protocol):
    """A text generator: the OpenAI-compatible API, a vLLM engine, or transformers.

    ``generate`` must call ``on_sample`` for every index in every request's ``sample_indices``
    (or raise), and may do so in any order and from the calling thread only.
    """

    backend: str
    model: str

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None: ...

    def describe(self) -> dict[str, Any]:
        """What goes into the run manifest (backend, model, base URL without secrets, versions...)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ExecJob:
    """One execution: run ``program`` (Python source) with ``stdin``; limits per execution."""

    program: str
    stdin: str
    time_limit_s: float
    memory_limit_mb: int = 2048


class ExecStatus(StrEnum):
    """How an execution ended, before its output is compared with anything."""

    OK = "ok"  # exit code 0
    TIME_LIMIT = "time_limit"
    RUNTIME_ERROR = "runtime_error"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True)
class ExecResult:
    """What the sandbox observed. ``stdout`` is capped; ``stderr_tail`` is the last few KiB."""

    status: ExecStatus
    stdout: str
    stderr_tail: str = ""
    exit_code: int | None = None
    cpu_s: float = 0.0
    wall_s: float = 0.0
    peak_memory_mb: float = 0.0
    cached: bool = False


@dataclass
class TaskTable:
    """Verdicts of every program of one task on its hidden tests and on the generated tests.

    ``hidden[i][j]``: program i on hidden test j; ``generated[i][j]``: program i on generated test j.
    ``generated_outputs[i][j]``: a hash of program i's whitespace-normalised stdout on generated
    test j's input (None when it did not finish), for rankers that compare program outputs.
    A program that could not be extracted has NO_PROGRAM everywhere.
    """

    task_id: str
    hidden: list[list[Verdict]]
    generated: list[list[Verdict]]
    generated_outputs: list[list[str | None]] | None = None

    @property
    def n_programs(self) -> int:
        return len(self.hidden)

    @property
    def n_generated(self) -> int:
        return len(self.generated[0]) if self.generated else 0

    def hidden_pass(self) -> list[list[bool]]:
        return [[v is Verdict.ACCEPTED for v in row] for row in self.hidden]

    def generated_pass(self) -> list[list[bool]]:
        return [[v is Verdict.ACCEPTED for v in row] for row in self.generated]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": self.task_id,
            "hidden": [[v.value for v in row] for row in self.hidden],
            "generated": [[v.value for v in row] for row in self.generated],
        }
        if self.generated_outputs is not None:
            out["generated_outputs"] = self.generated_outputs
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskTable:
        return cls(
            task_id=str(data["task_id"]),
            hidden=[[Verdict(v) for v in row] for row in data["hidden"]],
            generated=[[Verdict(v) for v in row] for row in data["generated"]],
            generated_outputs=data.get("generated_outputs"),
        )
