"""`cure bench` / `cure bon` as one library call: tasks -> prompts -> generation -> extraction -> sandbox -> metrics.

Each stage hands plain records to the next (see DESIGN.md). Generations are cached per sample in the run
directory the moment they arrive, and executions are cached too, so an interrupted run resumes where it
stopped. The library reports progress through a small ``Progress`` protocol; the CLI draws it with rich.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cure_bench.config import BenchConfig
from cure_bench.errors import ConfigError, RunInterrupted
from cure_bench.generation.plan import GenerationPlan, open_role, plan_roles
from cure_bench.generation.prompts import PromptTemplate, load_template
from cure_bench.generation.stage import generate
from cure_bench.job import JobSize, estimate_job
from cure_bench.runs import directory as rundir
from cure_bench.runs.files import TaskRecord, build_manifest, write_outputs
from cure_bench.types import ChatMessages, Completion, Generator, Task, TaskTable

if TYPE_CHECKING:
    from cure_bench.sandbox import Executor, TableSpec

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Stage progress: ``start`` a stage with a total, ``advance`` it, ``finish`` it."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None: ...

    def finish(self, stage: str) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int) -> None:
        log.info("%s: %d to do", stage, total)

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None:
        pass

    def finish(self, stage: str) -> None:
        log.info("%s: done", stage)


@dataclass
class BenchResult:
    """What a run produced. ``reused``: this exact command had already finished in ``run_dir``, so nothing
    was generated or judged and ``records`` is empty (``tables`` are read back from samples.jsonl)."""

    run_dir: Path
    summary: dict[str, Any]
    tables: list[TaskTable]
    records: list[TaskRecord]
    reused: bool = False


def run_bench(
    cfg: BenchConfig, progress: Progress | None = None, confirm: Callable[[JobSize], bool] | None = None
) -> BenchResult:
    """Run the whole evaluation; returns the summary also written to ``<run_dir>/summary.json``.

    Every check comes first: options against each role's backend, the protocol, the sandbox level, and each
    generator's preflight (the /v1/completions probe), so bad input fails before any generation request and
    before the run directory exists. The job's size is logged before anything is generated; ``confirm(job)``
    (the CLI's question for big jobs) may refuse it, and then nothing is created.
    """
    from cure_bench.generation.protocols import get_protocol
    from cure_bench.scoring.metrics import parse_bon_spec
    from cure_bench.tasks.reader import task_fingerprint
    from cure_bench.tasks.registry import load_dataset_tasks

    progress = progress or NullProgress()
    started = time.time()
    protocol = get_protocol(cfg.protocol)
    templates = _load_templates(cfg)
    plans = plan_roles(cfg, protocol.name)
    tasks, dataset = load_dataset_tasks(
        cfg.dataset,
        limit=cfg.limit,
        start_date=cfg.start_date,
        end_date=cfg.end_date,
        cache_dir=cfg.cache_dir,
        strict=cfg.strict,
    )
    if not tasks:
        left_out = f"; {len(dataset.skipped)} row(s) left out, see `cure data validate`" if dataset.skipped else ""
        raise ConfigError(
            f"--dataset {cfg.dataset}: no tasks left to evaluate (check --limit/--start-date/--end-date){left_out}"
        )
    bon = [] if cfg.single else parse_bon_spec(cfg.bon, cfg.k_code, cfg.k_case)
    _warn_clipped_bon(cfg, bon)
    generation = GenerationPlan.build(cfg, protocol, plans, templates)
    fingerprint = task_fingerprint(tasks)
    settings = _generation_settings(cfg, fingerprint, generation)
    key = rundir.resume_key(settings)
    prefix = _run_prefix(cfg, dataset.name)
    finished = _finished_run(cfg, prefix, key)
    if finished is not None:
        return finished
    backends = (plans["coder"].backend, plans.get("tester", plans["coder"]).backend)
    max_tokens = generation.sampling[0].params.max_tokens
    job = estimate_job(cfg, len(tasks), cfg.price_per_mtok, max_tokens=max_tokens, backends=backends)
    log.info("%s", job.describe())
    if confirm is not None and not confirm(job):
        raise RunInterrupted("not started: the job was declined (pass --yes to skip the question)")
    _check_sandbox_starts(cfg)
    inputs = _Inputs(protocol, templates, tasks, dataset, bon, started, fingerprint, settings, key, prefix)
    opened: dict[str, tuple[Generator, dict[str, Any]]] = {}
    try:
        for role, plan in generation.plans.items():  # preflights run here: before the run directory exists
            opened[role] = open_role(plan)
        return _run(cfg, progress, inputs, generation, opened)
    finally:
        for generator, _ in opened.values():
            generator.close()


@dataclass(frozen=True)
class _Inputs:
    """What run_bench settled before opening the generators."""

    protocol: Any
    templates: tuple[PromptTemplate | None, PromptTemplate | None]
    tasks: list[Task]
    dataset: Any
    bon: list[tuple[int, int]]
    started: float
    fingerprint: str
    settings: dict[str, Any]
    key: str
    prefix: str


def _run(
    cfg: BenchConfig,
    progress: Progress,
    inputs: _Inputs,
    generation: GenerationPlan,
    opened: dict[str, tuple[Generator, dict[str, Any]]],
) -> BenchResult:
    """The run proper, once every check passed and every generator is open: prompts to summary.json."""
    protocol, templates, tasks, bon = inputs.protocol, inputs.templates, inputs.tasks, inputs.bon
    run_dir = rundir.resolve_run_dir(
        cfg.output_dir, inputs.prefix, inputs.key, cfg.resume, settings=inputs.settings, rerun=cfg.rerun
    )
    rundir.start_run(run_dir, inputs.key, inputs.settings)
    log.info("run directory: %s", run_dir)

    coder_msgs = [protocol.coder_prompt(t, templates[0], generation.text[0]) for t in tasks]
    tester_msgs = (
        None
        if cfg.single
        else [protocol.tester_prompt(t, templates[1], generation.text[1], cfg.show_examples, cfg.k_case) for t in tasks]
    )
    hide = [inputs.dataset.path, run_dir.parent]
    if cfg.overlap:  # each task is judged the moment its answers are in, while others are still generating
        from cure_bench.overlap import generate_and_judge

        records, tables, generators_info, sandbox_info = generate_and_judge(
            cfg, generation, opened, tasks, (coder_msgs, tester_msgs), run_dir, progress, hide
        )
    else:  # the sequential path: every sample first, then every table
        code_answers, test_answers, generators_info = generate(
            cfg, generation, opened, coder_msgs, tester_msgs, run_dir, progress
        )
        records = [
            extract_record(
                task, coder_msgs[i], tester_msgs[i] if tester_msgs else None, code_answers[i], test_answers[i], cfg
            )
            for i, task in enumerate(tasks)
        ]
        tables, sandbox_info = _judge(cfg, tasks, records, run_dir, progress, hide=hide)
    for record, table in zip(records, tables, strict=True):
        record.table = table

    manifest = build_manifest(
        cfg,
        dataset=inputs.dataset,
        fingerprint=inputs.fingerprint,
        n_tasks=len(tasks),
        bon=bon,
        generators=generators_info,
        sandbox=sandbox_info,
        prompt_sha256=generation.prompt_sha256,
        templates=templates,
        started=inputs.started,
    )
    entries = generation.manifest_entries()
    manifest.sampling = entries["sampling"]
    manifest.extra["protocol"] = entries["protocol"]
    summary = write_outputs(
        run_dir,
        manifest,
        records,
        tables,
        bon=bon,
        pass_at=cfg.pass_at,
        single=cfg.single,
        extra_counts=inputs.dataset.skip_counts(),
        protocol=cfg.protocol,
    )
    return BenchResult(run_dir=run_dir, summary=summary, tables=tables, records=records)


def _warn_clipped_bon(cfg: BenchConfig, bon: list[tuple[int, int]]) -> None:
    """``--bon 32x32 --k-code 4`` is measured as 4x4: say so, since the key alone is easy to misread."""
    from cure_bench.scoring.metrics import bon_key, parse_bon_spec

    huge = 1 << 30
    asked = [] if cfg.single else parse_bon_spec(cfg.bon, huge, huge)
    clipped = [f"{bon_key(*a)} -> {bon_key(*b)}" for a, b in zip(asked, _clip_each(asked, cfg), strict=True) if a != b]
    if clipped:
        log.warning(
            "--bon asks for more samples than --k-code %d / --k-case %d: measured as %s",
            cfg.k_code,
            cfg.k_case,
            ", ".join(clipped),
        )


def _clip_each(pairs: list[tuple[int, int]], cfg: BenchConfig) -> list[tuple[int, int]]:
    return [(min(n, cfg.k_code), min(m, cfg.k_case)) for n, m in pairs]


def _load_templates(cfg: BenchConfig) -> tuple[PromptTemplate | None, PromptTemplate | None]:
    coder = load_template(cfg.coder_prompt, "coder", "--coder-prompt") if cfg.coder_prompt else None
    tester = load_template(cfg.tester_prompt, "tester", "--tester-prompt") if cfg.tester_prompt else None
    return coder, tester


def _run_prefix(cfg: BenchConfig, dataset_name: str) -> str:
    """``<model-basename>-<dataset>`` (coder+tester for bon): readable, and never starting with ``-``."""
    coder = rundir.model_basename(cfg.coder.model)
    name = coder if cfg.tester is None else f"{coder}+{rundir.model_basename(cfg.tester.model)}"
    return f"{name}-{rundir.slug(dataset_name)}"


def _finished_run(cfg: BenchConfig, prefix: str, key: str) -> BenchResult | None:
    """The finished run this exact command already produced (re-running reports it; ``--rerun`` starts again)."""
    if cfg.rerun or not cfg.resume:
        return None
    if cfg.output_dir is not None:
        found = rundir.finished_settings(Path(cfg.output_dir))
        run_dir = Path(cfg.output_dir) if found is not None and found[0] == key else None
    else:
        run_dir = rundir.find_finished(Path("runs"), prefix, key)
    if run_dir is None:
        return None
    from cure_bench.runs.reader import load_run

    run = load_run(run_dir)
    log.info("this command already finished in %s: reporting it (pass --rerun to start again)", run_dir)
    return BenchResult(run_dir=run_dir, summary=run.summary, tables=run.tables, records=[], reused=True)


def _generation_settings(cfg: BenchConfig, fingerprint: str, generation: GenerationPlan) -> dict[str, Any]:
    """What decides which samples a run asks for; equal settings mean a re-run may resume."""
    settings = {
        "coder": [cfg.coder.model, cfg.coder.backend, _servers(cfg.coder.base_url)],
        "tester": None if cfg.tester is None else [cfg.tester.model, cfg.tester.backend, _servers(cfg.tester.base_url)],
        "dataset_fingerprint": fingerprint,
        "k_code": cfg.k_code,
        "k_case": 0 if cfg.single else cfg.k_case,
        "sampling": _plain(asdict(generation.sampling[0].params)),
        "show_examples": cfg.show_examples,
        "prompts": generation.prompt_sha256,
    }
    from cure_bench.generation.backends import sample_options

    for role, model in (("coder", cfg.coder), ("tester", cfg.tester)):
        shaping = sample_options(model.options) if model is not None else {}
        if shaping:  # e.g. --max-model-len: answers cut under one context are not the run asked under another
            settings[f"{role}_sample_options"] = shaping
    if cfg.judge_compat:  # verdicts under upstream's harness behaviours are not those of a python3-judged run
        settings["judge_compat"] = list(cfg.judge_compat)
    if generation.protocol != "chat":  # chat runs keep the resume key they had before protocols existed
        settings["protocol"] = generation.protocol
        settings["tester_sampling"] = _plain(asdict(generation.sampling[1].params))
    return settings


def _servers(base_url: str | None) -> str | None:
    """The resume key's record of the servers: one URL as given (older runs keep their key); a list of several
    in sorted order, so ``--base-url B,A`` resumes a run started with ``A,B`` (the samples do not depend on
    which server answered)."""
    if base_url is None or "," not in base_url:
        return base_url
    return ",".join(sorted(u.strip().rstrip("/") for u in base_url.split(",")))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def extract_record(
    task: Task,
    coder_msgs: ChatMessages,
    tester_msgs: ChatMessages | None,
    code_answers: list[Completion],
    test_answers: list[Completion],
    cfg: BenchConfig,
) -> TaskRecord:
    from cure_bench.generation.protocols import get_protocol

    protocol = get_protocol(cfg.protocol)
    parsed = [protocol.extract_test(c.text) for c in test_answers]
    return TaskRecord(
        task=task,
        coder_messages=coder_msgs,
        tester_messages=tester_msgs,
        code_answers=code_answers,
        programs=[protocol.extract_program(c.text) for c in code_answers],
        test_answers=test_answers,
        generated_tests=[t for t in parsed if t is not None],
        test_answer_index=[i for i, t in enumerate(parsed) if t is not None],
        hidden_used=min(cfg.max_test, len(task.hidden_tests)),
    )


def _check_sandbox_starts(cfg: BenchConfig) -> None:
    """Start (and stop) the requested isolation level now: a level this machine cannot provide must fail
    before hours of generation, not after."""
    from cure_bench.sandbox import open_sandbox

    with open_sandbox(cfg.executor, cfg.ray_address, workers=1, isolation=cfg.sandbox, use_cache=False):
        pass


def _judge(
    cfg: BenchConfig,
    tasks: Sequence[Task],
    records: Sequence[TaskRecord],
    run_dir: Path,
    progress: Progress,
    hide: Sequence[Path] = (),
) -> tuple[list[TaskTable], dict[str, Any]]:
    """Judge every program; ``hide`` (the dataset file, the output directory) must be invisible to programs:
    the sandbox checks that from inside before it runs anything."""
    from cure_bench.sandbox import build_tables

    specs = [table_spec(cfg, task, record) for task, record in zip(tasks, records, strict=True)]
    stage = "judge"
    try:
        with open_run_sandbox(cfg, run_dir, hide) as box:
            progress.start(stage, 0)
            tables = build_tables(
                box, specs, compare=cfg.compare, on_progress=lambda done, n: progress.advance(stage, done, n)
            )
            info = box.describe()
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted while judging; generations are saved in {run_dir}: re-run the same command to resume"
        ) from None
    finally:
        progress.finish(stage)
    return tables, info


def table_spec(cfg: BenchConfig, task: Task, record: TaskRecord) -> TableSpec:
    """What judging one task runs: its programs on its first ``hidden_used`` hidden tests and its generated ones."""
    from cure_bench.sandbox import TableSpec

    return TableSpec(
        task_id=task.task_id,
        programs=record.programs,
        hidden_tests=task.hidden_tests[: record.hidden_used],
        generated_tests=record.generated_tests,
        time_limit_s=task.time_limit,
        memory_limit_mb=cfg.memory_limit_mb,
    )


def open_run_sandbox(cfg: BenchConfig, run_dir: Path, hide: Sequence[Path] = ()) -> Executor:
    """The run's sandbox on its executor: its exec cache in the run directory, the run directory and ``hide``
    out of view, the judge-compat options asked for."""
    from cure_bench.sandbox import open_sandbox

    return open_sandbox(
        cfg.executor,
        cfg.ray_address,
        workers=cfg.workers,
        isolation=cfg.sandbox,
        cache_dir=run_dir / rundir.EXEC_CACHE_DIR if cfg.exec_cache else None,
        use_cache=cfg.exec_cache,
        hide=[run_dir, *hide],
        compat=cfg.judge_compat,
    )
