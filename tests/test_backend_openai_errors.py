"""OpenAI-compatible servers that answer errors FastAPI-style (``{"detail": ...}``, e.g. ``transformers serve``):
the server's reason reaches the user, a ``detail`` refusal of ``n`` falls back to one sample per request, the
manifest says what happened after generation, and identical samples at temperature > 0 are flagged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from cure_bench.errors import BackendError
from cure_bench.generation.backends._openai_async import error_message
from cure_bench.types import SamplingParams
from tests.test_backend_openai import ANSWERS, prompt, run, texts

N_DETAIL_LIST = [{"loc": ["body", "n"], "msg": "Input should be less than or equal to 1", "type": "less_than_equal"}]


class _Exc:
    def __init__(self, body: Any) -> None:
        self.body = body
        self.message = "Error code: 400"


def test_error_message_reads_openai_and_fastapi_bodies() -> None:
    assert error_message(_Exc({"message": "bad max_tokens", "type": "x"})) == "bad max_tokens"
    assert error_message(_Exc({"detail": "Model   not\nloaded"})) == "Model not loaded"
    assert error_message(_Exc({"detail": N_DETAIL_LIST})) == "n: Input should be less than or equal to 1"
    assert error_message(_Exc({"detail": {"message": "nested"}})) == "nested"
    assert error_message(_Exc(None)) == "Error code: 400"


def test_detail_string_reaches_the_error(fake_openai: Any, tmp_path: Path) -> None:
    srv = fake_openai(answers=ANSWERS, reject=lambda body: (400, {"detail": "max_tokens 64 exceeds 32"}))
    with pytest.raises(BackendError, match=r"HTTP 400.*max_tokens 64 exceeds 32"):
        run(srv, tmp_path, [(prompt("alpha"), 1)])


@pytest.mark.parametrize(
    "refusal",
    [(400, {"detail": "n > 1 is not supported by this server"}), (422, {"detail": N_DETAIL_LIST})],
    ids=["detail-string-400", "detail-list-422"],
)
def test_detail_refusal_of_n_falls_back_and_the_manifest_says_so(
    fake_openai: Any, tmp_path: Path, refusal: tuple[int, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    srv = fake_openai(answers=ANSWERS, reject=lambda body: refusal if body.get("n", 1) > 1 else None)
    with caplog.at_level(logging.WARNING):
        out, gen = run(srv, tmp_path, [(prompt("alpha"), 4)], concurrency=1)
    assert texts(out) == [["a0 x", "a1 x y", "a2", "a3 x y z"]]
    assert [r.n for r in srv.requests] == [4, 1, 1, 1, 1]
    assert [r.status for r in srv.requests][:2] == [refusal[0], 200]
    assert gen.describe()["n_per_request"] == "single"
    assert sum("cannot sample n>1" in r.getMessage() for r in caplog.records) == 1


def test_identical_samples_at_temperature_are_warned_and_counted(
    fake_openai: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv = fake_openai(default_answer="same answer")
    with caplog.at_level(logging.WARNING):
        _out, gen = run(srv, tmp_path, [(prompt("x"), 3), (prompt("y"), 3), (prompt("alpha"), 1)])
    assert sum("byte-identical" in r.getMessage() for r in caplog.records) == 1
    assert gen.describe()["identical_sample_prompts"] == 2  # the k=1 prompt cannot tell

    caplog.clear()
    srv2 = fake_openai(answers=ANSWERS)
    with caplog.at_level(logging.WARNING):
        _out, gen = run(srv2, tmp_path, [(prompt("alpha"), 4)])
    assert not any("byte-identical" in r.getMessage() for r in caplog.records)
    assert "identical_sample_prompts" not in gen.describe()

    caplog.clear()  # greedy decoding repeats itself by design: no warning
    with caplog.at_level(logging.WARNING):
        run(fake_openai(default_answer="same"), tmp_path, [(prompt("x"), 2)], params=SamplingParams(temperature=0.0))
    assert not any("byte-identical" in r.getMessage() for r in caplog.records)
