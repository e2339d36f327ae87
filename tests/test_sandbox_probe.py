"""The start-up probe program itself: it must answer, not crash, where the toolkit sits out of the program's reach.

A newcomer's clone under a 0700 directory (pytest's own temp dirs are) leaves an editable-install finder that
points into it; for the program uid ``find_spec('cure_bench')`` then raises PermissionError. The probe must
report the toolkit as not importable (an import fails the same way) instead of failing, which made the
``rlimits`` level refuse to start. The probe is our own trusted code, so it runs here in a plain interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cure_bench.sandbox.pool import _PROBE

FINDER = """
import sys

class Unreachable:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "cure_bench":
            raise PermissionError(13, "Permission denied", "/home/someone/private/cure_bench/__init__.py")
        return None

sys.meta_path.insert(0, Unreachable)
"""


def run_probe(tmp_path: Path, with_finder: bool) -> subprocess.CompletedProcess[str]:
    prelude = FINDER if with_finder else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + _PROBE],
        input=json.dumps([str(tmp_path)]),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_probe_reports_an_unreachable_toolkit_as_not_importable(tmp_path: Path) -> None:
    done = run_probe(tmp_path, with_finder=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["toolkit"] is False
    assert seen["seen"][str(tmp_path)][2] is True  # the rest of the probe still ran


def test_probe_reports_an_importable_toolkit(tmp_path: Path) -> None:
    done = run_probe(tmp_path, with_finder=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["toolkit"] is True  # this environment has cure_bench installed
