"""What people see, at 80 and 160 columns: captured with rich consoles of fixed width, never parsed for values."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from cure_bench.cli.progress import RichProgress


@pytest.mark.parametrize("width", [80, 160])
def test_progress_bar_keeps_its_bar_at_width(width: int) -> None:
    console = Console(width=width, record=True, file=io.StringIO())  # not a terminal: one final render
    with RichProgress(console) as progress:
        progress.start("generate (Qwen2.5-Coder-0.5B-Instruct)", 40)
        progress.advance("generate (Qwen2.5-Coder-0.5B-Instruct)", 10, 40)
        progress.finish("generate (Qwen2.5-Coder-0.5B-Instruct)")
    text = console.export_text()
    line = [line for line in text.splitlines() if "generate" in line][-1]
    assert "10/40" in line and len(line) <= width
    assert "━" in line  # the bar itself survives


def test_cli_silences_third_party_progress_bars() -> None:
    """transformers and huggingface_hub draw tqdm bars; under the CLI they must not interleave with ours.

    In a fresh interpreter, as under `cure`: tqdm reads its environment when it is first imported, which the
    CLI defers until a backend loads, after setup_logging.
    """
    code = (
        "import io, os\n"
        "from cure_bench.cli.common import setup_logging\n"
        "setup_logging()\n"
        "from tqdm import tqdm\n"
        "out = io.StringIO()\n"
        "for _ in tqdm(range(3), file=out): pass\n"
        "print(repr(out.getvalue()), os.environ['HF_HUB_DISABLE_PROGRESS_BARS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["''", "1"]


def _help(*command: str, width: int) -> str:
    env = {**os.environ, "COLUMNS": str(width), "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "cure_bench", *command, "--help"], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


@pytest.mark.parametrize("width", [80, 160])
def test_bench_help_is_grouped_and_fits(width: int) -> None:
    text = _help("bench", width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    for panel in ("Models and backends", "Sampling and prompts", "Dataset", "Run directory and output",
                  "Sandbox and judging", "openai backend options", "hf backend options"):  # fmt: skip
        assert f"─ {panel} " in text, panel
    flag_lines = [line for line in text.splitlines() if "--single" in line or "--rerun" in line]
    assert flag_lines and all("<bool>" not in line for line in flag_lines)
    flat = " ".join(text.replace("│", " ").split())
    assert "Default: runs/MODEL-DATASET-TIME" in flat


def test_report_help_names_its_arguments() -> None:
    text = _help("report", width=80)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{RUN_DIR}..." in usage
