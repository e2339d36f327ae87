"""A second red team's attacks (docs/sandbox.md, "Threat model"), beyond tests/test_sandbox_redteam.py.

Classes: cleanup attacks on the privileged worker, seccomp side doors, fd and /proc side routes, verdict
forging through the output files, stopping or tracing the worker, CPU hidden in threads and in the kernel,
harness memory with non-ASCII output, and covert channels through kernel state that outlives an execution
in a worker's long-lived namespaces. Every program is bounded and runs only inside the sandbox; each test
runs at every level that starts here (a level that cannot start is skipped, as in test_sandbox_redteam.py).
The covert channels that work today are ``xfail(strict=True)``: see docs/sandbox.md ("What remains").
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from cure_bench.sandbox import Sandbox, judge, worker_mounts
from cure_bench.sandbox import isolation as iso
from cure_bench.types import ExecJob, ExecResult, ExecStatus, Verdict
from tests.test_sandbox_redteam import CONTAINED, HIDING, peak_while_consuming, start_or_skip

GOOD = "print(sum(map(int, input().split())))"


def run_one_worker(sb: Sandbox, programs: list[str], time_limit: float = 2.0) -> list[ExecResult]:
    """Run programs one after another on the sandbox's single worker (one call each: strictly in order)."""
    return [sb.run([ExecJob(p, "", time_limit, 256)])[0] for p in programs]


def probe_as_program(level: str, program: str, *, then_good: bool = False) -> Any:
    """Run a probe that prints JSON at ``level`` as a program uid (skipped where programs keep the caller's
    uid); with ``then_good``, a correct program must still be accepted afterwards on the same worker."""
    if not iso.drops_uid(level):
        pytest.skip("not root: programs keep the caller's uid")
    with start_or_skip(level) as sb:
        result = sb.run([ExecJob(program, "", 2.0)])[0]
        if then_good:
            good_still_accepted(sb)
    assert result.status is ExecStatus.OK, result
    return json.loads(result.stdout)


def good_still_accepted(sb: Sandbox) -> None:
    result = sb.run([ExecJob(GOOD, "20 22\n", 1.0)])[0]
    assert judge(result, "42") is Verdict.ACCEPTED, result


# ------------------------------------------------------------------------------- cleanup attacks

DEEP_TREE = """
import os
os.chdir({where!r})
for _ in range(3000):  # deeper than the worker's recursion limit: shutil.rmtree raised RecursionError
    os.mkdir('d')
    os.chdir('d')
open('marker', 'w').write('x')
print('made')
"""

ODD_ENTRIES = """
import os, socket, stat
os.chdir('/tmp')
os.mkdir('locked'); open('locked/inside', 'w').write('x'); os.chmod('locked', 0)
os.symlink('/usr', 'dir-link'); os.symlink('/etc/passwd', 'file-link'); os.symlink('loop', 'loop')
os.mkfifo('fifo'); socket.socket(socket.AF_UNIX).bind('sock')
open('new\\nline name', 'w').close(); open('.cure-rm-00', 'w').close(); os.mkdir('.cure-rm-01')
try:  # a hard link to the root-owned prog.py: refused (protected_hardlinks); to an own file: fine
    os.link(os.path.abspath(__import__('sys').argv[0]), 'hardlink-to-prog')
except PermissionError:
    pass
os.link('new\\nline name', 'hardlink')
for d in ('/dev/shm', '/var/tmp', '/run/lock'):
    os.mkdir(d + '/sub'); os.symlink('/tmp', d + '/sub/up'); os.chmod(d + '/sub', 0)
print('made')
"""

LOOK = """
import os
others = [os.listdir(d) for d in ('/dev/shm', '/var/tmp', '/run/lock')]
print(repr((sorted(os.listdir('/tmp')), others, os.listdir('.'))))
"""


