"""report.html: the per-task data matches the analysis, and the page works in a real headless Chromium.

The browser tests render the page for scripted runs (two `cure bench` runs and a `cure refine` run, made through
the CLI against a scripted server and the real sandbox; tests/helpers/report_runs.py) and check what a user sees:
every task id and metric, filters (click, then the visible rows), the drill-down with picks, answers and the
refine trajectory, several runs side by side, a non-blank screenshot, and that a ``<script>`` in an answer or a
question never runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cure_bench.analysis import build_report
from cure_bench.analysis.html import page_data, safe_json
from cure_bench.analysis.picks import pick_rows, solved
from cure_bench.scoring.catalogue import shown
from tests.helpers.report_runs import INJECT, find_browser, scripted_runs
from tests.test_analysis_report import FAST, toy_tables, write_run


def test_safe_json_cannot_close_the_script_element() -> None:
    text = safe_json({"a": "</script><script>alert(1)</script>\u2028\u2029&"})
    assert "<" not in text and ">" not in text and "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"a": "</script><script>alert(1)</script>\u2028\u2029&"}


def test_per_task_picks_are_the_bon_numbers(tmp_path: Path) -> None:
    """The picks report.md and report.html show average to summary.json's BoN acc, cell by cell (one source)."""
    run = write_run(tmp_path / "run", toy_tables(5, n=30, k=6, t=5))
    report = build_report([run], tmp_path / "out", FAST)
    a = report.analyses[0]
    summary = json.loads((run / "summary.json").read_text())
    assert len(a.picks) == 30 and set(a.run.bon) == {(2, 2), (6, 5)}
    for key, prefix in (("2x2", ""), ("6x5", ""), ("2x2", "tie_aware_"), ("6x5", "tie_aware_")):
        ranker = "cure_first" if not prefix else "cure_tie_aware"
        accs = [p.cells[key].rankers[ranker].acc for p in a.picks if key in p.cells]
        assert sum(accs) / len(accs) == pytest.approx(summary["metrics"]["bon"][key][f"{prefix}acc"])
    rows = {r[0]: r for r in pick_rows(a.picks)}
    for key in ("2x2", "6x5"):
        hits = sum(1 for p in a.picks if solved(p, key))
        assert rows[key][2] == str(hits)
        assert int(rows[key][2]) == round(summary["metrics"]["bon"][key]["acc"] * int(rows[key][1]))
        assert f"| {' | '.join(rows[key])} |" in (tmp_path / "out" / "report.md").read_text()
    data = page_data(report, {}, None)
    assert data["runs"][0]["picks"] == pick_rows(a.picks)
    for rec, p in zip(data["runs"][0]["tasks"], a.picks, strict=True):
        cell = p.cells["6x5"]
        assert rec["bn"]["6x5"][0] == list(cell.passes)
        assert rec["bn"]["6x5"][1]["cure_first"][0] == cell.rankers["cure_first"].pick
        assert rec["f"]["solved"] == int(bool(solved(p, "6x5")))
    analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert analysis["runs"][0]["tasks"] == [p.to_json() for p in a.picks]


