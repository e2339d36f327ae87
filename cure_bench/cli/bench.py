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

from cure_bench.cli.common import ExecutorOpt, RayAddress, cli_errors, err_console, setup_logging, tidy_help
from cure_bench.generation.backends import backend_help

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
ProtocolOpt = Annotated[
    str,
    typer.Option(
        "--protocol",
        help="cure: the CURE authors' evaluation (raw prompt string, their sampling, strict ```python extraction); "
        "chat: ours (chat template, our sampling, lenient extraction). See docs/fidelity.md.",
    ),
]
_BY_PROTOCOL = "set explicitly, it overrides the protocol's value and is recorded in the manifest"
Temperature = Annotated[
    float | None,
    typer.Option("--temperature", help=f"Sampling temperature (protocol default: cure 0.8, chat 1.0; {_BY_PROTOCOL})."),
]
TopP = Annotated[
    float | None,
    typer.Option(
        "--top-p",
        help=f"Nucleus top-p (protocol default: cure 0.95 local / unset over a chat API, chat 1.0; {_BY_PROTOCOL}).",
    ),
]
TopK = Annotated[
    int | None,
    typer.Option(
        "--top-k",
        help=f"Top-k, at least 1 (protocol default: cure 40 local / unset over a chat API, chat unset; {_BY_PROTOCOL}).",
    ),
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        help=f"Maximum new tokens per answer (protocol default: cure 10000 local / unset over a chat API, chat 8192; {_BY_PROTOCOL}).",
    ),
]
Stop = Annotated[
    list[str] | None,
    typer.Option(
        "--stop", help=f"A stop string, repeatable (protocol default: cure's six for a raw prompt; {_BY_PROTOCOL})."
    ),
]
Limit = Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N tasks.")]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Sampling seed passed to the backend (reproducible where supported).")
]
OutputDir = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        "-o",
        help="Run directory. Default: runs/MODEL-DATASET-TIME (an unfinished one with the same settings resumes).",
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
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Sandbox worker processes per machine, per node with --executor ray (default: one per core)."
    ),
]
SandboxOpt = Annotated[
    str,
    typer.Option(
        "--sandbox", help="Isolation: auto, bwrap, unshare, rlimits, or none (no containment; only for trusted code)."
    ),
]
NoExecCache = Annotated[
    bool, typer.Option("--no-exec-cache", help="Re-execute everything instead of reusing cached verdicts.")
]
NoOverlap = Annotated[
    bool,
    typer.Option(
        "--no-overlap",
        help="Judge only after every sample is generated (default: judge each task as soon as its answers are in).",
    ),
]
Compare = Annotated[str, typer.Option("--compare", help="Output comparison: whitespace (CURE's), exact, or float.")]
MemoryLimit = Annotated[int, typer.Option("--memory-limit", help="Memory limit per execution in MiB.")]
JudgeCompat = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-compat",
        help="Repeatable. An upstream (CURE harness) behaviour for the judge, recorded in the manifest: typing-names (List, Tuple, Optional pre-set in programs' globals). Default: none, python3 semantics. See docs/fidelity.md.",
    ),
]
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
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]


# The flags `bench` and `bon` share, declared once: (parameter name, option type, default).
SHARED_FLAGS: tuple[tuple[str, Any, Any], ...] = (
    ("dataset", Dataset, "sample"),
    ("k_code", KCode, 16),
    ("k_case", KCase, 16),
    ("bon", Bon, "4x4,16x16"),
    ("max_test", MaxTest, 8),
    ("protocol", ProtocolOpt, "cure"),
    ("temperature", Temperature, None),
    ("top_p", TopP, None),
    ("top_k", TopK, None),
    ("max_tokens", MaxTokens, None),
    ("stop", Stop, None),
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
    ("executor", ExecutorOpt, "local"),
    ("ray_address", RayAddress, None),
    ("no_exec_cache", NoExecCache, False),
    ("no_overlap", NoOverlap, False),
    ("compare", Compare, "whitespace"),
    ("memory_limit", MemoryLimit, 2048),
    ("judge_compat", JudgeCompat, None),
    ("start_date", StartDate, None),
    ("end_date", EndDate, None),
    ("strict", Strict, False),
    ("verbose", Verbose, False),
)


