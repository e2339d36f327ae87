"""The size of a job, said before it starts: tasks x samples, the token ceiling, requests and cost.

``cure bench --dataset MBPP`` with the defaults is thousands of answers of up to 8,192 tokens each; a user
should see that (and, on an API, what it may cost) before the first request, not on the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass

from cure_bench.config import BenchConfig, ModelConfig

CONFIRM_ANSWERS = 2000
"""Above this many answers an interactive `cure bench` asks before starting (``--yes`` skips the question)."""


@dataclass(frozen=True)
class JobSize:
    """What a run will ask for at most (a resumed run asks only for what its cache lacks)."""

    n_tasks: int
    code_answers: int
    test_answers: int
    max_tokens: int | None  # None: no cap sent (the cure protocol over a chat API), so no ceiling either
    api_requests: int  # requests to OpenAI-compatible servers with n samples per request (0 when none)
    api_requests_single: int  # the same if the server refuses n > 1 (one sample per request)
    price_per_mtok: float | None = None

    @property
    def answers(self) -> int:
        return self.code_answers + self.test_answers

    @property
    def token_ceiling(self) -> int | None:
        return None if self.max_tokens is None else self.answers * self.max_tokens

    @property
    def cost_ceiling(self) -> float | None:
        """Output tokens at the ceiling times the given price (prompts come on top)."""
        ceiling = self.token_ceiling
        return None if self.price_per_mtok is None or ceiling is None else ceiling * self.price_per_mtok / 1e6

    @property
    def needs_confirmation(self) -> bool:
        return self.answers > CONFIRM_ANSWERS

    def describe(self) -> str:
        parts = [
            f"{self.n_tasks} tasks x ({self.code_answers // max(self.n_tasks, 1)} programs"
            f" + {self.test_answers // max(self.n_tasks, 1)} tests) = {self.answers:,} answers",
            f"at most {self.token_ceiling:,} generated tokens ({self.max_tokens:,} per answer)"
            if self.token_ceiling is not None and self.max_tokens is not None
            else "no token cap sent (the server's own applies; pass --max-tokens for one)",
        ]
        if self.api_requests:
            parts.append(f"{self.api_requests:,} API requests ({self.api_requests_single:,} if n > 1 is refused)")
        if self.cost_ceiling is not None:
            parts.append(f"output cost at most ${self.cost_ceiling:,.2f} at ${self.price_per_mtok}/Mtok")
        return "job: " + "; ".join(parts)


def _backend(model: ModelConfig) -> str:
    from cure_bench.generation.backends import choose_backend

    return choose_backend(model.model, model.base_url, model.backend)[0]


def estimate_job(
    cfg: BenchConfig,
    n_tasks: int,
    price_per_mtok: float | None = None,
    *,
    max_tokens: int | None = None,
    backends: tuple[str, str] | None = None,
) -> JobSize:
    """``max_tokens``: the cap the protocol resolved (None: no cap is sent, the server's own applies).
    ``backends``: the (coder, tester) backends already chosen by the run's plan; chosen here when not given."""
    k_case = 0 if cfg.single else cfg.k_case
    coder_backend, tester_backend = backends or (_backend(cfg.coder), _backend(cfg.tester_model))
    coder_api = coder_backend == "openai"
    tester_api = k_case > 0 and tester_backend == "openai"
    requests = n_tasks * (int(coder_api) + int(tester_api))
    single = n_tasks * (cfg.k_code * int(coder_api) + k_case * int(tester_api))
    return JobSize(
        n_tasks=n_tasks,
        code_answers=n_tasks * cfg.k_code,
        test_answers=n_tasks * k_case,
        max_tokens=max_tokens if max_tokens is not None else cfg.overrides.max_tokens,
        api_requests=requests,
        api_requests_single=single,
        price_per_mtok=price_per_mtok,
    )