# ---------------------------------------------------------------------------------------------------------------
# the page in a real browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[dev]'")
    path = find_browser()
    if path is None:
        pytest.skip("no Chromium found (.ci/run installs Debian's: apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("report-html")
    runs = scripted_runs(root / "runs")
    report = build_report(runs, root / "out", FAST)
    page = root / "out" / "report.html"
    assert page in report.files
    return runs, page


@pytest.fixture
def page(browser: Any, rendered: tuple[list[Path], Path]) -> Iterator[Any]:
    p = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    requests: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("request", lambda r: requests.append(r.url))
    p.goto(rendered[1].as_uri())
    p.wait_for_selector("body[data-ready='1']", state="attached")
    yield p
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # works offline: nothing fetched
    assert p.evaluate("window.__pwned") is None and p.title() != "PWNED"
    p.close()


def visible_tasks(page: Any) -> list[str]:
    return page.eval_on_selector_all("#tasks tbody tr[data-task]", "rs => rs.map(r => r.dataset.task)")


@pytest.mark.slow
def test_page_holds_every_task_and_metric(page: Any, rendered: tuple[list[Path], Path]) -> None:
    runs, page_file = rendered
    text = page_file.read_text()
    assert "content=\"default-src 'none'; img-src data:;" in text  # the page may not load anything from outside
    assert sorted(visible_tasks(page)) == ["A", "B", "C", "X", "Y"]
    cells = page.eval_on_selector_all("#metrics tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    rows = {r[0]: r[1:] for r in cells}
    for col, run in enumerate(runs):
        metrics = json.loads((run / "summary.json").read_text())["metrics"]
        for key in ("code_acc", "code_accumulate_acc", "unit_test_acc", "unit_test_accumulate_acc", "p01", "p00"):
            assert rows[key][col].split(" [")[0] == shown(metrics[key]), (run.name, key, rows[key][col])
        for cell, values in metrics["bon"].items():
            assert rows[f"BoN {cell} paper (prefix, first index)"][col].split(" [")[0] == shown(values["acc"]), cell
    rounds = page.eval_on_selector_all("#rounds2 tbody tr", "rs => rs.map(r => r.cells[1].textContent)")
    per_round = json.loads((runs[2] / "summary.json").read_text())["metrics"]["rounds"]
    assert [r.split(" [")[0] for r in rounds] == [shown(r["code_acc"]) for r in per_round]


@pytest.mark.slow
def test_filters_show_exactly_the_matching_tasks(page: Any) -> None:
    # worked out from the scripted tables: B and X have no correct program; A and Y have a wrong generated test;
    # refinement fixed X's P1 for good (n+1 -> 2n); Y's P1 went a-b -> a+b -> a+b+1, wrong again after the last round;
    # BoN's pick is right on A, C and Y
    expected = {"unsolved": {"B", "X"}, "solved": {"A", "C", "Y"}, "allwrong": {"B", "X"}, "badtest": {"A", "Y"},
                "refined": {"X"}, "notest": set(), "missed": set(), "all": {"A", "B", "C", "X", "Y"}}  # fmt: skip
    for name, tasks in expected.items():
        page.click(f"button[data-filter='{name}']")
        assert set(visible_tasks(page)) == tasks, name
        assert page.inner_text("#count").strip().startswith(f"{len(tasks)} of 5")
    page.fill("#search", "largest")  # question text of task B
    assert visible_tasks(page) == ["B"]
    page.fill("#search", "")
    page.click("#tasks th[data-key='id']")  # sorted by id already: a click reverses
    assert visible_tasks(page) == ["Y", "X", "C", "B", "A"]


@pytest.mark.slow
def test_task_across_runs_with_picks_answers_and_no_script(page: Any, tmp_path: Path) -> None:
    page.click("#tasks tbody tr[data-task='A']")
    panels = page.locator(".task[data-task='A'] .runpanel")
    assert panels.count() == 2  # A is in both bench runs, side by side
    assert [panels.nth(i).locator("h3").inner_text() for i in range(2)] == ["coder-a / tasks", "coder-b / tasks"]
    # the paper's 4x4 pick on A is P0, with 2 of 3 generated tests (hand-computed in scripted_tasks.py)
    rankers = (
        panels.nth(0)
        .locator("table.rankers tbody tr")
        .evaluate_all("rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    )
    row = next(r for r in rankers if r[0] == "4x4" and r[1] == "cure_first")
    assert row[2:6] == ["p0", "correct", "2 of 3", "p0:2 p1:2 p2:1 p3:0"]
    # raw answers: collapsed until asked for, then shown as text; the injected markup does not run
    raw = panels.nth(0).locator("details.raw")
    assert raw.count() == 8 and panels.nth(0).locator("pre.answer").count() == 0
    raw.evaluate_all("ds => ds.forEach(d => d.open = true)")
    answers = panels.nth(0).locator("pre.answer").all_text_contents()
    assert len(answers) == 8 and all(a.endswith(INJECT) for a in answers)
    assert "```python\na, b = map(int, input().split())\nprint(a + b)\n```" in answers[0]
    assert "no parsable test (dropped)" in raw.nth(6).locator("summary").inner_text()  # A's third tester answer
    assert INJECT in page.locator(".task[data-task='A'] pre").first.inner_text()  # the question, as text
    assert page.locator("img[src='x']").count() == 0
    # screenshot: a real picture, not a blank page
    from PIL import Image, ImageStat

    shot = tmp_path / "shot.png"
    page.screenshot(path=str(shot))
    stat = ImageStat.Stat(Image.open(shot).convert("L"))
    assert stat.var[0] > 100, stat.var


@pytest.mark.slow
def test_refine_trajectory_per_round(page: Any) -> None:
    page.click("#tasks tbody tr[data-task='Y']")
    box = page.locator(".task[data-task='Y'] .trajectory")
    grid = box.locator("table.rounds tr").evaluate_all("rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    # Y, generated tests (2 3 -> 6: wrong) and (0 0 -> 0). P0 a+b -> a+b+1 (broken) -> a+b; P1 a-b -> a+b -> a+b+1
    assert grid == [
        ["program", "round 0", "round 1", "round 2"],
        ["p0", "\u2713 1/2", "\u2717 1/2", "\u2713 1/2"],
        ["p1", "\u2717 1/2", "\u2713 1/2", "\u2717 1/2"],
    ]
    version = box.locator("details.version").nth(1)  # p0 round 1
    assert version.locator("summary").inner_text().startswith("p0 round 1: wrong, repaired from 1 failing test")
    version.evaluate("d => d.open = true")
    texts = version.locator("pre").all_text_contents()
    assert texts[0] == "a, b = map(int, input().split())\nprint(a + b + 1)"
    assert texts[1] == "input:\n2 3\n\nexpected:\n6\n\nprinted:\n5\n"
