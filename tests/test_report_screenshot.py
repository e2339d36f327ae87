"""The README's screenshot of report.html is made by docs/img/report_screenshot.py, and the README shows it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.helpers.report_runs import find_browser

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "img" / "report_screenshot.py"


def _script() -> object:
    spec = importlib.util.spec_from_file_location("report_screenshot", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_committed_screenshot() -> None:
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert "docs/img/report.png" in images
    png = ROOT / "docs" / "img" / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size <= _script().MAX_BYTES  # type: ignore[attr-defined]


@pytest.mark.slow
def test_script_writes_a_real_picture_of_the_page(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[dev]'")
    if find_browser() is None:
        pytest.skip("no Chromium found (.ci/run installs Debian's: apt-get install chromium)")
    from PIL import Image, ImageStat

    out = tmp_path / "shot.png"
    assert _script().main(["-o", str(out)]) == 0  # type: ignore[attr-defined]
    image = Image.open(out)
    assert image.size == (1280, 1000)
    assert ImageStat.Stat(image.convert("L")).var[0] > 100  # not blank
    # the drill-down is open: its verdict grid's green (accepted) and red (wrong_answer) cells are in the picture
    colours = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 16) or []}
    assert any(g > 120 and r < 90 and b < 90 for r, g, b in colours)
    assert any(r > 180 and g < 80 and b < 80 for r, g, b in colours)
    assert not list(tmp_path.glob("*.partial"))
