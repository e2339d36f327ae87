"""Sample tasks, part 5: graphs (our own statements)."""

from __future__ import annotations

import random

from spec import SampleSpec, code, lines, prose

_rng = random.Random(99)

TASKS: list[SampleSpec] = []


def _random_graph(n: int, m: int, rng: random.Random, weights: bool = False) -> str:
    rows: list[object] = [(n, m)]
    for _ in range(m):
        u, v = rng.randint(1, n), rng.randint(1, n)
        rows.append((u, v, rng.randint(1, 100)) if weights else (u, v))
    return lines(*rows)


TASKS.append(
    SampleSpec(
        slug="islands-of-friends",
        difficulty="easy",
        topic="graphs",
        question=prose(
            """
            n people are numbered 1 to n, and m friendships each join two people (friendship is mutual).
            A group is a maximal set of people connected through chains of friendships; a person with no
            friends is a group alone. Count the groups.

            Input
            The first line holds n and m (1 <= n <= 10^5, 0 <= m <= 10^5). Each of the next m lines holds
            two people u and v (1 <= u, v <= n; u may equal v).

            Output
            The number of groups.
            """
        ),
        examples=[lines((5, 3), (1, 2), (2, 3), (4, 5)), lines((3, 0))],
        hidden=[
            lines((1, 0)),
            lines((4, 1), (2, 2)),
            lines((4, 3), (1, 2), (3, 4), (2, 3)),
            lines((6, 2), (1, 6), (6, 1)),
            _random_graph(1000, 700, _rng),
            _random_graph(20000, 8000, _rng),
        ],
        reference=code(
            """
            import sys

            data = sys.stdin.buffer.read().split()
            n, m = int(data[0]), int(data[1])
            parent = list(range(n + 1))

            def find(x):
                while parent[x] != x:
                    parent[x] = parent[parent[x]]
                    x = parent[x]
                return x

            groups = n
            for i in range(m):
                a, b = find(int(data[2 + 2 * i])), find(int(data[3 + 2 * i]))
                if a != b:
                    parent[a] = b
                    groups -= 1
            print(groups)
            """
        ),
    )
)

