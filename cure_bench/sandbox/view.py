"""The program's filesystem view, built from an allow-list, and the judge environment it holds.

Why an allow-list: "the host minus covers" leaks whatever nobody thought to cover (a dataset under /srv, a
venv inside the repository that pins the repository open, the toolkit's own bundled sample in site-packages).
Here the view starts empty and receives only what a judge needs:

- ``/usr`` read-only, with every Python ``site-packages``/``dist-packages`` under it masked by an empty
  tmpfs (a Docker-style install of this toolkit lives there);
- the interpreter binary, its shared library and its standard library (site-packages masked);
- the judge's allowed third-party packages (``JudgeEnv.packages``), each bound on its own into
  ``JUDGE_SITE``, which the worker puts on ``sys.path``;
- a minimal ``/etc`` (a few files, no secrets), fresh ``/proc`` and ``/dev``, private tmpfs for
  ``/tmp``, ``/dev/shm``, ``/var/tmp``, ``/run/lock``; the worker's own files under ``WORKER_DIR``.

The toolkit's package, datasets, run directories, caches, ``$HOME`` and the working directory are never
added, wherever they are. The view is a list of mount operations (``MountOp``) that bubblewrap executes
(``bwrap_args``) or the ``unshare`` worker executes itself before a pivot_root (``worker_mounts.py``).
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError

JUDGE_SITE = "/opt/cure-judge/site-packages"
WORKER_DIR = "/opt/cure-sandbox"
SCRATCH_DIRS = ("/tmp", "/dev/shm", "/var/tmp", "/run/lock")
"""Writable directories of the view: each a private, size-capped tmpfs (per execution, see worker.py)."""
WORKER_TMPFS_BYTES = 64 * 2**20
ETC_FILES = (
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
)
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

MountOp = tuple[str, ...]
"""``("ro-bind", src, dst)``, ``("tmpfs", dst, bytes)``, ``("dir", dst)``, ``("symlink", target, dst)``,
``("proc", dst)``, ``("dev", dst)``, ``("mqueue", dst)``: executed in order; missing parents are created 0755."""


def real_python() -> str:
    """The interpreter's real path: a version-manager shim costs ~80 ms per start and may not be visible."""
    return os.path.realpath(sys.executable)


@dataclass(frozen=True)
class JudgeEnv:
    """Which interpreter runs programs and which third-party packages they may import (nothing else)."""

    python: str
    stdlib: str
    packages: dict[str, str] = field(default_factory=dict)  # distribution name -> version
    entries: tuple[str, ...] = ()  # site-packages entries (host paths) bound into JUDGE_SITE

    def describe(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "python_version": sys.version.split()[0],
            "packages": dict(self.packages),
            "site": JUDGE_SITE,
        }


def judge_env(packages: Sequence[str] = ()) -> JudgeEnv:
    """The judge environment for this interpreter: the standard library plus ``packages`` (distribution
    names as pip knows them, e.g. ``numpy``); an unknown name is a ConfigError naming it."""
    entries: set[str] = set()
    versions: dict[str, str] = {}
    for name in packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"sandbox judge packages: {name!r} is not installed for {real_python()}; "
                f"pip install {name} or remove it from the allowed packages"
            ) from None
        versions[dist.metadata["Name"]] = dist.version
        site = Path(str(dist.locate_file("")))
        for entry in {f.parts[0] for f in dist.files or () if f.parts and f.parts[0] != ".."}:
            path = site / entry
            if path.exists() and not entry.endswith(".pth"):
                entries.add(str(path))
    return JudgeEnv(real_python(), sysconfig.get_paths()["stdlib"], versions, tuple(sorted(entries)))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _site_dirs_under(root: str) -> list[str]:
    """Every Python package directory below ``root`` (system, Debian and /usr/local layouts)."""
    patterns = ("lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages")
    found: set[str] = set()
    for base in (root, os.path.join(root, "local")):
        for pattern in patterns:
            found.update(p for p in glob.glob(os.path.join(base, pattern)) if os.path.isdir(p))
    return sorted(found)


