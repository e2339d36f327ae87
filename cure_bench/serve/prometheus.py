"""Prometheus metrics of the reward server, written by hand in the text exposition format (0.0.4).

Why by hand: the server needs a handful of counters and histograms; a dependency for that is more to
install and audit than the forty lines below. Names follow Prometheus conventions (``_total`` counters,
``_seconds`` histograms with ``_bucket``/``_sum``/``_count``), so any scraper or Grafana panel reads them.
All updates take one lock: they come from the event loop and from worker threads.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

Labels = tuple[tuple[str, str], ...]


class _Histogram:
    def __init__(self, buckets: Sequence[float]):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # last slot: above every bucket (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Registry:
    """Counters and histograms by (name, labels); ``render`` gives the /metrics body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)

    def describe(self, name: str, kind: str, help_text: str) -> None:
        """Declare a metric so it is listed (at zero) before its first update."""
        self._help[name] = (kind, help_text)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._histograms[name]
            if key not in series:
                series[key] = _Histogram(LATENCY_BUCKETS)
            series[key].observe(value)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (0 when never incremented); histograms give their count."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            if name in self._histograms:
                hist = self._histograms[name].get(key)
                return float(hist.count) if hist else 0.0
            return self._counters.get(name, {}).get(key, 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in sorted(self._help.items()):
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                if kind == "histogram":
                    for labels, hist in sorted(self._histograms.get(name, {}).items()):
                        lines.extend(_histogram_lines(name, labels, hist))
                else:
                    series = self._counters.get(name, {})
                    if not series and kind == "counter":
                        lines.append(f"{name} 0")
                    for labels, value in sorted(series.items()):
                        lines.append(f"{name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _histogram_lines(name: str, labels: Labels, hist: _Histogram) -> list[str]:
    lines, running = [], 0
    for bound, count in zip(hist.buckets, hist.counts, strict=False):
        running += count
        lines.append(f"{name}_bucket{_labels((*labels, ('le', _number(bound))))} {running}")
    lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {hist.count}")
    lines.append(f"{name}_sum{_labels(labels)} {_number(hist.sum)}")
    lines.append(f"{name}_count{_labels(labels)} {hist.count}")
    return lines


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def server_registry() -> Registry:
    """The reward server's metrics, declared up front so /metrics lists them all from the start."""
    reg = Registry()
    reg.describe("cure_serve_requests_total", "counter", "HTTP requests by endpoint and status code.")
    reg.describe("cure_serve_request_seconds", "histogram", "HTTP request latency by endpoint.")
    reg.describe("cure_serve_test_cache_hits_total", "counter", "Test-set lookups answered from the cache, by layer.")
    reg.describe("cure_serve_test_cache_misses_total", "counter", "Test-set lookups that needed the tester.")
    reg.describe("cure_serve_tester_generations_total", "counter", "Tester generate calls, by outcome.")
    reg.describe("cure_serve_tester_generation_seconds", "histogram", "Seconds per tester generate call (a batch).")
    reg.describe("cure_serve_tester_timeouts_total", "counter", "Requests answered 503 because the tester was slow.")
    reg.describe("cure_serve_tests_generated_total", "counter", "Tests extracted from tester answers.")
    reg.describe("cure_serve_executions_total", "counter", "Program x test executions, by verdict.")
    reg.describe("cure_serve_execution_timeouts_total", "counter", "Executions that hit the time limit.")
    reg.describe("cure_serve_execution_seconds", "histogram", "Seconds per sandbox batch.")
    reg.describe("cure_serve_items_scored_total", "counter", "Completions scored (score, select, get_reward).")
    reg.describe("cure_serve_run_code_total", "counter", "/run_code executions, by sandbox status.")
    return reg
