"""Scripted runs for the report.html tests, the screenshot script and the size benchmark.

``scripted_runs`` makes real run directories through the CLI: two `cure bench` runs of the three scripted tasks
(tests/helpers/scripted_tasks.py; every answer and question carries a ``<script>`` that must never run) and one
`cure refine` run of tests/test_refine_e2e.py's two tasks, each against a scripted server on 127.0.0.1 and
judged by the real sandbox. ``find_browser`` locates a Chromium for Playwright.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

INJECT = "<script>window.__pwned = 1; document.title = 'PWNED'</script></script><img src=x onerror='window.__pwned=2'>"
KEY = "sk-test"


class Injecting:
    """A scripted responder whose every answer ends with ``INJECT`` (after the code block: extraction unchanged)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, messages: list[dict[str, Any]], n: int, request: dict[str, Any]) -> list[str]:
        return [a + "\n" + INJECT for a in self.inner(messages, n, request)]


def _invoke(argv: list[str]) -> None:
    from typer.testing import CliRunner

    from cure_bench.cli import app

    result = CliRunner().invoke(app, argv)
    if result.exit_code != 0:
        raise RuntimeError(f"cure {argv[0]} failed ({result.exit_code}): {result.output[-2000:]}")


def scripted_runs(root: Path, inject: bool = True) -> list[Path]:
    """[bench run 'a' (k 4x4), bench run 'b' (another model, k 2x2), refine run] under ``root``.

    ``inject=False`` leaves out the ``<script>`` markup (the README screenshot shows the page as users see it).
    """
    from tests.helpers.fake_openai import FakeOpenAIServer
    from tests.helpers.refine_script import TASKS as REFINE_TASKS
    from tests.helpers.refine_script import Responder
    from tests.helpers.scripted_tasks import TASKS, ScriptedResponder

    root.mkdir(parents=True, exist_ok=True)
    tasks = root / "tasks.jsonl"
    tail = " " + INJECT if inject else ""
    tasks.write_text("".join(json.dumps({**t, "question": t["question"] + tail}) + "\n" for t in TASKS))
    runs = []
    for name, model, k in (("a", "coder-a", "4"), ("b", "coder-b", "2")):
        responder = Injecting(ScriptedResponder()) if inject else ScriptedResponder()
        with FakeOpenAIServer(responder=responder, api_key=KEY).start() as srv:
            out = root / name
            _invoke(["bench", "--model", model, "--dataset", str(tasks), "--base-url", srv.base_url,
                     "--api-key", KEY, "--k-code", k, "--k-case", k, "--bon", "4x1,4x4,2x2", "-o", str(out),
                     "--workers", "2"])  # fmt: skip
            runs.append(out)
    refine_tasks = root / "refine_tasks.jsonl"
    refine_tasks.write_text("".join(json.dumps(t) + "\n" for t in REFINE_TASKS))
    with FakeOpenAIServer(responder=Responder(), api_key=KEY).start() as srv:
        out = root / "refine"
        _invoke(["refine", "--model", "refiner", "--dataset", str(refine_tasks), "--base-url", srv.base_url,
                 "--api-key", KEY, "--k-code", "2", "--k-case", "2", "--bon", "2x2", "-o", str(out), "--workers", "2",
                 "--rounds", "2"])  # fmt: skip
        runs.append(out)
    return runs


def find_browser() -> str | None:
    """Debian's chromium (what .ci/run installs), else Playwright's own Chromium if it was downloaded."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as pw:
        path = pw.chromium.executable_path
    return path if path and Path(path).is_file() else None
