"""``cure_bench``'s public names resolve, and importing the package loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import cure_bench


def test_every_exported_name_resolves() -> None:
    missing = [name for name in cure_bench.__all__ if getattr(cure_bench, name, None) is None]
    assert missing == []


def test_import_is_light() -> None:
    code = (
        "import sys, cure_bench, cure_train; "
        "heavy = [m for m in ('numpy', 'torch', 'openai', 'transformers', 'vllm', 'typer') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
