"""Sample tasks, part 6: number theory with edge cases (our own statements)."""

from __future__ import annotations

from spec import SampleSpec, code, lines, prose

TASKS: list[SampleSpec] = []


TASKS.append(
    SampleSpec(
        slug="power-mod",
        difficulty="easy",
        topic="math",
        question=prose(
            """
            Print a^b modulo m, where a^0 = 1 for every a (including a = 0).

            Input
            One line with three integers a, b and m (0 <= a <= 10^18, 0 <= b <= 10^18, 1 <= m <= 10^18).

            Output
            a^b mod m, a number between 0 and m - 1.
            """
        ),
        examples=[lines((2, 10, 1000)), lines((3, 0, 7))],
        hidden=[
            lines((5, 0, 1)),
            lines((0, 0, 5)),
            lines((0, 5, 5)),
            lines((10**18, 10**18, 10**9 + 7)),
            lines((123456789, 987654321, 1)),
            lines((2, 10**18, 10**18)),
        ],
        reference=code(
            """
            a, b, m = map(int, input().split())
            print(pow(a, b, m))
            """
        ),
        wrong=[
            code(
                """
                a, b, m = map(int, input().split())
                result = 1
                a %= m
                while b:
                    if b & 1:
                        result = result * a % m
                    a = a * a % m
                    b >>= 1
                print(result)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="count-primes",
        difficulty="medium",
        topic="math",
        time_limit=2.0,
        question=prose(
            """
            Count the prime numbers that are less than or equal to N.

            Input
            One integer N (1 <= N <= 2 * 10^6).

            Output
            The number of primes p with p <= N.
            """
        ),
        examples=[lines(10), lines(30)],
        hidden=[lines(1), lines(2), lines(3), lines(100), lines(999983), lines(2000000)],
        reference=code(
            """
            n = int(input())
            if n < 2:
                print(0)
            else:
                sieve = bytearray([1]) * (n + 1)
                sieve[0] = sieve[1] = 0
                i = 2
                while i * i <= n:
                    if sieve[i]:
                        sieve[i * i :: i] = bytearray(len(range(i * i, n + 1, i)))
                    i += 1
                print(sum(sieve))
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                count = 0
                for x in range(2, n + 1):
                    d = 2
                    while d * d <= x:
                        if x % d == 0:
                            break
                        d += 1
                    else:
                        count += 1
                print(count)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="huge-fibonacci",
        difficulty="hard",
        topic="math",
        question=prose(
            """
            The Fibonacci numbers are F(0) = 0, F(1) = 1 and F(k) = F(k-1) + F(k-2). Print F(n) modulo
            1000000007.

            Input
            One integer n (0 <= n <= 10^18).

            Output
            F(n) mod 1000000007.
            """
        ),
        examples=[lines(10), lines(1)],
        hidden=[lines(0), lines(2), lines(90), lines(10**18), lines(123456789012345), lines(1000000006)],
        reference=code(
            """
            M = 10**9 + 7

            def fib(n):
                # fast doubling: returns (F(n), F(n+1))
                if n == 0:
                    return 0, 1
                a, b = fib(n >> 1)
                c = a * (2 * b - a) % M
                d = (a * a + b * b) % M
                return (d, (c + d) % M) if n & 1 else (c, d)

            print(fib(int(input()))[0])
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                a, b = 0, 1
                for _ in range(n):
                    a, b = b, (a + b) % 1000000007
                print(a)
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="factorial-zeros",
        difficulty="easy",
        topic="math",
        question=prose(
            """
            How many zeros does the decimal representation of n! (n factorial) end with?

            Input
            One integer n (0 <= n <= 10^18).

            Output
            The number of trailing zeros of n!.
            """
        ),
        examples=[lines(5), lines(10)],
        hidden=[lines(0), lines(4), lines(25), lines(125), lines(10**18), lines(624)],
        reference=code(
            """
            n = int(input())
            z, p = 0, 5
            while p <= n:
                z += n // p
                p *= 5
            print(z)
            """
        ),
        wrong=[
            code(
                """
                n = int(input())
                print(n // 5)
                """
            )
        ],
    )
)
