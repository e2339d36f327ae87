"""How long the README's quick-start command 1 takes on this machine (issue 18: under 5 minutes on 2 cores).

The hub is out of reach here, so the command runs as written with one change: ``--model`` points at a
randomly initialised model with Qwen2.5-Coder-0.5B-Instruct's shapes (24 layers, hidden 896, MLP 4,864, 14
heads, 2 KV heads), built on the spot with the test tokenizer (its vocabulary is small, so the embedding
matrix, 136M of the real model's 494M parameters, is left out). Random weights rarely stop early, so every
answer runs to ``--max-tokens``: an upper bound on a real model's time. The install steps are not timed.

    python benchmarks/quickstart_time.py [--shape tiny]    # tiny: the 2-layer test model

Prints the command's wall time beside the 300 s budget, as a ratio.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300.0
QWEN25_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "initializer_range": 0.02,
}


def readme_command_one() -> list[str]:
    """The `cure bench` line of the README's quick-start step 1, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```", 2)[1]
    joined = block.replace("\\\n", " ")
    line = next(part for part in joined.splitlines() if "cure bench" in part)
    words = shlex.split(line.split("&&", 1)[1] if "&&" in line else line)
    if words[:2] != ["cure", "bench"]:
        raise SystemExit(f"README quick start: expected `cure bench ...`, found {line!r}")
    return words[2:]


def with_model(args: list[str], model: Path, out: Path) -> list[str]:
    replaced = list(args)
    replaced[replaced.index("--model") + 1] = str(model)
    return [*replaced, "-o", str(out), "--yes"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["0.5b", "tiny"], default="0.5b")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.helpers.tiny_model import build_tiny_model

    bench_args = readme_command_one()
    with tempfile.TemporaryDirectory(prefix="cure-quickstart-") as tmp:
        work = Path(tmp)
        model = build_tiny_model(work / "model", shape=QWEN25_05B if args.shape == "0.5b" else None)
        command = [sys.executable, "-m", "cure_bench.cli", "bench", *with_model(bench_args, model, work / "run")]
        print("running:", shlex.join(command), flush=True)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=work, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        job = [line for line in (done.stdout + done.stderr).splitlines() if "job:" in line]
        print(*job[:1], sep="\n")
        if done.returncode != 0:
            print((done.stdout + done.stderr)[-4000:], file=sys.stderr)
            print(f"command 1 failed with exit code {done.returncode}", file=sys.stderr)
            return 1
    print(f"load average at start {load:.2f} on {os.cpu_count()} cores")
    print(f"command 1 ({args.shape} model): {seconds:.1f} s; budget {BUDGET_S:.0f} s; ratio {seconds / BUDGET_S:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
