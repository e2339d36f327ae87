"""docs/refine.md's example stays true: the bundled sample with the scripted coder/tester, both runs, the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from tests.helpers.refine_sample_server import SampleResponder

DOC = Path(__file__).resolve().parent.parent / "docs" / "refine.md"


def run(srv: Any, out: Path, *extra: str) -> dict[str, Any]:
    args = ["refine", "--model", "scripted", "--dataset", "sample", "--base-url", srv.base_url, "--api-key", "x",
            "--k-code", "4", "--k-case", "3", "--bon", "4x3", "--rounds", "2", "--budget-baseline", "-o", str(out),
            *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics: dict[str, Any] = json.loads((out / "summary.json").read_text())["metrics"]
    return metrics


def row(r: dict[str, Any], tests: bool) -> tuple[Any, ...]:
    revised = (r["tests_revised"], r["tests_fixed"]) if tests else ()
    return (round(r["code_acc"], 3), round(r["selected_acc"], 3), round(r["unit_test_acc"], 3), r["repaired"],
            r["fixed"], r["broken"], *revised, r["coder_tokens"])  # fmt: skip


@pytest.mark.slow
def test_docs_example_numbers(tmp_path: Path, fake_openai: Any) -> None:
    srv = fake_openai(responder=SampleResponder())
    plain = run(srv, tmp_path / "plain")
    assert [row(r, False) for r in plain["rounds"]] == [
        (0.559, 0.237, 0.667, 0, 0, 0, 5102),
        (0.809, 1.0, 0.667, 152, 38, 0, 11611),
        (0.809, 1.0, 0.667, 152, 0, 0, 18120),
    ]
    base = plain["budget_baseline"]
    assert (base["programs_per_task"], round(base["code_acc"], 3), round(base["selected_acc"], 3),
            base["coder_tokens"]) == (15, 0.530, 0.237, 18735)  # fmt: skip

    revised = run(srv, tmp_path / "tests", "--refine-tests")
    assert [row(r, True) for r in revised["rounds"]] == [
        (0.559, 0.237, 0.667, 0, 0, 0, 0, 0, 5102),
        (0.809, 1.0, 1.0, 38, 38, 0, 38, 38, 6775),
        (0.809, 1.0, 1.0, 0, 0, 0, 0, 0, 6775),
    ]
    base = revised["budget_baseline"]
    assert (base["programs_per_task"], round(base["code_acc"], 3), round(base["selected_acc"], 3),
            base["coder_tokens"]) == (6, 0.412, 0.237, 6858)  # fmt: skip

    rep = CliRunner().invoke(app, ["report", str(tmp_path / "tests"), "--json", "--resamples", "1000"])
    assert rep.exit_code == 0, rep.output
    rounds = json.loads(rep.stdout[rep.stdout.index("{") : rep.stdout.rindex("}") + 1])["refine_rounds"]
    (per_round,) = rounds.values()
    iv = per_round[1]["code_acc"]
    assert f"{100 * iv['value']:.1f} [{100 * iv['ci_low']:.1f}, {100 * iv['ci_high']:.1f}]" == "80.9 [77.6, 84.9]"
    assert "80.9 [77.6, 84.9]" in DOC.read_text()
