"""Label-free mode: the tests programs are judged on come from a tester model, not from the dataset.

The paper's label-free experiment replaces the ground-truth unit tests by tests a trained tester writes.
Before training, every task gets ``reward.tester.num_tests`` tests, from either

* a ``cure reward-serve`` server: ``POST <url>/v1/tests`` with ``{"problem", "task_id", "num_tests"}``
  answers ``{"tests": [{"input", "output"}, ...]}`` (``reward.tester.api_key`` is sent as the bearer token
  when the server has one); or
* a model through a cure Generator backend (OpenAI-compatible API, vLLM, transformers) with the tester
  prompt, keeping the answers whose test can be extracted.

The result is saved to ``<output_dir>/labels_from_tester.jsonl`` so a resumed run reuses the same labels (and
re-asks nothing). A task for which the tester produced no usable test gives no training signal.

Making the labels is a stage of its own, ``cure train CONFIG --prepare-labels`` (:func:`prepare_labels`): it
saves after every chunk of tasks (server) or every sample (model backends, through the generation cache), so an
interrupted run loses at most one chunk, and it runs before the training ranks start, which then only read the
file (:func:`labels_for_training`). The tester prompt is ``prompts.tester`` when set; each task keeps at most
``rollout.max_hidden_tests`` of its labels, as with ground-truth tests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cure_bench.errors import BackendError, ConfigError, ServerUnreachableError
from cure_bench.fileio import atomic_write_jsonl
from cure_bench.generation.extract import extract_test
from cure_bench.generation.prompts import PromptTemplate, tester_messages
from cure_bench.types import SamplingParams, Task, TestCase
from cure_train.config import TesterConfig, TrainConfig

log = logging.getLogger(__name__)

LABELS_NAME = "labels_from_tester.jsonl"
SERVER_CHUNK = 16  # tasks asked between two saves of the label file


def labels_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / LABELS_NAME


def prepare_labels(cfg: TrainConfig) -> tuple[Path, int, int]:
    """The label stage: labels for every training task, resumable; returns (file, tasks, tasks without a test)."""
    from cure_train.trainer import load_training_tasks

    if cfg.reward.labels != "tester":
        raise ConfigError("--prepare-labels: reward.labels is 'ground_truth'; set it to 'tester' for label-free mode")
    tasks = load_training_tasks(cfg)
    labels = labels_from_tester(tasks, cfg.reward.tester, cfg.output_dir, _tester_template(cfg))
    return labels_path(cfg.output_dir), len(tasks), sum(1 for cases in labels if not cases)


def labels_for_training(cfg: TrainConfig, tasks: Sequence[Task], generate: bool) -> list[list[TestCase]]:
    """Each task's labels (at most ``rollout.max_hidden_tests``); made here only when ``generate`` (one process)."""
    path = labels_path(cfg.output_dir)
    if generate:
        labels = labels_from_tester(tasks, cfg.reward.tester, cfg.output_dir, _tester_template(cfg))
    else:
        cached = _read_cache(path)
        missing = [t.task_id for t in tasks if t.task_id not in cached]
        if missing:
            raise ConfigError(
                f"reward.labels tester: {len(missing)} of {len(tasks)} tasks have no labels in {path} "
                f"(first: {missing[0]}); run `cure train CONFIG --prepare-labels` once before launching the ranks"
            )
        labels = [cached[t.task_id] for t in tasks]
    return [cases[: cfg.rollout.max_hidden_tests] for cases in labels]


def _tester_template(cfg: TrainConfig) -> PromptTemplate | None:
    from cure_bench.generation.prompts import load_template

    return load_template(cfg.prompts.tester, "tester", "prompts.tester") if cfg.prompts.tester else None


