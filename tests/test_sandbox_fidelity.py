"""The judge is ``python3 prog.py < input``: edge-case programs judged by the sandbox and by a real interpreter.

Each program below runs twice through the sandbox's public API (``Sandbox.run`` + ``judge``, what the bench
uses): once as the sandbox runs any program (forked from the warm worker), and once as a reference, where the
judged job is a tiny launcher that writes the program to ``ref/prog.py`` and ``os.execv``s a fresh
``python3 ref/prog.py`` in its place. The reference is therefore a real interpreter started from scratch,
with the same stdin, limits, environment and classification, and it runs inside the sandbox's own isolation.
Only where the sandbox's unprivileged uid may not exec the interpreter (the rlimits level on a host whose Python
is private) does the reference fall back to a plain ``python3`` subprocess with the same limits and a timeout:
acceptable because these are our own fixed programs, never generated code (see ``plain_python3``).

Both runs must give the same verdict, the same status and exit code, the same stdout byte for byte, and the
same stderr once the execution directory and object addresses are taken out. Each case also states the
verdict python3 semantics give, so a judge that broke both ways at once would still fail.

Deliberate differences, documented in docs/sandbox.md ("Judge semantics") and not probed here: string hashes
are not randomised (the worker's hash seed is fixed so verdicts do not depend on the worker), ``sys.flags``
shows the worker's ``-s``, and common modules are pre-imported (``len(sys.modules)`` is larger).
"""

from __future__ import annotations

import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cure_bench.sandbox import Sandbox, judge
from cure_bench.sandbox.isolation import env_allowlist
from cure_bench.sandbox.view import real_python
from cure_bench.types import ExecJob, ExecResult, ExecStatus, Verdict

pytestmark = pytest.mark.slow

AC, WA, RE = Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR
OUTPUT_CAP = 16 * 2**20  # the sandbox's default max_output_bytes


@dataclass(frozen=True)
class Case:
    name: str
    program: str
    expected: str  # the expected output the verdict is judged against
    verdict: Verdict  # what python3 semantics give
    stdin: str = ""
    time_limit_s: float = 5.0
    memory_mb: int = 512
    whole_stdlib: bool = False  # imports beyond the worker's pre-imported modules, or starts an interpreter


def case(name: str, verdict: Verdict, expected: str, *lines: str, **limits: Any) -> Case:
    """A case whose program is ``lines`` joined by newlines."""
    return Case(name, "\n".join(lines), expected, verdict, **limits)


