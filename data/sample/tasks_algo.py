"""Sample tasks, part 3: sorting and greedy (our own statements)."""

from __future__ import annotations

import random

from spec import SampleSpec, code, lines, prose

_rng = random.Random(7)

TASKS: list[SampleSpec] = []


def _intervals(n: int, span: int, rng: random.Random) -> list[tuple[int, int]]:
    out = []
    for _ in range(n):
        a = rng.randint(0, span)
        out.append((a, a + rng.randint(1, span // 10 + 1)))
    return out


def _interval_input(items: list[tuple[int, int]]) -> str:
    return lines(len(items), *items)


TASKS.append(
    SampleSpec(
        slug="frequency-sort",
        difficulty="easy",
        topic="sorting",
        question=prose(
            """
            Sort a list of integers so that values occurring more often come first; values occurring
            equally often are ordered from smallest to largest. Equal values stay together.

            Input
            The first line holds n (1 <= n <= 10^5); the second line holds n integers between -10^9 and
            10^9.

            Output
            The n integers in the required order, separated by spaces.
            """
        ),
        examples=[lines(6, (4, 6, 4, 2, 6, 4)), lines(3, (3, 2, 1))],
        hidden=[
            lines(1, 5),
            lines(5, (-1, -1, 2, 2, 0)),
            lines(7, (9, 8, 7, 9, 8, 9, 7)),
            lines(8, (5, 5, 5, 5, 1, 1, 1, 1)),
            lines(300, [_rng.randint(-5, 5) for _ in range(300)]),
        ],
        reference=code(
            """
            from collections import Counter

            n = int(input())
            a = list(map(int, input().split()))
            cnt = Counter(a)
            print(*sorted(a, key=lambda x: (-cnt[x], x)))
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="kth-distinct",
        difficulty="easy",
        topic="sorting",
        question=prose(
            """
            Among the distinct values of a list, print the k-th smallest (k = 1 is the minimum). If the
            list has fewer than k distinct values, print -1.

            Input
            The first line holds n and k (1 <= n, k <= 10^5); the second line holds n integers between
            -10^9 and 10^9.

            Output
            The k-th smallest distinct value, or -1.
            """
        ),
        examples=[lines((5, 2), (7, 3, 7, 1, 3)), lines((3, 1), (10, 20, 30))],
        hidden=[
            lines((4, 3), (2, 2, 2, 2)),
            lines((4, 2), (5, 5, -5, -5)),
            lines((6, 4), (1, 2, 3, 3, 2, 1)),
            lines((5, 5), (9, 8, 7, 6, 5)),
            lines((3, 1), (-1000000000, 0, 1000000000)),
        ],
        reference=code(
            """
            n, k = map(int, input().split())
            vals = sorted(set(map(int, input().split())))
            print(vals[k - 1] if k <= len(vals) else -1)
            """
        ),
        wrong=[
            code(
                """
                n, k = map(int, input().split())
                vals = sorted(map(int, input().split()))
                print(vals[k - 1] if k <= len(vals) else -1)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="merge-intervals",
        difficulty="medium",
        topic="sorting",
        question=prose(
            """
            Closed intervals [l, r] on a line are merged whenever they overlap or touch (share an end
            point). Print the merged intervals from left to right.

            Input
            The first line holds n (1 <= n <= 10^5). Each of the next n lines holds two integers l and r
            (0 <= l <= r <= 10^9).

            Output
            First the number m of merged intervals, then m lines "l r" in increasing order.
            """
        ),
        examples=[lines(3, (1, 3), (2, 6), (8, 10)), lines(2, (5, 7), (1, 2))],
        hidden=[
            lines(2, (1, 3), (3, 5)),
            lines(1, (4, 4)),
            lines(3, (1, 10), (2, 3), (4, 5)),
            lines(4, (5, 6), (1, 2), (2, 3), (7, 7)),
            _interval_input(_intervals(40, 200, _rng)),
        ],
        reference=code(
            """
            import sys

            data = sys.stdin.read().split()
            n = int(data[0])
            items = sorted((int(data[1 + 2 * i]), int(data[2 + 2 * i])) for i in range(n))
            merged = []
            for l, r in items:
                if merged and l <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], r)
                else:
                    merged.append([l, r])
            print(len(merged))
            for l, r in merged:
                print(l, r)
            """
        ),
        wrong=[
            code(
                """
                import sys

                data = sys.stdin.read().split()
                n = int(data[0])
                items = sorted((int(data[1 + 2 * i]), int(data[2 + 2 * i])) for i in range(n))
                merged = []
                for l, r in items:
                    if merged and l < merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], r)
                    else:
                        merged.append([l, r])
                print(len(merged))
                for l, r in merged:
                    print(l, r)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="meeting-rooms",
        difficulty="medium",
        topic="sorting",
        question=prose(
            """
            Meetings occupy half-open time ranges [s, e): a meeting ending at time t and another starting
            at time t can use the same room. Find the smallest number of rooms that hosts all meetings.

            Input
            The first line holds n (1 <= n <= 10^5). Each of the next n lines holds s and e
            (0 <= s < e <= 10^9).

            Output
            The minimum number of rooms.
            """
        ),
        examples=[lines(3, (0, 30), (5, 10), (15, 20)), lines(2, (7, 10), (2, 4))],
        hidden=[
            lines(2, (1, 5), (5, 9)),
            lines(3, (1, 2), (2, 3), (3, 4)),
            lines(4, (1, 10), (2, 9), (3, 8), (4, 7)),
            lines(1, (0, 1)),
            _interval_input(_intervals(60, 500, _rng)),
        ],
        reference=code(
            """
            import sys

            data = sys.stdin.read().split()
            n = int(data[0])
            events = []
            for i in range(n):
                s, e = int(data[1 + 2 * i]), int(data[2 + 2 * i])
                events.append((s, 1))
                events.append((e, -1))
            events.sort()  # at equal times the end (-1) sorts before the start (+1)
            cur = best = 0
            for _, d in events:
                cur += d
                best = max(best, cur)
            print(best)
            """
        ),
        wrong=[
            code(
                """
                import sys

                data = sys.stdin.read().split()
                n = int(data[0])
                events = []
                for i in range(n):
                    s, e = int(data[1 + 2 * i]), int(data[2 + 2 * i])
                    events.append((s, 0))
                    events.append((e, 1))
                events.sort()
                cur = best = 0
                for _, kind in events:
                    cur += 1 if kind == 0 else -1
                    best = max(best, cur)
                print(best)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="most-talks",
        difficulty="medium",
        topic="greedy",
        question=prose(
            """
            A conference has n talks, talk i running over the half-open range [s_i, e_i). You can attend a
            talk only from its start to its end, and only one talk at a time (a talk may start exactly when
            the previous one ends). What is the largest number of talks you can attend?

            Input
            The first line holds n (1 <= n <= 10^5). Each of the next n lines holds s_i and e_i
            (0 <= s_i < e_i <= 10^9).

            Output
            The maximum number of talks.
            """
        ),
        examples=[lines(3, (1, 2), (2, 3), (3, 4)), lines(3, (1, 3), (2, 4), (3, 5))],
        hidden=[
            lines(3, (0, 100), (1, 2), (3, 4)),
            lines(1, (5, 6)),
            lines(4, (1, 4), (2, 3), (3, 5), (4, 6)),
            lines(5, (0, 10), (10, 20), (5, 15), (15, 25), (20, 30)),
            _interval_input(_intervals(80, 1000, _rng)),
        ],
        reference=code(
            """
            import sys

            data = sys.stdin.read().split()
            n = int(data[0])
            talks = sorted(((int(data[1 + 2 * i]), int(data[2 + 2 * i])) for i in range(n)), key=lambda t: t[1])
            count, free_at = 0, -1
            for s, e in talks:
                if s >= free_at:
                    count += 1
                    free_at = e
            print(count)
            """
        ),
        wrong=[
            code(
                """
                import sys

                data = sys.stdin.read().split()
                n = int(data[0])
                talks = sorted((int(data[1 + 2 * i]), int(data[2 + 2 * i])) for i in range(n))
                count, free_at = 0, -1
                for s, e in talks:
                    if s >= free_at:
                        count += 1
                        free_at = e
                print(count)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="reach-the-end",
        difficulty="easy",
        topic="greedy",
        question=prose(
            """
            Stones are numbered 0 to n-1. From stone i you may jump forward to any stone i+1, ..., i+a_i.
            Starting on stone 0, can you reach stone n-1?

            Input
            The first line holds n (1 <= n <= 10^5); the second line holds n integers a_0..a_{n-1}
            (0 <= a_i <= 10^5).

            Output
            YES if stone n-1 can be reached, NO otherwise.
            """
        ),
        examples=[lines(5, (2, 3, 1, 1, 4)), lines(5, (3, 2, 1, 0, 4))],
        hidden=[
            lines(1, 0),
            lines(2, (0, 1)),
            lines(3, (1, 0, 0)),
            lines(6, (5, 0, 0, 0, 0, 0)),
            lines(6, (1, 1, 1, 1, 1, 0)),
            lines(7, (2, 0, 2, 0, 1, 0, 3)),
        ],
        reference=code(
            """
            n = int(input())
            a = list(map(int, input().split()))
            reach = 0
            for i, x in enumerate(a):
                if i > reach:
                    break
                reach = max(reach, i + x)
            print("YES" if reach >= n - 1 else "NO")
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="fair-sweets",
        difficulty="hard",
        topic="greedy",
        question=prose(
            """
            Children stand in a row, child i with a score r_i. Give every child at least one sweet, such
            that a child with a strictly higher score than a direct neighbour gets strictly more sweets
            than that neighbour. Print the smallest total number of sweets.

            Input
            The first line holds n (1 <= n <= 10^5); the second line holds n integers r_i
            (0 <= r_i <= 10^9).

            Output
            The minimum total number of sweets.
            """
        ),
        examples=[lines(3, (1, 2, 3)), lines(3, (1, 2, 2))],
        hidden=[
            lines(3, (3, 2, 1)),
            lines(3, (1, 0, 2)),
            lines(1, 7),
            lines(5, (5, 4, 3, 2, 1)),
            lines(7, (1, 3, 4, 5, 2, 2, 1)),
            lines(200, [_rng.randint(0, 20) for _ in range(200)]),
        ],
        reference=code(
            """
            n = int(input())
            r = list(map(int, input().split()))
            c = [1] * n
            for i in range(1, n):
                if r[i] > r[i - 1]:
                    c[i] = c[i - 1] + 1
            for i in range(n - 2, -1, -1):
                if r[i] > r[i + 1]:
                    c[i] = max(c[i], c[i + 1] + 1)
            print(sum(c))
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                r = list(map(int, input().split()))
                c = [1] * n
                for i in range(1, n):
                    if r[i] > r[i - 1]:
                        c[i] = c[i - 1] + 1
                print(sum(c))
                """
            )
        ],
    )
)
