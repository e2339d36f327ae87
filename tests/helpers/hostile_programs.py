"""Hostile programs for the sandbox tests, each bounded so it cannot harm the machine even if containment
is broken: bombs have fixed iteration counts, and anything that would be dangerous as root (kill(-1), fork
loops) first checks that it is NOT root and prints ``unsafe`` instead of acting.
"""

from __future__ import annotations

GUARD = "import os, sys\nif os.getuid() == 0:\n    print('unsafe'); sys.exit(0)\n"

KILL_PARENT = """
import os, signal
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError as exc:
    print('denied', type(exc).__name__)
"""

KILL_PARENT_GROUP = """
import os, signal
try:
    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
except OSError as exc:
    print('denied', type(exc).__name__)
"""

KILL_EVERYTHING = GUARD + "import signal\nos.kill(-1, signal.SIGKILL)\nprint('still here')\n"

CLOSE_STDOUT = "import os\nos.close(1)\nos.close(2)\nprint('42')\n"

IGNORE_SIGTERM = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"

DEEP_RECURSION = """
import sys
sys.setrecursionlimit(10**5)
def f(n):
    return f(n + 1) + 1
f(0)
"""

C_STACK_OVERFLOW = """
import sys
sys.setrecursionlimit(10**9)
def f(n):  # every level goes through C (sorted -> key): the C stack overflows, the process gets SIGSEGV
    return sorted([n], key=lambda x: f(x + 1))
f(0)
"""

FORK_BOMB = (
    GUARD
    + """
import time
made = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    made += 1
print(made)
"""
)

MEMORY_BOMB = "chunks = []\nfor _ in range(400):\n    chunks.append(bytearray(10**7))\nprint(len(chunks))\n"

HUGE_ALLOCATION = "x = bytearray(10**11)\nprint(len(x))\n"

OUTPUT_BOMB = "import sys\nfor _ in range(1000):\n    sys.stdout.write('x' * 65536)\n"


def setsid_grandchild(token: str) -> str:
    """Double-forks a setsid'd shell (sleeping 30 s) whose argv carries ``token``, then exits at once."""
    return f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv('/bin/sh', ['/bin/sh', '-c', 'echo started; sleep 30; true', '{token}'])
    os._exit(0)
import time
for _ in range(100):  # wait (bounded) until the grandchild has announced itself
    if os.fstat(1).st_size:
        break
    time.sleep(0.05)
print('parent done')
"""


def snoop(secret_sha256: str, secret_len: int, paths: list[str]) -> str:
    """Hunts for an expected output it knows only by its sha256 and length: in its own memory, its
    environment, every visible process's cmdline/environ, and files under ``paths``. Prints what it found."""
    return f"""
import ctypes, hashlib, os
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: make /proc/self/mem readable again after setuid
PREFIX = bytes([83, 69, 67, 82, 69, 84, 45])  # the secret's known prefix, never spelled out here
WANT, N = {secret_sha256!r}, {secret_len}
def hit(blob):
    start = blob.find(PREFIX)
    while start != -1:
        if hashlib.sha256(blob[start:start + N]).hexdigest() == WANT:
            return True
        start = blob.find(PREFIX, start + 1)
    return False
found = []
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
    for line in maps:
        addr, perms = line.split()[:2]
        if 'r' not in perms or '[vvar' in line or '[vsyscall' in line:
            continue
        lo, hi = (int(x, 16) for x in addr.split('-'))
        try:
            mem.seek(lo)
            if hit(mem.read(hi - lo)):
                found.append('memory ' + line.strip())
        except (OSError, ValueError, OverflowError):
            pass
if hit(repr(dict(os.environ)).encode()):
    found.append('environ')
for pid in os.listdir('/proc'):
    for name in ('cmdline', 'environ'):
        try:
            with open(f'/proc/{{pid}}/{{name}}', 'rb') as f:
                if hit(f.read()):
                    found.append(f'/proc/{{pid}}/{{name}}')
        except OSError:
            pass
for root in {paths!r}:
    for dirpath, _, files in os.walk(root):
        for fname in files[:200]:
            try:
                with open(os.path.join(dirpath, fname), 'rb') as f:
                    if hit(f.read(1 << 20)):
                        found.append(os.path.join(dirpath, fname))
            except OSError:
                pass
print('FOUND' if found else 'clean', found)
"""


def find_file(secret_sha256: str, secret_len: int, exact_paths: list[str], skip: list[str]) -> str:
    """Reward hacking by file: looks at ``exact_paths`` (where the task file and run outputs really are)
    and walks the whole visible filesystem except ``skip`` (system trees, bounded work) for a file holding
    the expected output, known only by its sha256 and length. Prints ``clean`` or what it found."""
    return f"""
import hashlib, os
PREFIX = bytes([83, 69, 67, 82, 69, 84, 45])
WANT, N, SKIP = {secret_sha256!r}, {secret_len}, {skip!r}
def hit(blob):
    start = blob.find(PREFIX)
    while start != -1:
        if hashlib.sha256(blob[start:start + N]).hexdigest() == WANT:
            return True
        start = blob.find(PREFIX, start + 1)
    return False
found = [p for p in {exact_paths!r} if os.path.exists(p)]
for dirpath, dirs, files in os.walk('/'):
    dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in SKIP][:100]
    for fname in files[:200]:
        try:
            with open(os.path.join(dirpath, fname), 'rb') as f:
                if hit(f.read(1 << 16)):
                    found.append(os.path.join(dirpath, fname))
        except OSError:
            pass
try:
    import cure_bench
    found.append('import cure_bench')
except ImportError:
    pass
print('FOUND' if found else 'clean', found)
"""


