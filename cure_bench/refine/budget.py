"""The equal-budget baseline: plain BoN given as many coder tokens as refinement spent.

Refinement is only worth its cost if it beats simply sampling more programs. The baseline draws extra samples
of the round-0 coder prompt (the round-0 cache serves the first k again) until it has spent the refinement's
extra coder tokens at round 0's mean tokens per program, judges them on round 0's generated tests, and picks
with the same ranker.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def extra_samples(refine_tokens: int, round0_tokens: int, round0_programs: int, n_tasks: int) -> int:
    """Programs per task that cost ``refine_tokens`` at round 0's mean tokens per program (rounded up)."""
    if refine_tokens <= 0 or round0_programs == 0 or n_tasks == 0:
        return 0
    per_program = max(round0_tokens / round0_programs, 1.0)
    return math.ceil(refine_tokens / per_program / n_tasks)


def budget_baseline(
    cfg: Any,
    states: list[Any],
    round0_dir: Path,
    refine_tokens: int,
    round0_tokens: int,
    hide: tuple[Path, ...],
    progress: Any,
) -> dict[str, Any]:
    """Sample, judge and rank the baseline; returns its metrics (``selected_acc`` comparable with the rounds')."""
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.plan import GenerationPlan, open_role, plan_roles
    from cure_bench.generation.protocols import get_protocol
    from cure_bench.generation.runner import generate_all
    from cure_bench.pipeline import _judge, _load_templates
    from cure_bench.refine.rounds import selected_acc
    from cure_bench.refine.state import TaskState
    from cure_bench.runs import directory as rundir
    from cure_bench.scoring.metrics import compute_metrics

    bench = cfg.bench
    extra = extra_samples(refine_tokens, round0_tokens, bench.k_code * len(states), len(states))
    k = bench.k_code + extra
    protocol = get_protocol(bench.protocol)
    templates = _load_templates(bench)
    generation = GenerationPlan.build(bench, protocol, plan_roles(bench, protocol.name), templates)
    prompts = [(protocol.coder_prompt(s.task, templates[0], generation.text[0]), k) for s in states]
    generator, _ = open_role(generation.plans["coder"])
    cache = GenerationCache(round0_dir / rundir.GENERATION_CACHE)
    try:
        stage = "generate equal-budget baseline"
        progress.start(stage, 0)
        try:
            answers = generate_all(generator, cache, prompts, generation.sampling[0].params,
                                   on_progress=lambda done, total: progress.advance(stage, done, total))  # fmt: skip
        finally:
            progress.finish(stage)
    finally:
        cache.close()
        generator.close()
    records = []
    for s, a in zip(states, answers, strict=True):
        tests = [v[0] for v in s.test_versions]  # round 0's tests, whatever --refine-tests did to them later
        st = TaskState(s.task, [protocol.extract_program(c.text) for c in a], [_case(t) for t in tests], s.table,
                       [], [])  # fmt: skip
        records.append(st.record(min(bench.max_test, len(s.task.hidden_tests))))
    run_dir = round0_dir.parent
    tables, _ = _judge(bench, [s.task for s in states], records, run_dir, progress,
                       hide=[p for p in hide if p != run_dir])  # fmt: skip
    metrics = compute_metrics(tables, bon=[], pass_at=(1,), single=False, protocol=bench.protocol).metrics
    return {
        "programs_per_task": k,
        "extra_programs_per_task": extra,
        "coder_tokens": sum(c.tokens or 0 for a in answers for c in a),
        "code_acc": metrics["code_acc"],
        "selected_acc": selected_acc(tables, cfg.ranker, bench.protocol),
        "ranker": cfg.ranker,
    }


def _case(version: dict[str, Any]) -> Any:
    from cure_bench.types import TestCase

    return TestCase(version["input"], version["output"])
