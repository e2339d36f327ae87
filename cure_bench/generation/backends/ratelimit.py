"""Client-side rate limits for ``--rpm`` (requests) and ``--tpm`` (tokens), built on aiolimiter.

``--rpm R`` promises that no 60-second window holds more than R requests. aiolimiter's
``AsyncLimiter(R, 60)`` is a leaky bucket that starts empty: it lets a burst of R through at once and
then drips R per minute, so the first minute can see almost 2R requests. Any leaky bucket with
capacity b and drain rate r admits up to b + r*T requests in a window of T seconds, so keeping the full
rate r = R/60 forces the smallest capacity, 1: ``AsyncLimiter(1, 60/R)`` spaces requests evenly,
60/R seconds apart, and any half-open 60-second window then holds at most R of them. The spacing
gets a small safety margin (1%) so that network jitter between our clock and the server's cannot
push request R+1 into the server's window; the steady rate is R/60/1.01.

The request limiter is applied to every HTTP attempt (the SDK's own retries included, via an httpx
request hook), because a 429 that the server answered still counts against its window.

``--tpm T`` uses ``AsyncLimiter(T, 60)`` (a burst of T, then T per minute, like the providers' own
token buckets) and charges each request, before it is sent, the estimate the providers themselves
reserve: prompt characters / 4 plus ``max_tokens`` for every one of the ``n`` choices, clipped to T (a
request bigger than the whole budget still goes, alone, once the bucket is empty). Retries are not
charged again: a refused request consumed no tokens.
"""

from __future__ import annotations

from aiolimiter import AsyncLimiter

from cure_bench.errors import ConfigError
from cure_bench.types import ChatMessages

SAFETY_MARGIN = 0.01
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role markers and separators the chat template adds per message


def request_limiter(rpm: float, window_s: float = 60.0) -> AsyncLimiter:
    """At most ``rpm`` requests in any ``window_s``-second window, spread evenly (see module docstring)."""
    if rpm <= 0:
        raise ConfigError(f"--rpm must be > 0, got {rpm:g}")
    if window_s <= 0:
        raise ConfigError(f"rate-limit window must be > 0 seconds, got {window_s:g}")
    return AsyncLimiter(1, window_s / rpm * (1 + SAFETY_MARGIN))


def token_limiter(tpm: float, window_s: float = 60.0) -> AsyncLimiter:
    """A token bucket of ``tpm`` tokens refilled over ``window_s`` seconds."""
    if tpm <= 0:
        raise ConfigError(f"--tpm must be > 0, got {tpm:g}")
    return AsyncLimiter(tpm, window_s)


def estimate_request_tokens(messages: ChatMessages, n: int, max_tokens: int) -> int:
    """Tokens a provider reserves for a request: prompt estimate + max_tokens per choice."""
    prompt_chars = sum(len(content) for _, content in messages)
    return prompt_chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages) + max_tokens * n