@pytest.mark.parametrize("level", HIDING)
def test_hostile_trees_are_removed_and_the_worker_keeps_answering(level: str) -> None:
    """What a first look sees in /tmp besides its own working directory is the view's (the directories leading
    to a venv under /tmp, bound there); after each hostile tree, a look sees exactly that again."""
    with start_or_skip(level) as sb:
        results = run_one_worker(sb, [LOOK, DEEP_TREE.format(where="/tmp"), LOOK, DEEP_TREE.format(where="."), LOOK])
        results += run_one_worker(sb, [DEEP_TREE.format(where="/dev/shm"), ODD_ENTRIES, LOOK])
        good_still_accepted(sb)
    for result in results:
        assert result.status is ExecStatus.OK, result
    looks = [ast.literal_eval(results[i].stdout) for i in (0, 2, 4, 7)]
    views = [[name for name in tmp if not name.startswith("exec-")] for tmp, _, _ in looks]
    assert all(len(tmp) == len(view) + 1 for (tmp, _, _), view in zip(looks, views, strict=True)), looks
    assert views == [views[0]] * 4 and [others for _, others, _ in looks] == [[[], [], []]] * 4, looks
    assert [cwd for _, _, cwd in looks] == [["prog.py"]] * 4


def test_a_deep_tree_in_the_working_directory_at_rlimits(tmp_path: Path) -> None:
    """At rlimits the working directory sits in the worker's private directory (in the execution's own /tmp
    when that is under /tmp, else on the host's disk): it must be removed, and a symlink in it to a host
    directory must not be followed (the worker removes as root)."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("x")
    tmp_path.chmod(0o755)
    plant = f"import os\nos.symlink({str(canary)!r}, 'host-link')\n" + DEEP_TREE.format(where=".")
    with start_or_skip("rlimits") as sb:
        results = run_one_worker(sb, [plant, "import os\nprint(os.listdir('.'))"])
        left = os.listdir(sb._private_dir / "worker-0")  # every execution's directory removed
        good_still_accepted(sb)
    assert [r.status for r in results] == [ExecStatus.OK, ExecStatus.OK], results
    assert results[1].stdout == "['prog.py']\n"
    assert (canary / "keep").read_text() == "x"
    assert left == [], left


def test_empty_dir_removes_hostile_trees_without_following_links(tmp_path: Path) -> None:
    """The worker's remover on its own, as root or not: depth, links, special files, odd names."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("x")
    top = tmp_path / "scratch"
    deep = top / "deep"
    deep.mkdir(parents=True)
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(5000):  # deeper than PATH_MAX allows as one path
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.symlink(canary, "to-canary", dir_fd=fd)
    os.close(fd)
    (top / "link").symlink_to(canary)
    (top / "loop").symlink_to("loop")
    os.mkfifo(top / "fifo")
    socket.socket(socket.AF_UNIX).bind(str(top / "sock"))
    (top / "new\nline").write_text("x")
    (top / ".cure-rm-00").mkdir()
    locked = top / "locked"
    (locked / "sub").mkdir(parents=True)
    (locked / "sub" / "f").write_text("x")
    if os.geteuid() == 0:  # only the privileged worker can remove what a 000 directory holds
        locked.chmod(0)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert worker_mounts.empty_dir(fd)
    finally:
        os.close(fd)
        if os.path.lexists(deep):  # on failure: pytest's own rmtree cannot remove it either (RecursionError)
            subprocess.run(["rm", "-rf", "--one-file-system", str(top)], check=False)
    assert os.listdir(top) == []
    assert (canary / "keep").read_text() == "x"
    assert worker_mounts.remove_tree(str(top)) and not top.exists()
    assert worker_mounts.remove_tree(str(top))  # already gone


# ------------------------------------------------------------------------------- seccomp side doors

SIDE_DOORS = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
X32 = 0x40000000
def call(nr, *args):
    rc = libc.syscall(nr, *args)
    if rc == 0 and nr in (56, X32 | 56):
        os._exit(0)  # a clone that worked: the child leaves at once
    return [rc, ctypes.get_errno()]
out = {
    'keyctl_x32': call(X32 | 250, 10, -4, b'user', b'k', 0),
    'add_key_x32': call(X32 | 248, b'user', b'cure-x32', b'payload', 7, -4),
    'request_key_x32': call(X32 | 249, b'user', b'k', None, 0),
    'unshare_user_x32': call(X32 | 272, 0x10000000),
    'clone_user_x32': call(X32 | 56, 0x10000000 | 17, 0, 0, 0, 0),
    'clone_user': call(56, 0x10000000 | 17, 0, 0, 0, 0),
    'clone3': call(435, 0, 0),
    'unshare_mount': call(272, 0x00020000),
    'unshare_net': call(272, 0x40000000),
    'unshare_pid': call(272, 0x20000000),
    'setns_user': call(308, os.open('/proc/self/ns/user', os.O_RDONLY), 0x10000000),
    'open_by_handle_at': call(304, -100, ctypes.create_string_buffer(64), 0),
    'mount': call(165, b'none', b'/tmp', b'tmpfs', 0, None),
    'keyctl_join_session': call(250, 1, b'cure'),
}
print(json.dumps(out))
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_seccomp_and_namespace_side_doors_are_shut(level: str) -> None:
    got = probe_as_program(level, SIDE_DOORS, then_good=True)
    opened = {name: rc for name, (rc, _) in got.items() if rc >= 0}
    assert opened == {}, got
    assert got["clone3"][1] == 38 and got["keyctl_join_session"][1] == 1  # ENOSYS (libc falls back), EPERM


