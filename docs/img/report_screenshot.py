"""Regenerate docs/img/report.png, the README's picture of report.html, from scripted runs (never by hand).

    python docs/img/report_screenshot.py                 # writes docs/img/report.png
    python docs/img/report_screenshot.py -o /tmp/r.png   # somewhere else

Two scripted `cure bench` runs and one `cure refine` run (tests/helpers/report_runs.py: a scripted
OpenAI-compatible server on 127.0.0.1, the real sandbox judging) are reported with ``build_report`` as
`cure report -o` does; the page is opened in headless Chromium (Debian's, or Playwright's own), one task's
drill-down is opened so the verdict grid shows, and the viewport is saved as a palette PNG (small enough to
keep in the repository: the script refuses to write more than ``MAX_BYTES``).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "docs" / "img" / "report.png"
MAX_BYTES = 300_000
VIEWPORT = {"width": 1280, "height": 1000}
TASK = "A"  # the drill-down shown: two runs' verdict grids of the same task


def render_report(work: Path) -> Path:
    """Scripted runs under ``work``, reported into ``work/report``; returns report.html."""
    from cure_bench.analysis import AnalysisSettings, build_report
    from tests.helpers.report_runs import scripted_runs

    runs = scripted_runs(work / "runs", inject=False)
    build_report(runs, work / "report", AnalysisSettings())
    return work / "report" / "report.html"


def screenshot(page_file: Path, browser_path: str) -> bytes:
    """The page as a browser shows it: the task table's filters and rows, ``TASK``'s drill-down opened below."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-ready='1']", state="attached")
            page.click(f"#tasks tbody tr[data-task='{TASK}']")
            page.locator(f".task[data-task='{TASK}']").first.wait_for(state="visible")
            page.evaluate("document.getElementById('s-tasks').scrollIntoView({block: 'start'})")
            return page.screenshot(full_page=False)
        finally:
            browser.close()


def compress(png: bytes) -> bytes:
    """A 256-colour palette PNG: the page is flat colours and text, so nothing visible is lost."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help="PNG to write (default: %(default)s)")
    args = parser.parse_args(argv)
    from tests.helpers.report_runs import find_browser

    browser_path = find_browser()
    if browser_path is None:
        print("error: no Chromium found (apt-get install chromium, or: playwright install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cure-shot-") as tmp:
        data = compress(screenshot(render_report(Path(tmp)), browser_path))
    if len(data) > MAX_BYTES:
        print(f"error: the screenshot is {len(data):,} bytes (> {MAX_BYTES:,}); nothing written", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    partial.write_bytes(data)
    partial.replace(args.output)
    print(f"wrote {args.output} ({len(data):,} bytes, {VIEWPORT['width']}x{VIEWPORT['height']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