CASES = [
    # compile flags: nothing of the judge's own `from __future__ import annotations` reaches the program
    case(
        "annotations_evaluated",
        AC,
        "{'x': <class 'int'>, 'return': <class 'str'>}",
        "def f(x: int) -> str: ...",
        "print(f.__annotations__)",
    ),
    case("unimported_typing_name", RE, "1", "def f(x: List[int]) -> int:", "    return 1", "print(f([]))"),
    case(
        "own_future_import",
        AC,
        "{'x': 'List[int]'}",
        "from __future__ import annotations",
        "def f(x: List[int]): ...",
        "print(f.__annotations__)",
    ),
    case("module_annotations", AC, "{'x': <class 'int'>}", "x: int = 3", "print(__annotations__)"),
    case("barry_as_flufl_off", RE, "True", "print(1 <> 2)"),
    # signals
    case(
        "sigint_is_keyboardinterrupt",
        AC,
        "caught",
        "import os, signal",
        "try:",
        "    os.kill(os.getpid(), signal.SIGINT)",
        "    import time; time.sleep(1)",
        "except KeyboardInterrupt:",
        "    print('caught')",
    ),
    case("uncaught_keyboardinterrupt", RE, "x", "print('x', flush=True)", "raise KeyboardInterrupt"),
    case(
        "signal_dispositions",
        WA,
        "",
        "import signal",
        "for s in sorted(signal.valid_signals()):",
        "    if s not in (signal.SIGKILL, signal.SIGSTOP):",
        "        print(int(s), signal.getsignal(s))",
    ),
    case(
        "subprocess_reaped",
        AC,
        "0 5",
        "import subprocess, sys",
        "r = subprocess.run([sys.executable, '-c', 'print(5)'], capture_output=True, text=True)",
        "print(r.returncode, r.stdout.strip())",
        whole_stdlib=True,
    ),
    case(
        "sigpipe_ignored",
        AC,
        "EPIPE",
        "import os",
        "r, w = os.pipe()",
        "os.close(r)",
        "try:",
        "    os.write(w, b'x')",
        "except BrokenPipeError:",
        "    print('EPIPE')",
    ),
    # interpreter state
    case(
        "gc_state", AC, "True (700, 10, 10) 0", "import gc", "print(gc.isenabled(), gc.get_threshold(), gc.get_debug())"
    ),
    case(
        "recursion_limit",
        RE,
        "1000 900",
        "import sys",
        "print(sys.getrecursionlimit())",
        "def f(n): return 0 if n == 0 else 1 + f(n - 1)",
        "print(f(900))",
        "print(f(2000))",
    ),
    case(
        "deep_recursion_raised_limit",
        AC,
        "100000",
        "import sys",
        "sys.setrecursionlimit(10**6)",
        "def f(n): return 0 if n == 0 else 1 + f(n - 1)",
        "print(f(100000))",
    ),
    case(
        "flags",
        AC,
        "0 0 0 False 0 0 False 0 0",
        "import sys",
        "f = sys.flags",
        "print(f.optimize, f.inspect, f.interactive, f.dev_mode, f.utf8_mode)",
        "print(f.isolated, f.safe_path, f.bytes_warning, f.ignore_environment)",
    ),
    case("int_max_str_digits", RE, "5001", "print(len(str(10**5000)))"),
    case("builtins", WA, "", "import builtins", "print(sorted(dir(builtins)))"),
    # standard streams
    case(
        "stream_attributes",
        WA,
        "",
        "import sys",
        "for s in (sys.stdin, sys.stdout, sys.stderr):",
        "    print(s.name, s.mode, s.encoding, s.errors, s.line_buffering, s.write_through)",
        "    print(s.isatty(), type(s.buffer).__name__, type(s.buffer.raw).__name__)",
        "print(sys.__stdout__ is sys.stdout, sys.stdin.newlines)",
    ),
    case(
        "stream_buffers",  # the worker builds these streams once, on /dev/null, for every child (worker.py)
        WA,
        "",
        "import sys",
        "print(sys.stdout.buffer.raw._blksize, [s.seekable() for s in (sys.stdin, sys.stdout, sys.stderr)])",
        "print(sys.stdin.buffer.tell(), sys.stdout.tell(), sys.stderr.tell(), sys.stdin.read(3), sys.stdin.tell())",
        "print(type(sys.stdout.buffer.raw).__name__, sys.stdout.buffer.raw.closefd)",
        stdin="abcdef\n",
    ),
    case("crlf_input_kept", AC, "4 '\\r'", "s = input()", "print(len(s), repr(s[-1]))", stdin="abc\r\nd\r\n"),
    case("crlf_readlines", AC, "[5, 3]", "import sys", "print([len(l) for l in sys.stdin])", stdin="abc\r\nd\r\n"),
    case("unicode_io", AC, "✓ olléh 7", "s = input()", "print(s[::-1], len(s))", stdin="héllo ✓\n"),
    case("buffer_and_text_order", AC, "b a", "import sys", "print('a')", "sys.stdout.buffer.write(b'b\\n')"),
    case("stdout_closed_after_print", AC, "42", "import sys", "print(42)", "sys.stdout.close()"),
    case("input_prompt_goes_to_stdout", WA, "10", "n = int(input('n? '))", "print(n * 2)", stdin="5\n"),
    case(
        "stdin_buffer", AC, "6", "import sys", "print(sum(map(int, sys.stdin.buffer.read().split())))", stdin="1 2 3\n"
    ),
    case("open_fd_0", AC, "6", "print(sum(map(int, open(0).read().split())))", stdin="1 2 3\n"),
    case(
        "input_then_stdin_read",
        AC,
        "3 6",
        "import sys",
        "n = int(input())",
        "print(n, sum(map(int, sys.stdin.read().split())))",
        stdin="3\n1 2 3\n",
    ),
    case(
        "input_then_buffer_read",
        AC,
        "3 b''",
        "import sys",
        "n = int(input())",
        "print(n, sys.stdin.buffer.read())",
        stdin="3\n1 2 3\n",
    ),
    case(
        "input_then_os_read",
        AC,
        "3 b''",
        "import os",
        "n = int(input())",
        "print(n, os.read(0, 100))",
        stdin="3\n1 2 3\n",
    ),
    case("input_at_eof", RE, "1", "print(1)", "input()"),
    case("no_trailing_newline", AC, "42", "print(int(input()) + 1)", stdin="41"),
    # __main__, argv, path
    case(
        "main_globals",
        WA,
        "",
        "print(sorted(globals()), __name__, __spec__, __package__, __doc__, __cached__)",
        "print(type(__loader__).__name__, type(__builtins__).__name__, __annotations__)",
    ),
    case(
        "main_module",
        AC,
        "True True True prog.py",
        "import __main__, sys, os",
        "print(__main__.__dict__ is globals(), __main__.__file__ == __file__)",
        "print(os.path.isabs(__file__), os.path.basename(__file__))",
    ),
    case(
        "argv_and_path",
        AC,
        "1 prog.py True",
        "import sys, os",
        "print(len(sys.argv), os.path.basename(sys.argv[0]))",
        "print(sys.path[0] == os.path.dirname(os.path.abspath(__file__)))",
    ),
    case(
        "pickle_main_class",
        AC,
        "7",
        "import pickle",
        "class P:",
        "    def __init__(self, v): self.v = v",
        "print(pickle.loads(pickle.dumps(P(7))).v)",
        whole_stdlib=True,
    ),
    case("coding_cookie", AC, "2", "# -*- coding: latin-1 -*-", "print(len('é'))"),
    case("byte_order_mark", AC, "bom", "\ufeffprint('bom')"),
    case(
        "warnings_filters",
        WA,
        "",
        "import warnings",
        "print([(f[0], f[2].__name__ if f[2] else None, f[3]) for f in warnings.filters])",
        "warnings.warn('dep', DeprecationWarning)",
        "warnings.warn('user')",
    ),
    # exit, exceptions and shutdown
    case("exit_message", RE, "7", "import sys", "print(7)", "sys.exit('bad input')"),
    case("exit_one_after_output", RE, "7", "print(7)", "exit(1)"),
    case("exit_256", AC, "7", "import sys", "print(7)", "sys.exit(256)"),
    case("exit_huge", RE, "7", "import sys", "print(7)", "sys.exit(2**70)"),
    case("exit_true", RE, "7", "import sys", "print(7)", "sys.exit(True)"),
    case("exit_float", RE, "7", "import sys", "print(7)", "sys.exit(0.0)"),
    case("traceback", RE, "1", "def g():", "    raise ValueError('boom')", "print(1)", "g()"),
    case("syntax_error", RE, "1", "print(1)", "def f(:", "    pass"),
    case(
        "excepthook_replaced",
        RE,
        "hooked ValueError",
        "import sys",
        "sys.excepthook = lambda t, v, tb: print('hooked', t.__name__)",
        "raise ValueError",
    ),
    case(
        "chained_exception",
        RE,
        "",
        "try:",
        "    1 / 0",
        "except ZeroDivisionError as e:",
        "    raise KeyError('k') from e",
    ),
    case("atexit_runs", AC, "hi bye", "import atexit", "atexit.register(print, 'bye')", "print('hi')"),
    case("atexit_exit_ignored", AC, "hi", "import atexit, sys", "atexit.register(sys.exit, 3)", "print('hi')"),
    case(
        "atexit_after_threads",
        AC,
        "main thread atexit",
        "import atexit, threading, time",
        "atexit.register(print, 'atexit')",
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()",
        "print('main')",
    ),
    case(
        "non_daemon_thread_joined",
        AC,
        "early late",
        "import threading, time",
        "def w():",
        "    time.sleep(0.2)",
        "    print('late')",
        "threading.Thread(target=w).start()",
        "print('early')",
    ),
    case(
        "daemon_thread_dropped",
        AC,
        "main",
        "import threading, time",
        "threading.Thread(target=lambda: (time.sleep(3), print('never')), daemon=True).start()",
        "print('main')",
    ),
    case(
        "thread_exception",
        AC,
        "ok",
        "import threading",
        "threading.Thread(target=lambda: 1 / 0).start()",
        "print('ok')",
    ),
    case(
        "del_at_exit",
        AC,
        "hi bye",
        "class A:",
        "    def __del__(self):",
        "        print('bye')",
        "a = A()",
        "print('hi')",
    ),
    case("os_exit_loses_buffer", WA, "lost", "import os", "print('lost')", "os._exit(0)"),
    case("os_exit_after_flush", AC, "kept", "import os, sys", "print('kept')", "sys.stdout.flush()", "os._exit(0)"),
    case("exception_after_output", AC, "7", "print(7)", "raise SystemExit(0)"),
    # limits
    case("time_limit", Verdict.TIME_LIMIT, "", "while True:", "    pass", time_limit_s=0.5),
    case(
        "memory_limit",
        Verdict.MEMORY_LIMIT,
        "",
        "x = []",
        "while True:",
        "    x.append(bytearray(8 * 2**20))",
        memory_mb=256,
    ),
    case(
        "output_limit",
        Verdict.OUTPUT_LIMIT,
        "",
        "import sys",
        "chunk = 'x' * 2**20",
        "for _ in range(40):",
        "    sys.stdout.write(chunk)",
    ),
]


