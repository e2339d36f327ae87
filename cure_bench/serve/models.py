"""Request and response bodies of the reward server (pydantic: they give /docs and 422s for wrong types).

Only pydantic is imported here (a core dependency), so the service layer and in-process callers use the
same records as the HTTP endpoints without pulling in FastAPI.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cure_bench.scoring.rankers import PAPER_RANKER, get_ranker
from cure_bench.serve.reward_rules import ExtractMode, RewardMode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is a 422 that names it, not a silent default

    @field_validator("problem", "task_id", check_fields=False)
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is blank: give the problem text (or a task_id from POST /v1/tests)")
        return value


class TestsRequest(_Strict):
    __test__ = False

    problem: str = Field(min_length=1, description="Problem statement (whitespace-normalised for the cache key).")
    task_id: str | None = Field(default=None, min_length=1, description="Name to refer to this problem later.")
    num_tests: int | None = Field(default=None, ge=1, description="Tester samples to draw (default: --k-case).")


class TestOut(BaseModel):
    __test__ = False

    input: str
    output: str


class TestsResponse(BaseModel):
    __test__ = False

    task_id: str
    tests: list[TestOut]
    cached: bool = Field(description="True when no tester call was needed.")
    samples: int = Field(description="Tester answers drawn; tests are those a test could be extracted from.")


class ScoreOptions(_Strict):
    reward: RewardMode = Field(default=RewardMode.PASS_RATE, description="pass_rate, or all_pass (1 or 0).")
    time_limit_s: float | None = Field(default=None, gt=0, le=60, description="CPU seconds per execution.")
    extract: ExtractMode = Field(
        default=ExtractMode.LAST_PYTHON_BLOCK,
        description="last_python_block: run the completion's last ```python block; none: run it as is.",
    )


class ScoreItem(_Strict):
    problem: str | None = Field(default=None, min_length=1, description="Problem text (or give task_id).")
    task_id: str | None = Field(default=None, min_length=1, description="A task_id from POST /v1/tests.")
    completion: str | None = Field(default=None, description="Model answer; its program is extracted.")
    code: str | None = Field(default=None, description="A program, run as is (instead of completion).")

    @model_validator(mode="after")
    def _one_of_each(self) -> ScoreItem:
        if self.problem is None and self.task_id is None:
            raise ValueError("give 'problem' (the problem text) or 'task_id' (from POST /v1/tests)")
        if (self.completion is None) == (self.code is None):
            raise ValueError("give exactly one of 'completion' (model answer) or 'code' (a program)")
        return self


class ScoreRequest(_Strict):
    items: list[ScoreItem] = Field(min_length=1, description="Completions to score (at least one).")
    options: ScoreOptions = Field(default_factory=ScoreOptions)


class ScoreResult(BaseModel):
    task_id: str
    reward: float
    pass_rate: float
    passed: int
    total: int
    extract_ok: bool
    error: str | None = None


class ScoreResponse(BaseModel):
    results: list[ScoreResult]


class SelectRequest(_Strict):
    problem: str | None = Field(default=None, min_length=1)
    task_id: str | None = Field(default=None, min_length=1)
    candidates: list[str] = Field(min_length=1, description="Completions (or programs with extract=none).")
    options: ScoreOptions = Field(default_factory=ScoreOptions)
    ranker: str = Field(
        default=PAPER_RANKER, description="A registered Best-of-N ranker; the default is CURE's (first index on ties)."
    )

    @field_validator("ranker")
    @classmethod
    def _known_ranker(cls, value: str) -> str:
        try:
            get_ranker(value)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None  # names the registered rankers
        return value

    @model_validator(mode="after")
    def _problem_or_task(self) -> SelectRequest:
        if self.problem is None and self.task_id is None:
            raise ValueError("give 'problem' (the problem text) or 'task_id' (from POST /v1/tests)")
        return self


class SelectResponse(BaseModel):
    task_id: str
    best_index: int = Field(description="The ranker's pick (CURE's rule: most tests passed, first index on ties).")
    ranker: str = Field(default=PAPER_RANKER, description="The ranker that picked.")
    scores: list[float] = Field(description="Pass rate of each candidate.")
    passed: list[int]
    total: int


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward-model body; extra keys it may send (datasources...) are ignored.

    Empty lists are a valid request: with several comma-separated reward URLs OpenRLHF shards a batch of one
    query over them, so every server but the first gets ``{"query": [], "prompts": [], "labels": []}``.
    """

    model_config = ConfigDict(extra="ignore")

    query: list[str] = Field(description="Prompt + response as OpenRLHF decodes them (the prompt may be cut).")
    prompts: list[str] | None = Field(default=None, description="Prompt of each query (found and stripped).")
    labels: list[Any] = Field(
        default_factory=list, description="Problem text, or a JSON object with 'problem' and/or 'task_id', per query."
    )
    options: ScoreOptions = Field(default_factory=ScoreOptions)

    @model_validator(mode="after")
    def _same_lengths(self) -> GetRewardRequest:
        n = len(self.query)
        if self.prompts is not None and len(self.prompts) != n:
            raise ValueError(f"'prompts' has {len(self.prompts)} entries but 'query' has {n}")
        if len(self.labels) != n:
            raise ValueError(f"'labels' has {len(self.labels)} entries but 'query' has {n}")
        return self


class GetRewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


class SlimeRewardRequest(_Strict):
    """slime's ``remote_rm`` body (one sample): ``{"prompt", "response", "label"}``.

    ``label`` names the problem (text or JSON with problem/task_id); without one the prompt does (a string, or
    its last user message). ``metadata`` is accepted for custom senders and may hold problem/task_id too.
    """

    prompt: str | list[dict[str, Any]] = Field(description="slime's sample.prompt: text or chat messages.")
    response: str = Field(description="slime's sample.response: the completion (no prompt in it).")
    label: str | dict[str, Any] | None = Field(default=None, description="Problem text or JSON {problem|task_id}.")
    metadata: dict[str, Any] | None = Field(default=None, description="Optional; may give problem/task_id.")
    options: ScoreOptions = Field(default_factory=ScoreOptions)


class SlimeRewardDetail(BaseModel):
    """The dict answer (``/get_reward?format=dict``), for slime's ``--reward-key reward``."""

    reward: float
    pass_rate: float
    passed: int
    num_tests: int
    extract_ok: bool
    error: str | None = None