def backend_flags() -> tuple[tuple[str, Any, Any], ...]:
    """Every backend option as a flag (name, option type, default), derived from the backends' options dataclasses.

    The help says which backends take it; the default is the dataclass's. Which of them the user actually set
    is read from click's parameter source (``_set_backend_options``), so defaults never count as set.
    """
    import typing

    from cure_bench.generation.backends import option_specs, options_class
    from cure_bench.generation.backends.options import flag_name

    out = []
    for name, (fld, owners) in option_specs().items():
        kind = fld.metadata.get("cli_type") or typing.get_type_hints(options_class(owners[0]))[name]
        if fld.default is None and fld.metadata.get("cli_type"):
            kind = kind | None
        label = "/".join(owners) + (" backends" if len(owners) > 1 else " backend")
        option = typer.Option(flag_name(name), help=f"{label}: {fld.metadata['help']}")
        out.append((name, Annotated[kind, option], fld.default))
    return tuple(out)


BACKEND_FLAGS = backend_flags()


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
        for name, annotation, default in SHARED_FLAGS + BACKEND_FLAGS
    ]

    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)

    @functools.wraps(fn)
    def command(ctx: typer.Context, **kwargs: Any) -> None:
        kwargs["backend_options"] = _set_backend_options(ctx, kwargs)
        for name, _, _ in BACKEND_FLAGS:
            kwargs.pop(name)
        _drop_ambient_urls(ctx, kwargs)
        fn(**kwargs)

    command.__signature__ = inspect.Signature([context, *own, *shared])  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in [context, *own, *shared]}
    return command


# (URL flag, the backend flag it goes with); the URL flags also read $OPENAI_BASE_URL
_URL_FLAGS = (("base_url", "backend"), ("coder_base_url", "coder_backend"))


def _drop_ambient_urls(ctx: typer.Context, flags: dict[str, Any]) -> None:
    """A base URL from $OPENAI_BASE_URL is not the user's choice for an explicit local backend: drop it there.

    A URL typed on the command line stays, and the library then refuses it for a backend that takes none.
    """
    from cure_bench.generation.backends import takers

    for url, backend in _URL_FLAGS:
        if url not in flags or not flags[url]:
            continue
        source = ctx.get_parameter_source(url)
        chosen = str(flags.get(backend) or "auto").lower()
        if (
            source is not None
            and source.name == "ENVIRONMENT"
            and chosen != "auto"
            and chosen not in takers("base_url")
        ):
            flags[url] = None


