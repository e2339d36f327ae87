"""The warm execution worker: a small interpreter that forks once per program.

This file runs INSIDE the isolation (a bubblewrap/unshare namespace, or at least as a process with a clean
environment), started by ``cure_bench.sandbox.pool`` with ``sys.executable``. It must therefore import
nothing but the standard library: the ``cure_bench`` package is not visible in the sandbox.

Why a warm worker that forks: a cold ``python3`` per execution costs 30-100 ms of CPU, a fork of this small
pre-imported interpreter about 1-3 ms. Why it never holds expected outputs: the parent compares outputs; a
program forked from here can read this process's memory, so nothing it must not see may ever be in it.

Protocol on fds 0/1 (moved to private fds at start), see ``recv``/``send``: a request is a JSON header
``{"program", "time_limit_s", "memory_limit_mb"}`` plus stdin as raw bytes; a reply is a JSON header
``{"status", "exit_code", "cpu_s", "wall_s", "peak_memory_mb"}`` plus raw stdout and stderr tail. Inputs and
outputs live only in bytearrays that are zeroed after use. EOF on the request pipe = shut down.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stubs: the C half of signal)
import atexit
import builtins
import contextlib
import errno
import functools
import gc
import importlib.machinery
import io
import json
import operator
import os
import resource
import signal
import struct
import sys
import threading
import time
import types
from typing import Any

try:  # run as a script inside the sandbox: the sibling files are bound next to this one
    import worker_account as account  # type: ignore[import-not-found]
    import worker_mounts as mounts  # type: ignore[import-not-found]
    import worker_supervise as sup  # type: ignore[import-not-found]
    import worker_traces as traces  # type: ignore[import-not-found]
except ImportError:  # imported as part of the package (tools, tests)
    from cure_bench.sandbox import worker_account as account
    from cure_bench.sandbox import worker_mounts as mounts
    from cure_bench.sandbox import worker_supervise as sup
    from cure_bench.sandbox import worker_traces as traces

# Modules judged programs commonly import. Pre-importing them keeps them usable after the drop to an
# unprivileged uid even where that uid cannot read the interpreter's install (the rlimits level).
PRELOAD = (
    "abc",
    "array",
    "base64",
    "bisect",
    "builtins",
    "calendar",
    "cmath",
    "collections",
    "collections.abc",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "encodings.idna",
    "enum",
    "fileinput",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "io",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "pprint",
    "queue",
    "random",
    "re",
    "socket",
    "statistics",
    "string",
    "struct",
    "textwrap",
    "threading",
    "time",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "atexit",
)

STDERR_TAIL = 4096
SCRATCH_DIRS = ("/tmp", "/dev/shm", "/var/tmp", "/run/lock")
SCRATCH_BYTES = 256 * 2**20  # per scratch tmpfs, at most (and at most the memory limit; counted by its cgroup)
SETUP_FAILED = 121  # exit code of a child whose sandbox setup failed (not the program's fault)
MEMORY_EXIT = 122  # exit code of a program that died of an uncaught MemoryError / ENOMEM (reported as 1)
INTERPRETER_HEADROOM_MB = 32
"""RLIMIT_AS counts address space, the peak counts resident memory: a process (say a python3 the program
started) whose allocation failed at the limit was resident up to the interpreter's unpaged mappings below
it (~25 MB for CPython 3.11), so a failed run that came this close to the limit failed for memory."""


def _near_limit_mb(limit_mb: float) -> float:
    return limit_mb - max(0.05 * limit_mb, INTERPRETER_HEADROOM_MB)


_status_fds = (-1, -1)  # setup failures travel here: closed in the child before the program runs
_current_child = 0  # pid of the execution in progress, for the SIGTERM handler
_uid = -1  # the executions' uid, for the SIGTERM handler
_acct = account.Accounting(None, 0)  # this slot's counters (set up in _startup)
_retire = False  # cleanup left something behind: exit after the reply (see _clean_up)
_traces: Any = None  # where the worker has its own view: what executions could pass on (worker_traces)
_pids: Any = None  # where the worker may rewind its pid namespace: worker_traces.PidCursor
_queues = mounts.QueueDir(None)  # where the worker has its own IPC namespace: its POSIX queues (_startup)
_kept: frozenset[str] = frozenset()  # mount points inside the scratch dirs (a venv under /tmp): never cleaned


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_into(fd: int, buf: bytearray) -> bool:
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return False
        got += n
    return True


def _scrub(buf: bytearray) -> None:
    """Zero a buffer before it is freed: later programs are forked from this memory."""
    buf[:] = bytes(len(buf))


def recv(fd: int) -> tuple[dict, bytearray] | None:
    """A request: ``>II`` (header length, stdin length), the JSON header, then stdin as raw bytes.

    stdin arrives straight into a bytearray (never an immutable copy) so it can be scrubbed after use.
    """
    head = _read_exact(fd, 8)
    if head is None:
        return None
    header_len, stdin_len = struct.unpack(">II", head)
    body = _read_exact(fd, header_len)
    stdin = bytearray(stdin_len)
    if body is None or not _read_into(fd, stdin):
        return None
    return json.loads(body), stdin


def send(fd: int, msg: dict, out: bytes | bytearray = b"", err: bytes | bytearray = b"") -> None:
    """A reply: ``>III`` (header, stdout and stderr lengths), the JSON header, then the raw outputs."""
    body = json.dumps(msg).encode()
    for part in (struct.pack(">III", len(body), len(out), len(err)) + body, out, err):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


# ----------------------------------------------------------------------------------------------- child side


def _limits(job: dict, cfg: dict) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for the execution's rlimits, worked out by the worker before the fork (the child
    only calls setrlimit: fewer shared pages touched after the fork). The child inherits these hard limits, which
    never change in the worker: the plan is kept per (time limit, memory limit)."""
    key = (job["time_limit_s"], job["memory_limit_mb"])
    if key not in _limit_plans:
        if len(_limit_plans) >= 64:
            _limit_plans.clear()
        _limit_plans[key] = _plan_limits(job, cfg)
    return _limit_plans[key]


