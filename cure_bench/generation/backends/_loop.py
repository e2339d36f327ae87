"""Run asyncio work on a private event-loop thread while the caller's thread handles samples and Ctrl-C.

Why a thread: ``Generator.generate`` is a plain function (the pipeline is synchronous, and notebook
users call it from inside a running event loop, where ``asyncio.run`` is forbidden). The async client
lives on one long-lived loop thread, so its connection pool and rate limiters persist across
``generate`` calls (a rate limit must hold across the coder and tester stages, not restart at each).
Samples travel back over a queue and ``on_sample`` runs in the calling thread, as the protocol
promises, so the SQLite cache is only ever touched from one thread.

Ctrl-C: Python delivers SIGINT to the main thread, where ``SigintGuard`` counts presses without
raising (a handler that raised KeyboardInterrupt could fire in the middle of a cache commit). The
driver polls that count: first press -> the work is asked to stop sending and drain (bounded wait),
second press or the wait running out -> in-flight work is cancelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

POLL_S = 0.05


class LoopThread:
    """One asyncio event loop on a daemon thread, started on first use, stopped by ``stop``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            ready = threading.Event()
            loop = asyncio.new_event_loop()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name=self._name, daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop thread soon (thread-safe)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def stop(self, cleanup: Coroutine[Any, Any, Any] | None = None, timeout: float = 10.0) -> None:
        """Run ``cleanup`` (e.g. closing HTTP clients) on the loop, then stop and close it; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            try:
                asyncio.run_coroutine_threadsafe(cleanup, loop).result(timeout)
            except Exception as exc:  # closing must not hide the error that made us close
                log.debug("cleanup on %s failed: %r", self._name, exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None


class SigintGuard:
    """Count Ctrl-C presses instead of raising KeyboardInterrupt; restores the old handler on exit.

    Only the main thread can install signal handlers; elsewhere the guard does nothing (and no
    SIGINT can arrive there either).
    """

    def __init__(self) -> None:
        self.presses = 0
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1  # nothing else: this may run between any two bytecodes of the main thread

    def __enter__(self) -> SigintGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


class Interrupted(Exception):
    """Internal: the drive ended because of Ctrl-C; ``presses`` says how many."""

    def __init__(self, presses: int, abandoned: bool) -> None:
        super().__init__(f"interrupted ({presses} Ctrl-C)")
        self.presses, self.abandoned = presses, abandoned


def drive(
    loop_thread: LoopThread,
    work: Coroutine[Any, Any, Any],
    events: queue.Queue[Any],
    on_event: Callable[[Any], None],
    request_stop: Callable[[], None],
    drain_timeout: float,
) -> None:
    """Run ``work`` on the loop thread; hand every item it puts on ``events`` to ``on_event`` here.

    First Ctrl-C calls ``request_stop`` (on the loop thread) and waits up to ``drain_timeout`` seconds
    for ``work`` to finish; a second Ctrl-C, or the wait running out, cancels it. Raises
    ``Interrupted`` after any Ctrl-C, else whatever ``work`` raised. Events put before ``work`` ended
    are always delivered, so nothing the server answered is dropped on the floor.
    """
    with SigintGuard() as guard:
        future = loop_thread.submit(work)
        deadline: float | None = None
        abandoned = False
        try:
            while not future.done():
                _pump(events, on_event, block=True)
                if guard.presses >= 1 and deadline is None:
                    log.warning(
                        "Ctrl-C: no new requests; waiting up to %.0f s for the ones in flight (Ctrl-C again to abort)",
                        drain_timeout,
                    )
                    deadline = time.monotonic() + drain_timeout
                    loop_thread.call(request_stop)
                if not abandoned and (guard.presses >= 2 or (deadline is not None and time.monotonic() > deadline)):
                    log.warning("aborting the requests still in flight")
                    abandoned = True
                    future.cancel()
            _pump(events, on_event, block=False)
        except BaseException:
            future.cancel()
            raise
        if guard.presses:
            raise Interrupted(guard.presses, abandoned)
    if not future.cancelled():
        future.result()


def _pump(events: queue.Queue[Any], on_event: Callable[[Any], None], block: bool) -> None:
    """Deliver queued events; when ``block``, wait up to one poll period for the first."""
    try:
        item = events.get(timeout=POLL_S) if block else events.get_nowait()
    except queue.Empty:
        return
    on_event(item)
    while True:
        try:
            item = events.get_nowait()
        except queue.Empty:
            return
        on_event(item)
