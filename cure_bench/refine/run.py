"""run_refine: round 0 through run_bench, then repair rounds on the same stages (prompts, cache, sandbox)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cure_bench.config import BenchConfig
from cure_bench.errors import ConfigError, RunInterrupted
from cure_bench.fileio import atomic_write_json, atomic_write_jsonl
from cure_bench.refine.prompts import Feedback, repair_prompt
from cure_bench.refine.rounds import repair_counts, round_metrics
from cure_bench.runs import directory as rundir
from cure_bench.scoring.metrics import correct_programs
from cure_bench.types import Completion, ExecJob, Task, TaskTable, TestCase, Verdict

FEEDBACK_SOURCES = ("generated", "public")
REFINE_CACHE = "refine_generations.sqlite"


@dataclass(frozen=True)
class RefineConfig:
    """A bench/bon configuration plus the refinement knobs. ``bench.output_dir`` is the refine run directory."""

    bench: BenchConfig
    rounds: int = 2
    feedback_tests: int = 3
    feedback: str = "generated"
    ranker: str = "cure_first"
    budget_baseline: bool = False

    def validate(self) -> None:
        """Every bad knob fails here, before any request."""
        from cure_bench.scoring.rankers import get_ranker

        if self.rounds < 0:
            raise ConfigError(f"--rounds must be >= 0 (got {self.rounds})")
        if self.feedback_tests < 1:
            raise ConfigError(f"--feedback-tests must be >= 1 (got {self.feedback_tests})")
        if self.feedback not in FEEDBACK_SOURCES:
            raise ConfigError(f"--feedback must be one of {', '.join(FEEDBACK_SOURCES)} (got {self.feedback!r})")
        if self.bench.single:
            raise ConfigError("cure refine needs generated tests: --single is not allowed")
        try:
            get_ranker(self.ranker)
        except KeyError as exc:
            raise ConfigError(f"--ranker: {exc.args[0]}") from None


@dataclass
class RefineResult:
    run_dir: Path
    summary: dict[str, Any]
    trajectories: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _TaskState:
    task: Task
    programs: list[str | None]
    tests: list[TestCase]
    table: TaskTable
    versions: list[list[dict[str, Any]]]  # per program: every version with its feedback and verdicts


def run_refine(cfg: RefineConfig, progress: Any = None) -> RefineResult:
    """Round 0 = run_bench on ``<run_dir>/round-0``; rounds 1..R repair failing programs; writes summary.json."""
    from cure_bench.pipeline import run_bench
    from cure_bench.scoring.metrics import parse_bon_spec

    cfg.validate()
    run_dir = Path(cfg.bench.output_dir) if cfg.bench.output_dir is not None else _default_dir(cfg.bench)
    bench = run_bench(replace(cfg.bench, output_dir=run_dir / "round-0"), progress=progress)
    states, tokens = _load_round0(cfg.bench, bench.run_dir, bench.tables)
    bon = parse_bon_spec(cfg.bench.bon, cfg.bench.k_code, cfg.bench.k_case)
    spend = {"coder_tokens": tokens[0], "tester_tokens": tokens[1], "coder_requests": len(states),
             "tester_requests": len(states)}  # fmt: skip
    rounds = [_metrics(cfg, states, bon, spend, {"repaired": 0, "fixed": 0, "broken": 0})]
    if cfg.rounds:
        rounds += _repair_rounds(cfg, run_dir, states, bon, spend)
    baseline = None
    if cfg.budget_baseline:
        from cure_bench.refine.budget import budget_baseline

        spent = rounds[-1]["coder_tokens"] - tokens[0]
        baseline = budget_baseline(cfg, states, bench.run_dir, spent, tokens[0])
    summary = dict(bench.summary)
    summary["metrics"] = {**bench.summary["metrics"], "rounds": rounds}
    if baseline is not None:
        summary["metrics"]["budget_baseline"] = baseline
    summary["refine"] = {
        "rounds": cfg.rounds,
        "feedback_tests": cfg.feedback_tests,
        "feedback": cfg.feedback,
        "ranker": cfg.ranker,
        "budget_baseline": cfg.budget_baseline,
        "round0_dir": str(bench.run_dir),
    }
    trajectories = [{"task_id": s.task.task_id, "programs": s.versions} for s in states]
    atomic_write_jsonl(run_dir / rundir.SAMPLES_FILE, trajectories)
    atomic_write_json(run_dir / rundir.SUMMARY_FILE, summary)
    return RefineResult(run_dir=run_dir, summary=summary, trajectories=trajectories)


def _default_dir(cfg: BenchConfig) -> Path:
    """runs/refine-<coder>-<dataset>: one directory per model and dataset, so a re-run resumes it."""
    name = Path(cfg.dataset).stem if cfg.dataset.endswith((".json", ".jsonl")) else cfg.dataset
    return Path("runs") / f"refine-{rundir.model_basename(cfg.coder.model)}-{rundir.slug(name)}"


def _load_round0(
    cfg: BenchConfig, round_dir: Path, tables: list[TaskTable]
) -> tuple[list[_TaskState], tuple[int, int]]:
    """Round 0's programs, generated tests and tables, with the tasks (hidden tests) read as run_bench read them."""
    from cure_bench.tasks.registry import load_dataset_tasks

    tasks, _ = load_dataset_tasks(cfg.dataset, limit=cfg.limit, start_date=cfg.start_date, end_date=cfg.end_date,
                                  cache_dir=cfg.cache_dir, strict=cfg.strict)  # fmt: skip
    lines = (round_dir / rundir.SAMPLES_FILE).read_text(encoding="utf-8").splitlines()
    rows = {r["task_id"]: r for r in map(json.loads, lines)}
    states, coder_tokens, tester_tokens = [], 0, 0
    for task, table in zip(tasks, tables, strict=True):
        row = rows[task.task_id]
        coder_tokens += sum(a.get("tokens") or 0 for a in row["code_answers"])
        tester_tokens += sum(a.get("tokens") or 0 for a in row["test_answers"])
        programs = list(row["programs"])
        hidden = correct_programs(table)
        versions = [[{"round": 0, "program": p, "feedback": [], "hidden_correct": hidden[i],
                      "generated": [v.value for v in table.generated[i]]}] for i, p in enumerate(programs)]  # fmt: skip
        tests = [TestCase(t["input"], t["output"]) for t in row["generated_tests"]]
        states.append(_TaskState(task, programs, tests, table, versions))
    return states, (coder_tokens, tester_tokens)


