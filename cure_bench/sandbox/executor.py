"""Choosing where executions run: this machine's process pool, or a Ray cluster, behind one interface.

Callers (bench, refine, rescore, reward-serve, the trainer's judge) say ``open_sandbox(executor, ray_address,
**sandbox options)`` and get something with ``Sandbox``'s contract; ``build_tables`` takes either. The Ray
side is imported only when asked for, so the base install never loads Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from cure_bench.errors import ConfigError
from cure_bench.types import ExecJob, ExecResult

EXECUTORS = ("local", "ray")
"""``local``: one process pool on this machine. ``ray``: one pool per node of a Ray cluster."""


class Executor(Protocol):
    """What callers use of a sandbox: ``Sandbox`` and ``RaySandbox`` both provide it."""

    max_output_bytes: int

    @property
    def isolation_level(self) -> str: ...

    @property
    def workers(self) -> int: ...

    def run(self, jobs: Sequence[ExecJob], on_result: Any = None) -> list[ExecResult]: ...

    def run_each(self, jobs: Sequence[ExecJob], on_result: Any) -> None: ...

    def max_results_in_flight(self) -> int: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def check_executor(executor: str, ray_address: str | None) -> None:
    """The executor flags' shape, checked with the rest of a config (no connection is made here)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")
    if ray_address is not None and executor != "ray":
        raise ConfigError(f"--ray-address {ray_address} is for --executor ray (got --executor {executor})")
    if executor == "ray":
        from cure_bench.sandbox.ray_connect import resolve_address

        resolve_address(ray_address)


def open_sandbox(
    executor: str = "local",
    ray_address: str | None = None,
    *,
    workers: int | None = None,
    isolation: str = "auto",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    max_output_bytes: int = 16 * 2**20,
    packages: Sequence[str] = (),
    hide: Sequence[str | Path] = (),
    compat: Sequence[str] = (),
) -> Executor:
    """A started sandbox on ``executor``; ``workers`` counts per machine (per node under Ray).

    ``ray_address``: ``local``, ``auto``, HOST:PORT or ray://HOST:PORT; None reads ``$RAY_ADDRESS``.
    """
    check_executor(executor, ray_address)
    options: dict[str, Any] = {
        "workers": workers,
        "isolation": isolation,
        "cache_dir": cache_dir,
        "use_cache": use_cache,
        "max_output_bytes": max_output_bytes,
        "packages": packages,
        "hide": hide,
        "compat": compat,
    }
    if executor == "ray":
        from cure_bench.sandbox.ray_connect import resolve_address
        from cure_bench.sandbox.ray_executor import RaySandbox

        return RaySandbox(resolve_address(ray_address), **options)
    from cure_bench.sandbox.pool import Sandbox

    return Sandbox(**options)
