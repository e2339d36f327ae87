"""Smoke-test and time the vLLM backend against the transformers backend on the same prompts.

    python benchmarks/vllm_smoke.py                       # tiny random Qwen2 built on the spot
    python benchmarks/vllm_smoke.py --model Qwen/Qwen2.5-Coder-0.5B-Instruct --prompts 64 --k 8
    python benchmarks/vllm_smoke.py --gpu-groups "[[0],[1]]" --baseline none

First runs the engine checks of tests/helpers/engine_checks.py on vLLM (the n samples of a prompt differ, greedy
with n > 1 repeats one answer, max_tokens clips, each request is delivered when it finishes, Ctrl-C keeps what
finished and a resume asks only for the rest and draws the same samples, close() frees the GPU memory, no process
is left), then prints generated tokens per second for each backend and the ratio vLLM / transformers. Engine
start-up and model loading are excluded from the timing (a one-prompt warm-up runs first). Exits 1 when a check
fails or a backend returns fewer samples than asked, 2 without vllm or a CUDA GPU. The tiny model's text is
garbage by design: this checks plumbing and measures throughput, not quality.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cure_bench.errors import CureError
from cure_bench.types import Completion, GenerationRequest, SamplingParams


def make_requests(n_prompts: int, k: int, params: SamplingParams) -> list[GenerationRequest]:
    """Prompts of varied length, like a mix of coder and tester prompts."""
    requests = []
    for i in range(n_prompts):
        question = f"Problem {i}: read n integers and print their sum. " * (1 + i % 5)
        messages = (("system", "You are a careful Python programmer."), ("user", question))
        requests.append(GenerationRequest(f"bench-{i}", messages, params, tuple(range(k))))
    return requests


def timed(gen, requests: list[GenerationRequest]) -> tuple[float, list[Completion]]:
    """Seconds for one generate call over all requests (after a warm-up that loads the model)."""
    gen.generate(requests[:1], lambda *a: None)
    got: list[Completion] = []
    start = time.perf_counter()
    gen.generate(requests, lambda r, i, c: got.append(c))
    return time.perf_counter() - start, got


def report(name: str, seconds: float, samples: list[Completion], expected: int) -> tuple[float, bool]:
    """Print one backend's row; the rate and whether every sample asked for came back."""
    tokens = sum(c.tokens or 0 for c in samples)
    rate = tokens / seconds if seconds > 0 else float("nan")
    complete = len(samples) == expected
    status = "ok" if complete else f"MISSING {expected - len(samples)}"
    print(f"{name:<14} {len(samples):>8} {tokens:>10} {seconds:>9.2f} {rate:>12.1f}  {status}")
    return rate, complete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory or hub id (default: a tiny random Qwen2 built now)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--gpu-groups", default=None, help='e.g. "[[0],[1]]"')
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    parser.add_argument("--baseline", choices=["hf", "none"], default="hf")
    parser.add_argument("--skip-checks", action="store_true", help="only time the backends")
    args = parser.parse_args()

    if importlib.util.find_spec("vllm") is None:
        print("vllm is not installed: pip install 'cure-toolkit[vllm]'", file=sys.stderr)
        return 2
    from cure_bench.generation.backends.cuda_probe import cuda_device_count

    if cuda_device_count() == 0:  # NVML: never torch.cuda.is_available() before vLLM starts (it would fork)
        print("no CUDA GPU visible: this smoke test needs one", file=sys.stderr)
        return 2
    from cure_bench.generation.backends.hf_backend import HFGenerator
    from cure_bench.generation.backends.vllm_backend import VLLMGenerator

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from tests.helpers.tiny_model import build_tiny_model

            model = str(build_tiny_model(Path(tmp) / "tiny-qwen2"))
        params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=0)
        requests = make_requests(args.prompts, args.k, params)
        expected = args.prompts * args.k
        print(
            f"model {args.model or 'tiny random Qwen2'}: {args.prompts} prompts x {args.k} samples, "
            f"max_tokens {args.max_tokens}"
        )
        failed = False
        if not args.skip_checks:
            from tests.helpers import engine_checks

            def make() -> VLLMGenerator:
                return VLLMGenerator(
                    model, gpu_groups=args.gpu_groups, gpu_memory_utilization=args.gpu_memory_utilization
                )

            print("engine checks (vllm):")
            for result in engine_checks.run_all(make, per_request=True, same_samples=True):  # type: ignore[arg-type]
                print(result.line(), flush=True)
                failed = failed or not result.passed
        print(f"{'backend':<14} {'samples':>8} {'tokens':>10} {'seconds':>9} {'tokens/s':>12}")
        try:
            vllm_gen = VLLMGenerator(
                model, gpu_groups=args.gpu_groups, gpu_memory_utilization=args.gpu_memory_utilization
            )
            try:
                vllm_rate, complete = report("vllm", *timed(vllm_gen, requests), expected)
                failed = failed or not complete
            finally:
                vllm_gen.close()
            if args.baseline == "hf":
                hf_gen = HFGenerator(model, device="cuda", batch_size=64)
                try:
                    hf_rate, complete = report("transformers", *timed(hf_gen, requests), expected)
                    failed = failed or not complete
                finally:
                    hf_gen.close()
                print(f"ratio vllm / transformers: {vllm_rate / hf_rate:.2f}x")
        except CureError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if failed:
            print("FAILED: a check failed or samples are missing (see above)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