# ------------------------------------------------------------------------------- fd and /proc side routes

SIDE_ROUTES = """
import json, os
me = os.getpid()
out = {'fds': sorted(int(f) for f in os.listdir('/proc/self/fd') if os.path.exists('/proc/self/fd/' + f))}
readable = []
for pid in (p for p in os.listdir('/proc') if p.isdigit() and int(p) != me):
    for what in ('environ', 'root', 'cwd', 'fd', 'mem', 'maps', 'stack', 'syscall', 'auxv', 'pagemap'):
        path = f'/proc/{pid}/{what}'
        try:
            if os.listdir(path) if what in ('root', 'cwd', 'fd') else open(path, 'rb').read(1):
                readable.append(path)  # something there (a kernel thread's maps open, but are empty)
        except OSError:
            pass
out['readable'] = readable
for fd in range(3, 256):  # any inherited descriptor outside the view
    try:
        os.fstat(fd)
        out.setdefault('extra_fds', []).append(fd)
    except OSError:
        pass
print(json.dumps(out))
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_no_descriptor_or_proc_route_to_the_worker(level: str) -> None:
    got = probe_as_program(level, SIDE_ROUTES)
    assert got["fds"] == [0, 1, 2] and "extra_fds" not in got, got
    own_uid = [p for p in got["readable"] if not p.startswith("/proc/self")]
    assert own_uid == [], own_uid


# ------------------------------------------------------------------------------- verdict forging

LATE_WRITER = """
import os, time
if os.fork() == 0:  # a child that holds stdout and writes the answer after the main process has exited
    time.sleep(0.3)
    os.write(1, b'42\\n')
    os._exit(0)
"""
SPARSE = "import os\nos.write(1, b'42\\n')\nos.ftruncate(1, {size})\n"
EXACT_CAP = "import os\nos.write(1, b'42' + b' ' * ({cap} - 2))\n"
NUL_AND_INVALID = "import sys\nsys.stdout.buffer.write(b'4\\x002 \\xff\\xfe 42'.replace(b' 42', b''))\n"
SELF_KILL = "import os, signal\nprint(42, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
REWIND = """
import os
os.write(1, b'42\\n')
os.lseek(1, 0, 0)  # stdout is a file: a program may rewrite it, the parent judges what is there at the end
os.write(1, b'4')
os.lseek(1, 1000, 0)
os.write(1, b'\\n')
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_output_files_cannot_forge_a_verdict(level: str) -> None:
    cap = 65536
    with start_or_skip(level, max_output_bytes=cap) as sb:
        results = sb.run(
            [
                ExecJob(LATE_WRITER, "", 1.0),
                ExecJob(SPARSE.format(size=cap + 1), "", 1.0),
                ExecJob(SPARSE.format(size=10**12), "", 1.0),
                ExecJob(EXACT_CAP.format(cap=cap), "", 1.0),
                ExecJob(NUL_AND_INVALID, "", 1.0),
                ExecJob(SELF_KILL, "", 1.0),
                ExecJob(REWIND, "", 1.0),
            ]
        )
        good_still_accepted(sb)
    late, sparse, huge, exact, nul, killed, rewind = results
    assert late.status is ExecStatus.OK and late.stdout == "", late  # killed before it could write
    assert sparse.status is ExecStatus.OUTPUT_LIMIT, sparse
    assert huge.status is ExecStatus.RUNTIME_ERROR and "File too large" in huge.stderr_tail, huge  # EFBIG
    assert exact.status is ExecStatus.OK and len(exact.stdout) == cap and judge(exact, "42") is Verdict.ACCEPTED
    assert nul.status is ExecStatus.OK and judge(nul, "42") is Verdict.WRONG_ANSWER, nul
    assert killed.status is ExecStatus.RUNTIME_ERROR and judge(killed, "42") is Verdict.RUNTIME_ERROR
    assert rewind.status is ExecStatus.OK and judge(rewind, "42") is Verdict.WRONG_ANSWER, rewind  # NULs count