_limit_plans: dict[tuple[Any, Any], list[tuple[int, int, int]]] = {}


def _plan_limits(job: dict, cfg: dict) -> list[tuple[int, int, int]]:
    mem = int(job["memory_limit_mb"]) * 2**20
    cpu = sup.cpu_backstop(float(job["time_limit_s"]))
    limits = {
        resource.RLIMIT_AS: mem,
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: int(cfg["max_output_bytes"]) + 1,
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_STACK: min(mem, 256 * 2**20),
    }
    if cfg["uid"] >= 0:  # RLIMIT_NPROC is ignored for root, so only meaningful after the uid drop
        limits[resource.RLIMIT_NPROC] = int(cfg["nproc"])
    plan = []
    for which, value in limits.items():
        soft, hard = value if isinstance(value, tuple) else (value, value)
        cur_hard = resource.getrlimit(which)[1]
        if cur_hard != resource.RLIM_INFINITY and os.geteuid() != 0:
            soft, hard = min(soft, cur_hard), min(hard, cur_hard)
        plan.append((which, soft, hard))
    return plan


def _set_limits(plan: list[tuple[int, int, int]]) -> None:
    for which, soft, hard in plan:
        resource.setrlimit(which, (soft, hard))


_SIG_DFL_IN_PROGRAM = tuple(int(s) for s in (signal.SIGTERM, signal.SIGCHLD, signal.SIGXCPU))
_SIG_IGN_IN_PROGRAM = tuple(int(s) for s in (signal.SIGPIPE, signal.SIGXFSZ))