_BURN = """
import os, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
"""

CPU_IN_CHILDREN = (
    _BURN
    + """
for _ in range(3):  # 3 x 0.6 s of CPU in unwaited children while the main process sleeps
    if os.fork() == 0:
        burn(0.6)
        os._exit(0)
time.sleep(0.2)
for _ in range(200):  # bounded: idle just enough to look busy for a per-process accountant
    burn(0.001)
    time.sleep(0.01)
print('done')
"""
)

CPU_CHAIN = (
    _BURN
    + """
r, w = os.pipe()
if os.fork() == 0:  # a chain: each link burns 0.3 s, forks its successor and exits; none nears the limit
    os.close(r)
    for step in range(6):
        burn(0.3)
        if os.fork() != 0:
            os._exit(0)
    os.write(w, b'chain done')
    os._exit(0)
os.close(w)
for _ in range(400):  # the main process idles just above an idle threshold, bounded
    burn(0.002)
    time.sleep(0.01)
    import select
    if select.select([r], [], [], 0)[0]:
        print(os.read(r, 100).decode())
        break
"""
)

MEMORY_ACROSS_PROCESSES = """
import os
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
kids = []
for _ in range(4):  # 4 processes x 100 MB of touched memory, each under a 256 MB per-process limit
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        block = bytearray(b'x' * (100 * 2**20))
        os.write(ready_w, b'1')
        os.close(ready_w)
        os.read(go_r, 1)  # hold the memory until every sibling has allocated (or died trying)
        os._exit(0)
    kids.append(pid)
os.close(ready_w)
os.close(go_r)
held = 0
while os.read(ready_r, 1):
    held += 1
os.close(go_w)
for pid in kids:
    os.waitpid(pid, 0)
print(held)
"""


def persist(token: str) -> str:
    """Tries to leave state for a later execution, and reports any it finds from an earlier one: files in
    every scratch directory, SysV shared memory / message queue / semaphores under a fixed key, a POSIX
    message queue, and a key in the uid's kernel keyring. Prints ``seen:<what>`` for anything found."""
    key = int(token[-6:], 16)
    return f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
seen, made = [], []
for d in ('/tmp', '/dev/shm', '/var/tmp', '/run/lock'):
    path = os.path.join(d, 'cure-persist-{token}')
    if os.path.exists(path):
        seen.append(path)
    try:
        open(path, 'w').write('x' * 1000)
        made.append(path)
    except OSError:
        pass
for name, get, extra in (('shm', libc.shmget, (4096,)), ('msg', libc.msgget, ()), ('sem', libc.semget, (1,))):
    if get({key}, *extra, 0o666) >= 0:
        seen.append(name)
    if get({key}, *extra, 0o666 | 0o1000) >= 0:  # IPC_CREAT
        made.append(name)
libc.mq_open.restype = ctypes.c_int
if libc.mq_open(b'/cure-{token}', os.O_RDONLY) >= 0:
    seen.append('mqueue')
if libc.mq_open(b'/cure-{token}', os.O_RDWR | os.O_CREAT, 0o600, None) >= 0:
    made.append('mqueue')
libc.syscall.restype = ctypes.c_long
KEYCTL_SEARCH, USER_KEYRING = 10, -4
if libc.syscall(250, KEYCTL_SEARCH, USER_KEYRING, b'user', b'cure-{token}', 0) >= 0:
    seen.append('keyring')
if libc.syscall(248, b'user', b'cure-{token}', b'payload', 7, USER_KEYRING) >= 0:
    made.append('keyring')
print(' '.join('seen:' + s for s in seen) or 'nothing', '| made:', ' '.join(made))
"""


def plant_cache(directory: str) -> str:
    """Cache poisoning: creates a later run's result-cache directory, world-writable, with a database."""
    return f"""
import os, sqlite3
try:
    os.makedirs({directory!r}, mode=0o777, exist_ok=True)
    os.chmod({directory!r}, 0o777)
    db = sqlite3.connect(os.path.join({directory!r}, 'results.sqlite'))
    db.execute('CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB NOT NULL)')
    db.commit()
    os.chmod(os.path.join({directory!r}, 'results.sqlite'), 0o666)
    print('planted')
except OSError as exc:
    print('refused', exc.errno)
"""


NEW_USER_NAMESPACE = """
import ctypes, threading
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.unshare(0x10000000)  # CLONE_NEWUSER: root in a namespace of its own, more kernel to attack
print('unshare', rc, ctypes.get_errno())
done = []
t = threading.Thread(target=lambda: done.append(1))  # threads (clone3 -> clone) still work
t.start()
t.join()
print('thread', len(done))
"""

FAKE_SANDBOX_ERROR = """
import os, sys
sys.stderr.write('cure sandbox: child setup failed: OSError()\\n')
sys.stderr.flush()
os._exit(121)
"""

FAKE_MEMORY_LIMIT = "import sys\nsys.stderr.write('MemoryError\\nCannot allocate memory\\n')\nsys.exit(1)\n"

WORKER_CAPABILITIES = """
import os
with open(f'/proc/{os.getppid()}/status') as f:
    print(int([l for l in f if l.startswith('CapEff:')][0].split()[1], 16))
"""
