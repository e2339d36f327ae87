"""GPU smoke test of the whole GPU path: transformers and vLLM generation, `cure train` colocated, ZeRO-2, evaluation.

    python benchmarks/gpu_smoke.py              # one CUDA GPU; no downloads
    python benchmarks/gpu_smoke.py --keep DIR   # keep the run directories in DIR

Builds a tiny random Qwen2 on the spot (tests/helpers/tiny_model.py) and a three-task dataset, then runs:

0. the ``hf`` backend on CUDA in bfloat16, in this process: the weights really are bf16 on the GPU, then the checks
   of tests/helpers/engine_checks.py (batched generation with the n samples of a prompt differing, greedy with
   n > 1, the max_tokens clip, a real Ctrl-C with a resume asking only for the rest, GPU memory freed by close(),
   no process left); then ``cure bench --backend hf --device cuda --dtype bfloat16`` as a user types it,
   interrupted by SIGINT once samples are saved (exit 130), re-run to completion (exit 0) keeping every sample
   saved before the interrupt;

and then, each as the CLI a user would type, with its exit code checked:

1. ``cure bench --backend vllm``: summary.json written, the manifest names vLLM;
2. ``cure train`` for 2 steps with vLLM colocated: 2 log lines, vLLM's importance-sampling metrics in them (they
   exist only with vLLM rollouts), 2 optimizer updates per step (dynamics cure), the last checkpoint loads;
3. the same under ``accelerate launch --config_file cure_train/configs/zero2.yaml --num_processes 1`` (DeepSpeed);
4. 1 step with evaluation every step: a vLLM evaluation engine beside the colocated rollout engine, eval/ metrics
   in the log line and the bench run directory written.

Stages whose packages are missing are skipped, each with a line saying what is missing (vLLM cannot be installed
on every GPU machine; the hf stage needs only torch and transformers). Prints, per stage, wall time, seconds per
training step (from train_log.jsonl) and the peak GPU memory seen by ``nvidia-smi`` (polled every 0.2 s). Exits 1
on the first failed check, 2 without a CUDA GPU or when every stage was skipped. Meant to take under 8 minutes on
one H100/H200; the tiny model's text is garbage by design: this checks plumbing, not learning.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
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


def check_training(out: Path, steps: int, results: list[dict[str, Any]], vllm: bool = True) -> list[dict[str, Any]]:
    from transformers import AutoModelForCausalLM

    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    check([row["step"] for row in log] == list(range(1, steps + 1)), f"{out.name}: one log line per step")
    check(all(row["update"] == 2 * row["step"] for row in log), f"{out.name}: two optimizer updates per step")
    sampled = [("sampling/importance_sampling_ratio/mean" in row) for row in log]
    if vllm:
        check(all(sampled), f"{out.name}: vLLM importance-sampling metrics logged (rollouts came from vLLM)")
    else:
        check(not any(sampled), f"{out.name}: no vLLM metrics (rollouts came from transformers)")
    last = out / f"checkpoint-{2 * steps}"
    model = AutoModelForCausalLM.from_pretrained(last)
    check(model.config.num_hidden_layers == 2, f"{out.name}: {last.name} loads with from_pretrained")
    results[-1]["step_s"] = [row.get("step_s") for row in log]
    return log


HF_DEVICE = "cuda"  # --cpu-dry-run sets "cpu": the same stage, to check this script on a machine without a GPU


def hf_stage(model: Path, tasks: Path, work: Path, results: list[dict[str, Any]]) -> None:
    """The transformers backend on CUDA in bf16: the shared engine checks in process, then Ctrl-C and resume by CLI."""
    import torch

    from cure_bench.generation.backends.hf_backend import HFGenerator
    from tests.helpers import engine_checks

    def make() -> HFGenerator:
        return HFGenerator(str(model), device=HF_DEVICE, dtype="bfloat16", batch_size=8)

    started = time.perf_counter()
    if HF_DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with PeakMemory() as memory:
        probe = make()
        try:
            probe.generate([], lambda *a: None)
            probe._load()
            weights = next(probe._model.parameters())
            check(
                weights.dtype == torch.bfloat16 and weights.device.type == HF_DEVICE,
                f"hf: weights load as {weights.dtype} on {weights.device}",
            )
        finally:
            probe.close()
        failed = []
        for result in engine_checks.run_all(make, per_request=False, same_samples=False):  # type: ignore[arg-type]
            print(result.line(), flush=True)
            if not result.passed:
                failed.append(result.name)
    results.append({"stage": "hf on CUDA, bf16 (checks)", "seconds": time.perf_counter() - started,
                    "peak_gpu_mib": memory.peak_mib})  # fmt: skip
    if HF_DEVICE == "cuda":
        print(f"  torch peak allocated {torch.cuda.max_memory_allocated() >> 20} MiB")
    check(not failed, f"hf: every engine check passed (failed: {failed})")

    out = work / "bench-hf"
    command = cli("bench", "--model", str(model), "-d", str(tasks), "--backend", "hf", "--device", HF_DEVICE,
                  "--dtype", "bfloat16", "--batch-size", "2", "--k-code", "8", "--k-case", "8", "--bon", "8x8",
                  "--max-tokens", "64", "--seed", "1", "-o", str(out))  # fmt: skip
    total = len(TASKS) * 16
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"[hf Ctrl-C] {' '.join(command)}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while proc.poll() is None and saved_samples(out) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    kept = sample_rows(out)
    check(
        proc.returncode == 130,
        f"hf Ctrl-C: exit code 130 (got {proc.returncode}{'; ' + stderr[-400:] if proc.returncode != 130 else ''})",
    )
    check(0 < len(kept) < total, f"hf Ctrl-C: {len(kept)} of {total} samples saved before the interrupt")
    check(not (out / "summary.json").exists(), "hf Ctrl-C: no summary.json for the interrupted run")
    run("hf resume", command, results)
    after = sample_rows(out)
    check(len(after) == total, f"hf resume: all {total} samples in the cache")
    check(all(after.get(k) == v for k, v in kept.items()), "hf resume: every sample saved before Ctrl-C kept as is")
    results[-1].update(stage="hf Ctrl-C + resume (CLI)", seconds=time.perf_counter() - started)


def saved_samples(run_dir: Path) -> int:
    return len(sample_rows(run_dir))


def sample_rows(run_dir: Path) -> dict[tuple[str, int], str]:
    """The generation cache's samples ((request key, index) -> text), read-only; {} before it exists."""
    path = run_dir / "generations.sqlite"
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return {(k, int(i)): t for k, i, t in db.execute("SELECT key, idx, text FROM samples")}
    except sqlite3.Error:
        return {}