def _program_signals() -> None:
    """The handlers python3 starts a program with: SIGINT raises KeyboardInterrupt, SIGPIPE (inherited) and
    SIGXFSZ are ignored (a write past the output limit fails with EFBIG; the size check reports output_limit),
    the worker's own handlers (SIGTERM, SIGCHLD, SIGXCPU) back to the default. Set through ``_signal``, the C
    module under ``signal``: the same handlers, without the wrapper's enum conversions of the old handler
    (~0.15 ms per child, most of it first writes to pages shared with the worker)."""
    for sig in _SIG_DFL_IN_PROGRAM:
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.signal(int(signal.SIGINT), _signal.default_int_handler)
    for sig in _SIG_IGN_IN_PROGRAM:
        _signal.signal(sig, _signal.SIG_IGN)


def _program_stdio() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """sys.std* on fds 0-2 exactly as CPython's startup builds them for ``python3 prog.py < in > out``.

    Built once, in the worker at start-up, and never used by it: every child installs its own copy-on-write
    copy of these pristine objects (``_fresh_stdio``), which costs it a few page copies instead of building
    three streams (~0.2 ms of first writes to pages shared with the worker: the codec and io machinery). What
    the objects record at creation is what a child's files would give: fds 0-2, position 0 (the worker's are
    /dev/null, a child's the stdin/stdout/stderr memory files at offset 0), seekable, not a terminal, the same
    block size (a page, on tmpfs and memfd alike).

    The encoding and errors handler are the ones this interpreter chose at its own start (they follow the same
    environment: PYTHONIOENCODING, the locale); newline="\\n" as on POSIX (no universal newlines, so a
    "\\r\\n" input keeps its "\\r", as under python3); stdout block-buffered, stderr line-buffered with
    backslashreplace; the raw files named "<stdin>", "<stdout>", "<stderr>"."""
    template = sys.__stdin__
    encoding = getattr(template, "encoding", None) or "utf-8"
    errors = getattr(template, "errors", None) or "strict"

    def text(fd: int, mode: str, errors: str, line_buffering: bool) -> io.TextIOWrapper:
        raw = open(fd, mode + "b", closefd=False)  # noqa: SIM115
        stream = io.TextIOWrapper(raw, encoding, errors, newline="\n", line_buffering=line_buffering)
        stream.mode = mode  # type: ignore[misc]  # as CPython's startup sets it
        return stream

    streams = (text(0, "r", errors, False), text(1, "w", errors, False), text(2, "w", "backslashreplace", True))
    for name, stream in zip(("stdin", "stdout", "stderr"), streams, strict=True):
        stream.buffer.raw.name = f"<{name}>"  # type: ignore[attr-defined]
    return streams


_pristine_stdio: tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper] | None = None  # (_startup)
_program_path: list[str] = []  # a program's sys.path after its own directory: the worker's minus this file's (_startup)
WORKER_MODULES = ("worker_account", "worker_mounts", "worker_supervise", "worker_traces")
"""The worker's own modules, bound next to this file: out of sys.modules (and this directory out of sys.path)
before any program runs, so a program cannot import them as if they were its own."""


def _fresh_stdio() -> None:
    """Install the child's stdio: its copy of the pristine streams the worker built (``_program_stdio``)."""
    stdin, stdout, stderr = _pristine_stdio or _program_stdio()
    # The __std*__ originals are Final to type checkers, but a program may read them, as under python3.
    sys.stdin = sys.__stdin__ = stdin  # type: ignore[misc]
    sys.stdout = sys.__stdout__ = stdout  # type: ignore[misc]
    sys.stderr = sys.__stderr__ = stderr  # type: ignore[misc]


def _exit_code(exc: SystemExit) -> int:
    """The exit status python3 gives an uncaught SystemExit: None 0, an int its low byte (255 when it does not
    fit in 64 bits), anything else printed to stderr and 1."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if -(2**63) <= code < 2**63 else 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def _report(exc: BaseException) -> None:
    """An uncaught exception, shown through sys.excepthook (a program may replace it), minus our own frame."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_globals is globals():  # the frame that called exec()
        tb = exc.__traceback__ = tb.tb_next
    sys.excepthook(type(exc), exc, tb)