# ------------------------------------------------------------------------------- the worker is out of reach

STOP_OR_TRACE_WORKER = """
import ctypes, json, os, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
out = {}
for target in sorted({os.getppid(), 1}):
    for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(target, sig)
            out[f'kill {target} {sig}'] = 'sent'
        except OSError as exc:
            out[f'kill {target} {sig}'] = exc.errno
    out[f'ptrace {target}'] = [libc.ptrace(16, target, None, None), ctypes.get_errno()]  # PTRACE_ATTACH
    out[f'prlimit {target}'] = [libc.prlimit(target, 7, None, None), ctypes.get_errno()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_programs_cannot_stop_trace_or_kill_the_worker(level: str) -> None:
    if not iso.drops_uid(level):
        pytest.skip("not root: a program may signal its own worker (documented)")
    with start_or_skip(level) as sb:
        before = sb.worker_pids()
        result = sb.run([ExecJob(STOP_OR_TRACE_WORKER, "", 2.0)])[0]
        good_still_accepted(sb)
        assert sb.worker_pids() == before
    assert result.status is ExecStatus.OK, result
    got = json.loads(result.stdout)
    assert all(v == 1 or (isinstance(v, list) and v[0] == -1 and v[1] in (1, 3)) for v in got.values()), got


BOUNDING_SET = """
status = {l.split(':')[0]: l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')}
print(int(status['CapBnd'], 16), int(status['CapEff'], 16), int(status['CapPrm'], 16))
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_programs_inherit_only_the_workers_bounding_set(level: str) -> None:
    """At bwrap the worker lacked CAP_SETPCAP, so it could not empty its bounding set and every program kept a
    full one (harmless under no_new_privs, but not what the worker promises)."""
    if os.geteuid() != 0:
        pytest.skip("not root: the worker holds no capabilities to drop")
    allowed = sum(1 << c for c in worker_mounts.WORKER_CAPS)
    if level not in HIDING:
        allowed |= 1 << worker_mounts.CAP_SYS_ADMIN
    else:
        allowed |= 1 << worker_mounts.CAP_CHECKPOINT_RESTORE  # the worker's pid rewind
    with start_or_skip(level) as sb:
        result = sb.run([ExecJob(BOUNDING_SET, "", 2.0)])[0]
    assert result.status is ExecStatus.OK, result
    bounding, effective, permitted = map(int, result.stdout.split())
    assert bounding & ~allowed == 0, f"{bounding:x} beyond {allowed:x}"
    assert effective == permitted == 0  # the drop to the program's uid clears them; no_new_privs keeps them so


# ------------------------------------------------------------------------------- CPU in threads and the kernel

THREADS_WHILE_MAIN_SLEEPS = """
import threading, time
def burn():
    end = time.process_time() + 5
    while time.process_time() < end:
        pass
for _ in range(2):
    threading.Thread(target=burn, daemon=True).start()
time.sleep(3)
print(42)
"""
KERNEL_TIME = """
import os
fd = os.open('/dev/zero', os.O_RDONLY)
buf = bytearray(1 << 16)
while True:
    os.readv(fd, [buf])  # all the time is spent in the kernel (system time)
    os.getppid()
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_cpu_in_threads_and_in_the_kernel_is_charged(level: str) -> None:
    with start_or_skip(level) as sb:
        threads, kernel = sb.run([ExecJob(THREADS_WHILE_MAIN_SLEEPS, "", 0.5), ExecJob(KERNEL_TIME, "", 0.5)])
    for result in (threads, kernel):
        assert result.status is ExecStatus.TIME_LIMIT and result.cpu_s >= 0.5, result
        assert result.wall_s < 2.5, result


READ_FILES = """
import os
n = 0
for root, dirs, files in os.walk('/usr/lib'):  # fills the page cache, charged to the slot's memory cgroup
    for name in files:
        path = os.path.join(root, name)
        try:
            if not os.path.islink(path):
                with open(path, 'rb') as f:
                    while chunk := f.read(1 << 20):
                        n += len(chunk)
        except OSError:
            pass
    if n > 400 * 2**20:
        break
print(n >> 20)
"""


@pytest.mark.parametrize("level", CONTAINED)
def test_an_earlier_programs_page_cache_decides_nothing_later(level: str) -> None:
    """The files one program read stayed charged to the slot: the next failing program of the slot was
    judged memory_limit (its peak was reset only to that usage) and reported a peak it never used."""
    with start_or_skip(level) as sb:
        if "memory" not in sb.describe()["accounting"]:
            pytest.skip("no memory cgroup here")
        fail = "print('x')\nraise SystemExit(1)\n"
        reader, failing = run_one_worker(sb, [READ_FILES, fail])
    assert reader.status is ExecStatus.OK and int(reader.stdout) > 256, reader
    assert failing.status is ExecStatus.RUNTIME_ERROR, failing
    assert failing.peak_memory_mb < 32, failing


# ------------------------------------------------------------------------------- harness memory


@pytest.mark.parametrize("level", HIDING[:1])
def test_harness_memory_with_output_that_decodes_to_four_bytes_a_character(level: str) -> None:
    """One character outside the BMP makes the decoded stdout 4 bytes per character (and invalid bytes decode to
    U+FFFD): the bound of docs/sandbox.md counts that; nothing beyond it piles up."""
    cap = 2**20
    program = "import sys\nsys.stdout.buffer.write('\\U0001F600'.encode() + b'\\xff' * ({n} - 4))\n"
    jobs = [ExecJob(program.format(n=cap) + f"# {i}\n", "", 5.0) for i in range(24)]
    seen: list[int] = []
    with start_or_skip(level, max_output_bytes=cap) as sb:
        bound = sb.max_results_in_flight()

        def consume(index: int, result: ExecResult) -> None:
            assert result.status is ExecStatus.OK, result
            seen.append(len(result.stdout))
            time.sleep(0.01)

        peak = peak_while_consuming(sb, jobs, consume)
    assert seen == [cap - 3] * 24
    assert peak < (4 * bound + 2 * sb.workers + 4) * cap, (peak / cap, bound)


# ------------------------------------------------------------------------------- covert channels

VALUE = 13  # what a program tries to pass to a later one (4 bits)

SENDERS = {  # each passes {v} (format field) to a later execution of the same worker
    "pid": """
import os
for _ in range({v}):  # each fork takes the next pid of the worker's pid namespace
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
""",
    "tmpfs-inode": """
for i in range({v}):  # each file takes the next inode number of the scratch tmpfs
    open(f'/tmp/f{{i}}', 'w').close()
""",
    "sysv-id": """
import ctypes
libc = ctypes.CDLL(None)
for _ in range({v}):  # each segment takes the next id of the worker's IPC namespace, removed or not
    libc.shmctl(libc.shmget(0, 4096, 0o1600), 0, None)
""",
    "abstract-socket": """
import socket
for bit in range(4):
    if {v} >> bit & 1:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(b'\\0cure-bit-%d' % bit)
        socket.send_fds(a, [b'x'], [a.fileno(), b.fileno(), s.fileno()])  # a cycle only the kernel's GC frees
        socket.send_fds(b, [b'x'], [a.fileno(), b.fileno(), s.fileno()])
        s.close(); a.close(); b.close()
""",
    "tcp-time-wait": """
import socket
for bit in range(4):
    if {v} >> bit & 1:
        l = socket.socket()
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('127.0.0.1', 41000 + bit))
        l.listen(1)
        c = socket.create_connection(('127.0.0.1', 41000 + bit))
        a, _ = l.accept()
        a.close(); c.close(); l.close()  # the server side closed first: TIME_WAIT for 60 s
