"""Mount work the worker does itself, inside its own namespaces (standard library only, like worker.py).

- ``build_view`` (``unshare`` level): execute the parent's allow-list view (``view.MountOp`` list) under a
  fresh tmpfs, then pivot_root into it and detach the host's tree, so nothing outside the list is reachable
  (not even through ``..`` or ``/proc/self/root``, which a chroot would leave).
- ``fresh_scratch`` (every level that can): give one execution its own IPC namespace (SysV objects and
  POSIX queues die with its last process) and, where the worker shares the host's filesystem (``rlimits``,
  ``none``), its own mount namespace with new size-capped tmpfs over /tmp, /dev/shm, /var/tmp, /run/lock.
- ``clean_scratch``/``clean_sysv``/``clean_mqueue``: where the worker has its own view and IPC namespace (``bwrap``,
  ``unshare``), those directories are already private size-capped tmpfs; after each execution the worker
  empties them and removes every IPC object (measured: namespaces per execution cost ~0.25 ms of CPU each,
  about 9% of a CPU-light execution; emptying costs ~0.03 ms).
- ``remove_tree``/``empty_dir``: removal that never recurses, so no tree a program builds (thousands of
  nested directories) can make the cleanup fail and leave it for the next execution.
- ``deny_syscalls``: a seccomp filter on the worker and so on every program: no kernel keyring calls (a
  keyring is per uid and would outlive the execution), no new user namespaces (less kernel surface).
- ``drop_capabilities``: the worker keeps only the capabilities it needs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import re

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [x.encode() if x is not None else None for x in (src, dst, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {dst}")


def _locked_flags(path: str) -> int:
    """The flags a read-only remount must keep (in a user namespace the kernel refuses to drop them)."""
    f = os.statvfs(path).f_flag
    flags = f & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    return flags | (MS_RELATIME if f & 4096 else 0)


def _make_target(path: str, is_dir: bool) -> None:
    os.makedirs(path if is_dir else os.path.dirname(path), mode=0o755, exist_ok=True)
    if not is_dir and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _bind_ro(src: str, dst: str) -> None:
    _make_target(dst, os.path.isdir(src))
    mount(src, dst, None, MS_BIND | MS_REC)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(src))


def _dev(root: str, dst: str) -> None:
    target = root + dst
    _make_target(target, True)
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _make_target(f"{target}/{name}", False)
            mount(f"/dev/{name}", f"{target}/{name}", None, MS_BIND)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(link, f"{target}/{name}")
    os.symlink("/proc/self/fd/2", f"{target}/stderr")
    os.makedirs(f"{target}/shm", mode=0o1777, exist_ok=True)


def _apply(root: str, op: list[str]) -> None:
    kind = op[0]
    if kind == "ro-bind":
        _bind_ro(op[1], root + op[2])
    elif kind == "tmpfs":
        _make_target(root + op[1], True)
        mode = "1777" if op[1] in ("/tmp", "/dev/shm", "/var/tmp", "/run/lock") else "0755"
        mount("tmpfs", root + op[1], "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={op[2]}")
    elif kind == "dir":
        _make_target(root + op[1], True)
    elif kind == "symlink":
        _make_target(os.path.dirname(root + op[2]), True)
        os.symlink(op[1], root + op[2])
    elif kind == "proc":
        _make_target(root + op[1], True)
        mount("proc", root + op[1], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    elif kind == "dev":
        _dev(root, op[1])
    elif kind == "mqueue":
        _make_target(root + op[1], True)
        mount("mqueue", root + op[1], "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        raise ValueError(f"unknown mount operation {kind!r}")


def build_view(root: str, ops: list[list[str]]) -> None:
    """Build the view under ``root`` (an existing directory) and make it this process's whole filesystem."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount may propagate back to the host
    os.makedirs(root, mode=0o755, exist_ok=True)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1048576")
    for op in ops:
        _apply(root, op)
    old = os.path.join(root, ".host")
    os.mkdir(old, 0o700)
    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(number, root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.host", MNT_DETACH), "umount the host tree")
    os.rmdir("/.host")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def fresh_scratch(dirs: tuple[str, ...], size_bytes: int, new_mounts: bool) -> bool:
    """A new IPC namespace for this process and, with ``new_mounts``, a new mount namespace with a fresh
    tmpfs on each of ``dirs``; False where the kernel refuses (no privilege)."""
    flags = CLONE_NEWIPC | (CLONE_NEWNS if new_mounts else 0)
    if _libc.unshare(flags) != 0:
        return False
    if new_mounts:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        for path in dirs:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size_bytes},nr_inodes=4096")
    return True