def _clear_main(main: object) -> None:
    """What interpreter shutdown does to ``__main__``'s globals (CPython's module-dict clearing): names with
    one leading underscore set to None first, then the rest but ``__builtins__``, so ``__del__`` methods run
    and what they print is flushed below, as under python3."""
    namespace = main.__dict__
    for first in (True, False):
        for name in list(namespace):
            if name == "__builtins__" or (name.startswith("_") and not name.startswith("__")) is not first:
                continue
            namespace[name] = None


def _run_program(workdir: str, compat: tuple[str, ...] = ()) -> int:
    """Execute ``workdir/prog.py`` as the ``__main__`` of a fresh-looking interpreter; returns the exit code.

    The source is compiled from the file's bytes (PEP 263 coding cookies and a BOM count, as under python3)
    with ``dont_inherit=True``: none of this file's ``from __future__`` imports leak into the program. Shutdown
    follows CPython's order: join non-daemon threads, run atexit callbacks, flush, collect garbage, clear the
    main module, flush again; an uncaught KeyboardInterrupt ends the process by SIGINT, as python3 does.
    """
    # (random's module-level generator is reseeded from urandom in every forked child: random registers that
    # with os.register_at_fork, so a program's numbers never repeat the worker's or another program's)
    path = os.path.join(workdir, "prog.py")
    main = types.ModuleType("__main__")
    main.__dict__.update(
        {
            "__file__": path,
            "__builtins__": builtins,
            "__cached__": None,
            "__annotations__": {},
            "__loader__": importlib.machinery.SourceFileLoader("__main__", path),
        }
    )
    if "typing-names" in compat:  # --judge-compat typing-names: the CURE harness's pre-set globals
        import typing  # (pre-imported: PRELOAD)

        main.__dict__.update({name: getattr(typing, name) for name in ("List", "Tuple", "Optional")})
    sys.modules["__main__"] = main
    sys.argv = [path]
    sys.orig_argv = [sys.executable, path]
    sys.path[:] = [workdir, *_program_path]
    _hide_own_frames()
    interrupted = False
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec", flags=0, dont_inherit=True)
        exec(code, main.__dict__)
        rc = 0
    except SystemExit as exc:
        rc = _exit_code(exc)
    except BaseException as exc:
        _report(exc)
        out_of_memory = isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM)
        interrupted = isinstance(exc, KeyboardInterrupt)
        rc = MEMORY_EXIT if out_of_memory else 1  # by exception type, never by what was printed
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads, as at interpreter exit
    except BaseException as exc:
        _report(exc)
    _run_atexit()
    flushed = _flush_std()
    gc.collect()
    try:
        _clear_main(main)
        gc.collect()
    except BaseException as exc:  # a __del__ that raises is reported and ignored by CPython itself
        _report(exc)
    if not (_flush_std() and flushed):
        rc = 120  # CPython's exit status when flushing the standard streams fails at shutdown, whatever it was
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return rc


def _run_atexit() -> None:
    """Run the atexit callbacks. A failing one is reported ("Exception ignored in atexit callback") and leaves the
    exit status alone, as under python3; where python3 calls them with no Python frame, the report here would
    name this one, so it is taken out of the traceback handed to sys.unraisablehook."""
    hook = sys.unraisablehook

    def without_own_frame(args: Any) -> None:
        tb = args.exc_traceback
        if tb is not None and tb.tb_frame.f_globals is globals():
            args = type(args)((args.exc_type, args.exc_value, tb.tb_next, args.err_msg, args.object))
        hook(args)

    sys.unraisablehook = without_own_frame
    try:
        atexit._run_exitfuncs()
    finally:
        if sys.unraisablehook is without_own_frame:
            sys.unraisablehook = hook


