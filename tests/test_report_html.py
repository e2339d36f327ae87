"""report.html in a real headless browser: every task id and metric present, filters work, no script injection."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cure_bench.analysis import build_report
from cure_bench.analysis.html import Strings, safe_json, task_record
from cure_bench.runs.reader import load_run
from tests.test_analysis_report import FAST, toy_tables, write_run

INJECT = "<script>window.__pwned = 1; document.title = 'PWNED'</script></script><img src=x onerror='window.__pwned=2'>"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def make_run(tmp_path: Path, name: str = "run", model: str = "coder-a", seed: int = 3) -> Path:
    tables = toy_tables(seed, n=12)
    programs: list[list[str | None]] = [[f"print({i}) # {INJECT}"] * t.n_programs for i, t in enumerate(tables)]
    run = write_run(tmp_path / name, tables, model=model, programs=programs)
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    for row in rows:
        row["question"] = f"Question of {row['task_id']} {INJECT}\u2028"
        row["answers"] = [f"```python\nprint(1)\n```\n{INJECT}"] * len(row["programs"])
    rows[0]["trajectory"] = [{"round": 0, "program": "print(0)", "passed": 1}, {"round": 1, "feedback": INJECT}]
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_safe_json_cannot_close_the_script_element() -> None:
    text = safe_json({"a": "</script><script>alert(1)</script>\u2028\u2029&"})
    assert "<" not in text and ">" not in text and "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"a": "</script><script>alert(1)</script>\u2028\u2029&"}


def test_task_record_flags_and_dedup(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path))
    s = Strings()
    recs = [task_record(t, s) for t in run.tasks]
    assert len(s.items) < sum(len(r["p"]) for r in recs)  # identical programs stored once
    for rec, task in zip(recs, run.tasks, strict=True):
        correct = [all(v.value == "accepted" for v in row) for row in task.table.hidden]
        assert rec["ok"] == [int(c) for c in correct]
        assert rec["f"]["allwrong"] == (not any(correct))
        if rec["pk"]:
            assert rec["f"]["solved"] == correct[rec["pk"]["cure_first"]["pick"]]
    assert recs[0]["tr"][0]["passed"] == 1 and s.items[recs[0]["tr"][1]["feedback"]] == INJECT


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install '.[dev]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


def test_page_in_headless_chromium(tmp_path: Path, browser: Any) -> None:
    runs = [make_run(tmp_path, "a", "coder-a", 3), make_run(tmp_path, "b", "coder-b", 4)]
    out = tmp_path / "out"
    report = build_report(runs, out, FAST)
    page_file = out / "report.html"
    assert page_file in report.files
    html_text = page_file.read_text()
    assert "http://" not in html_text.replace("http://www.w3.org", "") and "https://" not in html_text
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    assert errors == []
    # injection: nothing ran, the text is shown as text
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "PWNED"
    # every task id, and the metric values of summary.json as the page formats them
    rows = page.eval_on_selector_all("#tasks tbody tr", "rs => rs.map(r => r.dataset.task)")
    ids = [t.task_id for t in load_run(runs[0]).tasks]
    assert sorted(rows) == sorted(ids)
    metrics_text = page.inner_text("#metrics")
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        checked = 0
        for key in ("code_acc", "code_accumulate_acc", "unit_test_acc", "p01", "p00"):
            value = summary["metrics"][key]  # DESIGN.md's names; a KeyError means the test is out of date
            if isinstance(value, float):
                assert f"{100 * value:.1f}" in metrics_text, key
                checked += 1
        assert checked >= 3
    # filtering: click "unsolved", the visible rows are exactly the tasks BoN did not solve in some run
    analysis = json.loads(page.eval_on_selector("#cure-data", "e => e.textContent"))
    unsolved = {t["id"] for r in analysis["runs"] for t in r["tasks"] if not t["f"]["solved"]}
    assert 0 < len(unsolved) < len(ids)
    page.click("button[data-filter='unsolved']")
    visible = page.eval_on_selector_all("#tasks tbody tr[data-task]", "rs => rs.map(r => r.dataset.task)")
    assert set(visible) == unsolved
    # drill-down: open the first task; the injected markup shows as text and still does not run
    page.click("button[data-filter='all']")
    page.click(f"#tasks tbody tr[data-task='{ids[0]}']")
    assert page.locator(".runpanel").count() == 2
    assert page.locator(".grid td.v0, .grid td.v1").count() > 0
    assert page.locator(".trajectory li").count() == 4  # two rounds in each run's panel
    page.locator(".runpanel details").first.evaluate("d => d.open = true")
    assert INJECT in page.eval_on_selector_all("pre", "ps => ps.map(p => p.textContent).join('\\n')")
    assert page.evaluate("window.__pwned") is None
    # screenshot is not blank
    shot = tmp_path / "shot.png"
    page.screenshot(path=str(shot), full_page=False)
    from PIL import Image, ImageStat

    stat = ImageStat.Stat(Image.open(shot).convert("L"))
    assert stat.var[0] > 100, stat.var
    page.close()