def vllm_stages(model: Path, tasks: Path, work: Path, results: list[dict[str, Any]]) -> None:
    bench_out = work / "bench"
    run("bench (vLLM)", cli("bench", "--model", str(model), "-d", str(tasks), "--backend", "vllm", "--k-code", "2",
                            "--k-case", "2", "--bon", "2x2", "--max-tokens", "48", "--gpu-memory-utilization", "0.3",
                            "-o", str(bench_out)), results)  # fmt: skip
    summary = json.loads((bench_out / "summary.json").read_text())
    check("vllm" in json.dumps(summary["run"]).lower(), "bench: the manifest names the vLLM backend")


def train_stages(model: Path, tasks: Path, work: Path, results: list[dict[str, Any]]) -> None:
    import yaml

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


def train_hf_stage(model: Path, tasks: Path, work: Path, results: list[dict[str, Any]]) -> None:
    """2 CURE steps with transformers rollouts on CUDA (what a GPU without vLLM can train): bf16 weights."""
    import yaml

    cfg = train_config(model, tasks, work / "train-hf")
    cfg["rollout"] = {k: v for k, v in cfg["rollout"].items() if not k.startswith("vllm_")} | {"backend": "hf"}
    config = work / "train-hf.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run("train, transformers rollouts", cli("train", str(config)), results)
    log = check_training(work / "train-hf", 2, results, vllm=False)
    check((log[0].get("launch") or {}).get("zero_stage") is None, "train-hf: no DeepSpeed in the plain launch")


STAGES = [
    ("hf on CUDA (bf16)", ("torch", "transformers"), hf_stage),
    ("train with transformers rollouts", ("trl",), train_hf_stage),
    ("bench on vLLM", ("vllm",), vllm_stages),
    ("train with vLLM rollouts, ZeRO-2, evaluation", ("trl", "vllm", "deepspeed"), train_stages),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the run directories here instead of a temporary directory")
    parser.add_argument("--cpu-dry-run", action="store_true", help="run only the hf stage, on CPU (checks the script)")
    args = parser.parse_args()
    global HF_DEVICE
    if args.cpu_dry_run:
        HF_DEVICE = "cpu"
    if importlib.util.find_spec("torch") is None:
        print("missing: torch: pip install 'cure-toolkit[hf]'", file=sys.stderr)
        return 2
    from cure_bench.generation.backends.cuda_probe import cuda_device_count

    if cuda_device_count() == 0 and not args.cpu_dry_run:  # NVML: is_available() would poison vLLM's fork
        print("no CUDA GPU: this smoke test needs one", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="cure-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    started = time.perf_counter()
    code = 0
    try:
        from tests.helpers.tiny_model import build_tiny_model

        model = build_tiny_model(work / "tiny-qwen2")
        tasks = work / "tasks.jsonl"
        tasks.write_text("".join(json.dumps({**t, "test_time_limit": 2}) + "\n" for t in TASKS), encoding="utf-8")
        for name, needs, stage in STAGES[:1] if args.cpu_dry_run else STAGES:
            missing = [m for m in needs if importlib.util.find_spec(m) is None]
            if missing:
                print(f"SKIPPED {name}: {', '.join(missing)} not installed on this machine", flush=True)
                skipped.append(name)
                continue
            print(f"== {name}", flush=True)
            stage(model, tasks, work, results)
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
    if code == 0 and not results:
        code = 2
    status = "FAILED" if code == 1 else ("nothing ran" if code == 2 else "ok")
    print(
        f"total {time.perf_counter() - started:.1f} s; {status}"
        + (f"; skipped: {'; '.join(skipped)}" if skipped else "")
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