_IPC_RMID = 0
_SYSV = (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl"))


def _sysv_objects() -> list[tuple[str, int]]:
    found = []
    for kind, call in _SYSV:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                found += [(call, int(row.split()[1])) for row in f.read().splitlines()[1:]]
        except OSError:
            continue
    return found


def _remove_sysv(objects: list[tuple[str, int]]) -> None:
    for call, ident in objects:
        if call == "semctl":
            _libc.semctl(ident, 0, _IPC_RMID)
        else:
            getattr(_libc, call)(ident, _IPC_RMID, None)


def clean_sysv(uid: int) -> None:
    """Remove every SysV object of this IPC namespace. Removing another uid's object needs CAP_SYS_ADMIN,
    which the worker gave up: a helper running as the execution's uid removes them (only when there are
    any). Reading /proc/sysvipc costs ~0.1 ms, so the worker calls this only when worker_traces saw an
    execution create SysV objects."""
    objects = _sysv_objects()
    if objects and uid >= 0:
        helper = os.fork()
        if helper == 0:
            try:
                os.setgid(uid)
                os.setuid(uid)
                _remove_sysv(objects)
            finally:
                os._exit(0)
        os.waitpid(helper, 0)
    elif objects:
        _remove_sysv(objects)


def clean_mqueue(mqueue_dir: str = "/dev/mqueue") -> None:
    """Remove every POSIX message queue of this IPC namespace."""
    try:
        names = os.listdir(mqueue_dir)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(mqueue_dir, name))