def _metrics(cfg: RefineConfig, states: list[_TaskState], bon: list[tuple[int, int]], spend: dict[str, int],
             repairs: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    return round_metrics([s.table for s in states], bon=bon, pass_at=cfg.bench.pass_at, protocol=cfg.bench.protocol,
                         ranker=cfg.ranker, spend=dict(spend), repairs=repairs)  # fmt: skip


def _repair_rounds(cfg: RefineConfig, run_dir: Path, states: list[_TaskState], bon: list[tuple[int, int]],
                   spend: dict[str, int]) -> list[dict[str, Any]]:  # fmt: skip
    """Rounds 1..R: feedback from the sandbox, one repair sample per failing program, re-judge, measure."""
    from cure_bench.generation.cache import GenerationCache
    from cure_bench.generation.plan import GenerationPlan, open_role, plan_roles
    from cure_bench.generation.protocols import get_protocol
    from cure_bench.pipeline import _load_templates

    bench = cfg.bench
    protocol = get_protocol(bench.protocol)
    generation = GenerationPlan.build(bench, protocol, plan_roles(bench, protocol.name), _load_templates(bench))
    generator, _ = open_role(generation.plans["coder"])
    cache = GenerationCache(run_dir / REFINE_CACHE)
    out = []
    try:
        for r in range(1, cfg.rounds + 1):
            before = [s.table for s in states]
            repaired = _repair_round(cfg, run_dir, states, r, (generator, cache, generation), spend)
            out.append(_metrics(cfg, states, bon, spend, repair_counts(before, [s.table for s in states], repaired)))
    finally:
        cache.close()
        generator.close()
    return out


def _repair_round(cfg: RefineConfig, run_dir: Path, states: list[_TaskState], r: int, gen: tuple[Any, Any, Any],
                  spend: dict[str, int]) -> list[list[int]]:  # fmt: skip
    """One round: ask for a repair of every program failing a generated test and re-judge every task; a task's
    table is built as soon as its last repair is in (``bench.overlap``), else after the last one. Returns the
    repaired program indices per task."""
    from cure_bench.generation.protocols import get_protocol
    from cure_bench.generation.runner import generate_all

    generator, cache, generation = gen
    bench = cfg.bench
    protocol = get_protocol(bench.protocol)
    todo = _feedback(cfg, states)  # (state index, program index, feedback)
    msgs = [repair_prompt(states[t].task, states[t].programs[i] or "", fb, r, generation.text[0]) for t, i, fb in todo]
    repaired: list[list[int]] = [[] for _ in states]
    left = [0] * len(states)
    for t, _, _ in todo:
        left[t] += 1
    judge = _RoundJudge(bench, run_dir, states) if bench.overlap else None

    def on_repair(j: int, got: list[Completion]) -> None:
        t, i, fb = todo[j]
        st = states[t]
        st.programs[i] = protocol.extract_program(got[0].text)
        st.versions[i].append({"round": r, "program": st.programs[i], "feedback": [f.to_json() for f in fb],
                               "tokens": got[0].tokens})  # fmt: skip
        spend["coder_tokens"] += got[0].tokens or 0
        repaired[t].append(i)
        left[t] -= 1
        if judge is not None and not left[t]:
            judge.submit(t)

    try:
        if judge is not None:
            for t in (t for t, n in enumerate(left) if not n):  # nothing to repair: judged at once
                judge.submit(t)
        generate_all(generator, cache, [(m, 1) for m in msgs], generation.sampling[0].params, on_prompt_done=on_repair)
        tables = judge.finish() if judge is not None else _judge_all(bench, run_dir, states)
    finally:
        if judge is not None:
            judge.close()
    spend["coder_requests"] += len(todo)
    for st, table, idx in zip(states, tables, repaired, strict=True):
        st.table = table
        hidden = correct_programs(table)
        for i in idx:
            st.versions[i][-1]["hidden_correct"] = hidden[i]
            st.versions[i][-1]["generated"] = [v.value for v in table.generated[i]]
    return [sorted(idx) for idx in repaired]


def _record(bench: BenchConfig, st: _TaskState) -> Any:
    from cure_bench.runs.files import TaskRecord

    return TaskRecord(task=st.task, coder_messages=(), tester_messages=None, code_answers=[], programs=st.programs,
                      test_answers=[], generated_tests=st.tests, test_answer_index=list(range(len(st.tests))),
                      hidden_used=min(bench.max_test, len(st.task.hidden_tests)))  # fmt: skip


def _judge_all(bench: BenchConfig, run_dir: Path, states: list[_TaskState]) -> list[TaskTable]:
    """The sequential path: every task's table after every repair is in."""
    from cure_bench.pipeline import _judge

    tables, _ = _judge(bench, [s.task for s in states], [_record(bench, s) for s in states], run_dir, _NoProgress())
    return tables


class _RoundJudge:
    """The round's sandbox and table stream: ``submit(t)`` judges task t's current programs in the background."""

    def __init__(self, bench: BenchConfig, run_dir: Path, states: list[_TaskState]) -> None:
        from cure_bench.pipeline import open_run_sandbox
        from cure_bench.sandbox.stream import TableStream

        self._bench, self._states = bench, states
        self._box = open_run_sandbox(bench, run_dir)
        self._stream = TableStream(self._box, len(states), bench.compare)

    def submit(self, t: int) -> None:
        from cure_bench.pipeline import table_spec

        st = self._states[t]
        self._stream.submit(t, table_spec(self._bench, st.task, _record(self._bench, st)))

    def finish(self) -> list[TaskTable]:
        try:
            return self._stream.finish()
        except KeyboardInterrupt:
            raise RunInterrupted(
                "interrupted while judging a repair round: re-run the same command to resume"
            ) from None

    def close(self) -> None:
        self._stream.cancel()  # closes the sandbox; after finish() there is nothing left to stop


class _NoProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, done: int, total: int, **info: Any) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass


