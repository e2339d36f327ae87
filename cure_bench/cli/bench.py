"""`cure bench` and `cure bon`: flags in, one `run_bench` call, a metrics table out."""

from __future__ import annotations

import functools
import inspect
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cure_bench.cli.common import cli_errors, err_console, setup_logging

# Option types shared by both commands: defined once so the two stay identical.
Dataset = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Registered dataset name (see `cure data list`) or a JSON/JSONL task file."),
]
KCode = Annotated[int, typer.Option("--k-code", help="Programs sampled per task.")]
KCase = Annotated[int, typer.Option("--k-case", help="Unit tests sampled per task.")]
Bon = Annotated[
    str, typer.Option("--bon", help="Best-of-N settings, comma list of NxM (N programs, M tests); clipped to k.")
]
Single = Annotated[bool, typer.Option("--single", help="One-shot coding only: no tests generated, code metrics only.")]
MaxTest = Annotated[int, typer.Option("--max-test", help="Hidden tests used per task (the first N).")]
Temperature = Annotated[float, typer.Option("--temperature", help="Sampling temperature.")]
TopP = Annotated[float, typer.Option("--top-p", help="Nucleus sampling top-p.")]
MaxTokens = Annotated[int, typer.Option("--max-tokens", help="Maximum new tokens per answer.")]
Rpm = Annotated[int | None, typer.Option("--rpm", help="API requests per minute at most (openai backend).")]
Tpm = Annotated[int | None, typer.Option("--tpm", help="API tokens per minute at most (openai backend).")]
Concurrency = Annotated[int, typer.Option("--concurrency", help="API requests in flight at most (openai backend).")]
Limit = Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N tasks.")]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Sampling seed passed to the backend (reproducible where supported).")
]
OutputDir = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        "-o",
        help="Run directory (default: runs/<model>-<dataset>-<timestamp>, resuming an unfinished one).",
    ),
]
NoResume = Annotated[
    bool, typer.Option("--no-resume", help="Start afresh: ignore generations cached by an earlier run.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Start big jobs without asking (asked only in a terminal).")]
PricePerMtok = Annotated[
    float | None,
    typer.Option("--price-per-mtok", help="USD per million output tokens: adds a cost ceiling to the job line."),
]
Rerun = Annotated[
    bool,
    typer.Option("--rerun", help="Start again even if this command already finished (or replace -o's finished run)."),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print summary.json to stdout instead of the table.")]
ShowExamples = Annotated[
    bool, typer.Option("--show-examples", help="Show the public example tests to the tester (the paper hides them).")
]
CoderPrompt = Annotated[
    Path | None,
    typer.Option("--coder-prompt", help="Coder prompt template (.txt user message or .json messages; {{problem}})."),
]
TesterPrompt = Annotated[
    Path | None,
    typer.Option("--tester-prompt", help="Tester prompt template (.txt or .json; {{problem}}, {{example_intro}})."),
]
Workers = Annotated[int | None, typer.Option("--workers", help="Sandbox worker processes (default: one per core).")]
SandboxOpt = Annotated[
    str,
    typer.Option(
        "--sandbox", help="Isolation: auto, bwrap, unshare, rlimits, or none (no containment; only for trusted code)."
    ),
]
NoExecCache = Annotated[
    bool, typer.Option("--no-exec-cache", help="Re-execute everything instead of reusing cached verdicts.")
]
Compare = Annotated[str, typer.Option("--compare", help="Output comparison: whitespace (CURE's), exact, or float.")]
MemoryLimit = Annotated[int, typer.Option("--memory-limit", help="Memory limit per execution in MiB.")]
StartDate = Annotated[
    str | None, typer.Option("--start-date", help="Only tasks released on or after this date (YYYY-MM-DD).")
]
EndDate = Annotated[
    str | None, typer.Option("--end-date", help="Only tasks released on or before this date (YYYY-MM-DD).")
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse a dataset with rows upstream skips (no hidden tests, no question) instead of leaving them out.",
    ),
]
Device = Annotated[str, typer.Option("--device", help="hf backend: auto, cpu or cuda.")]
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size", help="hf backend: sequences generated together (bigger is faster until memory runs out)."
    ),
]
Dtype = Annotated[str, typer.Option("--dtype", help="hf/vllm backends: auto, float32, bfloat16 or float16.")]
MaxModelLen = Annotated[int | None, typer.Option("--max-model-len", help="vllm backend: context length.")]
GpuMem = Annotated[float, typer.Option("--gpu-memory-utilization", help="vllm backend: share of GPU memory to use.")]
TensorParallel = Annotated[int, typer.Option("--tensor-parallel-size", help="vllm backend: GPUs per engine.")]
GpuGroups = Annotated[
    str | None, typer.Option("--gpu-groups", help='vllm backend: data parallel engines, e.g. "[[0,1],[2,3]]".')
]
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", help="hf/vllm backends: allow model repo code.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]
BackendHelp = "Generation backend: auto, openai, vllm or hf (auto: openai for API models or with a base URL, else vllm with a GPU, else hf)."


