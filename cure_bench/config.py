"""Configuration of a bench/bon run as data, validated once, with messages that name the flag to fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError
from cure_bench.generation.protocols import SamplingOverrides
from cure_bench.types import CompareMode, SamplingParams


@dataclass(frozen=True)
class ModelConfig:
    """One model in one role (coder or tester) and how to reach it.

    ``options`` are the backend options the user set (``{"rpm": 60}``; see each backend's options dataclass);
    the backend is often chosen only at run time (``auto``), and an option the chosen backend does not take
    is then an error naming both. Per-backend sections (``{"hf": {"device": "cpu"}}``) apply only to their
    backend. ``api_key`` is used by a backend that takes one and ignored by the others (keys are ambient).
    """

    model: str
    backend: str = "auto"
    base_url: str | None = None
    api_key: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from cure_bench.generation.backends import check_options

        check_options(self.options)

    def identity(self) -> tuple[str, str, str | None]:
        """Two roles with the same identity share one generator (and one batch on a local engine)."""
        return (self.model, self.backend, self.base_url)


@dataclass
class BenchConfig:
    """Everything `cure bench` / `cure bon` needs; the CLI fills it from flags, notebooks build it directly."""

    dataset: str
    coder: ModelConfig
    tester: ModelConfig | None = None  # None: the coder model also writes the tests
    k_code: int = 16
    k_case: int = 16
    bon: str = "4x4,16x16"
    single: bool = False
    max_test: int = 8
    protocol: str = "cure"  # cure: the authors' evaluation protocol; chat: ours (see generation/protocols.py)
    sampling: SamplingOverrides | SamplingParams = field(default_factory=SamplingOverrides)
    limit: int | None = None
    output_dir: Path | None = None
    resume: bool = True
    price_per_mtok: float | None = None  # USD per million output tokens, for the job-size line
    rerun: bool = False  # start again even when this exact command already finished (or replace -o's run)
    show_examples: bool = False
    coder_prompt: Path | None = None
    tester_prompt: Path | None = None
    workers: int | None = None  # per machine (per node under --executor ray)
    sandbox: str = "auto"
    executor: str = "local"  # local | ray (cure_bench.sandbox.executor)
    ray_address: str | None = None  # --executor ray; None reads $RAY_ADDRESS
    exec_cache: bool = True
    compare: CompareMode = CompareMode.WHITESPACE
    memory_limit_mb: int = 2048
    judge_compat: tuple[str, ...] = ()  # --judge-compat: upstream harness behaviours (sandbox/compat.py)
    start_date: str | None = None
    end_date: str | None = None
    cache_dir: Path | None = None
    # --strict: refuse a dataset with rows upstream skips (no hidden tests, no question) instead of leaving them out
    strict: bool = False
    pass_at: tuple[int, ...] = (1,)
    # judge each task as soon as its answers are in, while others generate (False: every sample, then every
    # table; the same files either way, see cure_bench/overlap.py)
    overlap: bool = True
    command: str | None = None  # the command line, for the manifest

    def __post_init__(self) -> None:
        checks = [
            (self.k_code >= 1, f"--k-code must be at least 1 (got {self.k_code})"),
            (self.single or self.k_case >= 1, f"--k-case must be at least 1 (got {self.k_case}); use --single"),
            (self.max_test >= 1, f"--max-test must be at least 1 (got {self.max_test})"),
            (self.limit is None or self.limit >= 1, f"--limit must be at least 1 (got {self.limit})"),
            (self.workers is None or self.workers >= 1, f"--workers must be at least 1 (got {self.workers})"),
            (
                self.price_per_mtok is None or self.price_per_mtok >= 0,
                f"--price-per-mtok must be >= 0 (got {self.price_per_mtok})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        from cure_bench.generation.protocols import get_protocol

        self.protocol = get_protocol(self.protocol).name
        self.sampling = self.overrides  # a full SamplingParams counts as set in every field; validated here
        if not re.fullmatch(r"\s*\d+\s*x\s*\d+\s*(,\s*\d+\s*x\s*\d+\s*)*", self.bon or ""):
            raise ConfigError(f"--bon must be a comma list of NxM such as 4x4,16x16 (got {self.bon!r})")
        from cure_bench.sandbox.compat import check_compat
        from cure_bench.sandbox.isolation import LEVELS

        self.judge_compat = check_compat(self.judge_compat)

        if self.sandbox not in ("auto", *LEVELS):
            raise ConfigError(f"--sandbox must be one of auto, {', '.join(LEVELS)} (got {self.sandbox!r})")
        from cure_bench.sandbox.executor import check_executor

        check_executor(self.executor, self.ray_address)
        bad_k = [k for k in self.pass_at if k < 1 or k > self.k_code]
        if bad_k:
            raise ConfigError(f"pass@k needs 1 <= k <= --k-code ({self.k_code}); got {bad_k}")

    @property
    def overrides(self) -> SamplingOverrides:
        """The sampling values set explicitly; the protocol fills in the rest per backend."""
        if isinstance(self.sampling, SamplingParams):
            return SamplingOverrides.from_params(self.sampling)
        return self.sampling

    @property
    def tester_model(self) -> ModelConfig:
        return self.tester or self.coder
