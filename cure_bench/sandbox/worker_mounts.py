"""Mount work the worker does itself, inside its own namespaces (standard library only, like worker.py).

- ``build_view`` (``unshare`` level): execute the parent's allow-list view (``view.MountOp`` list) under a
  fresh tmpfs, then pivot_root into it and detach the host's tree, so nothing outside the list is reachable
  (not even through ``..`` or ``/proc/self/root``, which a chroot would leave).
- ``fresh_scratch`` (every level that can): give one execution its own IPC namespace (SysV objects and
  POSIX queues die with its last process) and, where the worker shares the host's filesystem (``rlimits``,
  ``none``), its own mount namespace with new size-capped tmpfs over /tmp, /dev/shm, /var/tmp, /run/lock.
- ``clean_scratch``/``clean_ipc``: where the worker has its own view and IPC namespace (``bwrap``,
  ``unshare``), those directories are already private size-capped tmpfs; after each execution the worker
  empties them and removes every IPC object (measured: namespaces per execution cost ~0.25 ms of CPU each,
  about 9% of a CPU-light execution; emptying costs ~0.03 ms).
- ``deny_syscalls``: a seccomp filter on the program: no kernel keyring calls (a keyring is per uid and
  would outlive the execution).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil

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


def clean_ipc(mqueue_dir: str = "/dev/mqueue") -> None:
    """Remove every SysV segment, queue and semaphore set and every POSIX message queue of the worker's own
    IPC namespace (bwrap/unshare give each worker one); every process of the execution is dead by now."""
    for kind, call in _SYSV:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fn = getattr(_libc, call)
            if kind == "sem":
                fn(int(row.split()[1]), 0, _IPC_RMID)
            else:
                fn(int(row.split()[1]), _IPC_RMID, None)
    try:
        names = os.listdir(mqueue_dir)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(mqueue_dir, name))


def clean_scratch(dirs: tuple[str, ...]) -> None:
    """Empty the worker's own scratch tmpfs after an execution (every process of it is dead by now)."""
    for path in dirs:
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


# ------------------------------------------------------------------------------------------------ seccomp

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NR = {  # add_key, request_key, keyctl
    "x86_64": (248, 249, 250),
    "aarch64": (217, 218, 219),
}


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def _program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter: another syscall ABI -> ENOSYS; kernel keyring calls -> EPERM; everything else allowed."""
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    denied = _NR[arch]
    code = [(ld_abs, 0, 0, 4), (jeq, 1, 0, _ARCH[arch]), (ret, 0, 0, _RET_ERRNO | ENOSYS), (ld_abs, 0, 0, 0)]
    for i, nr in enumerate(denied):  # jump to the EPERM return just after the final ALLOW
        code.append((jeq, len(denied) - i, 0, nr))
    return [*code, (ret, 0, 0, _RET_ALLOW), (ret, 0, 0, _RET_ERRNO | EPERM)]


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
