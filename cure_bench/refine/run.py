"""run_refine: round 0 through run_bench, then repair rounds on the same stages (prompts, cache, sandbox).

Round r >= 1, per task: (with ``refine_tests``) the tester checks every generated test that no current program
passes, shown what the programs printed, and its answer replaces the test; then every program failing a
generated test gets a repair prompt with up to F of those tests, and its answer replaces it; the tasks are
judged again, the ranker picks, and ``metrics.rounds[r]`` is measured. See docs/refine.md. Each step judges a
task as soon as its own answers are in, while other tasks' requests are in flight (``refine/judging.py``;
``--no-overlap``: after all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cure_bench.config import BenchConfig
from cure_bench.errors import ConfigError
from cure_bench.fileio import atomic_write_json, atomic_write_jsonl
from cure_bench.refine.agents import Agents
from cure_bench.refine.feedback import Runner, disagreed_tests, output_groups, program_feedback
from cure_bench.refine.judging import ask_and_judge
from cure_bench.refine.prompts import repair_prompt, revise_test_prompt
from cure_bench.refine.rounds import repair_counts, round_metrics, test_counts
from cure_bench.refine.state import TaskState, load_round0, round0_tokens
from cure_bench.runs import directory as rundir
from cure_bench.types import Completion

FEEDBACK_SOURCES = ("generated", "public")


@dataclass(frozen=True)
class RefineConfig:
    """A bench/bon configuration plus the refinement knobs. ``bench.output_dir`` is the refine run directory."""

    bench: BenchConfig
    rounds: int = field(default=2, metadata={"help": "repair rounds after round 0 (0: exactly cure bench)"})
    feedback_tests: int = field(default=3, metadata={"help": "failing tests shown per repair prompt, at most"})
    feedback: str = field(default="generated", metadata={"help": "generated, or public: also the public examples"})
    ranker: str = field(default="cure_first", metadata={"help": "ranker registry name picking each round's program"})
    refine_tests: bool = field(default=False, metadata={"help": "the tester revises tests no program passes"})
    budget_baseline: bool = field(default=False, metadata={"help": "also plain BoN with the refinement's tokens"})

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
        if self.bench.k_case < 1:
            raise ConfigError(f"cure refine needs generated tests: --k-case must be >= 1 (got {self.bench.k_case})")
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
class _Round:
    """Everything one refinement round needs besides the states."""

    cfg: RefineConfig
    run_dir: Path
    runner: Runner
    agents: Agents
    hide: tuple[Path, ...]
    progress: Any


def run_refine(cfg: RefineConfig, progress: Any = None) -> RefineResult:
    """Round 0 = run_bench on ``<run_dir>/round-0``; rounds 1..R refine; writes samples.jsonl and summary.json."""
    from cure_bench.pipeline import NullProgress, run_bench
    from cure_bench.tasks.registry import load_dataset_tasks

    cfg.validate()
    progress = progress or NullProgress()
    bench_cfg = cfg.bench
    run_dir = Path(bench_cfg.output_dir) if bench_cfg.output_dir is not None else _default_dir(bench_cfg)
    bench = run_bench(replace(bench_cfg, output_dir=run_dir / "round-0"), progress=progress)
    tasks, dataset = load_dataset_tasks(bench_cfg.dataset, limit=bench_cfg.limit, start_date=bench_cfg.start_date,
                                        end_date=bench_cfg.end_date, cache_dir=bench_cfg.cache_dir,
                                        strict=bench_cfg.strict)  # fmt: skip
    states = load_round0(bench_cfg, bench.run_dir, tasks, bench.tables)
    coder0, tester0 = round0_tokens(bench.run_dir)
    spend = {"coder_tokens": coder0, "tester_tokens": tester0, "coder_requests": len(states),
             "tester_requests": len(states)}  # fmt: skip
    for s in states:
        s.close_round(0, cfg.ranker, bench_cfg.protocol)
    zero = _measure(cfg, states, spend, {"repaired": 0, "fixed": 0, "broken": 0}, test_counts([], [], 0))
    rounds = [_over(zero, bench.summary["metrics"])]  # round 0 is bench's numbers, exactly as bench wrote them
    hide = (dataset.path, run_dir, run_dir.parent)
    runner = Runner(bench_cfg, hide, run_dir / rundir.EXEC_CACHE_DIR if bench_cfg.exec_cache else None)
    try:
        if cfg.rounds:
            with Agents(cfg.bench, run_dir, tester=cfg.refine_tests) as agents:
                ctx = _Round(cfg, run_dir, runner, agents, hide, progress)
                for r in range(1, cfg.rounds + 1):
                    rounds.append(_refine_round(ctx, states, r, spend))
    finally:
        runner.close()
    summary = dict(bench.summary)
    summary["metrics"] = {**bench.summary["metrics"], "rounds": rounds}
    if cfg.budget_baseline:
        from cure_bench.refine.budget import budget_baseline

        spent = rounds[-1]["coder_tokens"] - coder0
        summary["metrics"]["budget_baseline"] = budget_baseline(
            cfg, states, bench.run_dir, spent, coder0, hide, progress
        )
    summary["refine"] = {"rounds": cfg.rounds, "feedback_tests": cfg.feedback_tests, "feedback": cfg.feedback,
                         "ranker": cfg.ranker, "refine_tests": cfg.refine_tests,
                         "budget_baseline": cfg.budget_baseline, "round0_dir": str(bench.run_dir)}  # fmt: skip
    trajectories = [s.to_json() for s in states]
    atomic_write_jsonl(run_dir / rundir.SAMPLES_FILE, trajectories)
    atomic_write_json(run_dir / rundir.SUMMARY_FILE, summary)
    return RefineResult(run_dir=run_dir, summary=summary, trajectories=trajectories)


def _over(ours: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    """``bench``'s values over ``ours``, nested dicts merged (keeps the extra ranker's BoN keys beside bench's)."""
    out = dict(ours)
    for key, value in bench.items():
        mine = out.get(key)
        out[key] = _over(mine, value) if isinstance(value, dict) and isinstance(mine, dict) else value
    return out


