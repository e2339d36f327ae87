"""`cure reward-serve`: what the flags become, what is printed, how bad flags and a missing extra fail."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.errors import MissingExtraError
from cure_bench.serve import ServeConfig, server


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the blocking server with a recorder that still announces the URL."""
    seen: dict[str, Any] = {}

    def fake_run_server(config: ServeConfig, app: Any = None, log_level: str = "info", announce: Any = None) -> None:
        seen["config"], seen["log_level"] = config, log_level
        if announce is not None:
            announce(config.url)

    monkeypatch.setattr(server, "run_server", fake_run_server)
    monkeypatch.delenv("CURE_AUTH_TOKEN", raising=False)
    return seen


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["reward-serve", *args], env=env)


def test_flags_reach_the_config(captured: dict[str, Any], tmp_path: Path) -> None:
    result = invoke(
        "--tester", "Gen-Verse/ReasonFlux-Coder-4B", "--backend", "openai", "--base-url", "http://gpu:8000/v1",
        "--api-key", "k", "--k-case", "8", "--port", "9001", "--auth-token", "tok", "--cache-dir", str(tmp_path),
        "--workers", "3", "--sandbox", "rlimits", "--request-timeout", "12.5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config: ServeConfig = captured["config"]
    assert (config.tester, config.backend, config.base_url, config.api_key) == (
        "Gen-Verse/ReasonFlux-Coder-4B", "openai", "http://gpu:8000/v1", "k",
    )  # fmt: skip
    assert (config.k_case, config.host, config.port, config.auth_token) == (8, "127.0.0.1", 9001, "tok")
    assert (config.cache_dir, config.workers, config.sandbox, config.request_timeout_s) == (
        tmp_path,
        3,
        "rlimits",
        12.5,
    )
    assert "http://127.0.0.1:9001" in result.output and "Bearer token required" in result.output


def test_defaults_bind_loopback_and_token_comes_from_env(captured: dict[str, Any]) -> None:
    result = invoke("--tester", "gpt-4o-mini", env={"CURE_AUTH_TOKEN": "from-env"})
    assert result.exit_code == 0, result.output
    config: ServeConfig = captured["config"]
    assert (config.host, config.port, config.k_case, config.auth_token) == ("127.0.0.1", 8765, 16, "from-env")
    assert config.request_timeout_s == 300.0 and config.sandbox == "auto"


def test_bad_flag_is_one_red_line(captured: dict[str, Any]) -> None:
    result = invoke("--tester", "m", "--k-case", "0")
    assert result.exit_code == 1
    assert "--k-case must be >= 1" in result.output
    assert "config" not in captured


def test_unknown_backend_fails_before_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real run_server: the app is built (and fails on the flag) before any socket is opened."""
    monkeypatch.delenv("CURE_AUTH_TOKEN", raising=False)
    result = invoke("--tester", "m", "--backend", "tpu", "--cache-dir", str(tmp_path))
    assert result.exit_code == 1 and "--backend 'tpu'" in result.output


def test_missing_serve_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_fastapi(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "fastapi" or name.startswith("fastapi."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    from cure_bench.serve.app import create_app

    with pytest.raises(MissingExtraError, match=r"cure-toolkit\[serve\]"):
        create_app(ServeConfig(tester="m", base_url="http://127.0.0.1:9/v1", cache_dir=tmp_path))


def test_bad_sandbox_level_fails_before_binding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURE_AUTH_TOKEN", raising=False)
    result = invoke(
        "--tester", "m", "--base-url", "http://127.0.0.1:9/v1", "--sandbox", "vm", "--cache-dir", str(tmp_path)
    )
    assert result.exit_code == 1 and "--sandbox" in result.output and "'vm'" in result.output