def reference(case: Case) -> ExecJob:
    """The case as ``python3 ref/prog.py``: a launcher that writes the program and execs a fresh interpreter."""
    launcher = (
        "import os, sys\n"
        "os.mkdir('ref')\n"
        "with open('ref/prog.py', 'wb') as f:\n"
        f"    f.write({case.program.encode('utf-8')!r})\n"
        "os.execv(sys.executable, [sys.executable, 'ref/prog.py'])\n"
    )
    return ExecJob(launcher, case.stdin, case.time_limit_s, case.memory_mb)


def comparable_stderr(result: ExecResult, with_stdlib_source: bool = True) -> str:
    """stderr without what legitimately differs: the execution directory and object addresses (and, where the
    sandbox's uid cannot read the standard library, the stdlib source lines tracebacks quote)."""
    text = re.sub(r'/[^"\s]*/prog\.py', "prog.py", result.stderr_tail)
    text = re.sub(r"0x[0-9a-f]+", "0x?", text)
    if not with_stdlib_source:
        lines, kept = text.splitlines(), []
        for i, line in enumerate(lines):
            after = lines[i - 1] if i > 0 else ""
            quoted = line.startswith("    ") and after.startswith("  File ") and "prog.py" not in after
            if not (quoted or (set(line.strip()) <= {"^", "~"} and line.strip())):
                kept.append(line)
        text = "\n".join(kept)
    return text


