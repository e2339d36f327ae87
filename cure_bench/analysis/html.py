"""report.html: one self-contained page (inline CSS/JS/PNG, no network) with a per-task drill-down.

The headline tables are the very rows report.md prints (``table_rows``, ``difference_rows``, ``pick_rows``,
``round_rows``), and the per-task BoN picks are the analysis's own (``RunAnalysis.picks``), so the files cannot
disagree. Per-task data travels compactly: every string (questions, programs, tests, raw answers) once in a
deduplicated pool, gzipped and base64-encoded (model text is most of a page and shrinks about 3x; the browser
unpacks it with its own DecompressionStream), the records refer to it by index, and verdict grids are one string
of verdict codes per program. The page draws the task table in batches as it scrolls, a task's detail only when
opened, and a raw answer only when expanded, so a 500 x 16 x 24 run opens in about a second
(benchmarks/report_html_size.py).

Everything from a run (answers, programs, questions, tests) is untrusted: the JSON is embedded with ``<``, ``>``,
``&``, U+2028 and U+2029 escaped (no ``</script>`` can end it early), the pool is base64, and the page only ever
writes run content with ``textContent``, never as HTML.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cure_bench import __version__
from cure_bench.analysis.picks import TaskPicks, headline_cell, pick_rows, solved
from cure_bench.scoring.metrics import correct_tests, protocol_of
from cure_bench.scoring.rankers import REGISTRY
from cure_bench.types import Verdict

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


def _answers(value: Any, s: Strings) -> list[list[Any]] | None:
    """samples.jsonl's ``code_answers`` / ``test_answers`` ({text, tokens, finish_reason}) as [text, tokens, why]."""
    if not isinstance(value, list):
        return None
    out = []
    for a in value:
        if isinstance(a, dict) and isinstance(a.get("text"), str):
            out.append([s(a["text"]), a.get("tokens"), a.get("finish_reason")])
    return out


def _cells(picks: TaskPicks) -> dict[str, Any]:
    """Per BoN cell: [pass counts of the first N programs, {ranker: [pick, expected acc, weights]}]."""
    return {
        key: [list(c.passes), {r: [p.pick, round(p.acc, 6), list(p.weights)] for r, p in c.rankers.items()}]
        for key, c in picks.cells.items()
    }


def _trajectory(versions: list[list[dict[str, Any]]], s: Strings) -> list[list[list[Any]]]:
    """Per program, per version: [round, program, hidden correct, generated verdict codes, feedback, tokens]."""
    codes = {v.value: str(i) for i, v in enumerate(VERDICTS)}
    out = []
    for program in versions:
        row = []
        for v in program:
            feedback = [
                [s(str(f.get(k))) if f.get(k) is not None else -1 for k in FEEDBACK_KEYS]
                for f in v.get("feedback") or []
                if isinstance(f, dict)
            ]
            gen = "".join(codes.get(str(x), str(len(VERDICTS) - 1)) for x in v.get("generated") or [])
            hidden = v.get("hidden_correct")
            row.append([v["round"], s(v.get("program")), -1 if hidden is None else int(bool(hidden)), gen, feedback,
                        v.get("tokens")])  # fmt: skip
        out.append(row)
    return out


FEEDBACK_KEYS = ("input", "expected", "printed", "verdict", "stderr_tail", "source")


def task_record(
    task: RunTask, picks: TaskPicks, headline: str | None, s: Strings, versions: list[list[dict[str, Any]]] | None
) -> dict[str, Any]:
    """The compact per-task record the page reads (keys short: they repeat once per task)."""
    table = task.table
    correct = list(picks.correct)
    good = correct_tests(table)  # None: no correct program, so no test can be called right or wrong
    hit = solved(picks, headline) if headline else None
    n_first = picks.cells[headline].n_code if headline and headline in picks.cells else 0
    rec: dict[str, Any] = {
        "id": task.task_id,
        "q": s(str(task.metadata.get("question") or "")),
        "p": [s(p) for p in task.programs],
        "h": _grid(table.hidden),
        "g": _grid(table.generated),
        "t": [[s(t.input), s(t.output)] for t in task.generated_tests],
        "ti": [-1 if i is None else i for i in task.test_answer_index],
        "ok": [1 if c else 0 for c in correct],
        "tok": None if good is None else [1 if ok else 0 for ok in good],
        "bn": _cells(picks),
        "f": {
            "solved": -1 if hit is None else int(hit),
            "missed": int(hit is False and any(correct[:n_first])),
            "notest": int(table.n_generated == 0),
            "dropped": picks.dropped or "",
            "allwrong": int(not any(correct)),
            "badtest": int(good is not None and not all(good)),
        },
    }
    for key, field in (("a", "code_answers"), ("ta", "test_answers")):
        answers = _answers(task.metadata.get(field), s)
        if answers:
            rec[key] = answers
    if versions is not None:
        rec["tr"] = _trajectory(versions, s)
    return rec