""",
    # no new inode for these: a name moved or linked out of the working directory into the scratch /tmp
    "renamed-source": "import os\nos.rename('prog.py', '/tmp/v{v}')\n",
    "linked-source": "import os\ntry:\n    os.link('prog.py', '/tmp/v{v}')\nexcept OSError:\n    pass\n",
    "renamed-workdir": "import os\nos.rename(os.getcwd(), '/tmp/v{v}')\n",
}
_NAME_IN_TMP = """
import os
names = [n for n in os.listdir('/tmp') if n.startswith('v') and n[1:].isdigit()]
print(int(names[0][1:]) if names else 0)
"""
RECEIVERS = {
    "pid": "import os\nprint(os.getpid())\n",
    "tmpfs-inode": "import os\nprint(os.stat('.').st_ino)\n",
    "sysv-id": """
import ctypes
libc = ctypes.CDLL(None)
i = libc.shmget(0, 4096, 0o1600)
libc.shmctl(i, 0, None)
print(i)
""",
    "abstract-socket": """
import socket
v = 0
for bit in range(4):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(b'\\0cure-bit-%d' % bit)
        v |= 1 << bit
    except OSError:
        pass
print(v)
""",
    "tcp-time-wait": """
import socket
v = 0
for bit in range(4):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', 41000 + bit))
    except OSError:
        v |= 1 << bit
    s.close()
