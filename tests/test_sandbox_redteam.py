"""The red team's classes (issue 13), each at every isolation level that starts on this machine.

1. nothing secret reachable (allow-list view, judge environment, start-up probe)
2. all CPU of an execution charged
3. nothing survives an execution
4. cache integrity
5. bounded harness memory
6. least privilege

Hostile programs come from tests/helpers/hostile_programs.py and run only inside the sandbox.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cure_bench.errors import SandboxError
from cure_bench.sandbox import Sandbox, cgroups, isolation_levels, view, worker_mounts
from cure_bench.sandbox import cache as cache_module
from cure_bench.sandbox import isolation as iso
from cure_bench.sandbox.cache import ResultCache, job_key
from cure_bench.types import ExecJob, ExecResult, ExecStatus
from tests.helpers import hostile_programs as hp

HIDING = [lvl for lvl in ("bwrap", "unshare") if iso.available(lvl)]
CONTAINED = [lvl for lvl in isolation_levels() if lvl != "none" and iso.available(lvl)]
REPO = Path(__file__).resolve().parents[1]
SKIP_WALK = ["/usr", "/proc", "/sys", "/dev", os.path.realpath(sysconfig.get_paths()["stdlib"])]


def peak_while_consuming(sb: Sandbox, jobs: list[ExecJob], consume: Any) -> int:
    """Peak bytes the parent allocated (tracemalloc) while ``run_each`` handed every result to ``consume``."""
    import tracemalloc

    tracemalloc.start()
    try:
        sb.run_each(jobs, consume)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def start_or_skip(level: str, **kwargs: Any) -> Sandbox:
    try:
        return Sandbox(workers=1, isolation=level, use_cache=kwargs.pop("use_cache", False), **kwargs)
    except SandboxError as exc:
        if "cannot start" in str(exc) or "not installed" in str(exc) or "failed to start" in str(exc):
            pytest.skip(f"isolation level {level!r} cannot start on this machine: {exc}")
        raise


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside the working directory and $HOME (like a dataset under /srv)."""
    base = "/srv" if os.path.isdir("/srv") and os.access("/srv", os.W_OK) else tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix="cure-redteam-", dir=base))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def plant(directory: Path) -> tuple[str, Path, Path]:
    """A task file and a run directory holding an expected output (world-readable, as users leave them)."""
    secret = "SECRET-" + secrets.token_hex(16)
    dataset = directory / "tasks.jsonl"
    dataset.write_text(f'{{"question": "q", "test_output": ["{secret}"]}}\n')
    run = directory / "runs" / "bench-1"
    run.mkdir(parents=True)
    (run / "samples.jsonl").write_text(f'{{"expected": "{secret}"}}\n')
    for p in (dataset, run / "samples.jsonl"):
        p.chmod(0o644)
    for d in (run, run.parent):
        d.chmod(0o755)
    return secret, dataset, run


def hunt(sandbox: Sandbox, secret: str, exact: list[str]) -> str:
    program = hp.find_file(hashlib.sha256(secret.encode()).hexdigest(), len(secret), exact, SKIP_WALK)
    result = sandbox.run([ExecJob(program, "", 20.0, 512)])[0]
    assert result.status is ExecStatus.OK, result.stderr_tail
    return result.stdout


# ------------------------------------------------------------------------------- 1. nothing secret reachable


@pytest.mark.parametrize("level", HIDING)
def test_dataset_runs_and_cache_outside_cwd_and_home_are_invisible(level: str, outside: Path) -> None:
    secret, dataset, run = plant(outside)
    cache = outside / "cache"
    with start_or_skip(level, hide=[dataset, run.parent], cache_dir=cache, use_cache=True) as sb:
        found = hunt(sb, secret, [str(dataset), str(run), str(cache), os.getcwd(), str(REPO / "cure_bench")])
        info = sb.describe()
    assert found.startswith("clean"), found
    assert str(dataset) in info["hidden_checked"] and os.path.realpath(cache) in info["hidden_checked"]
    assert info["judge_env"]["packages"] == {}