def _set_backend_options(ctx: typer.Context, flags: dict[str, Any]) -> dict[str, Any]:
    """The backend options the user set on the command line (or through an environment variable)."""

    def was_set(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    return {name: flags[name] for name, _, _ in BACKEND_FLAGS if was_set(name)}


def _config_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    """The shared flags as BenchConfig keywords."""
    from cure_bench.errors import ConfigError
    from cure_bench.generation.protocols import SamplingOverrides
    from cure_bench.types import CompareMode

    try:
        compare = CompareMode(flags["compare"])
    except ValueError:
        raise ConfigError(f"--compare must be one of whitespace, exact, float (got {flags['compare']!r})") from None
    copied = ("dataset", "k_code", "k_case", "bon", "max_test", "limit", "output_dir", "show_examples", "coder_prompt",
              "tester_prompt", "workers", "sandbox", "executor", "ray_address", "start_date", "end_date", "strict",
              "protocol")  # fmt: skip
    return {
        **{name: flags[name] for name in copied},
        "compare": compare,
        "memory_limit_mb": flags["memory_limit"],
        "judge_compat": tuple(flags["judge_compat"] or ()),
        "sampling": SamplingOverrides(
            temperature=flags["temperature"],
            top_p=flags["top_p"],
            top_k=flags["top_k"],
            max_tokens=flags["max_tokens"],
            stop=tuple(flags["stop"]) if flags["stop"] else None,
            seed=flags["seed"],
        ),
        "resume": not flags["no_resume"],
        "rerun": flags["rerun"],
        "price_per_mtok": flags["price_per_mtok"],
        "exec_cache": not flags["no_exec_cache"],
        "overlap": not flags["no_overlap"],
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
    backend: Annotated[str, typer.Option("--backend", help=backend_help())] = "auto",
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

    options = flags.pop("backend_options")
    coder = ModelConfig(model=model, backend=backend, base_url=base_url, api_key=api_key, options=options)
    _run({"coder": coder, "single": single}, flags)


@with_shared_flags
def bon(
    coder: Annotated[str, typer.Option("--coder", help="Coder model (writes the programs).")],
    tester: Annotated[str, typer.Option("--tester", help="Tester model (writes the unit tests).")],
    coder_backend: Annotated[str, typer.Option("--coder-backend", help=backend_help("Coder"))] = "auto",
    coder_base_url: Annotated[
        str | None, typer.Option("--coder-base-url", envvar="OPENAI_BASE_URL", help="Coder server URL.")
    ] = None,
    coder_api_key: Annotated[
        str | None, typer.Option("--coder-api-key", envvar="OPENAI_API_KEY", help="Coder API key.", show_default=False)
    ] = None,
    tester_backend: Annotated[str, typer.Option("--tester-backend", help=backend_help("Tester"))] = "auto",
    tester_base_url: Annotated[str | None, typer.Option("--tester-base-url", help="Tester server URL.")] = None,
    tester_api_key: Annotated[
        str | None,
        typer.Option("--tester-api-key", envvar="OPENAI_API_KEY", help="Tester API key.", show_default=False),
    ] = None,
    **flags: Any,
) -> None:
    """A coder model and a separate tester model: BoN with the tester's tests ranking the coder's programs."""
    from cure_bench.config import ModelConfig

    options = flags.pop("backend_options")  # both roles get them; each backend takes its own (see pipeline)
    models = {
        "coder": ModelConfig(model=coder, backend=coder_backend, base_url=coder_base_url, api_key=coder_api_key, options=options),
        "tester": ModelConfig(model=tester, backend=tester_backend, base_url=tester_base_url, api_key=tester_api_key, options=options),
    }  # fmt: skip
    _run(models, flags)


_PANEL_OF = {
    **dict.fromkeys(
        ("model", "backend", "base_url", "api_key", "coder", "tester", "coder_backend", "coder_base_url",
         "coder_api_key", "tester_backend", "tester_base_url", "tester_api_key", "protocol"),
        "Models and backends",
    ),
    **dict.fromkeys(
        ("k_code", "k_case", "temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "show_examples",
         "coder_prompt", "tester_prompt", "single"),
        "Sampling and prompts",
    ),
    **dict.fromkeys(("dataset", "limit", "start_date", "end_date", "strict", "max_test"), "Dataset"),
    **dict.fromkeys(("bon",), "Metrics"),
    **dict.fromkeys(
        ("output_dir", "no_resume", "rerun", "yes", "price_per_mtok", "json_out", "verbose"), "Run directory and output"
    ),
    **dict.fromkeys(
        ("sandbox", "workers", "executor", "ray_address", "no_exec_cache", "no_overlap", "compare", "memory_limit",
         "judge_compat"),
        "Sandbox and judging",
    ),
}  # fmt: skip


def _panels() -> dict[str, str]:
    """Every flag's help panel: the shared ones above, each backend's options under that backend's name."""
    from cure_bench.generation.backends import option_specs

    own = {name: f"{'/'.join(owners)} backend options" for name, (_, owners) in option_specs().items()}
    return {**own, **_PANEL_OF}


def register(app: typer.Typer) -> None:
    panels = _panels()
    app.command("bench")(cli_errors(tidy_help(bench, panels, "Other")))
    app.command("bon")(cli_errors(tidy_help(bon, panels, "Other")))
