"""Sandboxed execution engine: judge untrusted Python programs like a real judge, fast and contained.

    with Sandbox() as sandbox:                      # warm isolated workers, one per core
        results = sandbox.run([ExecJob(program, stdin, time_limit_s=1.0)])
        verdict = judge(results[0], expected_output)
        tables = build_tables(sandbox, [TableSpec(...)])   # programs x (hidden + generated tests)

See docs/sandbox.md for the isolation levels and what each contains. ``open_sandbox("ray", address)`` gives
the same contract on a Ray cluster (one Sandbox per node; docs/scaling.md).
"""

from cure_bench.sandbox.cache import ENGINE_VERSION, default_cache_dir
from cure_bench.sandbox.executor import EXECUTORS, Executor, open_sandbox
from cure_bench.sandbox.pool import Sandbox, default_workers, isolation_levels
from cure_bench.sandbox.tables import TableSpec, build_tables
from cure_bench.sandbox.verdicts import judge, normalise, output_digest, outputs_match

__all__ = [
    "ENGINE_VERSION",
    "EXECUTORS",
    "Executor",
    "Sandbox",
    "TableSpec",
    "build_tables",
    "default_cache_dir",
    "default_workers",
    "isolation_levels",
    "judge",
    "normalise",
    "open_sandbox",
    "output_digest",
    "outputs_match",
]
