"""The coder and the tester during refinement: bench's backends and sampling, one resumable cache.

Every answer goes to ``<run_dir>/refine_generations.sqlite`` as it arrives, keyed (as everywhere) by backend,
model, messages and sampling. The messages carry the round number and the feedback, so a re-run after Ctrl-C
asks for nothing already answered while a later round's identical program still gets a fresh sample. Identical
prompts within one round (two identical programs with the same failing tests) are asked as one request for
as many samples as there are copies, so each copy gets its own independent answer, as in bench's k samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cure_bench.config import BenchConfig
from cure_bench.types import ChatMessages, Completion

REFINE_CACHE = "refine_generations.sqlite"


class Agents:
    """Opens the coder (and, when asked and distinct, the tester) the way ``cure bench`` does."""

    def __init__(self, bench: BenchConfig, run_dir: Path, tester: bool) -> None:
        from cure_bench.generation.cache import GenerationCache
        from cure_bench.generation.plan import GenerationPlan, open_role, plan_roles
        from cure_bench.generation.protocols import get_protocol
        from cure_bench.pipeline import _load_templates

        self.protocol = get_protocol(bench.protocol)
        generation = GenerationPlan.build(bench, self.protocol, plan_roles(bench, self.protocol.name),
                                          _load_templates(bench))  # fmt: skip
        self.text = generation.text
        self.params = (generation.sampling[0].params, generation.sampling[1].params)
        self._coder, _ = open_role(generation.plans["coder"])
        self._tester = self._coder
        try:
            if tester and "tester" in generation.plans:
                self._tester, _ = open_role(generation.plans["tester"])
            self._cache = GenerationCache(run_dir / REFINE_CACHE)
        except BaseException:
            if self._tester is not self._coder:
                self._tester.close()
            self._coder.close()
            raise

    def ask(
        self,
        role: str,
        prompts: Sequence[ChatMessages],
        stage: str,
        progress: Any,
        on_answer: Callable[[int, Completion], None] | None = None,
    ) -> list[Completion]:
        """One answer per prompt; the n-th copy of an identical prompt gets sample n of that request.

        ``on_answer(i, answer)`` fires once per prompt as soon as its answer is in (cached ones before any
        request), so the caller can judge a task while other tasks' prompts are still being answered.
        """
        from cure_bench.generation.runner import generate_all

        if not prompts:
            return []
        generator = self._coder if role == "coder" else self._tester
        params = self.params[0] if role == "coder" else self.params[1]
        copies: dict[ChatMessages, int] = {}
        nth = []
        for m in prompts:
            nth.append(copies.get(m, 0))
            copies[m] = nth[-1] + 1
        unique = list(copies)
        positions: dict[ChatMessages, list[int]] = {}
        for i, m in enumerate(prompts):
            positions.setdefault(m, []).append(i)

        def on_prompt_done(u: int, completions: list[Completion]) -> None:
            assert on_answer is not None
            for i in positions[unique[u]]:
                on_answer(i, completions[nth[i]])

        progress.start(stage, 0)
        try:
            answers = generate_all(generator, self._cache, [(m, copies[m]) for m in unique], params,
                                   on_progress=lambda done, total: progress.advance(stage, done, total),
                                   on_prompt_done=None if on_answer is None else on_prompt_done)  # fmt: skip
        except KeyboardInterrupt:
            from cure_bench.errors import RunInterrupted

            raise RunInterrupted(f"interrupted during {stage}; answers so far are saved: re-run the same command "
                                 "to resume") from None  # fmt: skip
        finally:
            progress.finish(stage)
        by_prompt = dict(zip(unique, answers, strict=True))
        return [by_prompt[m][n] for m, n in zip(prompts, nth, strict=True)]

    def close(self) -> None:
        self._cache.close()
        if self._tester is not self._coder:
            self._tester.close()
        self._coder.close()

    def __enter__(self) -> Agents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
