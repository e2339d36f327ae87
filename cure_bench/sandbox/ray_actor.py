"""What runs inside a Ray actor: one ordinary ``Sandbox`` on one node, fed one program's tests per call.

The actor is a thin shell on purpose: isolation, limits, worker replacement and verdict-relevant behaviour
are the local engine's, unchanged, so a result computed here is the result the local executor would give.
It keeps no cache (lookups and stores stay on the driver) and imports nothing from Ray at module level:
the driver wraps this class with ``ray.remote`` when it needs it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from cure_bench.sandbox.cache import ENGINE_VERSION
from cure_bench.sandbox.pool import Sandbox
from cure_bench.types import ExecJob, ExecResult

Case = tuple[str, float, int]
"""One execution of a batch's program: (stdin, time limit in seconds, memory limit in MiB)."""


class NodeSandbox:
    """A warm ``Sandbox`` on the node this actor was placed on; ``run_program`` is called from several
    threads at once (a threaded actor), which the Sandbox is built for."""

    def __init__(
        self,
        workers: int,
        isolation: str,
        max_output_bytes: int,
        packages: Sequence[str],
        hide: Sequence[str],
        compat: Sequence[str] = (),
    ):
        self.box = Sandbox(
            workers=workers,
            isolation=isolation,
            use_cache=False,
            max_output_bytes=max_output_bytes,
            packages=packages,
            hide=hide,
            compat=compat,
        )

    def ready(self) -> dict[str, Any]:
        """Who this actor is and what its engine is: the driver checks the level and version match."""
        return {
            "engine_version": ENGINE_VERSION,
            "isolation_level": self.box.isolation_level,
            "workers": self.box.workers,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "describe": self.box.describe(),
        }

    def run_program(self, program: str, cases: Sequence[Case]) -> list[ExecResult]:
        """Run one program on each case; results in case order."""
        return self.box.run([ExecJob(program, stdin, time_s, memory_mb) for stdin, time_s, memory_mb in cases])

    def close(self) -> None:
        """Stop the workers before Ray ends the actor (a killed actor leaves that to the workers' death signals)."""
        self.box.close()
