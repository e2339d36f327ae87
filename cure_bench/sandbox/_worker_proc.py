"""Parent-side handle of one worker process: start it, send a job, read the reply, stop it.

The worker is started with ``subprocess`` (``sys.executable`` by its real path, vfork/posix_spawn under the
hood), never forked from this process: the parent may hold a model or a big dataset, and a forked copy would
be slow, would count against RLIMIT_AS, and would put data programs must not see in their memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

from cure_bench.errors import SandboxError
from cure_bench.sandbox.isolation import WorkerSpec

START_TIMEOUT_S = 60.0
NPROC_PER_EXECUTION = 16


def _parent_of(pid: str) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        with contextlib.suppress(OSError, ValueError, IndexError):
            children.setdefault(_parent_of(entry), []).append(int(entry))
    found, frontier = [], [root]
    while frontier:
        frontier = [c for p in frontier for c in children.get(p, [])]
        found += frontier
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def encode_request(program: str, stdin: str, time_limit_s: float, memory_limit_mb: int) -> bytes:
    """A request frame (see worker.recv): the JSON header is ASCII; stdin travels as raw UTF-8."""
    header = json.dumps(
        {"program": program, "time_limit_s": float(time_limit_s), "memory_limit_mb": int(memory_limit_mb)}
    ).encode()
    data = stdin.encode("utf-8", "replace")
    return struct.pack(">II", len(header), len(data)) + header + data


def _hide_bwrap_args(argv: list[str]) -> tuple[list[str], int | None]:
    """bubblewrap reads its options from a memfd (``--args FD``) instead of its command line, which every
    program could read at /proc/1/cmdline (it names host paths)."""
    if not argv or argv[0] != "bwrap" or "--" not in argv or not hasattr(os, "memfd_create"):
        return argv, None
    cut = argv.index("--")
    fd = os.memfd_create("bwrap-args", 0)  # not close-on-exec: bubblewrap inherits it
    data = b"".join(a.encode() + b"\0" for a in argv[1:cut])
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return ["bwrap", "--args", str(fd), *argv[cut:]], fd


class WorkerDied(Exception):
    """The worker exited or stopped answering; the caller restarts it."""


class WorkerProcess:
    """One warm worker. Not thread-safe: each driver thread owns one."""

    def __init__(self, spec: WorkerSpec, max_output_bytes: int, log_path: Path, compat: tuple[str, ...] = ()):
        cfg = {
            "uid": spec.uid,
            "max_output_bytes": max_output_bytes,
            "nproc": NPROC_PER_EXECUTION,
            "workroot": spec.workroot,
            "view": [list(op) for op in spec.view],
            "site": spec.site,
            "own_view": spec.site is not None,  # bwrap/unshare: private scratch tmpfs, emptied per execution
            "portable": spec.portable,
            "cgroups": spec.cgroups,
            "compat": list(compat),  # --judge-compat options (sandbox/compat.py)
        }
        pass_fds = tuple(int(v[0]) for v in (spec.cgroups or {}).values())  # type: ignore[call-overload]
        argv, args_fd = _hide_bwrap_args(spec.argv)
        if args_fd is not None:
            pass_fds += (args_fd,)
        self.log_path = log_path
        with open(log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    [*argv, json.dumps(cfg)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=spec.env,
                    bufsize=0,
                    close_fds=True,
                    pass_fds=pass_fds,
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxError(f"cannot start sandbox worker {spec.argv[0]!r}: {exc}") from exc
            finally:
                if args_fd is not None:
                    os.close(args_fd)
        self._in = self.proc.stdin.fileno()  # type: ignore[union-attr]
        self._out = self.proc.stdout.fileno()  # type: ignore[union-attr]
        try:
            self.hello = self._recv(START_TIMEOUT_S)
        except WorkerDied as exc:
            self.kill()
            raise SandboxError(f"sandbox worker failed to start: {self.log_tail() or exc}") from exc

    @property
    def pid(self) -> int:
        return self.proc.pid

    retired = False
    """Said it would exit after its last reply (its cleanup found a trace: worker.py ``_retire``); replacing
    it is expected, not a failure."""

    def alive(self) -> bool:
        return not self.retired and self.proc.poll() is None

    def execute(
        self, program: str, stdin: str, time_limit_s: float, memory_limit_mb: int, timeout_s: float
    ) -> dict[str, Any]:
        """Send one job and wait for its reply; raises WorkerDied if the worker is gone or hung."""
        self.send(encode_request(program, stdin, time_limit_s, memory_limit_mb))
        return self.recv(timeout_s)

    def send(self, frame: bytes) -> None:
        """Queue a framed request (see ``encode_request``) on the worker's pipe."""
        data = memoryview(frame)
        try:
            while data:
                data = data[os.write(self._in, data) :]
        except OSError as exc:
            raise WorkerDied(f"write failed: {exc}") from exc

    def recv(self, timeout_s: float) -> dict[str, Any]:
        """The reply to the oldest request sent and not yet answered."""
        return self._recv(timeout_s)

    def _recv(self, timeout_s: float) -> dict[str, Any]:
        """A reply frame (see worker.send), with stdout and stderr_tail decoded."""
        deadline = time.monotonic() + timeout_s
        header_len, out_len, err_len = struct.unpack(">III", self._read_exact(12, deadline))
        reply: dict[str, Any] = json.loads(self._read_exact(header_len, deadline))
        reply["stdout"] = self._read_exact(out_len, deadline).decode("utf-8", "replace")
        reply["stderr_tail"] = self._read_exact(err_len, deadline).decode("utf-8", "replace")
        if reply.pop("retiring", False):
            self.retired = True  # it exits after this reply (the start-up probe's included)
        return reply

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            try:
                ready = left > 0 and select.select([self._out], [], [], left)[0]
            except (OSError, ValueError) as exc:
                raise WorkerDied(f"select failed: {exc}") from exc
            if not ready:
                raise WorkerDied("no reply before the deadline")
            try:
                chunk = os.read(self._out, min(n - got, 1 << 20))
            except OSError as exc:  # the pool closed this pipe while we waited
                raise WorkerDied(f"read failed: {exc}") from exc
            if not chunk:
                raise WorkerDied("worker closed its pipe")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def stop(self, grace_s: float = 1.0) -> None:
        """SIGTERM (the worker kills its running program's tree), then SIGKILL; returns once every process
        of this worker's tree is gone. Safe from any thread: the pipes stay open (see ``close_pipes``)."""
        tree = _descendants(self.proc.pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is None:  # (a retired worker too: it may not have exited yet)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 5
        while (left := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.01)  # a dying pid namespace takes its processes down asynchronously
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]

    def kill(self) -> None:
        """Stop and release: only from the thread that uses this worker."""
        self.stop(grace_s=0.5)
        self.close_pipes()

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""
