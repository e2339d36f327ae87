"""`cure refine`: bench/bon's flags (declared once, in cli/bench.py) plus the refinement knobs; one run_refine call."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Annotated, Any

import typer

from cure_bench.cli.bench import _config_kwargs, _panels, with_shared_flags
from cure_bench.cli.common import cli_errors, err_console, setup_logging, tidy_help
from cure_bench.errors import ConfigError
from cure_bench.generation.backends import backend_help


@with_shared_flags
def refine(
    model: Annotated[str, typer.Option("--model", "-m", help="Coder model (also the tester unless --tester).")],
    tester: Annotated[str | None, typer.Option("--tester", help="Tester model (default: --model).")] = None,
    backend: Annotated[str, typer.Option("--backend", help=backend_help())] = "auto",
    base_url: Annotated[
        str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible server URL.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="OPENAI_API_KEY", help="API key.", show_default=False)
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="Repair rounds after round 0 (0: exactly bench).")] = 2,
    feedback_tests: Annotated[
        int, typer.Option("--feedback-tests", help="Failing generated tests shown per repair prompt (at most).")
    ] = 3,
    feedback: Annotated[
        str, typer.Option("--feedback", help="generated: generated tests only; public: also the public examples.")
    ] = "generated",
    ranker: Annotated[str, typer.Option("--ranker", help="Ranker picking each round's program (registry name).")] = (
        "cure_first"
    ),
    refine_tests: Annotated[
        bool,
        typer.Option("--refine-tests", help="The tester also revises tests that no current program passes."),
    ] = False,
    budget_baseline: Annotated[
        bool,
        typer.Option("--budget-baseline", help="Also sample plain BoN with as many coder tokens as refinement spent."),
    ] = False,
    **flags: Any,
) -> None:
    """Agentic coding: programs failing generated tests are repaired from that feedback, round after round."""
    from cure_bench.cli.progress import RichProgress
    from cure_bench.config import BenchConfig, ModelConfig
    from cure_bench.refine import RefineConfig, run_refine

    setup_logging(flags["verbose"])
    options = flags.pop("backend_options")
    coder = ModelConfig(model=model, backend=backend, base_url=base_url, api_key=api_key, options=options)
    models: dict[str, Any] = {"coder": coder}
    if tester is not None:
        models["tester"] = ModelConfig(
            model=tester, backend=backend, base_url=base_url, api_key=api_key, options=options
        )
    if flags["k_case"] < 1:  # before BenchConfig, whose message points at --single (which refine cannot use)
        raise ConfigError(f"cure refine needs generated tests: --k-case must be >= 1 (got {flags['k_case']})")
    bench = BenchConfig(command=shlex.join(["cure", *sys.argv[1:]]), **models, **_config_kwargs(flags))
    cfg = RefineConfig(
        bench=bench,
        rounds=rounds,
        feedback_tests=feedback_tests,
        feedback=feedback,
        ranker=ranker,
        refine_tests=refine_tests,
        budget_baseline=budget_baseline,
    )
    cfg.validate()  # before any request
    with RichProgress(err_console) as progress:
        result = run_refine(cfg, progress=progress)
    if flags["json_out"]:
        typer.echo(json.dumps(result.summary, indent=2, ensure_ascii=False))
    else:
        for r, m in enumerate(result.summary["metrics"]["rounds"]):
            err_console.print(
                f"round {r}: code_acc={m['code_acc']:.4f} selected_acc={m['selected_acc']} "
                f"repaired={m['repaired']} fixed={m['fixed']} broken={m['broken']} coder_tokens={m['coder_tokens']}"
                + (f" tests_revised={m['tests_revised']}" if refine_tests else "")
            )
        base = result.summary["metrics"].get("budget_baseline")
        if base is not None:
            err_console.print(
                f"equal-budget BoN ({base['programs_per_task']} programs per task, {base['coder_tokens']} coder "
                f"tokens): code_acc={base['code_acc']} selected_acc={base['selected_acc']}"
            )
    err_console.print(f"results: {result.run_dir}")


def register(app: typer.Typer) -> None:
    panels = {
        **_panels(),
        **dict.fromkeys(
            ("rounds", "feedback_tests", "feedback", "ranker", "refine_tests", "budget_baseline"), "Refinement"
        ),
    }
    app.command("refine")(cli_errors(tidy_help(refine, panels, "Other")))
