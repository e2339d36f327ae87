"""Verdict tables built while their specs are still arriving: judge a task the moment its answers are in.

``build_tables`` wants every spec up front, so a benchmark judges only after the last sample is generated and
the judge's minutes add to generation's. ``TableStream`` takes specs one by one (``submit``) and judges them
on background threads through the same ``build_tables`` and the same Sandbox (whose ``run`` is thread-safe),
so the pool works on early tasks while later ones are generated. Each judging thread takes everything
submitted since it last looked as one batch, so a burst (a resumed run whose samples are all cached) is
one submission, as in the sequential path, and two threads keep the pool fed across batch tails. The
tables are the ones ``build_tables`` gives for the same specs: judging order changes no cell.

Stopping: ``cancel`` closes the sandbox (the only way to stop executions in flight; results already
delivered are in the exec cache, those in flight are not) and joins the threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from types import TracebackType

from cure_bench.sandbox.executor import Executor
from cure_bench.sandbox.tables import TableSpec, build_tables
from cure_bench.types import CompareMode, TaskTable

log = logging.getLogger(__name__)

JUDGE_THREADS = 2
"""Judging threads: one batch running while the next is queued keeps every worker busy across batch tails."""


def executions(spec: TableSpec) -> int:
    """How many executions judging ``spec`` takes (cells with a program; NO_PROGRAM cells run nothing)."""
    tests = len(spec.hidden_tests) + len(spec.generated_tests)
    return sum(tests for program in spec.programs if program is not None)


class TableStream:
    """Judge ``n_specs`` specs, given by index in any order, while the caller is still producing them.

    ``on_progress(done, total)`` counts executions, ``total`` being those submitted so far; it is called
    from the judging threads. Use as a context manager: leaving it on an exception cancels.
    """

    def __init__(
        self,
        sandbox: Executor,
        n_specs: int,
        compare: CompareMode = CompareMode.WHITESPACE,
        on_progress: Callable[[int, int], None] | None = None,
        threads: int = JUDGE_THREADS,
    ) -> None:
        self._box = sandbox
        self._compare = compare
        self._on_progress = on_progress
        self._tables: list[TaskTable | None] = [None] * n_specs
        self._todo: queue.Queue[tuple[int, TableSpec] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._submitted: set[int] = set()
        self._total = 0
        self._done = 0
        self._error: BaseException | None = None
        self._cancelled = False
        self._idle = threading.Condition(self._lock)
        self._in_batch = 0
        self._threads = [
            threading.Thread(target=self._judge_loop, name=f"cure-judge-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, index: int, spec: TableSpec) -> None:
        """Queue spec ``index`` for judging; raises the error judging hit, if any, so the caller stops early."""
        self._raise_error()
        with self._lock:
            if index in self._submitted:
                raise ValueError(f"spec {index} was submitted twice")
            if not 0 <= index < len(self._tables):
                raise IndexError(f"spec index {index} out of range (0..{len(self._tables) - 1})")
            self._submitted.add(index)
            self._total += executions(spec)
            self._in_batch += 1  # counted as pending until a thread has judged it
        self._todo.put((index, spec))
        self._report()

    def finish(self, poll_s: float = 0.2) -> list[TaskTable]:
        """Wait until every spec is judged and return the tables in index order (Ctrl-C can interrupt)."""
        with self._idle:
            while self._in_batch and self._error is None:
                self._idle.wait(poll_s)  # wakes for KeyboardInterrupt too
        self._raise_error()
        missing = [i for i in range(len(self._tables)) if i not in self._submitted]
        if missing:
            raise ValueError(f"{len(missing)} spec(s) never submitted, first {missing[0]}")
        self._stop_threads()
        return [t for t in self._tables if t is not None]

    def cancel(self) -> None:
        """Stop judging now: close the sandbox (executions in flight are dropped) and join the threads."""
        with self._lock:
            self._cancelled = True
        self._box.close()
        self._stop_threads()

    def __enter__(self) -> TableStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.cancel()

    # ------------------------------------------------------------------------------------ threads

    def _judge_loop(self) -> None:
        while True:
            first = self._todo.get()
            if first is None:
                return
            batch = [first]
            while True:  # everything submitted meanwhile goes in the same submission
                try:
                    item = self._todo.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._todo.put(None)  # leave the stop mark for the thread it was meant for
                    break
                batch.append(item)
            self._judge(batch)

    def _judge(self, batch: list[tuple[int, TableSpec]]) -> None:
        last = 0

        def progress(done: int, _total: int) -> None:
            nonlocal last
            with self._lock:
                self._done += done - last
            last = done
            self._report()

        try:
            if not (self._cancelled or self._error):
                tables = build_tables(self._box, [spec for _, spec in batch], self._compare, progress)
                for (index, _), table in zip(batch, tables, strict=True):
                    self._tables[index] = table
        except BaseException as exc:  # handed to the caller's thread; after cancel it is the expected end
            with self._lock:
                if not self._cancelled and self._error is None:
                    self._error = exc
            if self._cancelled:
                log.debug("judging stopped by cancel: %r", exc)
        finally:
            with self._idle:
                self._in_batch -= len(batch)
                self._idle.notify_all()

    def _report(self) -> None:
        if self._on_progress is not None:
            with self._lock:  # under the lock, so two threads never report counts out of order
                self._on_progress(self._done, self._total)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error  # the judging thread's own error (a SandboxError, or a bug with its traceback)

    def _stop_threads(self) -> None:
        for _ in self._threads:
            self._todo.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