print(v)
""",
    "renamed-source": _NAME_IN_TMP,
    "linked-source": _NAME_IN_TMP,
    "renamed-workdir": _NAME_IN_TMP,
}
COUNTERS = ("pid", "tmpfs-inode", "sysv-id")
"""Channels read as a counter: the receiver decodes the difference of its readings around two senders."""
_REASON = (
    "unprivileged, the worker cannot rewind its pid namespace (ns_last_pid needs CAP_CHECKPOINT_RESTORE over it), "
    "so the next pid carries a count from one execution to the next (every fork and thread advances it); "
    'docs/sandbox.md, "What remains"'
)


def _channel_cases() -> list[object]:
    cases: list[object] = []
    for level in HIDING:
        for channel in SENDERS:
            # the others retire the worker (worker_traces); lo is down at unshare; root workers rewind the pid
            broken = channel == "pid" and os.geteuid() != 0
            marks = [pytest.mark.xfail(strict=True, reason=_REASON)] if broken else []
            cases.append(pytest.param(level, channel, marks=marks, id=f"{level}-{channel}"))
    return cases


@pytest.mark.parametrize(("level", "channel"), _channel_cases())
def test_no_execution_can_pass_information_to_a_later_one(level: str, channel: str) -> None:
    send, recv = SENDERS[channel], RECEIVERS[channel]
    with start_or_skip(level) as sb:
        if channel in COUNTERS:
            readings = run_one_worker(sb, [recv, send.format(v=0), recv, send.format(v=VALUE), recv])
            assert all(r.status is ExecStatus.OK for r in readings), readings
            r0, r1, r2 = (int(readings[i].stdout) for i in (0, 2, 4))
            decoded = (r2 - r1) - (r1 - r0)
        else:
            _, got = run_one_worker(sb, [send.format(v=VALUE), recv])
            assert got.status is ExecStatus.OK, got
            decoded = int(got.stdout)
    assert decoded != VALUE, f"{channel}: a later execution decoded {decoded}"


WRITES_A_FILE = "open('scratch.txt', 'w').write('x')\nprint(int(input()) * 2)"
DOUBLES = "print(int(input()) * 2)"


@pytest.mark.parametrize("level", HIDING)
def test_a_worker_retires_on_a_trace_quietly_and_keeps_what_it_had_queued(
    level: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A program that creates a file advances the scratch tmpfs's inode counter (a channel), so its worker
    retires; the jobs queued behind it run on the successor with right verdicts and no failure is logged.
    Programs that leave no trace keep their worker."""
    with start_or_skip(level) as sb:
        first = sb.worker_pids()
        plain = sb.run([ExecJob(DOUBLES, f"{i}\n", 1.0) for i in range(4)])
        assert sb.worker_pids() == first
        with caplog.at_level("WARNING", logger="cure_bench"):
            mixed = sb.run([ExecJob(WRITES_A_FILE if i % 2 else DOUBLES, f"{i}\n", 1.0) for i in range(8)])
        assert sb.worker_pids() != first
    assert [judge(r, str(2 * i)) for i, r in enumerate(plain)] == [Verdict.ACCEPTED] * 4
    assert [judge(r, str(2 * i)) for i, r in enumerate(mixed)] == [Verdict.ACCEPTED] * 8
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # no "died"/"lost"


SOCKSTAT = """sockets: used {used}
TCP: inuse 0 orphan {orphan} tw {tw} alloc 1 mem 0
UDP: inuse 0 mem 0
"""


