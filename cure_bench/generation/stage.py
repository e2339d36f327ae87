"""The pipeline's generation stage: every role's prompts through its generator, cache first, with progress.

Shared by the sequential path (``pipeline``) and judge-while-generating (``overlap``), which adds a hook
telling it the moment each task's answers of one role are in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cure_bench.runs import directory as rundir
from cure_bench.types import ChatMessages, Completion, Generator, SamplingParams

if TYPE_CHECKING:
    from cure_bench.config import BenchConfig
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.plan import GenerationPlan
    from cure_bench.pipeline import Progress


def generate(
    cfg: BenchConfig,
    generation: GenerationPlan,
    opened: dict[str, tuple[Generator, dict[str, Any]]],
    coder_msgs: list[ChatMessages],
    tester_msgs: list[ChatMessages] | None,
    run_dir: Path,
    progress: Progress,
    on_prompt_done: AnswersIn | None = None,
    interleave: bool = False,
) -> tuple[list[list[Completion]], list[list[Completion]], dict[str, Any]]:
    """Ask every model for what the cache lacks; same-identity roles share one generator and one batch.

    ``on_prompt_done(role, task, completions)`` (role ``"code"`` or ``"tests"``) fires as each task's answers
    of one role are all in. ``interleave`` orders a shared generator's batch task by task (coder 0, tester 0,
    coder 1, ...) instead of every coder prompt first, so tasks complete early and steadily; the answers are
    the same (the cache is keyed by prompt, not by position).
    """
    from cure_bench.generation.cache import GenerationCache

    n_tasks = len(coder_msgs)
    coder_params, tester_params = (s.params for s in generation.sampling)
    coder_prompts = [(m, cfg.k_code, coder_params) for m in coder_msgs]
    tester_prompts = [(m, cfg.k_case, tester_params) for m in tester_msgs or []]
    cache = GenerationCache(run_dir / rundir.GENERATION_CACHE)
    info: dict[str, Any] = {}
    try:
        if "tester" not in generation.plans:
            roles = [("code", i) for i in range(n_tasks)] + [("tests", i) for i in range(len(tester_prompts))]
            prompts = coder_prompts + tester_prompts
            if interleave and tester_prompts:
                order = [j for i in range(n_tasks) for j in (i, n_tasks + i)]
                roles, prompts = [roles[j] for j in order], [prompts[j] for j in order]
            answers = _run_generator(opened["coder"][0], cache, prompts, progress, _by_role(on_prompt_done, roles))
            by_role: dict[str, list[list[Completion]]] = {"code": [[] for _ in range(n_tasks)]}
            by_role["tests"] = [[] for _ in range(n_tasks)]
            for (role, task), got in zip(roles, answers, strict=True):
                by_role[role][task] = got
            info["coder"] = opened["coder"][1]
            info["tester"] = info["coder"] if tester_prompts else None
            return by_role["code"], by_role["tests"], info
        code_roles = [("code", i) for i in range(n_tasks)]
        test_roles = [("tests", i) for i in range(n_tasks)]
        code = _run_generator(opened["coder"][0], cache, coder_prompts, progress, _by_role(on_prompt_done, code_roles))
        tests = _run_generator(
            opened["tester"][0], cache, tester_prompts, progress, _by_role(on_prompt_done, test_roles)
        )
        return code, tests, {"coder": opened["coder"][1], "tester": opened["tester"][1]}
    finally:
        for generator, role_info in opened.values():
            role_info.update(generator.describe())  # what generation learned (e.g. the n-mode after a fallback)
        cache.close()


AnswersIn = Callable[[str, int, list[Completion]], None]
"""(role ``"code"``/``"tests"``, task index, that task's completions for the role)."""


def _by_role(hook: AnswersIn | None, roles: list[tuple[str, int]]) -> Callable[[int, list[Completion]], None] | None:
    """A prompt-index callback for ``_run_generator`` that tells ``hook`` which task and role it was."""
    if hook is None:
        return None
    return lambda j, completions: hook(roles[j][0], roles[j][1], completions)


def _run_generator(
    generator: Generator,
    cache: GenerationCache,
    prompts: list[tuple[ChatMessages, int, SamplingParams]],
    progress: Progress,
    on_prompt_done: Callable[[int, list[Completion]], None] | None = None,
) -> list[list[Completion]]:
    from cure_bench.generation.runner import generate_all

    stage = f"generate ({rundir.model_basename(generator.model)})"  # a long local path would eat the bar
    total = sum(k for _, k, _ in prompts)
    progress.start(stage, total)
    rate = _TokenRate()
    answers: list[list[Completion]] = [[] for _ in prompts]
    try:
        # one generate_all per distinct params (coder and tester of one model may differ), in prompt order
        for params in dict.fromkeys(p for _, _, p in prompts):
            idx = [i for i, (_, _, p) in enumerate(prompts) if p == params]
            base = sum(len(answers[i]) for i in range(len(prompts)))

            def on_progress(done: int, n: int, base: int = base) -> None:
                progress.advance(stage, base + done, total, tokens_per_s=rate.per_second())

            def on_done(j: int, completions: list[Completion], idx: list[int] = idx) -> None:
                if on_prompt_done is not None:
                    on_prompt_done(idx[j], completions)

            group = [(prompts[i][0], prompts[i][1]) for i in idx]
            got = generate_all(generator, cache, group, params, on_progress=on_progress, on_completion=rate.add,
                               on_prompt_done=on_done)  # fmt: skip
            for i, completions in zip(idx, got, strict=True):
                answers[i] = completions
    finally:
        progress.finish(stage)
    return answers


class _TokenRate:
    """Tokens per second of freshly generated samples (cache hits excluded), for the progress bar."""

    def __init__(self) -> None:
        self.tokens = 0
        self.started = time.monotonic()

    def add(self, completion: Completion) -> None:
        self.tokens += completion.tokens or 0

    def per_second(self) -> float | None:
        elapsed = time.monotonic() - self.started
        return self.tokens / elapsed if self.tokens and elapsed > 0 else None
