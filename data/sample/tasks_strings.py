"""Sample tasks, part 2: strings and number puzzles with edge cases (our own statements)."""

from __future__ import annotations

import random

from spec import SampleSpec, code, lines, prose

_rng = random.Random(20240502)

TASKS: list[SampleSpec] = []


TASKS.append(
    SampleSpec(
        slug="divisor-staircase",
        difficulty="medium",
        topic="math",
        time_limit=2.0,
        question=prose(
            """
            For a positive integer N, compute S(N) = floor(N/1) + floor(N/2) + ... + floor(N/N).

            Input
            One integer N (1 <= N <= 10^10).

            Output
            S(N).
            """
        ),
        examples=[lines(5), lines(10)],
        hidden=[lines(1), lines(2), lines(1000), lines(10**10), lines(9876543210), lines(999999937)],
        reference=code(
            """
            n = int(input())
            total, i = 0, 1
            while i <= n:
                q = n // i
                j = n // q
                total += q * (j - i + 1)
                i = j + 1
            print(total)
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                print(sum(n // i for i in range(1, n + 1)))
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="loose-palindrome",
        difficulty="easy",
        topic="strings",
        question=prose(
            """
            A line is a loose palindrome if, after removing every character that is not a letter or a
            digit and ignoring the difference between upper and lower case, it reads the same forwards and
            backwards. An empty result counts as a palindrome.

            Input
            One line of at most 10^5 printable ASCII characters.

            Output
            YES if the line is a loose palindrome, NO otherwise.
            """
        ),
        examples=[lines("never odd or even"), lines("abc")],
        hidden=[
            lines("A man, a plan, a canal: Panama"),
            lines("Was it a car or a cat I saw?"),
            lines("!!!"),
            lines("ab1ba"),
            lines("0P"),
            lines("Madam, in Eden, I'm Adam"),
        ],
        reference=code(
            """
            s = [c.lower() for c in input() if c.isalnum()]
            print("YES" if s == s[::-1] else "NO")
            """
        ),
        wrong=[
            code(
                """
                s = [c for c in input() if c.isalnum()]
                print("YES" if s == s[::-1] else "NO")
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="run-length",
        difficulty="easy",
        topic="strings",
        question=prose(
            """
            Compress a string by replacing each maximal run of equal characters with the character followed
            by the length of the run. For example, "aaabcc" becomes "a3b1c2".

            Input
            One line holding a non-empty string of at most 10^5 lowercase letters.

            Output
            The compressed string.
            """
        ),
        examples=[lines("aaabcc"), lines("abc")],
        hidden=[lines("z"), lines("zzzzzzzzzzzz"), lines("abababab"), lines("a" * 1000 + "b"), lines("aabbaa")],
        reference=code(
            """
            s = input().strip()
            out = []
            i = 0
            while i < len(s):
                j = i
                while j < len(s) and s[j] == s[i]:
                    j += 1
                out.append(f"{s[i]}{j - i}")
                i = j
            print("".join(out))
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="anagram-families",
        difficulty="easy",
        topic="strings",
        question=prose(
            """
            Two words belong to the same family if one is an anagram of the other (the same letters with
            the same counts, in any order). Given n words, count the families.

            Input
            The first line holds n (1 <= n <= 10^4). Each of the next n lines holds one word of 1 to 20
            lowercase letters.

            Output
            The number of families.
            """
        ),
        examples=[lines(4, "listen", "silent", "enlist", "google"), lines(2, "ab", "ba")],
        hidden=[
            lines(1, "a"),
            lines(3, "abc", "abd", "abe"),
            lines(3, "aab", "abb", "bab"),
            lines(5, "x", "x", "x", "x", "x"),
            lines(6, "stop", "pots", "tops", "opts", "post", "spot"),
        ],
        reference=code(
            """
            n = int(input())
            print(len({"".join(sorted(input().strip())) for _ in range(n)}))
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                print(len({frozenset(input().strip()) for _ in range(n)}))
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="longest-distinct-run",
        difficulty="medium",
        topic="strings",
        question=prose(
            """
            Find the length of the longest contiguous substring in which no character appears twice.

            Input
            One line holding a string of 1 to 10^5 lowercase letters.

            Output
            The length of the longest substring without repeated characters.
            """
        ),
        examples=[lines("abcabcbb"), lines("bbbbb")],
        hidden=[
            lines("abba"),
            lines("pwwkew"),
            lines("a"),
            lines("abcdefghijklmnopqrstuvwxyz"),
            lines("dvdf"),
            lines("".join(_rng.choice("abcdefgh") for _ in range(5000))),
            lines("tmmzuxt"),
        ],
        reference=code(
            """
            s = input().strip()
            last = {}
            start = best = 0
            for i, c in enumerate(s):
                if c in last and last[c] >= start:
                    start = last[c] + 1
                last[c] = i
                best = max(best, i - start + 1)
            print(best)
            """
        ),
        wrong=[
            code(
                """
                s = input().strip()
                last = {}
                start = best = 0
                for i, c in enumerate(s):
                    if c in last:
                        start = last[c] + 1
                    last[c] = i
                    best = max(best, i - start + 1)
                print(best)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="caesar-shift",
        difficulty="easy",
        topic="strings",
        question=prose(
            """
            Shift every letter of a message k places forward in the alphabet, wrapping around from z to a
            (and from Z to A). Upper-case letters stay upper case, lower-case stay lower case, and every
            other character is unchanged. A negative k shifts backwards.

            Input
            The first line holds k (-10^9 <= k <= 10^9). The second line holds the message (at most 1000
            printable ASCII characters).

            Output
            The shifted message.
            """
        ),
        examples=[lines(3, "hello, world"), lines(-1, "abc")],
        hidden=[
            lines(1, "Zebra Crossing"),
            lines(26, "unchanged"),
            lines(-27, "Back Up"),
            lines(1000000000, "Large Shift!"),
            lines(13, "Why did the chicken cross the road?"),
        ],
        reference=code(
            """
            k = int(input())
            s = input()
            out = []
            for c in s:
                if "a" <= c <= "z":
                    out.append(chr((ord(c) - 97 + k) % 26 + 97))
                elif "A" <= c <= "Z":
                    out.append(chr((ord(c) - 65 + k) % 26 + 65))
                else:
                    out.append(c)
            print("".join(out))
            """
        ),
        wrong=[
            code(
                """
                k = int(input())
                s = input()
                print("".join(chr((ord(c) - 97 + k) % 26 + 97) if c.isalpha() else c for c in s))
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="big-square-root",
        difficulty="medium",
        topic="math",
        question=prose(
            """
            Print the integer square root of n: the largest integer r with r * r <= n.

            Input
            One integer n (0 <= n <= 10^36).

            Output
            The integer square root of n.
            """
        ),
        examples=[lines(17), lines(1000000)],
        hidden=[
            lines(0),
            lines(1),
            lines(10**36),
            lines((10**17 + 3) ** 2 - 1),
            lines(999999999999999999999999999999999999),
            lines(2**100),
            lines(15),
        ],
        reference=code(
            """
            import math

            print(math.isqrt(int(input())))
            """
        ),
        wrong=[
            code(
                """
                import math

                print(int(math.sqrt(int(input()))))
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="fraction-sum",
        difficulty="medium",
        topic="math",
        question=prose(
            """
            Add two fractions and print the result in lowest terms as "p/q" with q > 0. A whole number is
            still printed with a denominator (for example "3/1"), and zero is printed as "0/1".

            Input
            One line with four integers a b c d (-10^9 <= a, c <= 10^9, b and d non-zero with
            |b|, |d| <= 10^9), meaning a/b + c/d.

            Output
            The sum in lowest terms.
            """
        ),
        examples=[lines((1, 2, 1, 3)), lines((1, 4, 3, 4))],
        hidden=[
            lines((1, -2, 1, 3)),
            lines((1, 2, -1, 2)),
            lines((-3, -4, 1, 4)),
            lines((5, 1, 7, 1)),
            lines((1000000000, 999999999, 1, 1000000000)),
            lines((0, 5, 0, -7)),
        ],
        reference=code(
            """
            import math

            a, b, c, d = map(int, input().split())
            p, q = a * d + c * b, b * d
            if q < 0:
                p, q = -p, -q
            g = math.gcd(p, q)
            print(f"{p // g}/{q // g}")
            """
        ),
        wrong=[
            code(
                """
                import math

                a, b, c, d = map(int, input().split())
                p, q = a * d + c * b, b * d
                g = math.gcd(p, q)
                print(f"{p // g}/{q // g}")
                """
            )
        ],
    )
)
