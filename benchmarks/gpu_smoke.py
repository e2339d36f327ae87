"""GPU smoke test of the whole GPU path: `cure bench` on vLLM, `cure train` colocated, under ZeRO-2, with evaluation.

    python benchmarks/gpu_smoke.py              # one CUDA GPU, vllm + deepspeed installed; no downloads
    python benchmarks/gpu_smoke.py --keep DIR   # keep the run directories in DIR

Builds a tiny random Qwen2 on the spot (tests/helpers/tiny_model.py) and a three-task dataset, then runs, each as
the CLI a user would type, with its exit code checked:

1. ``cure bench --backend vllm``: summary.json written, the manifest names vLLM;
2. ``cure train`` for 2 steps with vLLM colocated: 2 log lines, vLLM's importance-sampling metrics in them (they
   exist only with vLLM rollouts), 2 optimizer updates per step (dynamics cure), the last checkpoint loads;
3. the same under ``accelerate launch --config_file cure_train/configs/zero2.yaml --num_processes 1`` (DeepSpeed);
4. 1 step with evaluation every step: a vLLM evaluation engine beside the colocated rollout engine, eval/ metrics
   in the log line and the bench run directory written.

Prints, per stage, wall time, seconds per training step (from train_log.jsonl) and the peak GPU memory seen by
``nvidia-smi`` (polled every 0.2 s). Exits 1 on the first failed check. Meant to take under 8 minutes on one
H100/H200; the tiny model's text is garbage by design: this checks plumbing, not learning.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS = [
    {"question": "Read two integers and print their sum.", "example_input": ["1 1\n"], "example_output": ["2\n"],
     "test_input": ["1 2\n", "5 7\n"], "test_output": ["3\n", "12\n"]},
    {"question": "Read an integer n and print n squared.", "example_input": ["2\n"], "example_output": ["4\n"],
     "test_input": ["3\n", "4\n"], "test_output": ["9\n", "16\n"]},
    {"question": "Read a string and print it reversed.", "example_input": ["ab\n"], "example_output": ["ba\n"],
     "test_input": ["abc\n"], "test_output": ["cba\n"]},
]  # fmt: skip


class PeakMemory:
    """Peak of nvidia-smi's memory.used (MiB, all GPUs summed) while the block runs."""

    def __init__(self) -> None:
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True, text=True, timeout=5, check=False,
                ).stdout  # fmt: skip
                self.peak_mib = max(self.peak_mib, sum(int(x) for x in out.split() if x.strip().isdigit()))
            except (OSError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Failed(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise Failed(what)
    print(f"  ok: {what}")


def run(stage: str, command: list[str], results: list[dict[str, Any]], timeout: int = 300) -> str:
    """Run one CLI command; record wall time and peak memory; fail on a non-zero exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRL_EXPERIMENTAL_SILENCE": "1"}
    print(f"[{stage}] {' '.join(command)}", flush=True)
    started = time.perf_counter()
    with PeakMemory() as memory:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    results.append({"stage": stage, "seconds": seconds, "peak_gpu_mib": memory.peak_mib})
    output = done.stdout + done.stderr
    if done.returncode != 0:
        print(output[-6000:], file=sys.stderr)
    check(done.returncode == 0, f"{stage}: exit code 0 (got {done.returncode})")
    return output


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cure_bench.cli", *args]


def train_config(model: Path, tasks: Path, out: Path, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model": str(model),
        "train_dataset": str(tasks),
        "output_dir": str(out),
        "device": "cuda",
        "total_steps": 2,
        "save_interval": 1,
        "eval_interval": 0,
        "rollout": {"backend": "vllm", "k_code": 4, "k_case": 4, "n_tasks_per_step": 2, "max_new_tokens": 48,
                    "vllm_gpu_memory_utilization": 0.2},
        "optim": {"per_device_batch_size": 4, "gradient_checkpointing": False},
        "reward": {"sandbox_workers": 4},
    }  # fmt: skip
    cfg.update(extra)
    return cfg


def check_training(out: Path, steps: int, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from transformers import AutoModelForCausalLM

    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    check([row["step"] for row in log] == list(range(1, steps + 1)), f"{out.name}: one log line per step")
    check(all(row["update"] == 2 * row["step"] for row in log), f"{out.name}: two optimizer updates per step")
    check(
        all("sampling/importance_sampling_ratio/mean" in row for row in log),
        f"{out.name}: vLLM importance-sampling metrics logged (rollouts came from vLLM)",
    )
    last = out / f"checkpoint-{2 * steps}"
    model = AutoModelForCausalLM.from_pretrained(last)
    check(model.config.num_hidden_layers == 2, f"{out.name}: {last.name} loads with from_pretrained")
    results[-1]["step_s"] = [row.get("step_s") for row in log]
    return log


def stages(work: Path, results: list[dict[str, Any]]) -> None:
    import yaml

    from tests.helpers.tiny_model import build_tiny_model

    model = build_tiny_model(work / "tiny-qwen2")
    tasks = work / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({**t, "test_time_limit": 2}) + "\n" for t in TASKS), encoding="utf-8")

    bench_out = work / "bench"
    run("bench (vLLM)", cli("bench", "--model", str(model), "-d", str(tasks), "--backend", "vllm", "--k-code", "2",
                            "--k-case", "2", "--bon", "2x2", "--max-tokens", "48", "--gpu-memory-utilization", "0.3",
                            "-o", str(bench_out)), results)  # fmt: skip
    summary = json.loads((bench_out / "summary.json").read_text())
    check("vllm" in json.dumps(summary["run"]).lower(), "bench: the manifest names the vLLM backend")

    colocated = work / "train-colocate.yaml"
    colocated.write_text(yaml.safe_dump(train_config(model, tasks, work / "colocate")))
    run("plan", cli("train", str(colocated), "--plan", "--gpus", "1", "--gpu-memory", "80"), results)
    run("train colocated", cli("train", str(colocated)), results)
    log = check_training(work / "colocate", 2, results)
    check((log[0].get("launch") or {}).get("zero_stage") is None, "colocated: no DeepSpeed in the plain launch")

    zero2 = work / "train-zero2.yaml"
    zero2.write_text(yaml.safe_dump(train_config(model, tasks, work / "zero2")))
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                  str(ROOT / "cure_train" / "configs" / "zero2.yaml"), "--num_processes", "1",
                  "-m", "cure_bench.cli", "train", str(zero2)]  # fmt: skip
    run("train ZeRO-2", accelerate, results, timeout=420)
    log = check_training(work / "zero2", 2, results)
    launch = log[0].get("launch") or {}
    check(
        launch.get("distributed") == "DEEPSPEED" and launch.get("zero_stage") == 2,
        f"ZeRO-2: the trainer's accelerator ran DeepSpeed ZeRO stage 2 (log says {launch})",
    )

    evaluated = work / "train-eval.yaml"
    evaluation = {"backend": "vllm", "k_code": 2, "k_case": 2, "bon": "2x2", "max_new_tokens": 32,
                  "backend_options": {"vllm": {"gpu_memory_utilization": 0.2}}}  # fmt: skip
    cfg = train_config(model, tasks, work / "eval", total_steps=1, eval_interval=1, eval_dataset=str(tasks),
                       evaluation=evaluation)  # fmt: skip
    evaluated.write_text(yaml.safe_dump(cfg))
    run("train + evaluation beside the engine", cli("train", str(evaluated)), results)
    log = check_training(work / "eval", 1, results)
    check("eval/code_acc" in log[0], "evaluation: eval/ metrics in the step's log line")
    check(any((work / "eval" / "eval").glob("step-*/bench/summary.json")), "evaluation: bench run directory written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the run directories here instead of a temporary directory")
    args = parser.parse_args()
    missing = [m for m in ("torch", "vllm", "deepspeed", "trl") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"missing: {', '.join(missing)}: pip install 'cure-toolkit[train,vllm,deepspeed]'", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: this smoke test needs one", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="cure-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    code = 0
    try:
        stages(work, results)
    except (Failed, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        code = 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'stage':<40} {'seconds':>8} {'peak GPU MiB':>13}  seconds per step")
    for row in results:
        per_step = ", ".join(f"{s:.1f}" for s in row.get("step_s") or [] if s is not None)
        print(f"{row['stage']:<40} {row['seconds']:>8.1f} {row['peak_gpu_mib']:>13}  {per_step}")
    print(f"total {time.perf_counter() - started:.1f} s; {'ok' if code == 0 else 'FAILED'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