def plain_python3(case: Case, workdir: Path) -> ExecResult:
    """The fallback reference, only where the sandbox's unprivileged uid cannot exec the interpreter (the rlimits
    level on a host whose Python lives in a private directory): a plain ``python3 prog.py`` subprocess with the
    sandbox's environment, limits (address space, output size, files) and stderr tail. Acceptable for these
    fixed, test-authored programs only; never for generated code."""
    (workdir / "ref").mkdir(parents=True)
    (workdir / "ref" / "prog.py").write_bytes(case.program.encode("utf-8"))
    (workdir / "in").write_text(case.stdin, encoding="utf-8")
    memory = case.memory_mb * 2**20

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP + 1, OUTPUT_CAP + 1))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with open(workdir / "in", "rb") as stdin, open(workdir / "out", "wb") as out, open(workdir / "err", "wb") as err:
        try:
            proc = subprocess.run(
                [real_python(), "ref/prog.py"],
                stdin=stdin,
                stdout=out,
                stderr=err,
                cwd=workdir,
                env=env_allowlist(),
                preexec_fn=limits,
                timeout=case.time_limit_s + 1,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    stdout = (workdir / "out").read_bytes()
    stderr = (workdir / "err").read_bytes()[-4096:].decode("utf-8", "replace")
    if code is None:
        status = ExecStatus.TIME_LIMIT
    elif len(stdout) > OUTPUT_CAP:
        status = ExecStatus.OUTPUT_LIMIT
    elif code == 0:
        status = ExecStatus.OK
    elif "MemoryError" in stderr.strip().rsplit("\n", 1)[-1]:
        status = ExecStatus.MEMORY_LIMIT
    else:
        status = ExecStatus.RUNTIME_ERROR
    return ExecResult(status, stdout[:OUTPUT_CAP].decode("utf-8", "replace"), stderr, code)


@dataclass
class Runs:
    """Each case's (sandbox, python3) results, and whether python3 ran inside the sandbox."""

    by_case: dict[str, tuple[ExecResult, ExecResult]]
    in_sandbox: bool


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """python3 runs inside the sandbox wherever the sandbox's uid may exec it (probed), else plain_python3."""
    with Sandbox(workers=2, use_cache=False) as sandbox:
        probe = sandbox.run([reference(case("probe", AC, "ok", "print('ok')"))])[0]
        in_sandbox = judge(probe, "ok") is AC
        jobs = []
        for c in CASES:
            jobs += [ExecJob(c.program, c.stdin, c.time_limit_s, c.memory_mb)]
            jobs += [reference(c)] if in_sandbox else []
        out = sandbox.run(jobs)
    if in_sandbox:
        return Runs({c.name: (out[2 * i], out[2 * i + 1]) for i, c in enumerate(CASES)}, True)
    root = tmp_path_factory.mktemp("python3")
    return Runs({c.name: (out[i], plain_python3(c, root / c.name)) for i, c in enumerate(CASES)}, False)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_judge_matches_python3(case: Case, runs: Runs) -> None:
    if case.whole_stdlib and not runs.in_sandbox:
        pytest.skip("the sandbox's uid cannot read this interpreter's install here (rlimits level, docs/sandbox.md)")
    ours, real = runs.by_case[case.name]
    assert judge(real, case.expected) is case.verdict, ("python3 itself", real)
    assert judge(ours, case.expected) is case.verdict, ("sandbox", ours)
    assert ours.status is real.status
    if ours.status is not ExecStatus.OUTPUT_LIMIT:  # past the limit the output is cut where the writes were refused
        assert ours.stdout == real.stdout
    if ours.status not in (ExecStatus.TIME_LIMIT, ExecStatus.MEMORY_LIMIT, ExecStatus.OUTPUT_LIMIT):
        assert ours.exit_code == real.exit_code
        assert comparable_stderr(ours, runs.in_sandbox) == comparable_stderr(real, runs.in_sandbox)


def test_the_reference_is_a_fresh_interpreter(runs: Runs) -> None:
    """The reference run really is another interpreter: its traceback names ref/prog.py, not the sandbox's file."""
    ours, real = runs.by_case["traceback"]
    assert "/ref/prog.py" in real.stderr_tail and "/ref/prog.py" not in ours.stderr_tail
    assert "ValueError: boom" in ours.stderr_tail
