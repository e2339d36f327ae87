"""One driver thread per worker: feeds it jobs from the shared queue and hands results back to callers.

The driver keeps two requests in flight while there is plenty of work queued, so the worker starts the next
program the moment the last one ends instead of waiting a round trip for the parent (thread wake-up, JSON,
GIL); near the end of the work it sends one at a time, so no job waits behind another while a worker idles.
Only small requests are queued behind a running one: a request that fits the pipe buffer never blocks the
write while the worker is itself blocked writing a big reply. A worker that dies is replaced; the job it
was running is retried once, alone, and the jobs queued behind it are re-sent untouched.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cure_bench.errors import SandboxError
from cure_bench.sandbox._worker_proc import WorkerDied, WorkerProcess, encode_request
from cure_bench.types import ExecJob, ExecResult, ExecStatus

logger = logging.getLogger("cure_bench.sandbox")

PIPELINE_DEPTH = 2
SMALL_FRAME = 48 * 1024
RESULTS_QUEUED = 8
"""Results waiting for their caller at most, per ``run`` call: a slow caller makes the drivers wait (and
the workers behind them), so results never pile up in the parent's memory."""


@dataclass
class Batch:
    """One ``Sandbox.run`` call: where its results go, and whether the caller still wants them."""

    results: queue.Queue[tuple[str, ExecResult | BaseException]] = field(default_factory=queue.Queue)
    cancelled: bool = False


@dataclass
class Item:
    batch: Batch
    key: str
    job: ExecJob
    attempts: int = 0
    frame: bytes = b""

    def encode(self) -> None:
        job = self.job
        self.frame = encode_request(job.program, job.stdin, job.time_limit_s, job.memory_limit_mb)

    def reply_timeout(self) -> float:
        """Generous: the worker enforces the limits itself; this only catches a hung worker."""
        return 20 * self.job.time_limit_s + 60

    def answer(self, result: ExecResult | BaseException) -> None:
        """Hand the result to the caller; waits while its queue is full, gives up once it stopped caring."""
        while not self.batch.cancelled:
            try:
                self.batch.results.put((self.key, result), timeout=0.1)
                return
            except queue.Full:
                continue


class Driver:
    """Runs in its own thread (``run``); owns the worker of one slot."""

    def __init__(
        self, slot: int, jobs: queue.Queue[Item | None], get_worker: Callable[[int], WorkerProcess], n_workers: int
    ):
        self.slot = slot
        self.n_workers = n_workers
        self.jobs = jobs
        self.get_worker = get_worker
        self.proc: WorkerProcess | None = None
        self.inflight: deque[Item] = deque()  # sent, reply not read yet, oldest first
        self.backlog: deque[Item] = deque()  # to send before taking new jobs: retries and held-back jobs
        self.stopping = False

    def run(self) -> None:
        while True:
            try:
                self._top_up()
                if not self.inflight:
                    if self.stopping and not self.backlog:
                        return
                    continue
                self._collect()
            except Exception as exc:  # keep the pool alive; the callers see a SandboxError
                logger.exception("sandbox: driver %d failed", self.slot)
                for item in self.inflight:
                    item.answer(SandboxError(f"sandbox driver failed: {exc!r}"))
                self.inflight.clear()
                if self.proc is not None:
                    self.proc.kill()

    def _next(self, block: bool) -> Item | None:
        while True:
            if self.backlog:
                item = self.backlog.popleft()
            elif self.stopping:
                return None
            else:
                try:
                    got = self.jobs.get(block=block)
                except queue.Empty:
                    return None
                if got is None:
                    self.stopping = True
                    return None
                item = got
                item.encode()
            if not item.batch.cancelled:
                return item

    def _top_up(self) -> None:
        while len(self.inflight) < PIPELINE_DEPTH:
            if self.inflight and not self.backlog and self.jobs.qsize() < self.n_workers:
                return  # near the end of the work: leave the next job to an idle worker, not behind this one
            item = self._next(block=not self.inflight)
            if item is None:
                return
            if self.inflight and (item.attempts or self.inflight[-1].attempts or len(item.frame) > SMALL_FRAME):
                self.backlog.appendleft(item)  # a retry runs alone; a big request waits for an empty pipe
                return
            self.inflight.append(item)
            try:
                if len(self.inflight) == 1:
                    self.proc = self.get_worker(self.slot)
                self.proc.send(item.frame)  # type: ignore[union-attr]
            except SandboxError as exc:
                self.inflight.pop()
                item.answer(exc)
            except WorkerDied as exc:
                self._died(exc)
                return

    def _collect(self) -> None:
        head = self.inflight[0]
        try:
            reply = self.proc.recv(head.reply_timeout())  # type: ignore[union-attr]
        except WorkerDied as exc:
            self._died(exc)
            return
        self.inflight.popleft()
        reply["status"] = ExecStatus(reply["status"])
        head.answer(ExecResult(**reply))
        if self.proc is not None and self.proc.retired:
            self._retired()

    def _retired(self) -> None:
        """The worker exits after that reply: what was queued behind it goes to its successor, unharmed (no
        attempt counted: it never ran)."""
        if self.proc is not None:
            self.proc.kill()
        self.backlog.extendleft(reversed(self.inflight))
        self.inflight.clear()

    def _died(self, exc: WorkerDied) -> None:
        logger.warning("sandbox: worker %d lost while running a job (%s)", self.slot, exc)
        if self.proc is not None:
            self.proc.kill()
        head, *rest = self.inflight
        self.inflight.clear()
        self.backlog.extendleft(reversed(rest))
        head.attempts += 1
        if head.attempts >= 2:
            head.answer(
                ExecResult(
                    status=ExecStatus.SANDBOX_ERROR,
                    stdout="",
                    stderr_tail=("the worker died twice while running this program (did it kill its worker?)"),
                )
            )
        else:
            self.backlog.appendleft(head)
