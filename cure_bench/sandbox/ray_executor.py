"""The Ray executor: the Sandbox's ``run``/``run_each`` contract, with the executions spread over a Ray cluster.

One actor per node holds an ordinary ``Sandbox`` with that node's workers (ray_actor.py), so isolation, limits
and verdicts are the local engine's. The driver keeps what must stay single: job keys, deduplication and the
exec cache (lookups before anything is sent, stores as results come back). Jobs travel as batches of one
program and its inputs (the program text crosses the network once, and one remote call carries many
executions). A single dispatcher thread owns every Ray call: it keeps each actor two batches ahead,
hands finished batches to their callers, and when an actor or its node is lost, sends that actor's batches
to the others (a batch lost three times gets SANDBOX_ERROR results, never cached) and
starts one replacement on the node if the node is still alive.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.errors import SandboxError
from cure_bench.sandbox import ray_connect
from cure_bench.sandbox.cache import ENGINE_VERSION, ResultCache, default_cache_dir, job_key
from cure_bench.sandbox.compat import check_compat
from cure_bench.sandbox.pool import _validate, check_options
from cure_bench.sandbox.ray_actor import Case, NodeSandbox
from cure_bench.types import ExecJob, ExecResult, ExecStatus

log = logging.getLogger("cure_bench.sandbox")

ResultCallback = Callable[[int, ExecResult], None]
BATCH_MAX = 32
"""Most executions in one remote call (one program's tests, split when more): big enough that Ray's per-call
cost is noise next to the executions, small enough that a program's tests spread over several nodes."""
AHEAD_PER_WORKER = 2
BATCH_PER_WORKER = 4
"""A batch holds at most this many executions per worker of the smallest node: a few rounds of its node's
workers (measured on 2 cores with ``--ray local``: 1 per worker ran at 0.66x the local engine, 4 at 0.89-0.94x,
8 no better), while the last batch of a run still ends soon after the others."""
MAX_ATTEMPTS = 3
START_TIMEOUT_S = 300.0


@dataclass
class _Call:
    """One ``run_each`` call: where its batches' results go and how many it may have outstanding."""

    results: queue.Queue[tuple[list[str], list[ExecResult]] | BaseException] = field(default_factory=queue.Queue)
    outstanding: int = 0  # executions sent or delivered but not yet consumed (guarded by the dispatcher lock)
    cancelled: bool = False


@dataclass
class _Batch:
    call: _Call
    program: str
    keys: list[str]
    cases: list[Case]
    attempts: int = 0


@dataclass
class _Actor:
    handle: Any
    node_id: str
    host: str
    workers: int = 0
    inflight: dict[Any, _Batch] = field(default_factory=dict)
    jobs: int = 0

    def has_room(self) -> bool:
        """Two full batches in flight at least: the next one is there when one ends (no idle round trip)."""
        return self.jobs < AHEAD_PER_WORKER * BATCH_PER_WORKER * self.workers


class RaySandbox:
    """Drop-in for ``Sandbox`` (``run``, ``run_each``, ``describe``, ``close``) on a Ray cluster.

    ``address``: ``local`` (start Ray here), ``auto``, HOST:PORT or ray://HOST:PORT. ``workers``: per node
    (default: the node's CPUs in Ray). ``isolation``: as for Sandbox; every node must reach the same level.
    """

    def __init__(
        self,
        address: str,
        workers: int | None = None,
        isolation: str = "auto",
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        max_output_bytes: int = 16 * 2**20,
        packages: Sequence[str] = (),
        hide: Sequence[str | Path] = (),
        compat: Sequence[str] = (),
    ):
        check_options(isolation, workers, max_output_bytes)
        self.compat = check_compat(compat)
        self.address = address
        self.max_output_bytes = max_output_bytes
        self._ray = ray_connect.connect(address)
        cache_path = Path(cache_dir or default_cache_dir())
        self._cache = ResultCache(cache_path) if use_cache else None
        hidden = [str(p) for p in (*hide, *([cache_path] if use_cache else []))]
        self._actor_args = (isolation, max_output_bytes, tuple(packages), hidden, self.compat)
        self._per_node = workers
        self._remote = self._ray.remote(NodeSandbox)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._actors: dict[int, _Actor] = {}
        self._info: dict[int, _Info] = {}
        self._owner: dict[Any, int] = {}  # run_program ref -> actor id
        self._starting: dict[Any, _Actor] = {}  # ready() ref -> actor being started (replacements)
        self._level = isolation
        self._pending: deque[_Batch] = deque()
        self._ids = itertools.count()
        self._replaced: set[str] = set()
        self.lost: list[str] = []  # "host: reason" per actor lost mid-run
        self.batches_retried = 0
        self._closed = False
        self._failure: BaseException | None = None
        try:
            self._start_all(isolation)
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._dispatch, daemon=True, name="cure-ray-dispatch")
        self._thread.start()

    # ------------------------------------------------------------------------------------ actors

    def _new_actor(self, node: dict[str, Any], level: str) -> tuple[_Actor, Any]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        workers = self._per_node or node["cpus"]
        _, max_output, packages, hidden, compat = self._actor_args
        handle = self._remote.options(
            num_cpus=0,  # the workers' cores are the node's; nothing else is reserved
            max_concurrency=AHEAD_PER_WORKER * workers + 4,
            max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["node_id"], soft=False),
        ).remote(workers, level, max_output, packages, hidden, compat)
        return _Actor(handle, node["node_id"], node["host"]), handle.ready.remote()

    def _start_all(self, isolation: str) -> None:
        """One actor per node, started in parallel; every node must reach the same isolation level."""
        nodes = ray_connect.sandbox_nodes(self._ray)
        if not nodes:
            raise SandboxError(f"--ray-address {self.address}: the Ray cluster has no live node with a CPU")
        started = [self._new_actor(node, isolation) for node in nodes]
        refs = [ref for _, ref in started]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT_S)
        failures = []
        for actor, ref in started:
            if ref not in ready:
                failures.append(f"{actor.host}: not started within {START_TIMEOUT_S:.0f} s")
                continue
            try:
                self._admit(actor, self._ray.get(ref), None)
            except Exception as exc:
                failures.append(f"{actor.host}: {_reason(exc)}")
                with contextlib.suppress(Exception):
                    self._ray.kill(actor.handle)
        if not self._actors:
            raise SandboxError("no Ray sandbox actor could start: " + "; ".join(failures))
        for failure in failures:
            log.warning("ray sandbox: a node runs no sandbox (%s); the others carry on", failure)
        levels = {info.level for info in self._info.values()}
        if len(levels) > 1:
            where = ", ".join(f"{info.host}={info.level}" for info in self._info.values())
            raise SandboxError(
                f"Ray nodes reached different isolation levels ({where}); pass --sandbox LEVEL with one they all "
                "provide, or install bubblewrap on every node"
            )
        (self._level,) = levels
        if self._level != "bwrap":  # the actors' own warnings stay in the nodes' logs (log_to_driver is off)
            log.warning(
                "ray sandbox: isolation %r on every node, not bwrap: install bubblewrap on the nodes for full "
                "containment (docs/sandbox.md)",
                self._level,
            )

    def _admit(self, actor: _Actor, ready: dict[str, Any], level: str | None) -> None:
        """Check an actor's report and make it usable."""
        if ready["engine_version"] != ENGINE_VERSION:
            raise SandboxError(
                f"engine version {ready['engine_version']} there, {ENGINE_VERSION} here: install the same "
                "cure-toolkit on every node"
            )
        if level is not None and ready["isolation_level"] != level:
            raise SandboxError(f"isolation {ready['isolation_level']} there, {level} on the other nodes")
        actor.workers = ready["workers"]
        actor_id = next(self._ids)
        self._actors[actor_id] = actor
        self._info[actor_id] = _Info(
            actor.host, actor.node_id, ready["isolation_level"], ready["workers"], ready["describe"]
        )
        log.info("ray sandbox: node %s, isolation=%s, workers=%d", actor.host, ready["isolation_level"], actor.workers)

    @property
    def isolation_level(self) -> str:
        """The level every node reached (part of every job key, as locally)."""
        return self._level

    @property
    def workers(self) -> int:
        """Workers over all live actors."""
        return sum(a.workers for a in self._actors.values())

    def actor_handles(self) -> list[Any]:
        """The live actors' handles (for tests and diagnostics: ``ray.kill`` one to see its jobs move)."""
        with self._lock:
            return [a.handle for a in self._actors.values()]

    # ------------------------------------------------------------------------------------ public API

    def run(self, jobs: Sequence[ExecJob], on_result: ResultCallback | None = None) -> list[ExecResult]:
        """As ``Sandbox.run``: all results in job order."""
        results: list[ExecResult | None] = [None] * len(jobs)

        def keep(index: int, result: ExecResult) -> None:
            results[index] = result
            if on_result is not None:
                on_result(index, result)

        self.run_each(jobs, keep)
        return results  # type: ignore[return-value]

    def run_each(self, jobs: Sequence[ExecJob], on_result: ResultCallback) -> None:
        """As ``Sandbox.run_each``: cached results first (from the driver's cache), then the others as their
        batches come back; identical jobs run once; ``on_result`` runs in the calling thread."""
        if self._closed:
            raise SandboxError("the sandbox was closed; create a new one")
        groups: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            _validate(index, job)
            groups.setdefault(job_key(job, self.isolation_level, self.max_output_bytes, self.compat), []).append(index)

        def deliver(key: str, result: ExecResult) -> None:
            for index in groups[key]:
                on_result(index, result)

        done: set[str] = set()
        if self._cache is not None:
            for key, result in self._cache.iter_many(groups):
                done.add(key)
                deliver(key, result)
        call = _Call()
        with self._lock:
            size = min(BATCH_MAX, BATCH_PER_WORKER * min((a.workers for a in self._actors.values()), default=1))
        batches = _batches(call, [(key, jobs[groups[key][0]]) for key in groups if key not in done], size)
        with self._lock:
            self._pending.extend(batches)
        self._wake.set()
        try:
            for _ in batches:
                keys, results = self._next(call)
                for key, result in zip(keys, results, strict=True):
                    if self._cache is not None:
                        self._cache.put(key, result)
                    deliver(key, result)
        finally:
            call.cancelled = True

    def _next(self, call: _Call) -> tuple[list[str], list[ExecResult]]:
        while True:
            try:
                item = call.results.get(timeout=0.5)
            except queue.Empty:
                if self._failure is not None:
                    raise SandboxError(f"the Ray executor failed: {self._failure}") from None
                if self._closed:
                    raise SandboxError("the sandbox was closed while jobs were running") from None
                continue
            if isinstance(item, BaseException):
                raise item
            with self._lock:
                call.outstanding -= len(item[0])
            self._wake.set()
            return item

    def max_results_in_flight(self) -> int:
        """Results a call may have sent or waiting for it at once (each at most ``max_output_bytes``)."""
        return AHEAD_PER_WORKER * BATCH_PER_WORKER * max(self.workers, 1) + BATCH_MAX

    # ------------------------------------------------------------------------------------ dispatcher

    def _dispatch(self) -> None:
        try:
            while not self._closed:
                self._assign()
                refs = [*self._starting, *(ref for a in self._actors.values() for ref in a.inflight)]
                if not refs:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                ready, rest = self._ray.wait(refs, num_returns=1, timeout=0.05)
                if ready and rest:
                    more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
                    ready += more
                for ref in ready:
                    self._settle(ref)
        except Exception as exc:  # a bug or a broken connection: every caller gets a SandboxError
            log.exception("ray sandbox: dispatcher failed")
            self._failure = exc

    def _assign(self) -> None:
        cap = self.max_results_in_flight()
        with self._lock:
            skipped: list[_Batch] = []
            while self._pending:
                room = [a for a in self._actors.values() if a.has_room()]
                if not room:
                    break
                batch = self._pending.popleft()
                if batch.call.cancelled:
                    continue
                if batch.call.outstanding and batch.call.outstanding + len(batch.keys) > cap:
                    skipped.append(batch)  # its caller has enough in flight; others may go first
                    continue
                actor = min(room, key=lambda a: a.jobs / a.workers)
                ref = actor.handle.run_program.remote(batch.program, batch.cases)
                actor.inflight[ref] = batch
                actor.jobs += len(batch.cases)
                self._owner[ref] = next(i for i, a in self._actors.items() if a is actor)
                batch.call.outstanding += len(batch.cases)
            self._pending.extendleft(reversed(skipped))

    def _settle(self, ref: Any) -> None:
        if ref in self._starting:
            self._started(ref)
            return
        actor_id = self._owner.pop(ref, None)
        if actor_id is None:  # its actor was lost earlier in this round: the batch is already queued again
            return
        actor = self._actors[actor_id]
        exceptions = self._ray.exceptions
        try:
            results = self._ray.get(ref)
        except exceptions.RayTaskError as exc:  # the node's sandbox raised: the caller sees it
            with self._lock:
                batch = actor.inflight.pop(ref)
                actor.jobs -= len(batch.cases)
            batch.call.results.put(SandboxError(f"Ray node {actor.host}: {_reason(exc)}"))
            return
        except (exceptions.RayError, ConnectionError) as exc:  # the actor, its node or the link is gone
            self._lose(actor_id, exc)
            return
        with self._lock:
            batch = actor.inflight.pop(ref)
            actor.jobs -= len(batch.cases)
        if not batch.call.cancelled:
            batch.call.results.put((batch.keys, results))

    def _lose(self, actor_id: int, exc: BaseException) -> None:
        """An actor is gone: its batches go back to the front of the queue, and its node gets one replacement."""
        with self._lock:
            actor = self._actors.pop(actor_id)
            self._info.pop(actor_id, None)
            self.lost.append(f"{actor.host}: {_reason(exc)}")
            for ref, batch in reversed(actor.inflight.items()):
                self._owner.pop(ref, None)
                batch.attempts += 1
                if batch.attempts >= MAX_ATTEMPTS:  # stays outstanding until its caller takes these results
                    batch.call.results.put((batch.keys, [_lost_result(batch.attempts)] * len(batch.keys)))
                else:
                    batch.call.outstanding -= len(batch.cases)
                    self.batches_retried += 1
                    self._pending.appendleft(batch)
            actor.inflight.clear()
        log.warning("ray sandbox: lost the actor on %s (%s); its jobs go to the other nodes", actor.host, _reason(exc))
        with contextlib.suppress(Exception):
            self._ray.kill(actor.handle)
        if actor.node_id not in self._replaced and ray_connect.node_alive(self._ray, actor.node_id):
            self._replaced.add(actor.node_id)
            node = {"node_id": actor.node_id, "host": actor.host, "cpus": actor.workers}
            replacement, ready = self._new_actor(node, self._level)
            self._starting[ready] = replacement
        self._check_any_left()

    def _started(self, ref: Any) -> None:
        actor = self._starting.pop(ref)
        try:
            report = self._ray.get(ref)
            with self._lock:
                self._admit(actor, report, self._level)
        except Exception as exc:
            log.warning("ray sandbox: the replacement actor on %s did not start (%s)", actor.host, _reason(exc))
            with contextlib.suppress(Exception):
                self._ray.kill(actor.handle)
            self._check_any_left()

    def _check_any_left(self) -> None:
        if self._actors or self._starting:
            return
        error = SandboxError("every Ray sandbox actor was lost: " + "; ".join(self.lost))
        self._failure = error
        with self._lock:
            calls = {id(b.call): b.call for b in self._pending}
            self._pending.clear()
        for call in calls.values():
            call.results.put(error)

    # ------------------------------------------------------------------------------------ the rest

    def describe(self) -> dict[str, Any]:
        """The manifest's engine record: a node's sandbox record, with the cluster's totals and the driver's cache."""
        infos = list(self._info.values())
        record = dict(infos[0].describe) if infos else {}
        record.update(
            workers=self.workers,
            cache=self._cache is not None,
            cache_dir=str(self._cache.path.parent) if self._cache is not None else None,
            executor="ray",
            ray={
                "address": self.address,
                "version": getattr(self._ray, "__version__", None),
                "nodes": [
                    {"host": i.host, "node_id": i.node_id, "isolation_level": i.level, "workers": i.workers}
                    for i in infos
                ],
                "actors_lost": list(self.lost),
                "batches_retried": self.batches_retried,
                "batch_max": BATCH_MAX,
            },
        )
        return record

    def close(self) -> None:
        """Stop every actor's sandbox, then the actors; the process stays connected to Ray. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=10)
        actors = [*self._actors.values(), *self._starting.values()]
        closing = [a.handle.close.remote() for a in actors]
        if closing:
            with contextlib.suppress(Exception):
                self._ray.wait(closing, num_returns=len(closing), timeout=30)
        for actor in actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor.handle)
        self._actors.clear()
        self._starting.clear()
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> RaySandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Info:
    host: str
    node_id: str
    level: str
    workers: int
    describe: dict[str, Any]


def _batches(call: _Call, keyed: list[tuple[str, ExecJob]], size: int) -> list[_Batch]:
    """Jobs grouped by program (first-seen order), at most ``size`` per batch."""
    by_program: dict[str, list[tuple[str, ExecJob]]] = {}
    for key, job in keyed:
        by_program.setdefault(job.program, []).append((key, job))
    out = []
    for program, items in by_program.items():
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            cases = [(job.stdin, float(job.time_limit_s), int(job.memory_limit_mb)) for _, job in chunk]
            out.append(_Batch(call, program, [key for key, _ in chunk], cases))
    return out


def _lost_result(attempts: int) -> ExecResult:
    return ExecResult(
        status=ExecStatus.SANDBOX_ERROR,
        stdout="",
        stderr_tail=f"the Ray actor running this program was lost {attempts} times (node failures or memory kills)",
    )


def _reason(exc: BaseException) -> str:
    """The first line that says something: Ray's errors carry long tracebacks after it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        exc = cause
    text = str(exc).strip().splitlines()
    lines = [line for line in text if line.strip() and not line.startswith(("Traceback", "  "))]
    return (lines[-1] if lines else type(exc).__name__)[:300]
