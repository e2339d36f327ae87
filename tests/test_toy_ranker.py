"""A new ranker is one registry entry: registered here (and nowhere else), it shows up in summary.json's BoN
cells, in `cure report` and in the reward server's ``/v1/select``, with no other edit.

The toy ranker ``last_best`` is CURE's rule with the *last* index on ties, which the scripted tasks tell apart
from the paper's first index: on BoN 4x1, task A ties P0/P1 (both right), B ties all four (all wrong) and C
ties P0..P2 (P0 wrong, P2 right), so first index scores 1/3 and last index 2/3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from cure_bench.analysis import AnalysisSettings, SurfaceSettings, build_report
from cure_bench.cli import app
from cure_bench.sandbox import Sandbox
from cure_bench.scoring.rankers import RankerSpec, SubTables, registered
from cure_bench.serve import create_app, serve_in_background
from tests.helpers.fake_openai import FakeOpenAIServer
from tests.helpers.scripted_tasks import ScriptedResponder, write_task_file
from tests.test_bench_e2e import KEY, bench_args
from tests.test_serve_live import AUTH, CRASH, DOUBLE, PRINT3, make_config, scripted_answers

pytestmark = pytest.mark.slow


def last_best(sub: SubTables) -> np.ndarray:
    """Most generated tests passed, the last index on ties."""
    scores = sub.scores
    tied = scores == scores.max(axis=1, keepdims=True)
    last = np.where(tied, sub.progs, -1).argmax(axis=1)
    w = np.zeros(scores.shape, dtype=float)
    w[np.arange(scores.shape[0]), last] = 1.0
    return w


TOY = RankerSpec("last_best", "most tests passed, last index on ties (a toy)", last_best)


@pytest.fixture
def toy() -> Iterator[RankerSpec]:
    with registered(TOY) as spec:
        yield spec


def test_toy_ranker_reaches_summary_and_report(toy: RankerSpec, tmp_path: Path, fake_openai: Any) -> None:
    srv = fake_openai(responder=ScriptedResponder(), api_key=KEY)
    tasks = write_task_file(tmp_path / "tasks.jsonl")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, bench_args(srv, tasks, out))
    assert result.exit_code == 0, result.output
    bon = json.loads((out / "summary.json").read_text())["metrics"]["bon"]
    assert bon["4x1"]["acc"] == pytest.approx(1 / 3)  # the paper's rule, unchanged
    assert bon["4x1"]["last_best_acc"] == pytest.approx(2 / 3)  # the toy, as extra keys beside it
    assert "last_best_accumulate_acc" in bon["4x4"]

    fast = AnalysisSettings(resamples=50, surface=SurfaceSettings(samples=8))
    report = build_report([out], tmp_path / "report", fast)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "BoN 4x1 expected last_best" in text and "**last_best**: most tests passed, last index" in text
    cells = json.loads((tmp_path / "report" / "analysis.json").read_text())["runs"][0]["bon_cells"]
    assert cells["4x1"]["last_best"]["prefix_slice"] == pytest.approx(2 / 3)
    assert report.analyses[0].surface is not None and "last_best" in report.analyses[0].surface.rankers


def test_toy_ranker_reaches_v1_select(toy: RankerSpec, tmp_path: Path) -> None:
    with (
        FakeOpenAIServer(responder=scripted_answers) as tester,
        Sandbox(workers=2, use_cache=False) as sandbox,
        serve_in_background(create_app(make_config(tester, tmp_path / "cache"), sandbox=sandbox)) as url,
    ):
        candidates = [PRINT3, DOUBLE, "```python\nprint(2 * int(input()))\n```", CRASH]
        body = {"problem": "DOUBLE: read n, print 2n.", "candidates": candidates}
        first = httpx.post(url + "/v1/select", json=body, headers=AUTH, timeout=60).json()
        toy_pick = httpx.post(url + "/v1/select", json={**body, "ranker": "last_best"}, headers=AUTH, timeout=60)
        assert toy_pick.status_code == 200, toy_pick.text
        assert first["passed"] == [0, 4, 4, 0]
        assert (first["best_index"], first["ranker"]) == (1, "cure_first")  # candidates 1 and 2 tie: first index
        assert (toy_pick.json()["best_index"], toy_pick.json()["ranker"]) == (2, "last_best")
        unknown = httpx.post(url + "/v1/select", json={**body, "ranker": "nope"}, headers=AUTH, timeout=60)
        assert unknown.status_code == 422 and "last_best" in unknown.text  # the error lists what is registered
        outputs = httpx.post(url + "/v1/select", json={**body, "ranker": "majority_vote"}, headers=AUTH, timeout=60)
        assert outputs.status_code == 422 and "outputs" in outputs.text  # verdicts only: nothing to vote on
