"""Label-free mode: stand-in hidden tests from a `cure reward-serve`-style /v1/tests endpoint, cached on disk."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cure_bench.errors import BackendError, ConfigError, ServerUnreachableError
from cure_bench.types import Task, TestCase
from cure_train.config import TesterConfig as LabelSource
from cure_train.config import parse_config
from cure_train.labels import LABELS_NAME, labels_from_tester
from cure_train.trainer import hidden_columns

TASKS = [
    Task("a", "Print the sum.", 1.0, [], [TestCase("1 2\n", "3\n")]),
    Task("b", "Print the max.", 1.0, [], [TestCase("1 2\n", "2\n")]),
]


class _Tester(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if type(self).status != 200:
            self.send_response(type(self).status)
            self.end_headers()
            self.wfile.write(b"tester down")
            return
        tests = [{"input": f"{i}\n", "output": f"{body['problem']} {i}\n"} for i in range(body["num_tests"])]
        tests.append({"input": 5})  # malformed entries are skipped
        payload = json.dumps({"task_id": body.get("task_id"), "tests": tests, "cached": False, "samples": 3})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _Tester.requests = []
    _Tester.status = 200
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Tester)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_labels_come_from_the_server_and_are_cached(server: str, tmp_path: Path) -> None:
    cfg = LabelSource(url=server, num_tests=2, api_key="secret")
    labels = labels_from_tester(TASKS, cfg, tmp_path)
    assert labels == [
        [TestCase("0\n", "Print the sum. 0\n"), TestCase("1\n", "Print the sum. 1\n")],
        [TestCase("0\n", "Print the max. 0\n"), TestCase("1\n", "Print the max. 1\n")],
    ]
    first = _Tester.requests[0]
    assert first["path"] == "/v1/tests" and first["auth"] == "Bearer secret"
    assert (first["problem"], first["task_id"], first["num_tests"]) == ("Print the sum.", "a", 2)
    assert (tmp_path / LABELS_NAME).exists()
    assert labels_from_tester(TASKS, cfg, tmp_path) == labels  # resumed run: nothing asked again
    assert len(_Tester.requests) == 2
    more = [*TASKS, Task("c", "Print the min.", 1.0, [], [])]
    assert labels_from_tester(more, cfg, tmp_path)[2][0].output == "Print the min. 0\n"
    assert len(_Tester.requests) == 3  # only the new task


def test_trainer_uses_tester_labels_instead_of_hidden_tests(server: str, tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "model": "m",
            "train_dataset": "d",
            "output_dir": str(tmp_path),
            "rollout": {"max_hidden_tests": 2},
            "reward": {"labels": "tester", "tester": {"url": server, "num_tests": 3}},
        }
    )
    with pytest.raises(
        ConfigError, match=r"2 of 2 tasks have no labels in .*labels_from_tester\.jsonl.*--prepare-labels"
    ):
        hidden_columns(cfg, TASKS, ranks=2)  # several ranks never generate: they read the prepared file
    assert _Tester.requests == []
    hidden = hidden_columns(cfg, TASKS)  # one process: the label stage runs in place
    # three labels per task were asked and saved, each task is judged on the first max_hidden_tests = 2
    assert hidden == [
        [TestCase("0\n", "Print the sum. 0\n"), TestCase("1\n", "Print the sum. 1\n")],
        [TestCase("0\n", "Print the max. 0\n"), TestCase("1\n", "Print the max. 1\n")],
    ]
    assert hidden_columns(cfg, TASKS, ranks=2) == hidden and len(_Tester.requests) == 2
    truth = parse_config({"model": "m", "train_dataset": "d", "rollout": {"max_hidden_tests": 1}})
    assert hidden_columns(truth, TASKS) == [t.hidden_tests for t in TASKS]


def test_prepare_labels_is_a_resumable_stage_with_the_configured_tester_prompt(
    fake_openai: Any, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cure_bench.cli import app

    answer = "**Test Input:**\n```\n4\n```\n**Test Output:**\n```\n8\n```\n**Explanation:**\ndouble"
    srv = fake_openai(answers={"WRITE ONE TEST": [answer]}, default_answer="nothing")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "".join(
            json.dumps({"question": q, "test_time_limit": 1, "test_input": ["1\n"], "test_output": ["2\n"]}) + "\n"
            for q in ("Double n.", "Triple n.")
        )
    )
    template = tmp_path / "tester.txt"
    template.write_text("WRITE ONE TEST for:\n{{problem}}")
    config = tmp_path / "train.yaml"
    config.write_text(
        json.dumps(
            {
                "model": "m",
                "train_dataset": str(tasks),
                "output_dir": str(tmp_path / "run"),
                "device": "cpu",
                "rollout": {"k_code": 2, "k_case": 2, "n_tasks_per_step": 1},
                "prompts": {"tester": str(template)},
                "reward": {
                    "labels": "tester",
                    "tester": {
                        "model": "t",
                        "backend": "openai",
                        "base_url": srv.base_url,
                        "api_key": "k",
                        "num_tests": 1,
                    },
                },
            }
        )
    )
    result = CliRunner().invoke(app, ["train", str(config), "--prepare-labels"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "run" / LABELS_NAME).read_text().splitlines()]
    assert [r["tests"] for r in rows] == [[{"input": "4\n", "output": "8\n"}]] * 2
    assert all("WRITE ONE TEST for:" in r.messages[-1]["content"] for r in srv.requests)  # prompts.tester honoured
    asked = srv.samples_delivered
    again = CliRunner().invoke(app, ["train", str(config), "--prepare-labels"])
    assert again.exit_code == 0 and srv.samples_delivered == asked  # resumed: nothing asked twice


def test_server_errors_name_the_key(server: str, tmp_path: Path) -> None:
    _Tester.status = 500
    with pytest.raises(BackendError, match=r"reward\.tester\.url .*/v1/tests: HTTP 500 for task a"):
        labels_from_tester(TASKS, LabelSource(url=server), tmp_path)
    with pytest.raises(ServerUnreachableError, match=r"reward\.tester\.url http://127\.0\.0\.1:9/"):
        labels_from_tester(TASKS, LabelSource(url="http://127.0.0.1:9/", timeout_s=2), tmp_path / "x")


def test_labels_from_a_model_through_a_cure_backend(fake_openai: Any, tmp_path: Path) -> None:
    answer = "**Test Input:**\n```\n4\n```\n**Test Output:**\n```\n8\n```\n**Explanation:**\ndouble"
    srv = fake_openai(answers={"Print the sum.": [answer, "I give up"]}, default_answer="nothing")
    cfg = LabelSource(model="tester-model", backend="openai", base_url=srv.base_url, api_key="k", num_tests=2)
    labels = labels_from_tester(TASKS, cfg, tmp_path)
    assert labels == [[TestCase("4\n", "8\n")], []]  # unextractable answers are dropped
    asked = srv.samples_delivered
    assert labels_from_tester(TASKS, cfg, tmp_path) == labels and srv.samples_delivered == asked
