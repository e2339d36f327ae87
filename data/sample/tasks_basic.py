"""Sample tasks, part 1: input/output and arithmetic (our own statements)."""

from __future__ import annotations

import random

from spec import SampleSpec, code, lines, prose

_rng = random.Random(20240501)

TASKS: list[SampleSpec] = []

TASKS.append(
    SampleSpec(
        slug="sum-of-two",
        difficulty="easy",
        topic="io",
        question=prose(
            """
            Read two integers a and b and print their sum.

            Input
            One line with two integers a and b (-10^18 <= a, b <= 10^18), separated by a space.

            Output
            Print a + b.
            """
        ),
        examples=[lines((2, 3)), lines((-7, 4))],
        hidden=[
            lines((0, 0)),
            lines((10**18, 10**18)),
            lines((-(10**18), -(10**18))),
            lines((123456789, -123456789)),
            lines((999999999999, 1)),
        ],
        reference=code(
            """
            a, b = map(int, input().split())
            print(a + b)
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="reverse-words",
        difficulty="easy",
        topic="strings",
        question=prose(
            """
            A line of text contains words separated by one or more spaces. Print the words in reverse
            order, separated by single spaces.

            Input
            One line of at most 1000 characters containing at least one word. A word is a maximal run of
            non-space characters.

            Output
            The words of the line in reverse order, joined by single spaces.
            """
        ),
        examples=[lines("hello brave new world"), lines("one")],
        hidden=[
            lines("  leading and trailing  "),
            lines("a   b    c"),
            lines("x"),
            lines("The quick brown fox jumps over the lazy dog"),
            lines("punctuation, stays! attached?"),
        ],
        reference=code(
            """
            print(" ".join(reversed(input().split())))
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="largest-reading",
        difficulty="easy",
        topic="io",
        question=prose(
            """
            A thermometer logged n readings. Print the largest one.

            Input
            The first line holds n (1 <= n <= 10^5). The second line holds n integers, each between
            -10^9 and 10^9.

            Output
            The largest reading.
            """
        ),
        examples=[lines(5, (3, 9, 2, 9, 4)), lines(1, 17)],
        hidden=[
            lines(3, (-5, -2, -9)),
            lines(1, -1000000000),
            lines(4, (0, 0, 0, 0)),
            lines(6, (1, -1, 2, -2, 3, -3)),
            lines(1000, [_rng.randint(-(10**9), 10**9) for _ in range(1000)]),
        ],
        reference=code(
            """
            n = int(input())
            print(max(map(int, input().split())))
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                best = 0
                for x in map(int, input().split()):
                    if x > best:
                        best = x
                print(best)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="count-vowels",
        difficulty="easy",
        topic="strings",
        question=prose(
            """
            Count the vowels in a line of text. The vowels are a, e, i, o and u, in either upper or lower
            case; every other character is not a vowel.

            Input
            One line of at most 10^4 printable ASCII characters.

            Output
            The number of vowels in the line.
            """
        ),
        examples=[lines("programming is fun"), lines("rhythm")],
        hidden=[
            lines("AEIOU aeiou"),
            lines("Under The Sea"),
            lines("xyz"),
            lines("Quiet, please! 123"),
            lines("OoOoOoOo"),
        ],
        reference=code(
            """
            print(sum(1 for ch in input() if ch.lower() in "aeiou"))
            """
        ),
        wrong=[
            code(
                """
                s = input()
                print(sum(s.count(v) for v in "aeiou"))
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="leap-year",
        difficulty="easy",
        topic="math",
        question=prose(
            """
            In the Gregorian calendar a year is a leap year if it is divisible by 4, except that years
            divisible by 100 are not leap years unless they are also divisible by 400.

            Input
            One integer y (1 <= y <= 10^9).

            Output
            Print YES if y is a leap year, NO otherwise.
            """
        ),
        examples=[lines(2024), lines(2023)],
        hidden=[lines(1900), lines(2000), lines(2100), lines(2400), lines(4), lines(1), lines(1000000000)],
        reference=code(
            """
            y = int(input())
            print("YES" if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else "NO")
            """
        ),
        wrong=[
            code(
                """
                y = int(input())
                print("YES" if y % 4 == 0 else "NO")
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="gcd-and-lcm",
        difficulty="easy",
        topic="math",
        question=prose(
            """
            Given two positive integers, print their greatest common divisor and their least common
            multiple.

            Input
            One line with two integers a and b (1 <= a, b <= 10^12).

            Output
            Two integers separated by a space: gcd(a, b) and lcm(a, b).
            """
        ),
        examples=[lines((12, 18)), lines((7, 5))],
        hidden=[
            lines((1, 1)),
            lines((10**12, 10**12)),
            lines((999999999989, 999999999959)),
            lines((2**40, 6**10)),
            lines((1, 1000000000000)),
        ],
        reference=code(
            """
            import math

            a, b = map(int, input().split())
            g = math.gcd(a, b)
            print(g, a // g * b)
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="boats-needed",
        difficulty="easy",
        topic="math",
        question=prose(
            """
            n people must cross a river. Each boat carries at most k people. How many boats are needed?

            Input
            One line with two integers n and k (0 <= n <= 10^18, 1 <= k <= 10^18).

            Output
            The smallest number of boats that can carry all n people.
            """
        ),
        examples=[lines((7, 3)), lines((10, 4))],
        hidden=[lines((9, 3)), lines((0, 5)), lines((1, 1)), lines((10**18, 1)), lines((5, 10**18)), lines((12, 4))],
        reference=code(
            """
            n, k = map(int, input().split())
            print((n + k - 1) // k)
            """
        ),
        wrong=[
            code(
                """
                n, k = map(int, input().split())
                print(n // k + 1)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="digital-root",
        difficulty="easy",
        topic="math",
        question=prose(
            """
            Replace a non-negative integer by the sum of its decimal digits, again and again, until a
            single digit remains. Print that digit.

            Input
            One non-negative integer with at most 10^5 digits, without leading zeros (except the number
            0 itself).

            Output
            The final single digit.
            """
        ),
        examples=[lines(9875), lines(5)],
        hidden=[
            lines(0),
            lines(9),
            lines(10),
            lines("9" * 5000),
            lines("1" + "0" * 3000),
            lines("".join(str(_rng.randint(0, 9)) for _ in range(2000)).lstrip("0") or "0"),
        ],
        reference=code(
            """
            s = input().strip()
            total = sum(int(c) for c in s)
            print(0 if total == 0 else 1 + (total - 1) % 9)
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                print(n % 9)
                """
            )
        ],
    )
)