class QueueDir:
    """The IPC namespace's mqueue directory, kept open: its size grows by one entry per queue (the mqueue
    filesystem counts each in the directory's i_size), so one fstat tells whether there is anything to remove,
    and the listing and unlinking (``clean_mqueue``) run only then."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fd: int | None = None
        self.empty = -1
        if path is not None:
            with contextlib.suppress(OSError):
                self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                self.empty = os.fstat(self.fd).st_size if not os.listdir(path) else -1

    def clean(self) -> None:
        if self.path is None:
            return
        if self.fd is not None and self.empty >= 0:
            with contextlib.suppress(OSError):
                if os.fstat(self.fd).st_size == self.empty:
                    return
        clean_mqueue(self.path)


def mounts_below(dirs: tuple[str, ...], mountinfo: str = "/proc/self/mountinfo") -> frozenset[str]:
    """Mount points strictly below ``dirs``: the view binds a venv that lives under /tmp at its own path inside
    the scratch /tmp, and cleaning must leave that path (and the directories leading to it) alone."""
    found = set()
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            rows = [line.split() for line in f]
        points = [_unescape(fields[4]) for fields in rows if len(fields) > 4]
    except OSError:
        return frozenset()
    for point in points:
        if any(point.startswith(d.rstrip("/") + "/") for d in dirs):
            found.add(point)
    return frozenset(found)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as a backslash and three octal digits."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def clean_scratch(dirs: tuple[str, ...], keep: frozenset[str] = frozenset()) -> bool:
    """Empty the worker's own scratch tmpfs after an execution (every process of it is dead by now), except the
    mount points ``keep`` and the directories leading to them; False when something could not be removed
    (the worker then retires: see worker.py)."""
    clean = True
    for path in dirs:
        clean = _empty_keeping(path.rstrip("/") or "/", keep) and clean
    return clean


def _empty_keeping(path: str, keep: frozenset[str]) -> bool:
    """Empty ``path``; an entry on the way to a kept mount point is descended into instead of removed (that
    chain is the view's own, a few levels deep), a kept mount point itself is left as it is."""
    if not any(k.startswith(path + "/") for k in keep):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return True  # not in this view
        try:
            return empty_dir(fd)
        finally:
            os.close(fd)
    clean = True
    try:
        with os.scandir(path) as entries:
            names = [entry.name for entry in entries]
    except OSError:
        return False
    for name in names:
        child = f"{path}/{name}"
        if child in keep:
            continue
        if any(k.startswith(child + "/") for k in keep) and not os.path.islink(child):
            clean = _empty_keeping(child, keep) and clean
        else:
            clean = remove_tree(child) and clean
    return clean


def empty_dir(top: int) -> bool:
    """Remove everything inside the directory open as ``top``; False when something is left.

    Why not ``shutil.rmtree``: in Python 3.11 it recurses once per directory level, so a program that nests a
    few thousand directories made it raise RecursionError, which left the tree (and a full scratch tmpfs) to
    every later execution of the worker and failed them all. This loop never recurses and never builds a path
    longer than one name: files are unlinked, and each subdirectory's entries are moved up into ``top`` before
    the then empty subdirectory is removed, until ``top`` is empty. It never follows a symbolic link (links are
    unlinked like files, directories are opened with O_NOFOLLOW). It runs only once every process of the
    execution is dead, so nothing changes the tree under it."""
    while True:
        found = progressed = False
        with os.scandir(top) as entries:
            for entry in entries:
                found = True
                try:
                    if entry.is_dir(follow_symlinks=False):
                        _hoist(top, entry.name)
                    else:
                        os.unlink(entry.name, dir_fd=top)
                    progressed = True
                except OSError:
                    continue
        if not found:
            return True
        if not progressed:
            return False


def _hoist(top: int, name: str) -> None:
    """Move the entries of directory ``name`` (in ``top``) up into ``top``, then remove ``name``."""
    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
    try:
        with os.scandir(sub) as entries:
            for entry in entries:
                os.rename(entry.name, f".cure-rm-{os.urandom(8).hex()}", src_dir_fd=sub, dst_dir_fd=top)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=top)


def remove_tree(path: str) -> bool:
    """Remove ``path`` and everything below it without recursion (see ``empty_dir``); True once it is gone."""
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except OSError:  # not a directory (or a link to one): remove the entry itself
        with contextlib.suppress(OSError):
            os.unlink(path)
        return not os.path.lexists(path)
    try:
        emptied = empty_dir(top)
    finally:
        os.close(top)
    with contextlib.suppress(OSError):
        os.rmdir(path)
    return emptied and not os.path.lexists(path)


NS_LAST_PID = "sys/kernel/ns_last_pid"


