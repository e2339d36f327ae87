"""The Sandbox: a pool of warm, isolated workers behind one thread-safe ``run(jobs)`` call.

One driver thread per worker pulls jobs from a shared queue, so several callers (the reward server's
threads, a bench run) can call ``run`` at once and share the cores fairly. Identical jobs within a call run
once; results are cached on disk across calls. A worker that dies (killed by a program where the level
allows it, or crashed) is replaced and its job retried once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError, SandboxError
from cure_bench.sandbox import cgroups, isolation, view, worker_mounts
from cure_bench.sandbox._driver import PIPELINE_DEPTH, RESULTS_QUEUED, Batch, Driver, Item
from cure_bench.sandbox._worker_proc import NPROC_PER_EXECUTION, WorkerDied, WorkerProcess
from cure_bench.sandbox.cache import ENGINE_VERSION, ResultCache, default_cache_dir, job_key
from cure_bench.sandbox.compat import check_compat
from cure_bench.sandbox.isolation import UidBlock, drops_uid
from cure_bench.types import ExecJob, ExecResult

logger = logging.getLogger("cure_bench.sandbox")

ResultCallback = Callable[[int, ExecResult], None]
_PROBE = """
import importlib.util, json, os, socket, sys
seen = {}
for path in json.loads(sys.stdin.read()):
    try:
        st = os.stat(path)
    except OSError:
        continue
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, 'rb').close()
        readable = True
    except OSError:
        readable = False
    seen[path] = [st.st_dev, st.st_ino, readable]
ifaces = sorted(n for _, n in socket.if_nameindex())
try:
    toolkit = importlib.util.find_spec('cure_bench') is not None
except PermissionError:  # an install finder points into a directory this uid cannot enter: not importable
    toolkit = False
print(json.dumps({'uid': os.getuid(), 'ifaces': ifaces, 'seen': seen, 'toolkit': toolkit}))
"""
HIDING_LEVELS = ("bwrap", "unshare")
"""Levels whose view is an allow-list: there every must-hide path is checked; at ``rlimits`` only the
caller's explicit ``hide`` paths (they must at least be unreadable to the program uid)."""


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


