"""`cure reward-serve`: the tester behind HTTP as a reward model (flags in, one `run_server` call)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cure_bench.cli.common import ExecutorOpt, RayAddress, cli_errors, err_console, setup_logging
from cure_bench.generation.backends import backend_help
from cure_bench.serve.config import DEFAULT_PORT


def register(app: typer.Typer) -> None:
    app.command("reward-serve", help="Serve a tester model as an HTTP reward model (OpenRLHF, verl, TRL).")(
        reward_serve
    )


@cli_errors
def reward_serve(
    tester: Annotated[str, typer.Option("--tester", help="Tester model: API model name, hub id or local path.")],
    backend: Annotated[str, typer.Option("--backend", help=backend_help("Tester"))] = "auto",
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible server of the tester (e.g. http://host:8000/v1)."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="API key of the tester server (default: $OPENAI_API_KEY).")
    ] = None,
    k_case: Annotated[int, typer.Option("--k-case", help="Tests sampled from the tester per problem.")] = 16,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = DEFAULT_PORT,
    auth_token: Annotated[
        str | None,
        typer.Option(
            "--auth-token",
            envvar="CURE_AUTH_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on every endpoint but /health.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Test cache (SQLite), kept across restarts (default: $CURE_CACHE_DIR/reward-serve, i.e. ~/.cache/cure/reward-serve).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Sandbox worker processes per machine, per node with --executor ray (default: one per core).",
        ),
    ] = None,
    sandbox: Annotated[
        str,
        typer.Option(
            "--sandbox",
            help="Isolation: auto, bwrap, unshare, rlimits, or none (no containment; only for trusted code).",
        ),
    ] = "auto",
    executor: ExecutorOpt = "local",
    ray_address: RayAddress = None,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="Seconds a request waits for the tester before a 503.")
    ] = 300.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    from cure_bench.serve import server
    from cure_bench.serve.config import ServeConfig

    setup_logging(verbose)
    config = ServeConfig(
        tester=tester,
        backend=backend,
        base_url=base_url,
        api_key=api_key,
        k_case=k_case,
        host=host,
        port=port,
        auth_token=auth_token,
        cache_dir=cache_dir,
        workers=workers,
        sandbox=sandbox,
        executor=executor or "local",
        ray_address=ray_address,
        request_timeout_s=request_timeout,
    )

    def announce(url: str) -> None:
        auth = "Bearer token required" if config.auth_token else "no auth token"
        err_console.print(
            f"[bold green]cure reward-serve[/] on [bold]{url}[/] ({auth}; docs at {url}/docs)", highlight=False
        )

    server.run_server(config, log_level="debug" if verbose else "info", announce=announce)