def open_pid_cursor(scratch: str) -> int | None:
    """A descriptor for writing this pid namespace's last pid (the worker's own namespace at bwrap and unshare),
    or None where it cannot be had. At unshare the view's /proc is the namespace's own, writable one; bubblewrap
    covers /proc/sys read-only, so the worker (still holding CAP_SYS_ADMIN at start) mounts a private procfs of
    its namespace in a fresh directory of its scratch, opens the file and detaches the mount again before any
    program runs. The write itself needs CAP_CHECKPOINT_RESTORE, which the worker then keeps (worker.py)."""
    with contextlib.suppress(OSError):
        return os.open(f"/proc/{NS_LAST_PID}", os.O_WRONLY | os.O_CLOEXEC)
    private = os.path.join(scratch, f".cure-proc-{os.urandom(6).hex()}")
    try:
        os.mkdir(private, 0o700)
    except OSError:
        return None
    try:
        mount("proc", private, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        os.rmdir(private)
        return None
    try:
        return os.open(f"{private}/{NS_LAST_PID}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return None
    finally:
        _libc.umount2(private.encode(), MNT_DETACH)
        with contextlib.suppress(OSError):
            os.rmdir(private)


# ------------------------------------------------------------------------------------------------ seccomp

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NR = {  # (add_key, request_key, keyctl), (unshare, clone), clone3
    "x86_64": ((248, 249, 250), (272, 56), 435),
    "aarch64": ((217, 218, 219), (97, 220), 435),
}
CLONE_NEWUSER = 0x10000000
X32_SYSCALL_BIT = 0x40000000
_X32_BIT_ARCHES = ("x86_64",)


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def _program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter: another syscall ABI -> ENOSYS; kernel keyring calls -> EPERM; unshare/clone asking for a
    new user namespace -> EPERM; clone3 (whose flags a filter cannot read) -> ENOSYS, so the C library falls
    back to clone; everything else allowed.

    On x86_64 the x32 ABI reports the same audit arch as x86_64 and marks its syscall numbers with bit 30
    (x32 keyctl is 0x40000000 + 250), so a filter matching plain numbers would let x32 calls through on
    kernels built with x32 enabled: every number with that bit is refused with ENOSYS, as on kernels
    without x32."""
    ld_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    keyring, cloning, clone3 = _NR[arch]
    code = [(ld_abs, 0, 0, 4), (jeq, 1, 0, _ARCH[arch]), (ret, 0, 0, _RET_ERRNO | ENOSYS), (ld_abs, 0, 0, 0)]
    if arch in _X32_BIT_ARCHES:
        code += [(jge, 0, 1, X32_SYSCALL_BIT), (ret, 0, 0, _RET_ERRNO | ENOSYS)]
    code.append((jeq, 0, 1, clone3))
    code.append((ret, 0, 0, _RET_ERRNO | ENOSYS))
    # from here: n checks, then [ALLOW, EPERM, load flags, jset -> EPERM, ALLOW]
    checks = [(nr, "deny") for nr in keyring] + [(nr, "flags") for nr in cloning]
    for i, (nr, what) in enumerate(checks):
        left = len(checks) - i - 1  # checks after this one
        code.append((jeq, left + (1 if what == "deny" else 2), 0, nr))
    code += [(ret, 0, 0, _RET_ALLOW), (ret, 0, 0, _RET_ERRNO | EPERM)]
    code += [(ld_abs, 0, 0, 16), (jset, 0, 1, CLONE_NEWUSER), (ret, 0, 0, _RET_ERRNO | EPERM), (ret, 0, 0, _RET_ALLOW)]
    return code


def deny_syscalls() -> bool:
    """Install the seccomp filter on this process (inherited by everything it forks); False where this
    architecture is not known. Needs PR_SET_NO_NEW_PRIVS (or root) first."""
    arch = platform.machine()
    if arch not in _ARCH:
        return False
    code = _program(arch)
    filters = (_Filter * len(code))(*(_Filter(*c) for c in code))
    prog = _Prog(len(code), filters)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")
    return True


# ----------------------------------------------------------------------------------------------- capabilities

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 0, 1, 3, 5, 6, 7, 21
CAP_CHECKPOINT_RESTORE = 40
"""Kept only with a pid cursor (``open_pid_cursor``): writing ns_last_pid needs it (Linux >= 5.9)."""
WORKER_CAPS = (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID)
"""What the worker needs: make and remove executions' files, signal their processes, drop to their uid."""
PR_CAPBSET_DROP, _CAP_VERSION_3 = 24, 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities(keep: tuple[int, ...]) -> bool:
    """Keep only ``keep`` (bounding, permitted and effective sets); False where we hold none to drop."""
    if os.geteuid() != 0:
        return False
    for cap in range(64):
        if cap not in keep:
            _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the kernel's last capability: fine
    mask = sum(1 << c for c in keep)
    data = (_CapData * 2)(_CapData(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0), _CapData(mask >> 32, mask >> 32, 0))
    _check(_libc.capset(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), data), "capset")
    return True