_get_limit, _set_limit = sys.getrecursionlimit, sys.setrecursionlimit
_hidden_depth = 0  # the worker's frames under the program's module code, exec() included (_hide_own_frames)


@functools.wraps(_get_limit)
def _program_getrecursionlimit() -> int:
    return _get_limit() - _hidden_depth


@functools.wraps(_set_limit)
def _program_setrecursionlimit(limit: int, /) -> None:
    limit = operator.index(limit)
    if limit < 1:
        raise ValueError("recursion limit must be greater or equal than 1")
    _set_limit(limit + _hidden_depth)


def _hide_own_frames() -> None:
    """Give the program python3's recursion headroom: under python3 its module code runs at depth 1, here below
    the worker's frames and exec(). The limit is raised by that many and sys.get/setrecursionlimit report and take
    the program's view of it, so ``getrecursionlimit()`` is 1000 and recursion fails at the same depth. (The two
    replacements are made once, in the worker: a child only sets the depth, touching fewer shared pages.)"""
    global _hidden_depth
    frame, depth = sys._getframe(1), 1  # the caller (_run_program) and the frames under it
    while frame.f_back is not None:
        frame, depth = frame.f_back, depth + 1
    _hidden_depth = depth + 1  # exec() itself counts one level
    _set_limit(_get_limit() + _hidden_depth)
    sys.getrecursionlimit, sys.setrecursionlimit = _program_getrecursionlimit, _program_setrecursionlimit


def _flush_std() -> bool:
    """Flush sys.stdout and sys.stderr as CPython's shutdown does; False when either could not be flushed."""
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except BaseException:
            ok = False
    return ok


def _own_scratch(job: dict, cfg: dict) -> None:
    """Where the worker shares the host's filesystem (rlimits, none): private IPC and mount namespaces for
    this execution, with fresh tmpfs scratch directories, so SysV IPC, POSIX queues and files in /tmp,
    /dev/shm, /var/tmp, /run/lock die with it (not where the kernel refuses: no privilege). Where the worker
    has its own view and IPC namespace, the worker empties both after each execution (worker_mounts)."""
    if not _fresh_scratch_per_execution(cfg):
        return
    size = min(int(job["memory_limit_mb"]) * 2**20, SCRATCH_BYTES)
    mounts.fresh_scratch(SCRATCH_DIRS, size, new_mounts=True)


def _fresh_scratch_per_execution(cfg: dict) -> bool:
    """Whether each child mounts its own scratch (``_own_scratch``); the working directory is then made there."""
    return not (sup.portable or cfg.get("own_view"))