class Sandbox:
    """Executes untrusted programs like a judge: ``python3 prog.py < stdin``, contained, in parallel.

    ``isolation``: ``auto`` (strongest available: bwrap, then unshare, then rlimits), or one level by name
    (it must start, or SandboxError). ``run`` is safe to call from several threads at once. ``compat``: judge
    compatibility options (``("typing-names",)``, see sandbox/compat.py); none by default: python3 semantics.
    """

    def __init__(
        self,
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
        self.workers = workers or default_workers()
        self.max_output_bytes = max_output_bytes
        self.compat = check_compat(compat)  # upstream behaviours asked for (sandbox/compat.py); () = python3
        self.env = view.judge_env(packages)
        self._explicit_hide = sorted({os.path.realpath(p) for p in hide})
        cache_path = Path(cache_dir or default_cache_dir())
        self._hide = view.must_hide([*hide, *([cache_path] if use_cache else [])])
        self._uids = UidBlock(self.workers) if drops_uid("rlimits") else None  # `isolation` is the argument here
        self._cgroups = cgroups.create(_portable())  # `isolation` is the argument here
        self._private_dir = Path(tempfile.mkdtemp(prefix="cure-sandbox-"))
        self._private_dir.chmod(0o711)  # workers' uids traverse into their own 0700 directories only
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._procs: dict[int, WorkerProcess] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Workers are started from these long-lived threads only: bwrap --die-with-parent and the worker's
        # own PR_SET_PDEATHSIG fire when the *thread* that started them exits, not just the process.
        self._spawner = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cure-sandbox-spawn")
        self._finalizer = weakref.finalize(
            self, _shutdown, self._procs, self._lock, self._private_dir, self._spawner, self._uids, self._cgroups
        )
        try:
            # the cache first: made and checked (0700, ours) before any program runs, so none can plant it
            self._cache = ResultCache(cache_path) if use_cache else None
            self.isolation_level = self._detect(isolation)
            self._start_others()
        except BaseException:
            self.close()
            raise
        self._cache_dir = str(self._cache.path.parent) if self._cache else None
        self._threads = [
            threading.Thread(
                target=Driver(slot, self._queue, self._worker, self.workers).run,
                daemon=True,
                name=f"cure-sandbox-{slot}",
            )
            for slot in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------------------------ start-up

    def _detect(self, requested: str) -> str:
        """Start worker 0 under the strongest level that works and verify its containment by a probe."""
        order = isolation.AUTO_ORDER if requested == "auto" else (requested,)
        failures: list[str] = []
        for level in order:
            if not isolation.available(level):
                failures.append(f"{level}: not installed")
                continue
            try:
                proc = self._spawn(level, 0)
                problem = self._probe(proc, level)
            except SandboxError as exc:
                failures.append(f"{level}: {exc}")
                continue
            if problem is None:
                self._procs[0] = proc
                self._announce(level, requested, failures)
                return level
            proc.kill()
            failures.append(f"{level}: {problem}")
        raise SandboxError(
            "no sandbox isolation level could start: "
            + "; ".join(failures)
            + ". Install bubblewrap (apt-get install bubblewrap) or pass --sandbox none."
        )

    def _start_others(self) -> None:
        """Start workers 1..N-1 in parallel so the pool is warm when the constructor returns."""

        spec = {
            slot: self._spawner.submit(self._spawn_here, self.isolation_level, slot) for slot in range(1, self.workers)
        }
        for slot, future in spec.items():
            try:
                proc = future.result()
            except SandboxError as exc:
                logger.warning("sandbox: worker %d could not start (%s); retrying on its first job", slot, exc)
                continue
            with self._lock:
                self._procs[slot] = proc

    def _spawn(self, level: str, slot: int) -> WorkerProcess:
        """Start a worker from a spawner thread (see __init__) and wait for it to be ready."""
        try:
            future = self._spawner.submit(self._spawn_here, level, slot)
        except RuntimeError as exc:  # the spawner was shut down: we are closing
            raise SandboxError("the sandbox was closed") from exc
        return future.result()

    def _spawn_here(self, level: str, slot: int) -> WorkerProcess:
        base = self._uids.base if self._uids is not None else isolation.UID_BASE
        spec = isolation.worker_spec(level, slot, self._private_dir, self.env, base)
        if self._cgroups is not None:
            spec = dataclasses.replace(spec, cgroups=self._cgroups.fds(slot))
        return WorkerProcess(spec, self.max_output_bytes, self._private_dir / f"worker-{slot}.log", self.compat)

    def _probe(self, proc: WorkerProcess, level: str) -> str | None:
        """Run one tiny program and check from inside that the level holds what it promises: no network,
        another uid, the toolkit not importable, and none of the must-hide paths visible."""
        import json

        try:
            reply = proc.execute(_PROBE, json.dumps(self._hide), 10.0, 1024, timeout_s=60)
        except WorkerDied as exc:
            return f"probe program could not run ({exc}): {proc.log_tail()}"
        if reply["status"] != "ok":
            return f"probe program failed: {reply['stderr_tail'][-500:]}"
        seen = json.loads(reply["stdout"])
        if isolation.CONTAINS[level]["network"] == "none" and seen["ifaces"] != ["lo"]:
            return f"network interfaces visible: {seen['ifaces']}"
        if isolation.drops_uid(level) and seen["uid"] == 0:
            return "programs still run as root"
        if level in HIDING_LEVELS and seen["toolkit"]:
            return "programs can import the cure_bench package"
        visible = _visible(seen["seen"], self._hide if level in HIDING_LEVELS else self._explicit_hide, level)
        if visible:
            return (
                "programs can see paths they must not: "
                + ", ".join(visible)
                + ". Refusing to run open; "
                + ("make them unreadable to the program uids, " if level == "rlimits" else "")
                + "install bubblewrap, or pass --sandbox none for trusted programs only"
            )
        return None

    def _announce(self, level: str, requested: str, failures: list[str]) -> None:
        what = isolation.CONTAINS[level]
        logger.info(
            "sandbox: isolation=%s workers=%d network=%s filesystem=%s uid_drop=%s",
            level,
            self.workers,
            what["network"],
            what["filesystem"],
            isolation.drops_uid(level),
        )
        if level == "none":
            logger.warning(
                "sandbox: isolation 'none': programs run with the network, the filesystem and "
                "the uid of this process. Use only for trusted programs."
            )
        elif requested == "auto" and level != "bwrap":
            logger.warning(
                "sandbox: DEGRADED isolation %r (%s): network=%s, filesystem=%s. Install "
                "bubblewrap (apt-get install bubblewrap) for full containment.",
                level,
                "; ".join(failures),
                what["network"],
                what["filesystem"],
            )
        if level != "none" and not isolation.drops_uid(level):
            logger.warning(
                "sandbox: not running as root, so programs keep this process's uid (no "
                "RLIMIT_NPROC, and they can signal their own worker, which is then replaced)."
            )

    # ------------------------------------------------------------------------------------ workers

    def _worker(self, slot: int) -> WorkerProcess:
        with self._lock:
            proc = self._procs.get(slot)
        if proc is not None and proc.alive():
            return proc
        if proc is not None and proc.retired:
            logger.debug("sandbox: worker %d retired (its cleanup found a trace); starting a new one", slot)
        elif proc is not None:
            logger.warning("sandbox: worker %d died (%s); starting a new one", slot, proc.log_tail(300))
            proc.kill()
        if self._closed:
            raise SandboxError("the sandbox was closed")
        proc = self._spawn(self.isolation_level, slot)
        with self._lock:
            if self._closed:
                proc.kill()
                raise SandboxError("the sandbox was closed")
            self._procs[slot] = proc
        return proc

    # ------------------------------------------------------------------------------------ public API

    def run(self, jobs: Sequence[ExecJob], on_result: ResultCallback | None = None) -> list[ExecResult]:
        """Execute all jobs (identical ones once, cached ones never) and return results in job order.

        ``on_result(index, result)`` is called from the calling thread as each result arrives (cached
        ones first). Safe to call from several threads at once. Keeps every result until it returns: for
        big submissions use ``run_each``, which keeps none.
        """
        results: list[ExecResult | None] = [None] * len(jobs)

        def keep(index: int, result: ExecResult) -> None:
            results[index] = result
            if on_result is not None:
                on_result(index, result)

        self.run_each(jobs, keep)
        return results  # type: ignore[return-value]

    def run_each(self, jobs: Sequence[ExecJob], on_result: ResultCallback) -> None:
        """Execute all jobs like ``run``, handing each result to ``on_result(index, result)`` as it arrives
        and keeping none: the harness holds at most ``max_results_in_flight()`` results at any moment, so
        a caller that judges each result and keeps a verdict and a digest stays bounded (docs/sandbox.md)."""
        if self._closed:
            raise SandboxError("the sandbox was closed; create a new Sandbox")
        groups = self._group(jobs)
        done: set[str] = set()

        def deliver(key: str, result: ExecResult) -> None:
            done.add(key)
            for index in groups[key]:
                on_result(index, result)

        if self._cache is not None:
            for key, result in self._cache.iter_many(groups):
                deliver(key, result)
        pending = [key for key in groups if key not in done]
        batch = Batch(results=queue.Queue(maxsize=RESULTS_QUEUED))
        for key in pending:
            self._queue.put(Item(batch, key, jobs[groups[key][0]]))
        try:
            for _ in pending:
                key, result = self._next(batch)
                if self._cache is not None:
                    self._cache.put(key, result)
                deliver(key, result)
                del result
        finally:
            batch.cancelled = True

    def max_results_in_flight(self) -> int:
        """How many execution results the harness may hold at once: those being read from the workers'
        pipes (PIPELINE_DEPTH per worker) plus those queued for the caller; each is at most
        ``max_output_bytes`` of stdout plus a 4 KiB stderr tail."""
        return self.workers * PIPELINE_DEPTH + RESULTS_QUEUED

    def _group(self, jobs: Sequence[ExecJob]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            _validate(index, job)
            key = job_key(job, self.isolation_level, self.max_output_bytes, self.compat)
            groups.setdefault(key, []).append(index)
        return groups

    def _next(self, batch: Batch) -> tuple[str, ExecResult]:
        while True:
            try:
                key, result = batch.results.get(timeout=0.5)
            except queue.Empty:
                if self._closed:
                    raise SandboxError("the sandbox was closed while jobs were running") from None
                continue
            if isinstance(result, BaseException):
                raise result
            return key, result

    def describe(self) -> dict[str, Any]:
        """What the run manifest records about the engine."""
        return {
            "executor": "local",
            "isolation_level": self.isolation_level,
            **isolation.CONTAINS[self.isolation_level],
            "uid_drop": isolation.drops_uid(self.isolation_level),
            "program_uids": (
                f"{self._uids.base}..{self._uids.base + self.workers - 1}"
                if self._uids is not None and isolation.drops_uid(self.isolation_level)
                else None
            ),
            "workers": self.workers,
            "accounting": (
                {"per_execution": "slot cgroup", **self._cgroups.describe()}
                if self._cgroups is not None
                else {"per_execution": "every process of the execution (/proc + rusage)"}
            ),
            "engine_version": ENGINE_VERSION,
            "python": sys.version.split()[0],
            "python_executable": isolation.real_python(),
            "judge_env": (
                self.env.describe() if self.isolation_level in HIDING_LEVELS else "host interpreter, all packages"
            ),
            "hidden_checked": self._hide if self.isolation_level in HIDING_LEVELS else self._explicit_hide,
            "cache": self._cache is not None,
            "cache_dir": self._cache_dir,
            "max_output_bytes": self.max_output_bytes,
            "judge_compat": list(self.compat),
            "rlimits": {
                "nproc": NPROC_PER_EXECUTION,
                "nofile": 256,
                "core": 0,
                "address_space": "memory_limit_mb",
                "cpu": "time limit + 2 s (backstop)",
            },
        }

    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (for tests and diagnostics)."""
        with self._lock:
            return [p.pid for p in self._procs.values() if p.alive()]

    def close(self) -> None:
        """Stop every worker and everything they run; returns when all of it is gone. Idempotent."""
        if self._closed:
            return
        self._closed = True
        threads = getattr(self, "_threads", [])
        for _ in threads:
            self._queue.put(None)
        with self._lock:
            victims = list(self._procs.values())
            self._procs.clear()
        _stop_all(victims)
        for thread in threads:
            thread.join(timeout=10)  # drivers see their worker gone and finish
        for proc in victims:
            proc.close_pipes()
        self._finalizer()  # removes the private directory (workers were already stopped)
        cache = getattr(self, "_cache", None)
        if cache is not None:
            cache.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_options(isolation: str, workers: int | None, max_output_bytes: int) -> None:
    """The constructor's argument checks, shared with the Ray executor (which checks them before connecting)."""
    if isolation not in ("auto", *isolation_levels()):
        raise ConfigError(
            f"--sandbox: unknown isolation level {isolation!r}; use auto, " + ", ".join(isolation_levels())
        )
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if max_output_bytes < 1024:
        raise ConfigError(f"max_output_bytes must be >= 1024, got {max_output_bytes}")


def _portable() -> bool:
    return isolation.PORTABLE


def isolation_levels() -> tuple[str, ...]:
    return isolation.LEVELS


def _visible(seen: dict[str, list[Any]], paths: Sequence[str], level: str) -> list[str]:
    """The paths the probe saw as the host's very file (same device and inode); at ``rlimits``, where
    everything is the host's, those the program uid could also read."""
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        got = seen.get(path)
        if got is not None and got[:2] == [st.st_dev, st.st_ino] and (level != "rlimits" or got[2]):
            found.append(path)
    return found


def _validate(index: int, job: ExecJob) -> None:
    if not isinstance(job.program, str) or not isinstance(job.stdin, str):
        raise ConfigError(f"ExecJob #{index}: program and stdin must be str")
    if not job.time_limit_s > 0:
        raise ConfigError(f"ExecJob #{index}: time_limit_s must be > 0, got {job.time_limit_s}")
    if job.memory_limit_mb < 64:  # the warm interpreter alone maps ~30 MB
        raise ConfigError(f"ExecJob #{index}: memory_limit_mb must be >= 64, got {job.memory_limit_mb}")


def _stop_all(procs: list[WorkerProcess]) -> None:
    """Stop workers in parallel: each may need a grace period."""
    stoppers = [threading.Thread(target=p.stop) for p in procs]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()


def _shutdown(
    procs: dict[int, WorkerProcess],
    lock: threading.Lock,
    private_dir: Path,
    spawner: ThreadPoolExecutor,
    uids: isolation.UidBlock | None,
    groups: cgroups.SlotCgroups | None,
) -> None:
    """Stop whatever workers remain (also the last resort at garbage collection or interpreter exit)."""
    with lock:
        victims = list(procs.values())
        procs.clear()
    _stop_all(victims)
    for proc in victims:
        proc.close_pipes()
    spawner.shutdown(wait=False)
    worker_mounts.remove_tree(str(private_dir))  # no recursion: a program may have nested ~10^5 directories
    if groups is not None:
        groups.close()  # the workers and every process they ran are gone
    if uids is not None:
        uids.release()  # only now: no process of ours runs under these uids any more