def test_traces_see_each_channel_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """worker_traces on a real tmpfs (the host's /dev/shm, standing in for a worker's scratch): quiet when only
    the worker's own working directory and prog.py were made, a trace for any other inode (kept or not), and
    for a socket or a closing TCP connection in the namespace's counters, but not for the host's TCP orphans."""
    from cure_bench.sandbox import worker_traces

    if not os.path.isdir("/dev/shm") or os.statvfs("/dev/shm").f_files == 0:
        pytest.skip("no tmpfs at /dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="cure-traces-", dir="/dev/shm"))
    counters = tmp_path / "sockstat"  # opened once by Traces and read again from the start at every check
    counters.write_text(SOCKSTAT.format(used=0, tw=0, orphan=0))
    monkeypatch.setattr(worker_traces, "SOCKSTAT", str(counters))  # the host's own counters are not 0
    try:
        watch = worker_traces.Traces((str(scratch),), str(scratch))

        def execution(n: int, extra: int = 0) -> bool:
            (scratch / f"exec-{n}").mkdir()
            (scratch / f"exec-{n}" / "prog.py").write_text("")
            for i in range(extra):  # what a program makes (and removes: the number is spent either way)
                (scratch / f"exec-{n}" / f"f{i}").write_text("")
                (scratch / f"exec-{n}" / f"f{i}").unlink()
            return watch.unchanged()

        assert [execution(1), execution(2, extra=1), execution(3), execution(4, extra=5)] == [True, False, True, False]
        monkeypatch.setattr(worker_traces, "SOCKET_GRACE_S", 0.01)
        # a cycle of in-flight unix sockets; a TCP port in TIME_WAIT
        for n, busy in ((5, {"used": 3, "tw": 0}), (6, {"used": 0, "tw": 1})):
            counters.write_text(SOCKSTAT.format(orphan=0, **busy))
            assert execution(n) is False
        counters.write_text(SOCKSTAT.format(used=0, tw=0, orphan=7))  # the host's orphans: not this namespace's
        assert execution(7) is True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_sysv_id_law_accepts_one_creation_and_nothing_else() -> None:
    """Linux hands out SysV indices cyclically below 64 (seq * IPCMNI + index); one creation after id 62 is 63,
    after 63 it is the next seq's index 0. Any other id means a program created objects in between."""
    from cure_bench.sandbox.worker_traces import _learn_sysv, _one_creation_later

    law = (1, 1 << 15)
    assert _one_creation_later(62, 63, law) and _one_creation_later(63, 1 << 15, law)
    assert _one_creation_later((1 << 15) + 63, 2 << 15, law)
    assert not any(_one_creation_later(last, now, law) for last, now in [(62, 64), (63, 64), (63, 2 << 15), (5, 5)])
    assert _one_creation_later(7 << 15, 8 << 15, (1 << 15, 0))  # an older kernel: seq advances every time
    last, laws = _learn_sysv()  # this process's IPC namespace: a wrap is seen within IPC_MIN_CYCLE + 3 creations
    assert len(last) == 3 and all(step >= 1 for step, _ in laws)


def test_the_quick_cleanup_never_follows_a_swapped_working_directory(tmp_path: Path) -> None:
    """A program owns its working directory and may leave a link in its place: the quick path (only prog.py
    there) must not unlink a prog.py elsewhere through it, and hands anything unusual to the full removal."""
    from cure_bench.sandbox.worker import _remove_untouched

    plain, busy, elsewhere = tmp_path / "plain", tmp_path / "busy", tmp_path / "elsewhere"
    for d in (plain, busy, elsewhere):
        d.mkdir()
        (d / "prog.py").write_text("x")
    (busy / "out.txt").write_text("y")
    swapped = tmp_path / "swapped"
    swapped.symlink_to(elsewhere)
    assert _remove_untouched(str(plain)) is True and not plain.exists()
    assert _remove_untouched(str(swapped)) is False and (elsewhere / "prog.py").read_text() == "x"
    assert _remove_untouched(str(busy)) is False and (busy / "out.txt").exists()


def test_cleaning_leaves_a_venv_bound_under_tmp_alone(tmp_path: Path) -> None:
    """A venv under /tmp is bound at its own path inside the view's scratch /tmp (a newcomer's clone under
    pytest's temp directory is one): cleaning must keep that mount point and the directories leading to it,
    and still remove everything else, or every execution would leave 'something' and retire its worker."""
    scratch = tmp_path / "tmp"
    venv = scratch / "pytest-of-root" / "pytest-1" / "a b" / "venv"
    venv.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (scratch / "pytest-of-root" / "left-by-a-program").write_text("x")
    (scratch / "exec-1").mkdir()
    (scratch / "exec-1" / "prog.py").write_text("")
    mountinfo = tmp_path / "mountinfo"
    escaped = str(venv).replace(" ", "\\040")
    mountinfo.write_text(f"36 35 0:30 / / ro - tmpfs none rw\n97 36 0:44 /v {escaped} ro,nosuid - ext4 /dev/vda rw\n")
    keep = worker_mounts.mounts_below((str(scratch),), str(mountinfo))
    assert keep == {str(venv)}
    assert worker_mounts.clean_scratch((str(scratch),), keep) is True
    assert sorted(p.relative_to(scratch).as_posix() for p in scratch.rglob("*")) == [
        "pytest-of-root", "pytest-of-root/pytest-1", "pytest-of-root/pytest-1/a b",
        "pytest-of-root/pytest-1/a b/venv", "pytest-of-root/pytest-1/a b/venv/pyvenv.cfg"]  # fmt: skip


def test_the_cleanup_helpers_keep_their_contract(tmp_path: Path) -> None:
    """remove_tree on a file, a dangling link and a missing path (the working directory may be any of them)."""
    f, link = tmp_path / "f", tmp_path / "l"
    f.write_text("x")
    link.symlink_to(tmp_path / "missing")
    assert worker_mounts.remove_tree(str(f)) and not f.exists()
    assert worker_mounts.remove_tree(str(link)) and not os.path.lexists(link)
    assert worker_mounts.remove_tree(str(tmp_path / "missing"))
    assert stat.S_ISDIR(os.lstat(tmp_path).st_mode)


def test_a_worker_whose_cleanup_leaves_something_retires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: whatever the worker could not remove would meet the next execution, so it exits after
    its reply and the pool starts a fresh one (fresh tmpfs and namespaces at bwrap/unshare)."""
    from cure_bench.sandbox import worker

    workdir = tmp_path / "exec-x"
    workdir.mkdir()
    monkeypatch.setattr(worker, "_retire", False)
    worker._clean_up(str(workdir), {"own_view": False, "uid": -1})
    assert not workdir.exists() and worker._retire is False
    workdir.mkdir()
    monkeypatch.setattr(worker.mounts, "remove_tree", lambda path: False)
    worker._clean_up(str(workdir), {"own_view": False, "uid": -1})
    assert worker._retire is True


THREADS_AND_FORKS = """
import os, threading
for _ in range(7):
    threading.Thread(target=lambda: None).start()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print(os.getpid(), pid)
"""


@pytest.mark.parametrize("level", HIDING)
def test_every_execution_starts_at_the_same_pid(level: str) -> None:
    """Root workers rewind their pid namespace before each fork (worker_traces.PidCursor): a program's pid, and
    those of the processes it starts, do not depend on how many threads or processes earlier programs made."""
    from cure_bench.sandbox.worker_traces import FIRST_PID

    if os.geteuid() != 0:
        pytest.skip("only a root worker holds CAP_CHECKPOINT_RESTORE over its pid namespace")
    with start_or_skip(level) as sb:
        runs = run_one_worker(sb, [THREADS_AND_FORKS, "import os\nprint(os.getpid())", THREADS_AND_FORKS])
    assert [r.status for r in runs] == [ExecStatus.OK] * 3, runs
    first, plain, again = (r.stdout.split() for r in runs)
    assert first == again and plain == [str(FIRST_PID)]
    assert first[0] == str(FIRST_PID) and int(first[1]) == FIRST_PID + 8  # seven threads, then the fork


MAKES_A_QUEUE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mq_open.restype = ctypes.c_int
print(libc.mq_open(b'/cure-left', os.O_RDWR | os.O_CREAT, 0o600, None) >= 0, os.listdir('/dev/mqueue'))
"""
LOOKS_FOR_QUEUES = "import os\nprint(os.listdir('/dev/mqueue'))\n"


@pytest.mark.parametrize("level", HIDING)
def test_a_posix_queue_is_removed_before_the_next_execution_on_the_same_worker(level: str) -> None:
    """A queue leaves no trace the worker retires on (worker_traces), so the worker itself must remove it; it
    looks only when the mqueue directory's size says a queue is there (worker_mounts.QueueDir)."""
    with start_or_skip(level) as sb:
        first = sb.worker_pids()
        made, looked, again = run_one_worker(sb, [MAKES_A_QUEUE, LOOKS_FOR_QUEUES, LOOKS_FOR_QUEUES])
        assert sb.worker_pids() == first  # no retirement: the removal did it
    assert made.stdout.strip().split(None, 1) == ["True", "['cure-left']"], made
    assert looked.stdout.strip() == again.stdout.strip() == "[]", (looked, again)
