"""The FastAPI app: endpoints, auth, limits and error mapping around ``RewardService``.

``create_app(config, generator=None, sandbox=None)`` builds everything that can fail on a bad flag at
once (the generator, the SQLite test cache), so the CLI reports it before a socket opens; the sandbox's
worker processes start in the lifespan (when the server starts) unless one is passed in. Pieces passed
in belong to the caller and are not closed at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from cure_bench.errors import CureError, MissingExtraError, SandboxError
from cure_bench.serve.config import ServeConfig
from cure_bench.serve.errors import BadRequestError, ServeError
from cure_bench.serve.middleware import BodyLimitMiddleware, MetricsMiddleware
from cure_bench.serve.models import (
    GetRewardRequest,
    ScoreRequest,
    ScoreResponse,
    SelectRequest,
    SelectResponse,
    SlimeRewardRequest,
    TestsRequest,
    TestsResponse,
)
from cure_bench.serve.prometheus import Registry, server_registry
from cure_bench.serve.readiness import ReadinessProbe
from cure_bench.serve.run_code import RunCodeRequest, RunCodeResponse
from cure_bench.serve.runtime import Runtime
from cure_bench.types import Generator

log = logging.getLogger(__name__)


def _import_fastapi() -> Any:
    try:
        import fastapi
    except ModuleNotFoundError as exc:
        raise MissingExtraError("serve", "cure reward-serve") from exc
    return fastapi


def create_app(config: ServeConfig, generator: Generator | None = None, sandbox: Any | None = None) -> Any:
    """A FastAPI app serving the tester as a reward model (see docs/reward_serve.md for the endpoints)."""
    fastapi = _import_fastapi()
    runtime = Runtime(config, generator=generator, sandbox=sandbox, metrics=server_registry())
    probe = ReadinessProbe(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = fastapi.FastAPI(
        title="CURE reward server",
        summary="A unit-test-writing model (the tester) as a reward model for RL trainers.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    _add_error_handlers(app, fastapi)
    auth = _auth_dependency(fastapi, config.auth_token)
    _add_routes(app, fastapi, runtime, probe, auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, registry=runtime.metrics)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cure-toolkit")
    except PackageNotFoundError:
        return "0"


def _auth_dependency(fastapi: Any, token: str | None) -> Any:
    """A dependency that answers 401 unless ``Authorization: Bearer <token>`` (nothing when no token is set)."""
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="The server's --auth-token / CURE_AUTH_TOKEN.")
    expected = token.encode() if token else None

    async def check(credentials: HTTPAuthorizationCredentials | None = fastapi.Depends(bearer)) -> None:  # noqa: B008
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not secrets.compare_digest(given, expected):
            raise fastapi.HTTPException(
                status_code=401,
                detail="missing or wrong token: send 'Authorization: Bearer <token>' (the server's --auth-token)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return fastapi.Depends(check)


def _add_error_handlers(app: Any, fastapi: Any) -> None:
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.exception_handler(ServeError)
    async def serve_error(_request: Any, exc: ServeError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(SandboxError)
    async def sandbox_error(_request: Any, exc: SandboxError) -> Any:
        log.error("sandbox failure: %s", exc)
        return JSONResponse({"detail": f"the sandbox failed: {exc}"}, status_code=503)

    @app.exception_handler(CureError)
    async def cure_error(_request: Any, exc: CureError) -> Any:
        log.error("request failed: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Any, exc: RequestValidationError) -> Any:
        errors = exc.errors()
        summary = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5])
        return JSONResponse({"error": summary, "detail": jsonable_encoder(errors)}, status_code=422)


def _add_routes(app: Any, fastapi: Any, runtime: Runtime, probe: ReadinessProbe, auth: Any) -> None:
    from fastapi.responses import JSONResponse, PlainTextResponse

    protected = fastapi.APIRouter(dependencies=[auth])

    @app.get("/health", tags=["status"], summary="The process is up (no auth).")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @protected.get("/ready", tags=["status"], summary="Whether the tester is reachable and the sandbox started.")
    async def ready() -> Any:
        report = await probe.check()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @protected.get("/metrics", tags=["status"], summary="Prometheus text metrics.", response_class=PlainTextResponse)
    async def metrics() -> Any:
        return PlainTextResponse(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @protected.post("/v1/tests", response_model=TestsResponse, tags=["reward"], summary="Tests for a problem.")
    async def tests(body: TestsRequest) -> TestsResponse:
        return await runtime.service.tests(body)

    @protected.post("/v1/score", response_model=ScoreResponse, tags=["reward"], summary="Rewards of completions.")
    async def score(body: ScoreRequest) -> ScoreResponse:
        return ScoreResponse(results=await runtime.service.score(body.items, body.options))

    @protected.post("/v1/select", response_model=SelectResponse, tags=["reward"], summary="Best-of-N choice.")
    async def select(body: SelectRequest) -> SelectResponse:
        return await runtime.service.select(body)

    @protected.post(
        "/get_reward",
        tags=["openrlhf", "slime"],
        summary="OpenRLHF's remote reward model, or slime's remote_rm (one sample).",
        description=GET_REWARD_DOC,
        responses={200: {"description": "OpenRLHF: {rewards, scores, extra_logs}; slime: a number (or a dict)."}},
    )
    async def get_reward(
        body: Any = fastapi.Body(openapi_examples=GET_REWARD_EXAMPLES),  # noqa: B008
        answer_format: str = fastapi.Query("", alias="format", description="slime: 'number' or 'dict'"),
    ) -> Any:
        return await _get_reward(runtime, body, answer_format)

    @protected.post(
        "/run_code",
        response_model=RunCodeResponse,
        tags=["sandbox"],
        summary="SandboxFusion's /run_code for Python: run one program, no comparison.",
    )
    async def run_code(body: RunCodeRequest) -> RunCodeResponse:
        return await runtime.service.run_code(body)

    app.include_router(protected)


GET_REWARD_DOC = (
    "Two callers share this path. **OpenRLHF** sends `{query: [...], prompts: [...], labels: [...]}` and gets "
    "`{rewards, scores, extra_logs}`; the response is found in each query even when OpenRLHF cut the prompt; "
    "empty lists get empty lists. **slime** (`--rm-type remote_rm`) sends one sample `{prompt, response, label}` "
    "and gets the reward as a bare number; with `?format=dict` a dict (`reward`, `pass_rate`, `passed`, "
    "`num_tests`, `extract_ok`, `error`) for `--reward-key reward`."
)
GET_REWARD_EXAMPLES = {
    "openrlhf": {
        "summary": "OpenRLHF batch",
        "value": {"query": ["<prompt>```python\nprint(3)\n```"], "prompts": ["<prompt>"], "labels": ["Print 3."]},
    },
    "slime": {
        "summary": "slime sample",
        "value": {"prompt": "Print 3.", "response": "```python\nprint(3)\n```", "label": "Print 3."},
    },
}


async def _get_reward(runtime: Runtime, body: Any, answer_format: str) -> Any:
    """Tell OpenRLHF's body from slime's by their keys, validate it as that one, and answer in its shape."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError

    if answer_format not in ("", "number", "dict"):
        raise BadRequestError(f"format={answer_format!r}: use 'number' (the default) or 'dict'")
    if not isinstance(body, dict) or not ({"query", "response"} & body.keys()):
        raise BadRequestError(
            "a /get_reward body is OpenRLHF's {'query': [...], 'prompts': [...], 'labels': [...]} or slime's "
            "{'prompt': ..., 'response': '...', 'label': ...}"
        )
    try:
        if "query" in body:
            return await runtime.service.get_reward(GetRewardRequest.model_validate(body))
        detail = await runtime.service.slime_reward(SlimeRewardRequest.model_validate(body))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    return JSONResponse(detail.model_dump() if answer_format == "dict" else detail.reward)


def metrics_of(app: Any) -> Registry:
    """The metrics registry of an app made by ``create_app`` (for tests and embedding)."""
    registry: Registry = app.state.runtime.metrics
    return registry
