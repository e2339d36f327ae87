"""What a reward server is: its tester, its limits and where it keeps its cache, validated once.

``ServeConfig`` is plain data so a notebook user, the CLI and the tests build a server the same way:
``create_app(ServeConfig(tester="gpt-4o-mini", k_case=16))``. Every rule that can be checked before a
socket is opened is checked in ``__post_init__``, with a message that names the flag to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cure_bench.errors import ConfigError
from cure_bench.paths import cache_dir
from cure_bench.types import SamplingParams

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

DEFAULT_PORT = 8765
"""Not 8000: that is where vLLM's and SGLang's OpenAI servers listen by default, and the tester is
often served by one on the same machine."""


def default_cache_dir() -> Path:
    """``reward-serve/`` under the cache root (``$CURE_CACHE_DIR``, default ``~/.cache/cure``)."""
    return cache_dir("reward-serve")


@dataclass
class ServeConfig:
    """Settings of one reward server (``cure reward-serve`` flags in brackets)."""

    tester: str = field(metadata={"help": "tester model name or path [--tester]"})
    backend: str = field(default="auto", metadata={"help": "openai | vllm | hf | auto [--backend]"})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible URL of the tester [--base-url]"})
    api_key: str | None = field(default=None, metadata={"help": "API key of the tester server [--api-key]"})
    k_case: int = field(default=16, metadata={"help": "tester samples (tests) per problem [--k-case]"})
    host: str = field(default="127.0.0.1", metadata={"help": "interface to bind [--host]"})
    port: int = field(default=DEFAULT_PORT, metadata={"help": "TCP port [--port]"})
    auth_token: str | None = field(default=None, metadata={"help": "Bearer token required by the API [--auth-token]"})
    cache_dir: Path | None = field(default=None, metadata={"help": "cache directory; None = default [--cache-dir]"})
    persist: bool = field(default=True, metadata={"help": "keep the test cache in SQLite (False: memory only)"})
    workers: int | None = field(default=None, metadata={"help": "sandbox worker processes [--workers]"})
    sandbox: str = field(default="auto", metadata={"help": "sandbox isolation level [--sandbox]"})
    executor: str = field(default="local", metadata={"help": "local | ray: where programs run [--executor]"})
    ray_address: str | None = field(
        default=None, metadata={"help": "Ray cluster for --executor ray; None reads $RAY_ADDRESS [--ray-address]"}
    )
    request_timeout_s: float = field(default=300.0, metadata={"help": "max wait for the tester [--request-timeout]"})
    tester_timeout_s: float = field(default=600.0, metadata={"help": "HTTP timeout of one tester request"})
    tester_max_retries: int = field(default=2, metadata={"help": "retries of a failed tester request"})
    time_limit_s: float = field(default=1.0, metadata={"help": "default CPU seconds per execution"})
    memory_limit_mb: int = field(default=2048, metadata={"help": "memory per execution"})
    max_body_bytes: int = field(default=16 * 1024 * 1024, metadata={"help": "larger request bodies get a 413"})
    max_code_bytes: int = field(default=1024 * 1024, metadata={"help": "largest program run (/run_code: 413)"})
    max_items: int = field(default=4096, metadata={"help": "most items (or candidates) in one request"})
    max_num_tests: int = field(default=256, metadata={"help": "largest num_tests a client may ask for"})
    exec_concurrency: int = field(default=4, metadata={"help": "sandbox batches running at once"})
    generation_batch: int = field(default=64, metadata={"help": "most new problems sent to the tester at once"})
    memory_cache_size: int = field(default=100_000, metadata={"help": "test sets kept in memory (LRU)"})
    temperature: float = field(default=1.0, metadata={"help": "tester sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "tester nucleus sampling"})
    max_tokens: int = field(default=8192, metadata={"help": "tester answer length cap"})
    tester_template: Path | None = field(default=None, metadata={"help": "tester prompt template file"})

    def __post_init__(self) -> None:
        if not self.tester or not self.tester.strip():
            raise ConfigError("--tester is empty: name the tester model (e.g. Gen-Verse/ReasonFlux-Coder-4B)")
        if self.cache_dir is None:
            self.cache_dir = default_cache_dir()
        self.cache_dir = Path(self.cache_dir).expanduser()
        if self.auth_token is not None and not self.auth_token.strip():
            raise ConfigError("--auth-token is empty: give a token or leave the flag out")
        self._check_ranges()

    def _check_ranges(self) -> None:
        positive_ints = {
            "--k-case": self.k_case,
            "max_num_tests": self.max_num_tests,
            "max_items": self.max_items,
            "max_code_bytes": self.max_code_bytes,
            "max_body_bytes": self.max_body_bytes,
            "exec_concurrency": self.exec_concurrency,
            "generation_batch": self.generation_batch,
            "memory_cache_size": self.memory_cache_size,
            "memory_limit_mb": self.memory_limit_mb,
            "max_tokens": self.max_tokens,
        }
        for flag, value in positive_ints.items():
            if value < 1:
                raise ConfigError(f"{flag} must be >= 1, got {value}")
        if self.k_case > self.max_num_tests:
            raise ConfigError(f"--k-case {self.k_case} is above max_num_tests {self.max_num_tests}; raise the limit")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers} (leave it out for one per CPU core)")
        from cure_bench.sandbox.executor import check_executor

        check_executor(self.executor, self.ray_address)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")
        seconds_fields = (
            ("--request-timeout", self.request_timeout_s),
            ("tester_timeout_s", self.tester_timeout_s),
            ("time_limit_s", self.time_limit_s),
        )
        for flag, seconds in seconds_fields:
            if not seconds > 0:
                raise ConfigError(f"{flag} must be > 0 seconds, got {seconds}")
        if self.tester_max_retries < 0:
            raise ConfigError(f"tester_max_retries must be >= 0, got {self.tester_max_retries}")
        if not 0 <= self.temperature <= 2 or not 0 < self.top_p <= 1:
            raise ConfigError(
                f"temperature must be in [0, 2] and top_p in (0, 1], got {self.temperature}, {self.top_p}"
            )

    @property
    def sampling(self) -> SamplingParams:
        """Tester sampling settings; part of the generation cache key."""
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens)

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
