"""The GPU smoke checks (tests/helpers/engine_checks.py) run here on CPU: they pass on a correct backend and fail on
broken ones, so a green smoke run on a GPU means something."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from cure_bench.generation.backends.hf_backend import HFGenerator
from cure_bench.types import Completion, GenerationRequest, SampleCallback
from tests.helpers import engine_checks

pytestmark = pytest.mark.slow


def test_every_check_passes_on_the_hf_backend_on_cpu(tiny_model_dir: Path) -> None:
    def make() -> HFGenerator:
        return HFGenerator(str(tiny_model_dir), device="cpu", batch_size=4)

    results = engine_checks.run_all(make, per_request=False, same_samples=False)
    assert [c.name for c in results if not c.passed] == [], "\n".join(c.line() for c in results)
    assert len(results) == 6


class Broken:
    """Every sample of a prompt is the same text, max_tokens ignored, all delivered at the end in request order."""

    backend, model = "broken", "m"

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        answers = [(r, i, Completion(f"answer {r.key}", 50, "stop")) for r in requests for i in r.sample_indices]
        for r, i, c in answers:
            on_sample(r, i, c)

    def describe(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


def test_the_checks_fail_on_a_broken_backend() -> None:
    make = Broken
    assert not engine_checks.samples_differ(make).passed  # type: ignore[arg-type]
    assert not engine_checks.max_tokens_clip(make).passed  # type: ignore[arg-type]
    assert not engine_checks.delivered_per_request(make).passed  # type: ignore[arg-type]
    assert engine_checks.greedy_repeats(make).passed, "equal answers are right for greedy"  # type: ignore[arg-type]
