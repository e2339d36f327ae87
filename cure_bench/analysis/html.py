"""report.html: one self-contained page (inline CSS/JS/PNG, no network) with a per-task drill-down.

The headline tables are the very rows report.md prints (``table_rows`` / ``difference_rows``), so the two files
cannot disagree. Per-task data travels as one JSON blob: strings (questions, programs, tests) deduplicated into
one list and referenced by index, verdict grids as one string of verdict codes per program row. The page renders
the task table in batches as it scrolls and a task's detail only when opened, so a 500 x 16 x 24 run stays light.

Everything from a run (answers, programs, questions, tests) is untrusted: the blob is embedded with ``<``, ``>``,
``&``, U+2028 and U+2029 escaped (no ``</script>`` can end it early), and the page only ever writes it with
``textContent``, never as HTML.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cure_bench import __version__
from cure_bench.scoring.rankers import REGISTRY, available_rankers, expected_pick, pick
from cure_bench.scoring.subtables import TaskArrays
from cure_bench.types import TaskTable, Verdict

if TYPE_CHECKING:
    from cure_bench.analysis.analyze import RunAnalysis
    from cure_bench.analysis.report import Report
    from cure_bench.runs.reader import RunTask

VERDICTS = list(Verdict)
"""Code i in a grid string is VERDICTS[i]."""


class Strings:
    """Deduplicated string pool: each distinct text is stored once and referenced by its index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str | None) -> int:
        """Index of ``text`` (-1 for None)."""
        if text is None:
            return -1
        if text not in self._index:
            self._index[text] = len(self.items)
            self.items.append(text)
        return self._index[text]


def _grid(rows: list[list[Verdict]]) -> list[str]:
    codes = {v: str(i) for i, v in enumerate(VERDICTS)}
    return ["".join(codes[v] for v in row) for row in rows]


def _correct(table: TaskTable) -> list[bool]:
    """A program is correct when it passes every hidden test (and the task has some)."""
    return [bool(row) and all(v is Verdict.ACCEPTED for v in row) for row in table.hidden]


def _picks(table: TaskTable) -> dict[str, Any]:
    """Each ranker's submitted program on the whole table, with the weight it gave every program."""
    arrays = TaskArrays.from_table(table)
    if arrays is None or arrays.k_case == 0:
        return {}
    out: dict[str, Any] = {}
    for name in available_rankers([arrays]):
        weights = expected_pick(arrays, name)
        out[name] = {"pick": pick(arrays, name), "w": [round(float(w), 4) for w in weights]}
    return out


def _trajectory(task: RunTask, s: Strings) -> list[dict[str, Any]] | None:
    """A `cure refine` row's rounds, tolerant of absent or partial fields (each key optional)."""
    rounds = task.metadata.get("trajectory")
    if not isinstance(rounds, list):
        return None
    out = []
    for i, r in enumerate(rounds):
        if not isinstance(r, dict):
            out.append({"round": i, "note": s(json.dumps(r, default=str)[:2000])})
            continue
        entry: dict[str, Any] = {"round": r.get("round", i)}
        for key in ("program", "answer", "feedback"):
            if isinstance(r.get(key), str):
                entry[key] = s(r[key])
        for key in ("passed", "total", "correct", "hidden_pass", "generated_pass"):
            if isinstance(r.get(key), bool | int | float):
                entry[key] = r[key]
        rest = {k: v for k, v in r.items() if k not in entry and k not in ("program", "answer", "feedback")}
        if rest:
            entry["extra"] = s(json.dumps(rest, default=str, sort_keys=True)[:2000])
        out.append(entry)
    return out