def _manifest(a: RunAnalysis) -> dict[str, str]:
    """The manifest's headline fields, one short line each (the whole manifest travels beside, collapsed)."""
    m = a.run.manifest
    ds = a.run.dataset_info
    sampling = m.get("sampling") or {k: m[k] for k in ("temperature", "top_p", "max_tokens") if k in m}
    sandbox = m.get("sandbox")
    level = sandbox.get("isolation_level", "?") if isinstance(sandbox, dict) else str(sandbox or "?")
    return {
        "directory": str(a.run.path),
        "coder": _model(m.get("coder")),
        "tester": _model(m.get("tester")) if m.get("tester") else "-",
        "protocol": protocol_of(m),
        "sampling": ", ".join(f"{k}={v}" for k, v in sorted(sampling.items())) if sampling else "?",
        "dataset": f"{a.run.dataset_name or '?'} (sha256 {str(ds.get('sha256') or '?')[:12]})",
        "sandbox": level,
        "k_code / k_case / max_test": f"{m.get('k_code', '?')} / {m.get('k_case', '?')} / {m.get('max_test', '?')}",
        "tasks": str(len(a.run.tasks)),
        "cure-toolkit": str(m.get("version") or "?"),
    }


def _model(role: Any) -> str:
    if not isinstance(role, dict):
        return str(role or "?")
    return f"{role.get('model', '?')} ({role.get('backend', '?')})"


def page_data(report: Report, figures: dict[int, list[tuple[str, Path]]], bars: Path | None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON (the headline rows and per-task picks are report.md's own)."""
    from cure_bench.analysis.report import PICK_HEADER, difference_rows, table_rows
    from cure_bench.analysis.trajectories import ROUND_HEADER, round_rows

    s = Strings()
    runs = []
    for i, (name, a) in enumerate(zip(report.names, report.analyses, strict=True)):
        headline = headline_cell(a.picks)
        refine = report.refine.get(i)
        trajectories = refine.trajectories if refine is not None else {}
        tasks = [
            task_record(t, p, headline, s, trajectories.get(t.task_id) if refine is not None else None)
            for t, p in zip(a.run.tasks, a.picks, strict=True)
        ]
        runs.append(
            {
                "name": name,
                "manifest": _manifest(a),
                "full_manifest": json.dumps(a.run.manifest, indent=1, sort_keys=True, default=str),
                "figures": [[cap, _data_uri(p)] for cap, p in figures.get(i, [])],
                "headline": headline,
                "picks": pick_rows(a.picks),
                "rounds": round_rows(refine) if refine is not None else None,
                "refine_dir": str(refine.path) if refine is not None else None,
                "tasks": tasks,
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
        "pick_header": PICK_HEADER,
        "round_header": ROUND_HEADER,
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


def packed_strings(items: list[str]) -> str:
    """The string pool as base64 of gzipped JSON: model text is most of a page, and compresses about 3-4x.

    The page unpacks it with the browser's own DecompressionStream (no library, no network); base64 holds no
    ``<``, so it cannot end its element either. ``mtime=0`` keeps the file identical for identical runs.
    """
    raw = json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def render_html(data: dict[str, Any]) -> str:
    title = html.escape("CURE report: " + ", ".join(data["names"]))
    body = {k: v for k, v in data.items() if k != "strings"}
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>{_asset('report_page.css')}</style></head><body>"
        f"<script type='application/json' id='cure-data'>{safe_json(body)}</script>"
        f"<script type='application/octet-stream' id='cure-strings'>{packed_strings(data['strings'])}</script>"
        "<div id='app'><p id='loading'>Unpacking the report\u2026 (this needs JavaScript and a browser from 2023 "
        "or later: Chrome/Edge 80, Firefox 113, Safari 16.4)</p></div>"
        f"<script>{_asset('report_page.js')}</script></body></html>\n"
    )


def build_html(report: Report, figures: dict[int, list[tuple[str, Path]]], bars: Path | None) -> str:
    return render_html(page_data(report, figures, bars))


def _asset(name: str) -> str:
    """The page's CSS and JS live beside this module as plain files (editable, lintable) and are inlined."""
    return Path(__file__).with_name(name).read_text(encoding="utf-8")