def _interpreter_ops(env: JudgeEnv) -> list[MountOp]:
    """The interpreter outside /usr (pyenv, conda, a venv's base): binary, libpython, stdlib only."""
    ops: list[MountOp] = []
    if not _under(env.python, "/usr"):
        ops.append(("ro-bind", env.python, env.python))
        cfg = os.path.join(os.path.dirname(os.path.dirname(env.python)), "pyvenv.cfg")
        if os.path.isfile(cfg):  # a copied venv interpreter finds its standard library through this file
            ops.append(("ro-bind", cfg, cfg))
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if libdir and not _under(libdir, "/usr"):
        for lib in sorted(glob.glob(os.path.join(libdir, "libpython3*.so*"))):
            ops.append(("ro-bind", lib, lib))
    stdlib = os.path.realpath(env.stdlib)
    if not _under(stdlib, "/usr"):
        ops.append(("ro-bind", stdlib, stdlib))
    for site in (os.path.join(stdlib, "site-packages"), os.path.join(stdlib, "dist-packages")):
        if os.path.isdir(site):
            ops.append(("tmpfs", site, "4096"))
    return ops


def view_ops(env: JudgeEnv, worker_files: Sequence[Path]) -> list[MountOp]:
    """The whole view as mount operations, in order (see the module docstring)."""
    ops: list[MountOp] = [("ro-bind", "/usr", "/usr")]
    ops += [("tmpfs", site, "4096") for site in _site_dirs_under("/usr")]
    for path in ROOT_LINKS:
        if os.path.islink(path):
            ops.append(("symlink", os.readlink(path), path))
        elif os.path.isdir(path):
            ops.append(("ro-bind", path, path))
    for path in ETC_FILES:
        if os.path.islink(path):
            ops.append(("symlink", os.readlink(path), path))
        elif os.path.exists(path):
            ops.append(("ro-bind", path, path))
    ops += [("proc", "/proc"), ("dev", "/dev"), ("mqueue", "/dev/mqueue")]
    ops += [("tmpfs", path, str(WORKER_TMPFS_BYTES)) for path in SCRATCH_DIRS]
    ops += _interpreter_ops(env)  # after the scratch tmpfs: a venv under /tmp must stay visible
    ops.append(("dir", JUDGE_SITE))
    ops += [("ro-bind", entry, os.path.join(JUDGE_SITE, os.path.basename(entry))) for entry in env.entries]
    ops += [("ro-bind", str(f), os.path.join(WORKER_DIR, f.name)) for f in worker_files]
    return ops


def bwrap_args(ops: Sequence[MountOp]) -> list[str]:
    """The same view as bubblewrap options."""
    args: list[str] = []
    made: set[str] = set()
    mounted: list[str] = []
    for kind, *rest in ops:
        dst = rest[-1] if kind != "tmpfs" else rest[0]
        # bwrap would create missing parents like /root as 0700: make them traversable for the program's uid
        for parent in map(str, reversed(Path(dst).parents[:-1])):
            if kind != "symlink" and parent not in made and not any(_under(parent, m) for m in mounted):
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        if kind == "ro-bind":
            args += ["--ro-bind", rest[0], rest[1]]
        elif kind == "tmpfs":
            args += ["--perms", "1777" if rest[0] in SCRATCH_DIRS else "0755", "--size", rest[1], "--tmpfs", rest[0]]
        elif kind == "dir":
            args += ["--perms", "0755", "--dir", rest[0]]
        elif kind == "symlink":
            args += ["--symlink", rest[0], rest[1]]
        elif kind == "proc":
            args += ["--proc", rest[0]]
        elif kind == "dev":
            args += ["--dev", rest[0]]
        elif kind == "mqueue":
            args += ["--mqueue", rest[0]]
        if kind in ("ro-bind", "tmpfs", "proc", "dev", "mqueue"):
            mounted.append(dst)
        made.add(dst)
    return args


def must_hide(extra: Sequence[str | Path] = ()) -> list[str]:
    """Paths programs must never see: the caller's working directory, $HOME, the toolkit's package and
    ``extra`` (dataset files, run directories, caches). The start-up probe checks each from inside."""
    import cure_bench

    paths = [os.getcwd(), str(Path.home()), str(Path(cure_bench.__file__).resolve().parent), *map(str, extra)]
    return sorted({os.path.realpath(p) for p in paths})