# The flags `bench` and `bon` share, declared once: (parameter name, option type, default).
SHARED_FLAGS: tuple[tuple[str, Any, Any], ...] = (
    ("dataset", Dataset, "sample"),
    ("k_code", KCode, 16),
    ("k_case", KCase, 16),
    ("bon", Bon, "4x4,16x16"),
    ("max_test", MaxTest, 8),
    ("temperature", Temperature, 1.0),
    ("top_p", TopP, 1.0),
    ("max_tokens", MaxTokens, 8192),
    ("rpm", Rpm, None),
    ("tpm", Tpm, None),
    ("concurrency", Concurrency, 32),
    ("limit", Limit, None),
    ("seed", Seed, None),
    ("output_dir", OutputDir, None),
    ("no_resume", NoResume, False),
    ("rerun", Rerun, False),
    ("yes", Yes, False),
    ("price_per_mtok", PricePerMtok, None),
    ("json_out", JsonOut, False),
    ("show_examples", ShowExamples, False),
    ("coder_prompt", CoderPrompt, None),
    ("tester_prompt", TesterPrompt, None),
    ("workers", Workers, None),
    ("sandbox", SandboxOpt, "auto"),
    ("no_exec_cache", NoExecCache, False),
    ("compare", Compare, "whitespace"),
    ("memory_limit", MemoryLimit, 2048),
    ("start_date", StartDate, None),
    ("end_date", EndDate, None),
    ("strict", Strict, False),
    ("device", Device, "auto"),
    ("batch_size", BatchSize, 8),
    ("dtype", Dtype, "auto"),
    ("max_model_len", MaxModelLen, None),
    ("gpu_memory_utilization", GpuMem, 0.9),
    ("tensor_parallel_size", TensorParallel, 1),
    ("gpu_groups", GpuGroups, None),
    ("trust_remote_code", TrustRemoteCode, False),
    ("verbose", Verbose, False),
)


def with_shared_flags(fn: Callable[..., None]) -> Callable[..., None]:
    """Give a command the shared flags: ``fn(own params..., **flags)`` gets them in ``flags``.

    Typer reads a command's flags from its signature, so the wrapper presents fn's own parameters followed
    by SHARED_FLAGS; bench and bon thereby list every common flag once, and can never drift apart.
    """
    own = [
        p
        for p in inspect.signature(fn, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in SHARED_FLAGS
    ]

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        fn(**kwargs)

    command.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in own + shared}
    return command