def task_record(task: RunTask, s: Strings) -> dict[str, Any]:
    """The compact per-task record the page reads (keys short: they repeat once per task)."""
    table = task.table
    correct = _correct(table)
    gen_pass = table.generated_pass()
    test_ok = [all(gen_pass[i][j] for i in range(table.n_programs) if correct[i]) for j in range(table.n_generated)]
    picks = _picks(table)
    paper = picks.get("cure_first")
    answers = task.metadata.get("answers") or task.metadata.get("code_answers")
    tester = task.metadata.get("test_answers") or task.metadata.get("case_answers")
    rec: dict[str, Any] = {
        "id": task.task_id,
        "q": s(str(task.metadata.get("question") or "")),
        "p": [s(p) for p in task.programs],
        "h": _grid(table.hidden),
        "g": _grid(table.generated),
        "t": [[s(t.input), s(t.output)] for t in task.generated_tests],
        "ok": [1 if c else 0 for c in correct],
        "tok": [1 if ok else 0 for ok in test_ok],
        "pk": picks,
        "f": {
            "solved": bool(paper and correct[paper["pick"]]),
            "notest": table.n_generated == 0,
            "allwrong": not any(correct),
            "badtest": any(not ok for ok in test_ok) and any(correct),
        },
    }
    if isinstance(answers, list):
        rec["a"] = [s(a if isinstance(a, str) else json.dumps(a, default=str)) for a in answers]
    if isinstance(tester, list):
        rec["ta"] = [s(a if isinstance(a, str) else json.dumps(a, default=str)) for a in tester]
    traj = _trajectory(task, s)
    if traj is not None:
        rec["tr"] = traj
    return rec


def _manifest(a: RunAnalysis) -> dict[str, str]:
    m = a.run.manifest
    ds = a.run.dataset_info
    sampling = m.get("sampling") or {k: m[k] for k in ("temperature", "top_p", "max_tokens") if k in m}
    sandbox = m.get("sandbox")
    return {
        "directory": str(a.run.path),
        "coder": str((m.get("coder") or {}).get("model", "?")),
        "tester": str((m.get("tester") or {}).get("model", "-")) if m.get("tester") else "-",
        "protocol": str(m.get("protocol", "chat")),
        "sampling": json.dumps(sampling, sort_keys=True, default=str) if sampling else "?",
        "dataset": f"{a.run.dataset_name or '?'} (sha256 {str(ds.get('sha256') or '?')[:12]})",
        "sandbox": json.dumps(sandbox, default=str) if isinstance(sandbox, dict) else str(sandbox or "?"),
        "k_code / k_case / max_test": f"{m.get('k_code', '?')} / {m.get('k_case', '?')} / {m.get('max_test', '?')}",
        "tasks": str(len(a.run.tasks)),
    }


def page_data(report: Report, figures: dict[int, list[tuple[str, Path]]], bars: Path | None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON (the headline rows are report.md's own)."""
    from cure_bench.analysis.report import difference_rows, table_rows

    s = Strings()
    runs = []
    for i, (name, a) in enumerate(zip(report.names, report.analyses, strict=True)):
        runs.append(
            {
                "name": name,
                "manifest": _manifest(a),
                "figures": [[cap, _data_uri(p)] for cap, p in figures.get(i, [])],
                "tasks": [task_record(t, s) for t in a.run.tasks],
            }
        )
    return {
        "version": __version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "level": round(100 * report.analyses[0].settings.level) if report.analyses else 95,
        "verdicts": [v.value for v in VERDICTS],
        "rankers": {n: {"help": spec.help, "color": spec.color or "#555"} for n, spec in REGISTRY.items()},
        "names": report.names,
        "metrics": [[label.strip(), cells] for label, cells in table_rows(report.analyses)],
        "differences": [[b, o, rows] for b, o, rows in difference_rows(report)],
        "bars": _data_uri(bars) if bars is not None and bars.exists() else None,
        "runs": runs,
        "strings": s.items,
    }


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def safe_json(data: Any) -> str:
    """JSON that cannot end its <script> element or break a JS parser: <, >, &, U+2028/9 as \\u escapes."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def render_html(data: dict[str, Any]) -> str:
    title = html.escape("CURE report: " + ", ".join(data["names"]))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>{_asset('report_page.css')}</style></head><body>"
        f"<script type='application/json' id='cure-data'>{safe_json(data)}</script>"
        f"<div id='app'></div><script>{_asset('report_page.js')}</script></body></html>\n"
    )


def build_html(report: Report, figures: dict[int, list[tuple[str, Path]]], bars: Path | None) -> str:
    return render_html(page_data(report, figures, bars))


def _asset(name: str) -> str:
    """The page's CSS and JS live beside this module as plain files (editable, lintable) and are inlined."""
    return Path(__file__).with_name(name).read_text(encoding="utf-8")
