"""Mount work the worker does itself, inside its own namespaces (standard library only, like worker.py).

- ``build_view`` (``unshare`` level): execute the parent's allow-list view (``view.MountOp`` list) under a
  fresh tmpfs, then pivot_root into it and detach the host's tree, so nothing outside the list is reachable
  (not even through ``..`` or ``/proc/self/root``, which a chroot would leave).
- ``fresh_scratch`` (every level that can): give one execution its own mount and IPC namespaces, with new
  size-capped tmpfs over /tmp, /dev/shm, /var/tmp and /run/lock, so nothing a program writes or creates
  there outlives it: the namespace dies with the execution's last process.
"""

from __future__ import annotations

import ctypes
import os
import platform

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


def fresh_scratch(dirs: tuple[str, ...], size_bytes: int) -> bool:
    """New mount + IPC namespaces for this process with a fresh tmpfs on each of ``dirs``; False where the
    kernel refuses (no privilege): the caller then relies on the worker-wide scratch tmpfs."""
    if _libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        return False
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    for path in dirs:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size_bytes},nr_inodes=4096")
    return True
