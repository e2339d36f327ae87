"""`cure refine`: the coder repairs its programs from generated-test feedback, round after round.

Round 0 is `cure bench`/`cure bon` itself (run into ``<run_dir>/round-0``). Each later round sends every program
that fails a generated test back to the coder with up to ``feedback_tests`` failing tests, re-judges, and records
``metrics.rounds[r]``. See docs/refine.md.
"""

from __future__ import annotations

from cure_bench.refine.run import RefineConfig, RefineResult, run_refine

__all__ = ["RefineConfig", "RefineResult", "run_refine"]
