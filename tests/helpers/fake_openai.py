"""A scripted OpenAI-compatible server on 127.0.0.1, for tests and benchmarks (no model, no network).

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` in a background thread), so the code under
test goes through the real ``openai`` SDK, httpx, retries and rate limits exactly as against a vLLM box
or api.openai.com. It serves ``POST /v1/chat/completions``, ``POST /v1/completions`` (the legacy text
endpoint: ``prompt`` in, ``choices[].text`` out; refused with a 404 like a chat-only server's when
``chat_only=True``) and ``GET /v1/models``. A completions request is logged with ``messages`` =
``[{"role": "prompt", "content": <the prompt>}]`` and ``endpoint="completions"``, so responders and
``answers`` see its prompt as the "last user message" too.

Typical use::

    from tests.helpers.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(answers={"add two numbers": ["```python\\nprint(1)\\n```"]}) as srv:
        gen = OpenAIGenerator("fake-model", base_url=srv.base_url, api_key="k")
        ...
        assert srv.samples_delivered == 16
        assert [r.n for r in srv.requests] == [16]

or as the ``fake_openai`` pytest fixture (a factory defined in tests/helpers/fixtures.py and exported
by tests/conftest.py; its servers stop at teardown)::

    def test_x(fake_openai):
        srv = fake_openai(default_answer="hello", latency=0.05)

Answers (first match wins):

* ``responder(messages, n, request) -> list[str]``: full control; ``messages`` is the request's list of
  ``{"role", "content"}`` dicts, ``request`` the whole JSON body; must return ``n`` strings (fewer
  simulates a server that caps ``n``).
* ``answers={substring: [a0, a1, ...]}``: when the last user message contains ``substring``, choice
  number ``c`` of that prompt gets ``answers[c % len]``. ``c`` counts the choices this server has
  delivered for that exact message list so far (server lifetime), so a client that asks for 4 then
  for 4 more gets a0..a3 then a4..a7, and a resumed run against the same server continues the
  sequence where the interrupted one stopped.
* ``default_answer``: everything else.

Fault injection:

* ``faults``: the HTTP status to return for the i-th POST (0-based, counted over every POST this
  server received), as a sequence (``None`` or 200 = answer normally; past its end = normal) or a
  callable ``i -> int | None``. ``fail_first=K, fail_status=429`` is shorthand for K faults up front.
  Faulted answers carry ``retry-after-ms`` (from ``retry_after_s``; the openai SDK prefers it over
  ``Retry-After``, which is sent too, rounded up to whole seconds) so SDK retries are fast in tests.
* ``reject_n=True``: a 400 whose message mentions ``n`` for any request with ``n > 1`` (like servers
  that only do one choice). ``max_n=C``: silently return at most C choices.
* ``reject``: ``callable(request_body) -> (status, message) | None``, checked after auth/faults/model,
  for any other refusal (e.g. a 400 "use max_completion_tokens instead of max_tokens"); a dict message is
  the whole error body (e.g. FastAPI's ``{"detail": ...}``, as ``transformers serve`` answers).
* ``latency``: seconds to sleep before answering (float, or ``callable(request_body) -> float``).
* ``api_key``: require ``Authorization: Bearer <api_key>``; anything else gets a 401.
* ``models``: when given, ``GET /v1/models`` lists them and an unknown model gets a 404.
* ``reasoning_content``: when set, each choice's message also carries this ``reasoning_content`` field
  (like DeepSeek-R1 / vLLM reasoning parsers); ``usage=False`` omits the usage block.

Crash: ``srv.kill()`` stops listening and makes every request in flight (and any later one on a kept-alive
connection) drop its connection without an answer, as a server process that died would; after it,
connections are refused.

Observation: ``srv.requests`` is a snapshot list of ``LoggedRequest`` (time, model, messages, n,
body, status, choices delivered, api key seen), in arrival order; ``srv.samples_delivered`` and
``srv.requests_total`` are counters; ``srv.reset_log()`` clears them. Usage figures count whitespace
tokens: ``prompt_tokens`` = words in all messages, ``completion_tokens`` = words over all choices.

Run it by hand (e.g. for ``cure bench --base-url``): ``python -m tests.helpers.fake_openai --port 8000``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict[str, Any]], int, dict[str, Any]], list[str]]
FaultSchedule = Sequence[int | None] | Callable[[int], int | None]


@dataclass
class LoggedRequest:
    """One POST /v1/chat/completions as the server saw it."""

    index: int
    time: float  # time.monotonic() at arrival
    model: str
    messages: list[dict[str, Any]]
    n: int
    body: dict[str, Any]
    status: int = 200
    choices: int = 0  # choices delivered (0 unless status == 200)
    api_key: str | None = None
    done_time: float | None = None  # time.monotonic() when the answer was written
    endpoint: str = "chat"  # or "completions"


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: list[LoggedRequest] = field(default_factory=list)
    posts: int = 0
    choice_counters: dict[str, int] = field(default_factory=dict)


class FakeOpenAIServer:
    """Scripted OpenAI-compatible chat-completions server; see the module docstring for the knobs."""

    def __init__(
        self,
        responder: Responder | None = None,
        answers: dict[str, list[str]] | None = None,
        default_answer: str = "OK",
        *,
        faults: FaultSchedule | None = None,
        fail_first: int = 0,
        fail_status: int = 429,
        retry_after_s: float | None = 0.001,
        reject_n: bool = False,
        max_n: int | None = None,
        reject: Callable[[dict[str, Any]], tuple[int, str | dict[str, Any]] | None] | None = None,
        latency: float | Callable[[dict[str, Any]], float] = 0.0,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        reasoning_content: str | None = None,
        usage: bool = True,
        chat_only: bool = False,
        port: int = 0,
    ) -> None:
        self.responder = responder
        self.answers = dict(answers or {})
        self.default_answer = default_answer
        if faults is None and fail_first:
            faults = [fail_status] * fail_first
        self.faults = faults
        self.retry_after_s = retry_after_s
        self.reject_n = reject_n
        self.max_n = max_n
        self.reject = reject
        self.latency = latency
        self.api_key = api_key
        self.models = list(models) if models is not None else None
        self.reasoning_content = reasoning_content
        self.usage = usage
        self.chat_only = chat_only
        self._state = _State()
        self.dead = False
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` / ``--base-url`` (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def kill(self) -> None:
        """Die like a crashed server (see the module docstring); safe to call from a handler thread."""
        self.dead = True  # what still gets through before the listener closes is dropped unanswered
        threading.Thread(target=self.stop, name="fake-openai-kill", daemon=True).start()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        """Every chat-completions POST so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.log)

    @property
    def requests_total(self) -> int:
        with self._state.lock:
            return self._state.posts

    @property
    def samples_delivered(self) -> int:
        """Choices sent back in 200 answers (what a client could have cached)."""
        with self._state.lock:
            return sum(r.choices for r in self._state.log if r.status == 200)

    def reset_log(self) -> None:
        """Forget the request log and fault counter (answer counters per prompt are kept)."""
        with self._state.lock:
            self._state.log.clear()
            self._state.posts = 0

    # -- behaviour (called from handler threads) -------------------------------------------------
    def _fault_for(self, i: int) -> int | None:
        if self.faults is None:
            return None
        faults = self.faults
        status = faults(i) if callable(faults) else (faults[i] if i < len(faults) else None)
        return None if status in (None, 200) else status

    def _register(self, body: dict[str, Any], api_key: str | None, endpoint: str) -> LoggedRequest:
        if endpoint == "completions":
            messages = [{"role": "prompt", "content": str(body.get("prompt", ""))}]
        else:
            messages = list(body.get("messages") or [])
        with self._state.lock:
            entry = LoggedRequest(
                index=self._state.posts,
                time=time.monotonic(),
                model=str(body.get("model", "")),
                messages=messages,
                n=int(body.get("n") or 1),
                body=body,
                api_key=api_key,
                endpoint=endpoint,
            )
            self._state.posts += 1
            self._state.log.append(entry)
            return entry

    def _answers_for(self, messages: list[dict[str, Any]], n: int, body: dict[str, Any]) -> list[str]:
        if self.responder is not None:
            return list(self.responder(messages, n, body))
        last_user = next(
            (str(m.get("content", "")) for m in reversed(messages) if m.get("role") in ("user", "prompt")), ""
        )
        script = next((v for k, v in self.answers.items() if k in last_user), None)
        if not script:
            return [self.default_answer] * n
        key = json.dumps(messages, sort_keys=True)
        with self._state.lock:
            start = self._state.choice_counters.get(key, 0)
            self._state.choice_counters[key] = start + n
        return [script[(start + i) % len(script)] for i in range(n)]

    def _completion_body(self, body: dict[str, Any], texts: list[str], endpoint: str = "chat") -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        for i, text in enumerate(texts):
            if endpoint == "completions":
                choices.append({"index": i, "text": text, "finish_reason": "stop", "logprobs": None})
                continue
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if self.reasoning_content is not None:
                message["reasoning_content"] = self.reasoning_content
            choices.append({"index": i, "message": message, "finish_reason": "stop", "logprobs": None})
        out: dict[str, Any] = {
            "id": f"{'cmpl' if endpoint == 'completions' else 'chatcmpl'}-fake-{time.monotonic_ns()}",
            "object": "text_completion" if endpoint == "completions" else "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "choices": choices,
        }
        if self.usage:
            sent = [{"content": body.get("prompt", "")}] if endpoint == "completions" else body.get("messages") or []
            prompt = sum(len(str(m.get("content", "")).split()) for m in sent)
            completion = sum(len(t.split()) for t in texts)
            out["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return out

    def _retry_headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {
            "retry-after-ms": str(max(0, round(self.retry_after_s * 1000))),
            "Retry-After": str(math.ceil(self.retry_after_s)),
        }

    def handle_chat(
        self, body: dict[str, Any], auth: str | None, endpoint: str = "chat"
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Decide the answer to one chat-completions (or completions) POST: (status, JSON body, extra headers)."""
        api_key = auth[len("Bearer ") :] if auth and auth.startswith("Bearer ") else None
        entry = self._register(body, api_key, endpoint)
        delay = self.latency(body) if callable(self.latency) else self.latency
        if delay > 0:
            time.sleep(delay)
        status, payload, headers = self._decide(entry, body, api_key)
        with self._state.lock:
            entry.status = status
            entry.choices = len(payload.get("choices", [])) if status == 200 else 0
            entry.done_time = time.monotonic()
        return status, payload, headers

    def _decide(
        self, entry: LoggedRequest, body: dict[str, Any], api_key: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.api_key is not None and api_key != self.api_key:
            return 401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), {}
        fault = self._fault_for(entry.index)
        if fault is not None:
            kind = "rate_limit_exceeded" if fault == 429 else "server_error"
            return fault, _error(f"injected fault {fault}", kind, kind), self._retry_headers()
        if entry.endpoint == "completions" and self.chat_only:
            msg = (
                "This is a chat model and not supported in the v1/completions endpoint. "
                "Did you mean to use v1/chat/completions?"
            )
            return 404, _error(msg, "invalid_request_error", None), {}
        if self.models is not None and entry.model not in self.models:
            msg = f"The model `{entry.model}` does not exist or you do not have access to it."
            return 404, _error(msg, "invalid_request_error", "model_not_found"), {}
        refusal = self.reject(body) if self.reject is not None else None
        if refusal is not None:  # a dict is sent as the whole body (e.g. FastAPI's {"detail": ...})
            payload = refusal[1] if isinstance(refusal[1], dict) else _error(refusal[1], "invalid_request_error", None)
            return refusal[0], payload, {}
        if self.reject_n and entry.n > 1:
            msg = "n must be 1: this server does not support n > 1 ('n' parameter)"
            return 400, _error(msg, "invalid_request_error", None, param="n"), {}
        n = entry.n if self.max_n is None else min(entry.n, self.max_n)
        return 200, self._completion_body(body, self._answers_for(entry.messages, n, body), entry.endpoint), {}


def _error(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    owner: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; every answer has Content-Length
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read srv.requests instead
        return

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        if self.server.owner.dead:  # a crashed server answers nothing: the client sees the connection drop
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (cancelled run): fine
            self.close_connection = True

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.rstrip("/") == "/v1/models":
            names = owner.models if owner.models is not None else ["fake-model"]
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in names]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, _error(f"no route {self.path}", "invalid_request_error", None))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        routes = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
        endpoint = routes.get(self.path.rstrip("/"))
        if endpoint is None:
            self._send(404, _error(f"no route {self.path}", "invalid_request_error", None))
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error("request body is not JSON", "invalid_request_error", None))
            return
        status, payload, headers = self.server.owner.handle_chat(body, self.headers.get("Authorization"), endpoint)
        self._send(status, payload, headers)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until Ctrl-C: ``python -m tests.helpers.fake_openai --port 8000 --answer 'hi'``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--answer", default="OK", help="default answer text")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    with FakeOpenAIServer(default_answer=args.answer, latency=args.latency, api_key=args.api_key, port=args.port) as s:
        print(f"fake OpenAI server at {s.base_url}", flush=True)
        try:
            for _ in itertools.count():
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