TASKS.append(
    SampleSpec(
        slug="maze-steps",
        difficulty="medium",
        topic="graphs",
        question=prose(
            """
            A maze is a grid of r rows and c columns; '.' is a free cell and '#' a wall. From a free cell
            you can step to a free cell sharing a side. Print the smallest number of steps from the top
            left cell to the bottom right cell, or -1 if it cannot be reached (including when either of
            them is a wall).

            Input
            The first line holds r and c (1 <= r, c <= 500). Each of the next r lines holds c characters.

            Output
            The smallest number of steps, or -1.
            """
        ),
        examples=[lines((3, 3), "..#", "#..", "#.."), lines((2, 2), ".#", "#.")],
        hidden=[
            lines((1, 1), "."),
            lines((1, 1), "#"),
            lines((1, 5), "....."),
            lines((3, 4), "....", ".##.", "...#"),
            lines((4, 4), "....", "###.", "....", ".###"),
            lines((60, 60), *["".join("#" if _rng.random() < 0.25 else "." for _ in range(60)) for _ in range(60)]),
        ],
        reference=code(
            """
            from collections import deque

            r, c = map(int, input().split())
            g = [input().strip() for _ in range(r)]
            if g[0][0] == "#" or g[r - 1][c - 1] == "#":
                print(-1)
            else:
                dist = [[-1] * c for _ in range(r)]
                dist[0][0] = 0
                q = deque([(0, 0)])
                while q:
                    y, x = q.popleft()
                    for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                        if 0 <= ny < r and 0 <= nx < c and g[ny][nx] == "." and dist[ny][nx] < 0:
                            dist[ny][nx] = dist[y][x] + 1
                            q.append((ny, nx))
                print(dist[r - 1][c - 1])
            """
        ),
        wrong=[
            code(
                """
                from collections import deque

                r, c = map(int, input().split())
                g = [input().strip() for _ in range(r)]
                dist = [[-1] * c for _ in range(r)]
                dist[0][0] = 0
                q = deque([(0, 0)])
                while q:
                    y, x = q.popleft()
                    for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                        if 0 <= ny < r and 0 <= nx < c and g[ny][nx] == "." and dist[ny][nx] < 0:
                            dist[ny][nx] = dist[y][x] + 1
                            q.append((ny, nx))
                print(dist[r - 1][c - 1])
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="cheapest-route",
        difficulty="hard",
        topic="graphs",
        question=prose(
            """
            Towns 1 to n are joined by m two-way roads; road i joins towns u_i and v_i and costs w_i to use
            in either direction. Print the cheapest total cost of travelling from town 1 to town n, or -1
            if town n cannot be reached.

            Input
            The first line holds n and m (2 <= n <= 10^5, 0 <= m <= 2 * 10^5). Each of the next m lines
            holds u_i v_i w_i (1 <= u_i, v_i <= n, 1 <= w_i <= 10^9).

            Output
            The cheapest cost from town 1 to town n, or -1.
            """
        ),
        examples=[lines((4, 4), (1, 2, 1), (2, 4, 5), (1, 3, 2), (3, 4, 1)), lines((3, 1), (1, 2, 7))],
        hidden=[
            lines((3, 2), (2, 1, 4), (3, 2, 4)),
            lines((2, 1), (2, 1, 1000000000)),
            lines((2, 0)),
            lines((5, 6), (1, 2, 10), (1, 3, 1), (3, 2, 1), (2, 4, 1), (4, 5, 1), (3, 5, 100)),
            _random_graph(2000, 6000, _rng, weights=True),
        ],
        reference=code(
            """
            import heapq
            import sys

            data = sys.stdin.buffer.read().split()
            n, m = int(data[0]), int(data[1])
            adj = [[] for _ in range(n + 1)]
            for i in range(m):
                u, v, w = int(data[2 + 3 * i]), int(data[3 + 3 * i]), int(data[4 + 3 * i])
                adj[u].append((v, w))
                adj[v].append((u, w))
            dist = [None] * (n + 1)
            heap = [(0, 1)]
            while heap:
                d, u = heapq.heappop(heap)
                if dist[u] is not None:
                    continue
                dist[u] = d
                for v, w in adj[u]:
                    if dist[v] is None:
                        heapq.heappush(heap, (d + w, v))
            print(-1 if dist[n] is None else dist[n])
            """
        ),
        wrong=[
            code(
                """
                import heapq
                import sys

                data = sys.stdin.buffer.read().split()
                n, m = int(data[0]), int(data[1])
                adj = [[] for _ in range(n + 1)]
                for i in range(m):
                    u, v, w = int(data[2 + 3 * i]), int(data[3 + 3 * i]), int(data[4 + 3 * i])
                    adj[u].append((v, w))
                dist = [None] * (n + 1)
                heap = [(0, 1)]
                while heap:
                    d, u = heapq.heappop(heap)
                    if dist[u] is not None:
                        continue
                    dist[u] = d
                    for v, w in adj[u]:
                        if dist[v] is None:
                            heapq.heappush(heap, (d + w, v))
                print(-1 if dist[n] is None else dist[n])
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="course-order",
        difficulty="medium",
        topic="graphs",
        question=prose(
            """
            Courses 1 to n must be taken one at a time. A rule "a b" says course a must be taken before
            course b. Print an order of all courses that obeys every rule; when several orders exist,
            print the lexicographically smallest one. If no order exists, print IMPOSSIBLE.

            Input
            The first line holds n and m (1 <= n <= 10^5, 0 <= m <= 10^5). Each of the next m lines holds
            a rule a b (1 <= a, b <= n).

            Output
            The n course numbers separated by spaces, or IMPOSSIBLE.
            """
        ),
        examples=[lines((4, 3), (1, 2), (1, 3), (3, 4)), lines((2, 2), (1, 2), (2, 1))],
        hidden=[
            lines((3, 0)),
            lines((3, 2), (3, 1), (2, 1)),
            lines((1, 1), (1, 1)),
            lines((5, 4), (5, 4), (4, 3), (3, 2), (2, 1)),
            lines((6, 5), (2, 6), (6, 1), (1, 3), (4, 5), (3, 4)),
            lines((4, 2), (3, 1), (2, 4)),
        ],
        reference=code(
            """
            import heapq
            import sys

            data = sys.stdin.read().split()
            n, m = int(data[0]), int(data[1])
            out = [[] for _ in range(n + 1)]
            indeg = [0] * (n + 1)
            for i in range(m):
                a, b = int(data[2 + 2 * i]), int(data[3 + 2 * i])
                out[a].append(b)
                indeg[b] += 1
            heap = [v for v in range(1, n + 1) if indeg[v] == 0]
            heapq.heapify(heap)
            order = []
            while heap:
                u = heapq.heappop(heap)
                order.append(u)
                for v in out[u]:
                    indeg[v] -= 1
                    if indeg[v] == 0:
                        heapq.heappush(heap, v)
            print(" ".join(map(str, order)) if len(order) == n else "IMPOSSIBLE")
            """
        ),
        wrong=[
            code(
                """
                import sys
                from collections import deque

                data = sys.stdin.read().split()
                n, m = int(data[0]), int(data[1])
                out = [[] for _ in range(n + 1)]
                indeg = [0] * (n + 1)
                for i in range(m):
                    a, b = int(data[2 + 2 * i]), int(data[3 + 2 * i])
                    out[a].append(b)
                    indeg[b] += 1
                q = deque(v for v in range(1, n + 1) if indeg[v] == 0)
                order = []
                while q:
                    u = q.popleft()
                    order.append(u)
                    for v in out[u]:
                        indeg[v] -= 1
                        if indeg[v] == 0:
                            q.append(v)
                print(" ".join(map(str, order)) if len(order) == n else "IMPOSSIBLE")
                """
            )
        ],
    )
)

TASKS.append(
    SampleSpec(
        slug="two-teams",
        difficulty="medium",
        topic="graphs",
        question=prose(
            """
            n players are numbered 1 to n, and m pairs of players are rivals. Can the players be split into
            two teams so that no two rivals are on the same team? (A team may be empty.)

            Input
            The first line holds n and m (1 <= n <= 10^5, 0 <= m <= 10^5). Each of the next m lines holds
            two rivals u and v (1 <= u, v <= n).

            Output
            YES if such a split exists, NO otherwise.
            """
        ),
        examples=[lines((4, 4), (1, 2), (2, 3), (3, 4), (4, 1)), lines((3, 3), (1, 2), (2, 3), (3, 1))],
        hidden=[
            lines((1, 0)),
            lines((2, 1), (1, 1)),
            lines((6, 4), (1, 2), (3, 4), (4, 5), (5, 3)),
            lines((5, 4), (1, 2), (2, 3), (3, 4), (4, 5)),
            lines((4, 2), (1, 2), (1, 2)),
        ],
        reference=code(
            """
            import sys
            from collections import deque

            data = sys.stdin.read().split()
            n, m = int(data[0]), int(data[1])
            adj = [[] for _ in range(n + 1)]
            for i in range(m):
                u, v = int(data[2 + 2 * i]), int(data[3 + 2 * i])
                adj[u].append(v)
                adj[v].append(u)
            side = [-1] * (n + 1)
            ok = True
            for s in range(1, n + 1):
                if side[s] >= 0:
                    continue
                side[s] = 0
                q = deque([s])
                while q and ok:
                    u = q.popleft()
                    for v in adj[u]:
                        if side[v] < 0:
                            side[v] = 1 - side[u]
                            q.append(v)
                        elif side[v] == side[u]:
                            ok = False
            print("YES" if ok else "NO")
            """
        ),
        wrong=[
            code(
                """
                import sys
                from collections import deque

                data = sys.stdin.read().split()
                n, m = int(data[0]), int(data[1])
                adj = [[] for _ in range(n + 1)]
                for i in range(m):
                    u, v = int(data[2 + 2 * i]), int(data[3 + 2 * i])
                    adj[u].append(v)
                    adj[v].append(u)
                side = [-1] * (n + 1)
                side[1] = 0
                q = deque([1])
                ok = True
                while q:
                    u = q.popleft()
                    for v in adj[u]:
                        if side[v] < 0:
                            side[v] = 1 - side[u]
                            q.append(v)
                        elif side[v] == side[u]:
                            ok = False
                print("YES" if ok else "NO")
                """
            )
        ],
    )
)