def _feedback(cfg: RefineConfig, states: list[_TaskState]) -> list[tuple[int, int, list[Feedback]]]:
    """Every program failing a generated test, with up to F failing tests re-run in the sandbox for their output."""
    from cure_bench.sandbox import open_sandbox

    wanted: list[tuple[int, int, list[tuple[TestCase, str, str]]]] = []
    for t, st in enumerate(states):
        public = (
            [(TestCase(e.input, e.output), "public") for e in st.task.example_tests] if cfg.feedback == "public" else []
        )
        for i, program in enumerate(st.programs):
            if program is None:
                continue
            failing = [(st.tests[j], "generated", v.value) for j, v in enumerate(st.table.generated[i])
                       if v is not Verdict.ACCEPTED]  # fmt: skip
            if not failing:
                continue  # passes every generated test: kept as it is
            chosen = failing[: cfg.feedback_tests] + [(c, src, "") for c, src in public]
            wanted.append((t, i, [(c, src, v) for c, src, v in chosen]))
    jobs = [ExecJob(states[t].programs[i] or "", c.input, states[t].task.time_limit, cfg.bench.memory_limit_mb)
            for t, i, tests in wanted for c, _, _ in tests]  # fmt: skip
    b = cfg.bench
    with open_sandbox(
        b.executor, b.ray_address, workers=b.workers, isolation=b.sandbox, use_cache=False, compat=b.judge_compat
    ) as box:
        results = iter(box.run(jobs) if jobs else [])
    out = []
    for t, i, tests in wanted:
        fb = []
        for case, source, verdict in tests:
            res = next(results)
            finished = res.status.value == "ok"
            if source == "public" and finished and res.stdout.split() == case.output.split():
                continue  # a public example it already passes says nothing
            fb.append(Feedback(case.input, case.output, res.stdout if finished else None,
                               verdict or ("wrong_answer" if finished else res.status.value),
                               res.stderr_tail, source))  # fmt: skip
        out.append((t, i, fb))
    return out