@pytest.mark.parametrize("level", HIDING)
def test_probe_refuses_a_view_that_shows_a_must_hide_path(
    level: str, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dataset, _ = plant(outside)
    real = view.view_ops
    shown = ("ro-bind", str(outside), str(outside))
    monkeypatch.setattr(view, "view_ops", lambda env, files: [*real(env, files), shown])
    with pytest.raises(SandboxError, match=r"can see paths they must not.*tasks\.jsonl"):
        start_or_skip(level, hide=[dataset])


def test_rlimits_refuses_when_an_explicit_path_is_readable(outside: Path) -> None:
    if not iso.drops_uid("rlimits"):
        pytest.skip("programs keep the caller's uid when it is not root: the probe cannot tell")
    _, dataset, _ = plant(outside)
    with pytest.raises(SandboxError, match="unreadable to the program uids"):
        start_or_skip("rlimits", hide=[dataset])
    outside.chmod(0o700)
    with start_or_skip("rlimits", hide=[dataset]) as sb:
        assert sb.run([ExecJob("print(2)", "", 1.0)])[0].stdout == "2\n"


@pytest.mark.parametrize("level", HIDING)
def test_judge_environment_is_explicit(level: str) -> None:
    program = (
        "try:\n    import numpy\n    print(int(numpy.arange(4).sum()))\nexcept ImportError:\n    print('no numpy')\n"
    )
    with start_or_skip(level) as sb:
        assert sb.run([ExecJob(program, "", 5.0)])[0].stdout == "no numpy\n"
    pytest.importorskip("numpy")
    with start_or_skip(level, packages=["numpy"]) as sb:
        assert sb.run([ExecJob(program, "", 10.0, 1024)])[0].stdout == "6\n"
        assert "numpy" in sb.describe()["judge_env"]["packages"]
    with pytest.raises(Exception, match="no-such-package"):
        Sandbox(workers=1, isolation=level, use_cache=False, packages=["no-such-package"])


def _venv_hunt(
    venv: Path, level: str, secret: str, exact: list[str], hide: list[str], env: dict[str, str], cwd: Path = REPO
) -> str:
    """Run a Sandbox from ``venv``'s interpreter and hunt for ``secret`` from inside it."""
    program = hp.find_file(hashlib.sha256(secret.encode()).hexdigest(), len(secret), exact, SKIP_WALK)
    script = (
        "import sys\nfrom cure_bench.sandbox import Sandbox\nfrom cure_bench.types import ExecJob\n"
        f"with Sandbox(workers=1, isolation={level!r}, use_cache=False, hide={hide!r}) as sb:\n"
        f"    r = sb.run([ExecJob({program!r}, '', 20.0, 512)])[0]\n"
        "print(r.status.value, r.stdout.strip(), r.stderr_tail[-300:])\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("level", HIDING)
@pytest.mark.parametrize("where", ["project", "tmp"])
def test_venv_inside_the_project_or_under_tmp_exposes_nothing(level: str, where: str) -> None:
    base = REPO if where == "project" else Path(tempfile.gettempdir())
    venv = base / f".venv-redteam-{secrets.token_hex(4)}"
    secret = "SECRET-" + secrets.token_hex(16)
    planted = base / f"redteam-{secrets.token_hex(4)}.txt"
    try:
        copies = ["--copies"] if where == "tmp" else []  # a copied interpreter under /tmp, under the scratch tmpfs
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", *copies, str(venv)], check=True
        )
        planted.write_text(secret)
        planted.chmod(0o644)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        out = _venv_hunt(venv, level, secret, [str(planted), str(venv / "lib"), str(REPO)], [str(planted)], env)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        planted.unlink(missing_ok=True)
    assert out.startswith("ok clean"), out


@pytest.mark.slow
@pytest.mark.parametrize("level", HIDING)
def test_wheel_install_does_not_expose_the_bundled_sample(level: str, tmp_path: Path) -> None:
    """A normal (non-editable) install puts cure_bench/data/sample.jsonl in site-packages, next to the
    interpreter: programs must neither read it nor import the toolkit."""
    wheels, venv, src = tmp_path / "wheels", tmp_path / "venv", tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "cure_bench", "cure_train"):  # a build leaves build/ behind
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    target = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    wheel = next(wheels.glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", target, str(wheel)], check=True)
    sample = Path(target) / "cure_bench" / "data" / "sample.jsonl"
    assert sample.is_file()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = str(tmp_path)  # the installed package, not this checkout, must be what is imported
    line = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import cure_bench; print(cure_bench.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert line.startswith(target), line
    out = _venv_hunt(venv, level, "SECRET-unused", [str(sample), target], [str(sample)], env, tmp_path)
    assert out.startswith("ok clean"), out


# ------------------------------------------------------------------------------- 2. all CPU charged


@pytest.fixture(params=["cgroup", "process-tree"])
def accounting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both accountants: the slot cgroup where this host allows it, and the /proc + rusage fallback."""
    if request.param == "process-tree":
        monkeypatch.setattr(cgroups, "create", lambda portable: None)
    elif not cgroups.available():
        pytest.skip("no cgroups here (not root, or no cgroupfs)")
    return str(request.param)


@pytest.mark.parametrize("level", CONTAINED)
def test_cpu_of_unwaited_children_and_fork_chains_is_charged(level: str, accounting: str) -> None:
    with start_or_skip(level) as sb:
        assert ("slot cgroup" in str(sb.describe()["accounting"])) == (accounting == "cgroup")
        results = sb.run([ExecJob(p, "", 1.0, 256) for p in (hp.CPU_IN_CHILDREN, hp.CPU_CHAIN, "print(3)")])
    for result in results[:2]:
        assert result.status is ExecStatus.TIME_LIMIT, result
        assert result.cpu_s >= 1.0
    assert results[2].status is ExecStatus.OK and results[2].cpu_s < 0.5


@pytest.mark.parametrize("level", CONTAINED)
def test_memory_of_all_processes_together_is_capped(level: str) -> None:
    if not cgroups.available():
        pytest.skip("no memory cgroup here: memory is capped per process only (docs/sandbox.md)")
    with start_or_skip(level) as sb:
        if "memory" not in sb.describe()["accounting"]:
            pytest.skip("no memory controller on this host")
        result = sb.run([ExecJob(hp.MEMORY_ACROSS_PROCESSES, "", 10.0, 256)])[0]
    assert result.status is ExecStatus.OK, result
    assert int(result.stdout) <= 2  # at most two 100 MB blocks fit in 256 MB at once
    assert result.peak_memory_mb <= 256 + 1


# ------------------------------------------------------------------------------- 3. nothing survives


def host_state() -> dict[str, set[str]]:
    """What an execution could leave on the host: scratch directories and SysV IPC objects."""
    found = {d: set(os.listdir(d)) for d in ("/dev/shm", "/var/tmp", "/run/lock", "/tmp") if os.path.isdir(d)}
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as f:
            found[kind] = {line.split()[1] for line in f.read().splitlines()[1:]}
    return found


@pytest.mark.parametrize("level", CONTAINED)
def test_no_state_survives_an_execution(level: str) -> None:
    token = secrets.token_hex(6)
    before = host_state()
    with start_or_skip(level) as sb:
        first, second = sb.run([ExecJob(hp.persist(token), str(i), 5.0) for i in range(2)])  # same worker
    for result in (first, second):
        assert result.status is ExecStatus.OK, result
        assert result.stdout.startswith("nothing |"), result.stdout
    assert "/tmp/cure-persist" in first.stdout and "shm" in first.stdout  # it did try
    assert "keyring" not in first.stdout  # keyring calls are denied (seccomp)
    after = host_state()
    assert [(where, name) for where, names in after.items() for name in names - before[where] if token in name] == []
    assert {k: after[k] - before[k] for k in ("shm", "msg", "sem")} == {"shm": set(), "msg": set(), "sem": set()}


# ------------------------------------------------------------------------------- 4. cache integrity


@pytest.mark.parametrize("level", CONTAINED)
def test_a_program_cannot_plant_a_later_runs_cache(level: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="cure-cache-"))
    base.chmod(0o1777)  # as a shared /tmp is: the program's uid could create entries here
    future = base / "exec"
    try:
        with start_or_skip(level) as sb:
            sb.run([ExecJob(hp.plant_cache(str(future)), "", 5.0)])
        if future.exists():  # only where the level shows the host's files: it must then be refused
            with pytest.raises(SandboxError, match="exec cache"):
                Sandbox(workers=1, isolation=level, cache_dir=future)
        else:
            with Sandbox(workers=1, isolation=level, cache_dir=future) as sb:
                assert sb.run([ExecJob("print(5)", "", 1.0)])[0].stdout == "5\n"
            assert stat.S_IMODE(future.stat().st_mode) == 0o700 and future.stat().st_uid == os.geteuid()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("problem", ["world-writable dir", "world-writable db", "foreign owner"])
def test_untrustworthy_cache_is_refused(problem: str, tmp_path: Path) -> None:
    cache = tmp_path / "exec"
    cache.mkdir(mode=0o700)
    (cache / "results.sqlite").touch(mode=0o600)
    if problem == "world-writable dir":
        cache.chmod(0o777)
    elif problem == "world-writable db":
        (cache / "results.sqlite").chmod(0o666)
    else:
        if os.geteuid() != 0:
            pytest.skip("only root can give a file to another uid")
        os.chown(cache, 4242, 4242)
    with pytest.raises(SandboxError, match=f"exec cache .*{cache.name}"):
        ResultCache(cache)


def test_cache_keys_include_the_engine_version(monkeypatch: pytest.MonkeyPatch) -> None:
    job = ExecJob("print(1)", "", 1.0)
    before = job_key(job, "bwrap", 1024)
    monkeypatch.setattr(cache_module, "ENGINE_VERSION", "999")
    assert cache_module.job_key(job, "bwrap", 1024) != before


# ------------------------------------------------------------------------------- 5. bounded harness memory


@pytest.mark.parametrize("level", CONTAINED)
def test_harness_holds_a_bounded_number_of_results(level: str) -> None:
    """64 executions of 1 MiB of output each, consumed by a slow caller: the parent must never hold them
    all (run would: 64 MiB); run_each holds at most max_results_in_flight() of them."""
    jobs = [ExecJob("import sys\nsys.stdout.write(input() * 2**20)", chr(97 + i % 26) + "\n", 5.0) for i in range(64)]
    seen: list[int] = []
    with start_or_skip(level) as sb:
        bound = sb.max_results_in_flight()

        def consume(index: int, result: ExecResult) -> None:
            assert result.status is ExecStatus.OK, result
            seen.append(len(result.stdout))
            time.sleep(0.005)  # a slow consumer: the drivers must wait, not pile results up

        peak = peak_while_consuming(sb, jobs, consume)
    assert len(seen) == 64 and set(seen) == {2**20}
    assert bound < 32
    assert peak < 3 * bound * 2**20, (peak / 2**20, bound)  # bytes + decoded str per result, with slack


# ------------------------------------------------------------------------------- 6. least privilege


@pytest.mark.parametrize("level", CONTAINED)
def test_programs_cannot_create_user_namespaces(level: str) -> None:
    with start_or_skip(level) as sb:
        result = sb.run([ExecJob(hp.NEW_USER_NAMESPACE, "", 5.0)])[0]
    assert result.status is ExecStatus.OK, result
    assert result.stdout.splitlines() == ["unshare -1 1", "thread 1"]  # EPERM


@pytest.mark.parametrize("level", CONTAINED)
def test_worker_keeps_only_the_capabilities_it_needs(level: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("not root: the worker holds no capabilities to drop")
    allowed = sum(1 << c for c in worker_mounts.WORKER_CAPS)
    if level not in ("bwrap", "unshare"):
        allowed |= 1 << worker_mounts.CAP_SYS_ADMIN  # per-execution namespaces on the host's view
    else:
        allowed |= 1 << worker_mounts.CAP_CHECKPOINT_RESTORE  # the pid rewind (worker_traces.PidCursor)
    with start_or_skip(level) as sb:
        result = sb.run([ExecJob(hp.WORKER_CAPABILITIES, "", 5.0)])[0]
    assert result.status is ExecStatus.OK, result
    held = int(result.stdout)
    assert held & ~allowed == 0, f"{held:x} beyond {allowed:x}"


@pytest.mark.parametrize("level", CONTAINED)
def test_printed_text_decides_no_verdict(level: str) -> None:
    with start_or_skip(level) as sb:
        fake_setup, fake_memory, real_memory = sb.run(
            [
                ExecJob(hp.FAKE_SANDBOX_ERROR, "", 2.0),
                ExecJob(hp.FAKE_MEMORY_LIMIT, "", 2.0),
                ExecJob(hp.HUGE_ALLOCATION, "", 2.0, 256),
            ]
        )
    assert fake_setup.status is ExecStatus.RUNTIME_ERROR, fake_setup
    assert fake_memory.status is ExecStatus.RUNTIME_ERROR, fake_memory
    assert real_memory.status is ExecStatus.MEMORY_LIMIT and real_memory.exit_code == 1, real_memory


def test_bwrap_options_are_not_on_its_command_line() -> None:
    """/proc/1 of the bwrap namespace is bubblewrap itself: its command line must not list host paths."""
    if "bwrap" not in HIDING:
        pytest.skip("bubblewrap is not installed")
    program = "print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[:4])"
    with start_or_skip("bwrap") as sb:
        out = sb.run([ExecJob(program, "", 2.0)])[0].stdout
    assert out.startswith("[b'bwrap', b'--args'"), out
    assert str(REPO) not in out