def _default_dir(cfg: BenchConfig) -> Path:
    """runs/refine-<coder>-<dataset>: one directory per model and dataset, so a re-run resumes it."""
    name = Path(cfg.dataset).stem if cfg.dataset.endswith((".json", ".jsonl")) else cfg.dataset
    return Path("runs") / f"refine-{rundir.model_basename(cfg.coder.model)}-{rundir.slug(name)}"


def _measure(cfg: RefineConfig, states: list[TaskState], spend: dict[str, int], repairs: dict[str, int],
             tests: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    from cure_bench.scoring.metrics import parse_bon_spec

    bench = cfg.bench
    bon = parse_bon_spec(bench.bon, bench.k_code, bench.k_case)
    metrics = round_metrics([s.table for s in states], bon=bon, pass_at=bench.pass_at, protocol=bench.protocol,
                            ranker=cfg.ranker, spend=dict(spend), counts={**repairs, **tests})  # fmt: skip
    code = [n for s in states for n in s.response_tokens()[0]]
    tests_ = [n for s in states for n in s.response_tokens()[1]]
    metrics["mean_code_response_tokens"] = sum(code) / len(code) if code else None
    metrics["mean_test_response_tokens"] = sum(tests_) / len(tests_) if tests_ else None
    return metrics


def _refine_round(ctx: _Round, states: list[TaskState], r: int, spend: dict[str, int]) -> dict[str, Any]:
    cfg = ctx.cfg
    tests = test_counts([], [], 0)
    if cfg.refine_tests:
        tests = _revise_tests(ctx, states, r, spend)
    before = [s.table for s in states]
    todo = program_feedback(ctx.runner, states, cfg.feedback_tests, cfg.feedback == "public")
    msgs = [(t, repair_prompt(states[t].task, states[t].programs[i] or "", fb, r, ctx.agents.text[0]))
            for t, i, fb in todo]  # fmt: skip
    repaired: list[list[int]] = [[] for _ in states]

    def apply(n: int, got: Completion) -> bool:
        t, i, fb = todo[n]
        st = states[t]
        st.programs[i] = ctx.agents.protocol.extract_program(got.text)
        st.versions[i].append({"round": r, "program": st.programs[i], "feedback": [f.to_json() for f in fb],
                               "answer": got.text, "tokens": got.tokens})  # fmt: skip
        spend["coder_tokens"] += got.tokens or 0
        repaired[t].append(i)
        return True

    ask_and_judge(ctx, states, "coder", msgs, f"generate repairs (round {r})", apply, changed=bool(todo))
    spend["coder_requests"] += len(todo)
    for st, idx in zip(states, repaired, strict=True):
        for i in idx:
            st.stamp(i)
        st.close_round(r, cfg.ranker, cfg.bench.protocol)
    return _measure(cfg, states, spend, repair_counts(before, [s.table for s in states], repaired), tests)


def _revise_tests(ctx: _Round, states: list[TaskState], r: int, spend: dict[str, int]) -> dict[str, int]:
    """The tester's half: every test no program passes goes back to the tester with the programs' outputs."""
    wanted = disagreed_tests(states)
    if not wanted:
        return test_counts([], [], 0)
    groups = output_groups(ctx.runner, states, wanted)
    msgs = [(t, revise_test_prompt(states[t].task, states[t].tests[j], g, r, ctx.agents.text[1]))
            for (t, j), g in zip(wanted, groups, strict=True)]  # fmt: skip
    before = [s.table for s in states]
    revised = 0

    def apply(n: int, got: Completion) -> bool:
        nonlocal revised
        (t, j), g = wanted[n], groups[n]
        st = states[t]
        new = ctx.agents.protocol.extract_test(got.text)
        st.test_versions[j].append({"round": r, "input": (new or st.tests[j]).input,
                                    "output": (new or st.tests[j]).output, "extracted": new is not None,
                                    "shown": [x.to_json() for x in g], "answer": got.text,
                                    "tokens": got.tokens})  # fmt: skip
        spend["tester_tokens"] += got.tokens or 0
        if new is None or new == st.tests[j]:
            return False
        st.tests[j] = new
        revised += 1
        return True

    ask_and_judge(ctx, states, "tester", msgs, f"generate test revisions (round {r})", apply, changed=False)
    spend["tester_requests"] += len(wanted)
    return test_counts(before, [s.table for s in states], revised)
