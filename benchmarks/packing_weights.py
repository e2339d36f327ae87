"""How far `cure train`'s token mean is from the authors' mean over packed rows (docs/fidelity.md).

Upstream packs each update's answers greedily into rows of ``packing_max_len`` (20,000) tokens, prompt plus
answer, takes the token mean of each row and then the mean over rows, so an answer's weight in the gradient is
``tokens / row tokens / rows``. `optim.loss_type: dapo` takes one mean over every kept token (weight
``tokens / all tokens``). This script draws answer lengths, packs them the upstream way and prints how much
gradient weight moves between the two weightings (total variation) and the largest per-token weight ratio.

    python benchmarks/packing_weights.py [--answers 3200] [--prompt 600] [--trials 20]
"""

from __future__ import annotations

import argparse
import random
import statistics


def pack(lengths: list[int], prompt: int, row_tokens: int) -> list[list[int]]:
    """Upstream's greedy packing: start a new row when the next sequence would not fit."""
    rows: list[list[int]] = []
    current: list[int] = []
    used = 0
    for length in lengths:
        if current and used + prompt + length > row_tokens:
            rows.append(current)
            current, used = [], 0
        current.append(length)
        used += prompt + length
    if current:
        rows.append(current)
    return rows


def weight_gap(lengths: list[int], prompt: int, row_tokens: int) -> tuple[float, float]:
    """(total variation between the two per-answer weightings, max upstream / ours per-token weight)."""
    rows = pack(lengths, prompt, row_tokens)
    total = sum(lengths)
    variation, worst = 0.0, 0.0
    for row in rows:
        in_row = sum(row)
        for length in row:
            ours = length / total
            upstream = length / in_row / len(rows)
            variation += abs(ours - upstream)
            worst = max(worst, upstream / ours)
    return variation / 2, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=3200, help="answers per update (the paper: 3,200 per step)")
    parser.add_argument("--prompt", type=int, default=600, help="prompt tokens per answer")
    parser.add_argument("--row-tokens", type=int, default=20000, help="upstream packing_max_len")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    print(f"{'answer lengths':<16} {'rows':>6} {'weight moved':>13} {'max token weight ratio':>23}")
    for low, high in ((200, 4000), (500, 8000), (2000, 8000)):
        results = []
        for trial in range(args.trials):
            rng = random.Random(trial)
            lengths = [rng.randint(low, high) for _ in range(args.answers)]
            rows = len(pack(lengths, args.prompt, args.row_tokens))
            results.append((rows, *weight_gap(lengths, args.prompt, args.row_tokens)))
        rows_mean = statistics.mean(r[0] for r in results)
        moved = statistics.mean(r[1] for r in results)
        worst = max(r[2] for r in results)
        print(f"{low:>6}-{high:<9} {rows_mean:>6.0f} {moved:>12.1%} {worst:>22.1f}x")


if __name__ == "__main__":
    main()
