"""Does ``--rpm R`` hold, and does it leave throughput on the table?

Runs the OpenAI backend against the scripted local server (tests/helpers/fake_openai.py) twice:
without a limit (baseline) and with ``--rpm R``. The 60-second window is scaled down (``--window``,
default 6 s) so the whole benchmark takes well under a minute; the limiter is the same code with
``rpm_window_s`` as its window. Request times are taken at the server, an observer independent of
the client. Prints, for the limited run:

* achieved rate / limit as a ratio (target >= 0.90; the limiter spaces requests 1% wider than
  window/R on purpose, so about 0.99 is the ceiling);
* the most requests the server saw in any sliding window (must be <= R);
and the baseline's rate, as a multiple of the limit, to show the limit was the binding constraint.
With ``--fault-every K`` every K-th request gets a 429, to show retries are rate limited too.

    python benchmarks/rate_limit.py --rpm 120 --window 6
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers when run as a script

from cure_bench.generation.backends.openai_backend import OpenAIGenerator
from cure_bench.generation.cache import GenerationCache
from cure_bench.generation.runner import generate_all
from cure_bench.types import SamplingParams
from tests.helpers.fake_openai import FakeOpenAIServer


def run_once(n_requests: int, rpm: float | None, window: float, args: argparse.Namespace) -> list[float]:
    """Send ``n_requests`` one-sample requests; return the server-side arrival times of every attempt."""
    faults = (lambda i: 429 if (i + 1) % args.fault_every == 0 else None) if args.fault_every else None
    with (
        FakeOpenAIServer(default_answer="ok", latency=args.latency, faults=faults) as srv,
        tempfile.TemporaryDirectory() as tmp,
    ):
        gen = OpenAIGenerator(
            "bench-model", base_url=srv.base_url, rpm=rpm, rpm_window_s=window, concurrency=args.concurrency
        )
        prompts = [((("user", f"request {i}"),), 1) for i in range(n_requests)]
        with GenerationCache(Path(tmp) / "c.sqlite") as cache:
            generate_all(gen, cache, prompts, SamplingParams(max_tokens=8))
        gen.close()
        return sorted(r.time for r in srv.requests)


def rate_per_window(times: list[float], window: float) -> float:
    span = times[-1] - times[0]
    return (len(times) - 1) / span * window if span > 0 else float("inf")


def max_in_sliding_window(times: list[float], window: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description="--rpm: achieved rate and window bound against a local server")
    parser.add_argument("--rpm", type=float, default=120, help="requests per (scaled) window")
    parser.add_argument("--window", type=float, default=6.0, help="seconds standing in for 60")
    parser.add_argument("--windows", type=float, default=3.0, help="how many windows the limited run lasts")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, s")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--fault-every", type=int, default=0, help="answer every K-th request with a 429")
    args = parser.parse_args()

    n_limited = int(args.rpm * args.windows) + 1
    start = time.monotonic()
    base = run_once(n_limited, None, args.window, args)
    limited = run_once(n_limited, args.rpm, args.window, args)
    elapsed = time.monotonic() - start

    base_rate = rate_per_window(base, args.window)
    achieved = rate_per_window(limited, args.window)
    worst = max_in_sliding_window(limited, args.window)
    ratio = achieved / args.rpm
    print(
        f"rate limit benchmark: window {args.window:g} s stands for 60 s; {n_limited} requests per run, "
        f"concurrency {args.concurrency}, server latency {args.latency * 1000:.0f} ms"
        + (f", 429 on every {args.fault_every}th request" if args.fault_every else "")
    )
    print(f"  baseline (no --rpm)    {base_rate:10.1f} req/window   = {base_rate / args.rpm:6.2f} x the limit")
    print(
        f"  --rpm {args.rpm:<8g}         {achieved:10.1f} req/window   = {ratio:6.3f} of the limit "
        f"(target >= 0.90) {'OK' if ratio >= 0.90 else 'LOW'}"
    )
    print(
        f"  max in any sliding window: {worst} requests (limit {args.rpm:g}) "
        f"{'OK' if worst <= args.rpm else 'EXCEEDED'}; {len(limited)} attempts in {elapsed:.1f} s total"
    )
    return 0 if ratio >= 0.90 and worst <= args.rpm else 1


if __name__ == "__main__":
    sys.exit(main())
