"""Sample tasks, part 4: dynamic programming (our own statements)."""

from __future__ import annotations

import random

from spec import SampleSpec, code, lines, prose

_rng = random.Random(8)

TASKS: list[SampleSpec] = []


TASKS.append(
    SampleSpec(
        slug="staircase-ways",
        difficulty="easy",
        topic="dp",
        question=prose(
            """
            You climb a staircase of n steps, each move going up 1, 2 or 3 steps. In how many different
            orders of moves can you reach the top exactly? Print the answer modulo 1000000007.

            Input
            One integer n (1 <= n <= 10^5).

            Output
            The number of ways modulo 1000000007.
            """
        ),
        examples=[lines(3), lines(4)],
        hidden=[lines(1), lines(2), lines(10), lines(50), lines(100000)],
        reference=code(
            """
            n = int(input())
            M = 10**9 + 7
            w = [1, 1, 2]
            for i in range(3, n + 1):
                w.append((w[-1] + w[-2] + w[-3]) % M)
            print(w[n])
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="longest-rising",
        difficulty="medium",
        topic="dp",
        time_limit=2.0,
        question=prose(
            """
            Find the length of the longest strictly increasing subsequence of a sequence (the chosen
            elements keep their order but need not be adjacent).

            Input
            The first line holds n (1 <= n <= 2 * 10^4); the second line holds n integers between
            -10^9 and 10^9.

            Output
            The length of the longest strictly increasing subsequence.
            """
        ),
        examples=[lines(8, (10, 9, 2, 5, 3, 7, 101, 18)), lines(4, (7, 7, 7, 7))],
        hidden=[
            lines(1, 42),
            lines(6, (0, 1, 0, 3, 2, 3)),
            lines(5, (5, 4, 3, 2, 1)),
            lines(6, (1, 2, 2, 3, 3, 4)),
            lines(20000, [_rng.randint(-(10**6), 10**6) for _ in range(20000)]),
        ],
        reference=code(
            """
            import bisect

            n = int(input())
            tails = []
            for x in map(int, input().split()):
                i = bisect.bisect_left(tails, x)
                if i == len(tails):
                    tails.append(x)
                else:
                    tails[i] = x
            print(len(tails))
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                a = list(map(int, input().split()))
                best = [1] * n
                for i in range(n):
                    for j in range(i):
                        if a[j] < a[i] and best[j] + 1 > best[i]:
                            best[i] = best[j] + 1
                print(max(best))
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="edit-distance",
        difficulty="medium",
        topic="dp",
        time_limit=2.0,
        question=prose(
            """
            The edit distance between two strings is the smallest number of single-character insertions,
            deletions and substitutions that turn the first into the second. Compute it.

            Input
            Two lines, each with a string of 1 to 500 lowercase letters.

            Output
            The edit distance.
            """
        ),
        examples=[lines("kitten", "sitting"), lines("flaw", "lawn")],
        hidden=[
            lines("a", "a"),
            lines("a", "b"),
            lines("abc", "abcdef"),
            lines("intention", "execution"),
            lines("".join(_rng.choice("ab") for _ in range(400)), "".join(_rng.choice("ab") for _ in range(380))),
        ],
        reference=code(
            """
            a = input().strip()
            b = input().strip()
            prev = list(range(len(b) + 1))
            for i, ca in enumerate(a, 1):
                cur = [i] + [0] * len(b)
                for j, cb in enumerate(b, 1):
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
                prev = cur
            print(prev[-1])
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="backpack",
        difficulty="medium",
        topic="dp",
        time_limit=2.0,
        question=prose(
            """
            You have n items, item i weighing w_i and worth v_i, and a backpack holding total weight at
            most W. Each item is taken whole or not at all. Print the largest total worth that fits.

            Input
            The first line holds n and W (1 <= n <= 100, 1 <= W <= 2000). Each of the next n lines holds
            w_i and v_i (1 <= w_i <= 2000, 0 <= v_i <= 10^9).

            Output
            The maximum total worth.
            """
        ),
        examples=[lines((3, 5), (4, 5), (3, 4), (2, 3)), lines((2, 1), (2, 5), (3, 7))],
        hidden=[
            lines((1, 5), (5, 10)),
            lines((3, 4), (2, 3), (2, 3), (3, 5)),
            lines((4, 10), (5, 10), (4, 40), (6, 30), (3, 50)),
            lines((60, 2000), *[(_rng.randint(1, 300), _rng.randint(0, 10**9)) for _ in range(60)]),
        ],
        reference=code(
            """
            n, W = map(int, input().split())
            best = [0] * (W + 1)
            for _ in range(n):
                w, v = map(int, input().split())
                for cap in range(W, w - 1, -1):
                    if best[cap - w] + v > best[cap]:
                        best[cap] = best[cap - w] + v
            print(best[W])
            """
        ),
        wrong=[
            code(
                """
                n, W = map(int, input().split())
                best = [0] * (W + 1)
                for _ in range(n):
                    w, v = map(int, input().split())
                    for cap in range(w, W + 1):
                        if best[cap - w] + v > best[cap]:
                            best[cap] = best[cap - w] + v
                print(best[W])
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="coin-combinations",
        difficulty="medium",
        topic="dp",
        question=prose(
            """
            Count the ways to pay exactly S using coins of the given values, with an unlimited supply of
            each value. Two ways that use the same number of coins of every value are the same way (the
            order of coins does not matter). Print the count modulo 1000000007.

            Input
            The first line holds k and S (1 <= k <= 100, 0 <= S <= 10^4); the second line holds k distinct
            coin values between 1 and 10^4.

            Output
            The number of ways modulo 1000000007.
            """
        ),
        examples=[lines((1, 10), 5), lines((2, 4), (2, 3))],
        hidden=[
            lines((2, 3), (1, 2)),
            lines((3, 5), (1, 2, 5)),
            lines((1, 3), 2),
            lines((2, 0), (4, 7)),
            lines((4, 10000), (1, 5, 10, 25)),
        ],
        reference=code(
            """
            k, S = map(int, input().split())
            coins = list(map(int, input().split()))
            M = 10**9 + 7
            ways = [1] + [0] * S
            for c in coins:
                for s in range(c, S + 1):
                    ways[s] = (ways[s] + ways[s - c]) % M
            print(ways[S])
            """
        ),
        wrong=[
            code(
                """
                k, S = map(int, input().split())
                coins = list(map(int, input().split()))
                M = 10**9 + 7
                ways = [1] + [0] * S
                for s in range(1, S + 1):
                    for c in coins:
                        if c <= s:
                            ways[s] = (ways[s] + ways[s - c]) % M
                print(ways[S])
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="best-stretch",
        difficulty="easy",
        topic="dp",
        question=prose(
            """
            Given daily profits (possibly negative), find the largest total of a non-empty run of
            consecutive days.

            Input
            The first line holds n (1 <= n <= 10^5); the second line holds n integers between -10^9 and
            10^9.

            Output
            The largest sum of a non-empty contiguous run.
            """
        ),
        examples=[lines(9, (-2, 1, -3, 4, -1, 2, 1, -5, 4)), lines(1, 5)],
        hidden=[
            lines(3, (-3, -1, -2)),
            lines(1, -7),
            lines(5, (1, 2, 3, 4, 5)),
            lines(4, (10**9, -1, 10**9, -(10**9))),
            lines(500, [_rng.randint(-100, 90) for _ in range(500)]),
        ],
        reference=code(
            """
            n = int(input())
            best = cur = None
            for x in map(int, input().split()):
                cur = x if cur is None or cur < 0 else cur + x
                best = cur if best is None else max(best, cur)
            print(best)
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                best = cur = 0
                for x in map(int, input().split()):
                    cur = max(0, cur + x)
                    best = max(best, cur)
                print(best)
                """
            )
        ],
    )
)