def _make_workdir(job: dict, cfg: dict, workdir: str) -> None:
    """The execution's working directory with prog.py: made by the child in its own scratch where it mounts one,
    else by the worker before the fork (the child then touches fewer of the pages it shares with the worker)."""
    os.makedirs(workdir, mode=0o700, exist_ok=True)  # (the working root too, in a child's fresh scratch)
    source = job["program"].encode("utf-8", "replace")  # what a text-mode write of it would store
    fd = os.open(os.path.join(workdir, "prog.py"), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        view = memoryview(source)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    if cfg["uid"] >= 0:
        os.chown(workdir, cfg["uid"], cfg["uid"])


def _child(job: dict, cfg: dict, fds: tuple[int, int, int], workdir: str, limits: list[tuple[int, int, int]]) -> None:
    """Runs in the forked child: confine this process, then become the program. Never returns."""
    try:
        _acct.join()  # before anything runs: every process of the execution is charged to it
        os.setsid()  # own process group: the supervisor kills the group, the subreaper catches escapees
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        status_w = _status_fds[1]
        os.closerange(3, status_w)  # the request/reply pipes and everything else of the worker...
        os.closerange(status_w + 1, 1 << 16)  # ...but the setup-status pipe, closed once setup is done
        _own_scratch(job, cfg)
        if _fresh_scratch_per_execution(cfg):
            _make_workdir(job, cfg, workdir)
        os.chdir(workdir)
        _set_limits(limits)
        if cfg["uid"] >= 0:
            os.setgroups([])
            os.setgid(cfg["uid"])
            os.setuid(cfg["uid"])
        # set after setuid, which clears it (PR_SET_NO_NEW_PRIVS is the worker's already, and inherited)
        sup.prctl(sup.PR_SET_PDEATHSIG, signal.SIGKILL)
        _program_signals()
        _fresh_stdio()
    except BaseException as exc:  # pragma: no cover - only on a broken sandbox
        os.write(_status_fds[1], f"cure sandbox: child setup failed: {exc!r}".encode()[:4000])
        os._exit(SETUP_FAILED)
    os.close(_status_fds[1])  # from here on the program runs: it cannot write this channel
    os._exit(_run_program(workdir, tuple(cfg.get("compat") or ())))


def _setup_failure() -> bytes:
    """What the last child reported on the setup-status pipe (empty: setup went fine)."""
    chunks = []
    while True:
        try:
            chunk = os.read(_status_fds[0], 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------ worker side


def _pread_all(fd: int, n: int, offset: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = os.preadv(fd, [view[got:]], offset + got)
        if k == 0:
            break
        got += k
    del buf[got:]
    return buf


def _classify(
    status: int,
    cpu: float,
    peak_mb: float,
    oom: bool,
    reason: str | None,
    job: dict,
    over: bool,
) -> str:
    """The execution's status; ``cpu``, ``peak_mb`` and ``oom`` cover all its processes (worker_account).
    Nothing the program prints decides it (a setup failure is reported on its own pipe, see _child)."""
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if reason == "time" or cpu > job["time_limit_s"] or sig == signal.SIGXCPU:
        return "time_limit"
    if over or sig == signal.SIGXFSZ:
        return "output_limit"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    if code == 0:
        return "ok"
    if oom or code == MEMORY_EXIT or peak_mb >= _near_limit_mb(float(job["memory_limit_mb"])):
        return "memory_limit"
    return "runtime_error"


def execute(job: dict, stdin: bytearray, cfg: dict) -> tuple[dict, bytearray, bytearray]:
    """Run one program on one stdin in a fresh forked child; returns (report, stdout, stderr tail).

    stdin is written to a memfd and scrubbed before the fork; the outputs come back as bytearrays the
    caller scrubs after sending, so no program's input or output outlives its execution in this process.
    """
    root = cfg["workroot"]
    stdin_fd = sup.memory_file("stdin", root)
    out_fd, err_fd = sup.memory_file("stdout", root), sup.memory_file("stderr", root)
    view = memoryview(stdin)
    while view:
        view = view[os.write(stdin_fd, view) :]
    _scrub(stdin)
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    workdir = os.path.join(cfg["workroot"], f"exec-{os.urandom(6).hex()}")
    if not _fresh_scratch_per_execution(cfg):
        _make_workdir(job, cfg, workdir)
    limits = _limits(job, cfg)
    global _current_child
    _acct.begin(int(job["memory_limit_mb"]) * 2**20)
    if _pids is not None:
        _rewind_pids()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, cfg, (stdin_fd, out_fd, err_fd), workdir, limits)
    _current_child = pid
    try:
        os.close(stdin_fd)
        me = os.getpid()
        status, usage, reason = sup.supervise(pid, float(job["time_limit_s"]), t0, lambda p: _acct.cpu(me, p))
        wall = time.monotonic() - t0
        leftovers_cpu = sup.kill_tree(pid, cfg["uid"])
        _current_child = 0
        if _acct.cgroup:
            cpu, peak, oom = _acct.end()
        else:
            cpu, peak, oom = usage.ru_utime + usage.ru_stime + leftovers_cpu, None, False
        cap = int(cfg["max_output_bytes"])
        out_size, err_size = os.fstat(out_fd).st_size, os.fstat(err_fd).st_size
        out = _pread_all(out_fd, min(out_size, cap), 0)
        err = _pread_all(err_fd, min(err_size, STDERR_TAIL), max(0, err_size - STDERR_TAIL))
    finally:
        os.close(out_fd)
        os.close(err_fd)
        _clean_up(workdir, cfg)
    peak_mb = peak if peak is not None else usage.ru_maxrss / 1024
    exit_code = os.waitstatus_to_exitcode(status)
    failure = _setup_failure()
    if failure:
        return (
            {"status": "sandbox_error", "exit_code": None, "cpu_s": cpu, "wall_s": wall, "peak_memory_mb": 0.0},
            bytearray(),
            bytearray(failure),
        )
    report = {
        "status": _classify(status, cpu, peak_mb, oom, reason, job, out_size > cap or err_size > cap),
        "exit_code": 1 if exit_code == MEMORY_EXIT else exit_code,
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_memory_mb": peak_mb,
    }
    return report, out, err


def _rewind_pids() -> None:
    """The execution's first process gets worker_traces.FIRST_PID. Should the rewind ever fail, this execution
    may see a pid an earlier one advanced: the worker retires after it."""
    global _retire
    try:
        _pids.rewind()
    except OSError:
        _retire = True


def _clean_up(workdir: str, cfg: dict) -> None:
    """Remove what the execution left (its working directory; where the worker has its own view, everything in
    the scratch tmpfs and the IPC namespace). Whatever cannot be removed would meet the next execution, and so
    would a trace in the namespaces' counters (worker_traces): then the worker retires after
    this reply (``_retire``) and the pool starts a fresh one, with fresh namespaces."""
    global _retire
    try:
        pristine = _remove_untouched(workdir)
        clean = pristine or mounts.remove_tree(workdir)
        if cfg.get("own_view"):
            _queues.clean()
            quiet = _traces is not None and _traces.unchanged()  # (it sees any SysV object made since the last check)
            if not (quiet and pristine):  # else no inode was made, none moved out of the working directory
                clean = mounts.clean_scratch(SCRATCH_DIRS, _kept) and clean
            if not quiet:
                mounts.clean_sysv(cfg["uid"])
                if _traces is not None:
                    clean = False  # a trace of this execution: the worker retires
    except Exception:
        clean = False
    if not clean:
        _retire = True


def _remove_untouched(workdir: str) -> bool:
    """The common case in a few system calls: the working directory holds only prog.py, with no other link to it
    (the program wrote, moved and linked no file). Anything else (more entries, prog.py renamed, linked from
    elsewhere or replaced by a directory, the directory itself renamed) fails here and goes to the full removal,
    and then to the emptying of the scratch directories (_clean_up). Link-safe like it: the program owns its
    working directory and may have swapped it for a link, so prog.py is unlinked relative to a descriptor
    opened without following one."""
    try:
        fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        if os.stat("prog.py", dir_fd=fd, follow_symlinks=False).st_nlink != 1:
            return False
        os.unlink("prog.py", dir_fd=fd)
        os.rmdir(workdir)  # only ever an empty directory; a link in its place fails (ENOTDIR)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _on_sigterm(signum: int, frame: object) -> None:
    """The pool is closing: take the running program's whole tree down with us."""
    if _current_child:
        sup.kill_tree(_current_child, _uid)
    os._exit(0)


def _startup(cfg: dict) -> tuple[int, int]:
    """Move the protocol pipes off fds 0/1, become a subreaper, pre-import, and freeze the heap."""
    ipc_in, ipc_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    global _uid, _acct, _status_fds, _traces, _kept, _pristine_stdio, _pids, _queues
    _uid = cfg["uid"]
    _status_fds = os.pipe()
    os.set_blocking(_status_fds[0], False)
    groups = dict(cfg.get("cgroups") or {})
    if cfg["uid"] >= 0:  # RLIMIT_NPROC of the slot's own uid caps the same tasks: one cgroup attach fewer per fork
        groups.pop("pids", None)
    _acct = account.Accounting(groups or None, int(cfg["nproc"]))
    _acct.start()
    sup.portable = bool(cfg.get("portable")) or sup.portable
    sup.prctl(sup.PR_SET_CHILD_SUBREAPER, 1)
    sup.prctl(sup.PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.environ.pop("PYTHONHASHSEED", None)  # fixed for the worker (same set order everywhere); not exported
    if cfg.get("view"):  # unshare level: we are root in our own mount namespace; build the allow-list view
        mounts.build_view(cfg["workroot"], cfg["view"])
        cfg["workroot"] = "/tmp"
    if cfg.get("site"):  # the judge's allowed packages, and nothing else from any site-packages
        import site

        sys.path[:] = [p for p in sys.path if "-packages" not in p and (os.path.exists(p) or p.endswith(".zip"))]
        sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__module__", "").startswith("_frozen_importlib")]
        site.addsitedir(cfg["site"])
    if not os.path.isdir(cfg["workroot"]):
        os.makedirs(cfg["workroot"], mode=0o711)
    own_namespaces = bool(cfg.get("own_view")) and not sup.portable
    pid_fd = mounts.open_pid_cursor(cfg["workroot"]) if own_namespaces and os.geteuid() == 0 else None
    if not sup.portable:  # the worker never needs them either; every program forked from here inherits it
        sup.prctl(sup.PR_SET_NO_NEW_PRIVS, 1)
        mounts.deny_syscalls()
        # per-execution namespaces where the worker shares the host's view need CAP_SYS_ADMIN (rlimits, none)
        keep = mounts.WORKER_CAPS + (() if cfg.get("own_view") else (mounts.CAP_SYS_ADMIN,))
        mounts.drop_capabilities(keep + ((mounts.CAP_CHECKPOINT_RESTORE,) if pid_fd is not None else ()))
    if own_namespaces:
        _pids = traces.PidCursor.checked(pid_fd)
    if cfg.get("own_view"):
        _queues = mounts.QueueDir("/dev/mqueue")
        _kept = mounts.mounts_below(SCRATCH_DIRS)
        _traces = traces.Traces(SCRATCH_DIRS, cfg["workroot"])
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    saved_err = os.dup(2)  # the log: its offset is not a child's (a fresh memory file at 0)
    os.dup2(0, 2)  # so the streams are built on /dev/null, as all three of a child's read: see _program_stdio
    try:
        _pristine_stdio = _program_stdio()
    finally:
        os.dup2(saved_err, 2)
        os.close(saved_err)
    here = os.path.dirname(os.path.abspath(__file__))
    _program_path[:] = [p for p in sys.path if p != here]
    for name in WORKER_MODULES:  # (the worker holds its modules by reference)
        sys.modules.pop(name, None)
    gc.collect()
    gc.freeze()  # keep the pre-imported heap out of the children's GC passes: fewer copied pages per fork
    return ipc_in, ipc_out


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ipc_in, ipc_out = _startup(cfg)
    send(ipc_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]})
    while True:
        request = recv(ipc_in)
        if request is None:
            return
        job, stdin = request
        out = err = bytearray()
        try:
            report, out, err = execute(job, stdin, cfg)
        except Exception as exc:  # a worker-side failure is a sandbox error, never a program verdict
            _scrub(stdin)
            report = {"status": "sandbox_error", "exit_code": None, "cpu_s": 0.0, "wall_s": 0.0, "peak_memory_mb": 0.0}
            err = bytearray(f"worker error: {exc!r}".encode())
        if _retire:
            report["retiring"] = True  # the pool resends what it queued behind this job to a fresh worker
        send(ipc_out, report, out, err)
        _scrub(out)
        _scrub(err)
        del job, stdin, request, out, err
        if _retire:
            return


if __name__ == "__main__":
    main()