def labels_from_tester(
    tasks: Sequence[Task], cfg: TesterConfig, output_dir: str | Path, template: PromptTemplate | None = None
) -> list[list[TestCase]]:
    """Tests standing in for each task's hidden tests, cached in ``output_dir`` (saved chunk by chunk)."""
    path = labels_path(output_dir)
    cached = _read_cache(path)
    missing = [t for t in tasks if t.task_id not in cached]
    if missing:
        source = cfg.url or cfg.model
        log.info("label-free mode: asking %s for %d tests on %d tasks", source, cfg.num_tests, len(missing))
        chunks = [missing[i : i + SERVER_CHUNK] for i in range(0, len(missing), SERVER_CHUNK)] if cfg.url else [missing]
        for chunk in chunks:
            fresh = _from_server(chunk, cfg) if cfg.url else _from_model(chunk, cfg, Path(output_dir), template)
            cached.update(fresh)
            _write_cache(path, cached)
    labels = [cached.get(t.task_id, []) for t in tasks]
    empty = sum(1 for cases in labels if not cases)
    if empty:
        log.warning("label-free mode: %d of %d tasks got no usable test and will give no signal", empty, len(tasks))
    return labels


def _write_cache(path: Path, cached: dict[str, list[TestCase]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(
        path,
        [
            {"task_id": tid, "tests": [{"input": c.input, "output": c.output} for c in cases]}
            for tid, cases in cached.items()
        ],
    )


def _read_cache(path: Path) -> dict[str, list[TestCase]]:
    if not path.exists():
        return {}
    out: dict[str, list[TestCase]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out[str(row["task_id"])] = [TestCase(str(c["input"]), str(c["output"])) for c in row["tests"]]
    return out


def _from_server(tasks: Sequence[Task], cfg: TesterConfig) -> dict[str, list[TestCase]]:
    import httpx

    assert cfg.url is not None
    url = cfg.url.rstrip("/") + "/v1/tests"
    out: dict[str, list[TestCase]] = {}
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    with httpx.Client(timeout=cfg.timeout_s, headers=headers) as client:
        for task in tasks:
            body = {"problem": task.question, "task_id": task.task_id, "num_tests": cfg.num_tests}
            try:
                response = client.post(url, json=body)
            except httpx.TransportError as exc:
                raise ServerUnreachableError(f"reward.tester.url {cfg.url}: cannot reach the tester ({exc})") from None
            if response.status_code != 200:
                raise BackendError(
                    f"reward.tester.url {url}: HTTP {response.status_code} for task {task.task_id}: "
                    f"{response.text[:200]}"
                )
            out[task.task_id] = _parse_tests(response.json(), url, task.task_id)
    return out


def _parse_tests(payload: Any, url: str, task_id: str) -> list[TestCase]:
    tests = payload.get("tests") if isinstance(payload, dict) else None
    if not isinstance(tests, list):
        raise BackendError(f"reward.tester.url {url}: answer for task {task_id} has no 'tests' list")
    out = []
    for item in tests:
        if isinstance(item, dict) and isinstance(item.get("input"), str) and isinstance(item.get("output"), str):
            out.append(TestCase(item["input"], item["output"]))
    return out


def _from_model(
    tasks: Sequence[Task], cfg: TesterConfig, output_dir: Path, template: PromptTemplate | None = None
) -> dict[str, list[TestCase]]:
    from cure_bench.generation.backends import open_generator
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.runner import generate_all

    if cfg.model is None:
        raise ConfigError("reward.tester: set url or model for label-free mode")
    opened = open_generator(cfg.model, cfg.backend, defaults={"base_url": cfg.base_url, "api_key": cfg.api_key})
    log.info("label-free tester %s: backend %s (%s)", cfg.model, opened.backend, opened.reason)
    generator = opened.generator
    params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens)
    prompts = [(tester_messages(task, template=template), cfg.num_tests) for task in tasks]
    try:
        with GenerationCache(output_dir / "tester_generations.sqlite") as cache:
            answers = generate_all(generator, cache, prompts, params)
    finally:
        generator.close()
    out: dict[str, list[TestCase]] = {}
    for task, completions in zip(tasks, answers, strict=True):
        parsed = [extract_test(c.text) for c in completions]
        out[task.task_id] = [case for case in parsed if case is not None]
    return out