def _backend_options(flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each backend's keywords; the backend is often chosen only at run time (auto)."""
    from cure_bench.errors import ConfigError

    groups = None
    if flags["gpu_groups"]:
        try:
            groups = json.loads(flags["gpu_groups"])
        except json.JSONDecodeError:
            raise ConfigError(
                f'--gpu-groups must be a JSON list of GPU id lists such as "[[0,1],[2,3]]" (got {flags["gpu_groups"]!r})'
            ) from None
    trust = flags["trust_remote_code"]
    return {
        "openai": {"rpm": flags["rpm"], "tpm": flags["tpm"], "concurrency": flags["concurrency"]},
        "hf": {
            "device": flags["device"],
            "batch_size": flags["batch_size"],
            "dtype": flags["dtype"],
            "trust_remote_code": trust,
        },
        "vllm": {
            "dtype": flags["dtype"],
            "max_model_len": flags["max_model_len"],
            "gpu_memory_utilization": flags["gpu_memory_utilization"],
            "tensor_parallel_size": flags["tensor_parallel_size"],
            "gpu_groups": groups,
            "trust_remote_code": trust,
        },
    }


def _config_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    """The shared flags as BenchConfig keywords."""
    from cure_bench.errors import ConfigError
    from cure_bench.types import CompareMode, SamplingParams

    try:
        compare = CompareMode(flags["compare"])
    except ValueError:
        raise ConfigError(f"--compare must be one of whitespace, exact, float (got {flags['compare']!r})") from None
    copied = ("dataset", "k_code", "k_case", "bon", "max_test", "limit", "output_dir", "show_examples", "coder_prompt",
              "tester_prompt", "workers", "sandbox", "start_date", "end_date", "strict")  # fmt: skip
    return {
        **{name: flags[name] for name in copied},
        "compare": compare,
        "memory_limit_mb": flags["memory_limit"],
        "sampling": SamplingParams(
            temperature=flags["temperature"], top_p=flags["top_p"], max_tokens=flags["max_tokens"], seed=flags["seed"]
        ),
        "resume": not flags["no_resume"],
        "rerun": flags["rerun"],
        "price_per_mtok": flags["price_per_mtok"],
        "exec_cache": not flags["no_exec_cache"],
    }


def _confirm_big_job(job: Any, progress: Any) -> bool:
    """Ask before a big job, in an interactive terminal only (scripts and CI never block on a question)."""
    if not job.needs_confirmation or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    with progress.paused():
        return bool(typer.confirm(f"{job.describe()}\nStart it?", default=False, err=True))


def _run(models: dict[str, Any], flags: dict[str, Any]) -> None:
    from cure_bench.cli.progress import RichProgress
    from cure_bench.cli.render import metrics_table
    from cure_bench.config import BenchConfig
    from cure_bench.pipeline import run_bench

    setup_logging(flags["verbose"])
    config = BenchConfig(command=shlex.join(["cure", *sys.argv[1:]]), **models, **_config_kwargs(flags))
    with RichProgress(err_console) as progress:
        confirm = None if flags["yes"] else functools.partial(_confirm_big_job, progress=progress)
        result = run_bench(config, progress=progress, confirm=confirm)
    if flags["json_out"]:
        typer.echo(json.dumps(result.summary, indent=2, ensure_ascii=False))
    else:
        err_console.print(metrics_table(result.summary))
    if result.reused:
        err_console.print(
            f"this command already finished in {result.run_dir}: its results are above (--rerun starts again)"
        )
    else:
        err_console.print(f"results: {result.run_dir}")


@with_shared_flags
def bench(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (API model, hub id or local path).")],
    backend: Annotated[str, typer.Option("--backend", help=BackendHelp)] = "auto",
    base_url: Annotated[
        str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible server URL.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="OPENAI_API_KEY", help="API key.", show_default=False)
    ] = None,
    single: Single = False,
    **flags: Any,
) -> None:
    """One model as coder and tester: one-shot accuracy, unit-test accuracy and Best-of-N."""
    from cure_bench.config import ModelConfig

    coder = ModelConfig(
        model=model, backend=backend, base_url=base_url, api_key=api_key, options=_backend_options(flags)
    )
    _run({"coder": coder, "single": single}, flags)


@with_shared_flags
def bon(
    coder: Annotated[str, typer.Option("--coder", help="Coder model (writes the programs).")],
    tester: Annotated[str, typer.Option("--tester", help="Tester model (writes the unit tests).")],
    coder_backend: Annotated[str, typer.Option("--coder-backend", help=BackendHelp)] = "auto",
    coder_base_url: Annotated[
        str | None, typer.Option("--coder-base-url", envvar="OPENAI_BASE_URL", help="Coder server URL.")
    ] = None,
    coder_api_key: Annotated[
        str | None, typer.Option("--coder-api-key", envvar="OPENAI_API_KEY", help="Coder API key.", show_default=False)
    ] = None,
    tester_backend: Annotated[str, typer.Option("--tester-backend", help=BackendHelp)] = "auto",
    tester_base_url: Annotated[str | None, typer.Option("--tester-base-url", help="Tester server URL.")] = None,
    tester_api_key: Annotated[
        str | None,
        typer.Option("--tester-api-key", envvar="OPENAI_API_KEY", help="Tester API key.", show_default=False),
    ] = None,
    **flags: Any,
) -> None:
    """A coder model and a separate tester model: BoN with the tester's tests ranking the coder's programs."""
    from cure_bench.config import ModelConfig

    options = _backend_options(flags)
    models = {
        "coder": ModelConfig(model=coder, backend=coder_backend, base_url=coder_base_url, api_key=coder_api_key, options=options),
        "tester": ModelConfig(model=tester, backend=tester_backend, base_url=tester_base_url, api_key=tester_api_key, options=options),
    }  # fmt: skip
    _run(models, flags)


def register(app: typer.Typer) -> None:
    app.command("bench")(cli_errors(bench))
    app.command("bon")(cli_errors(bon))
