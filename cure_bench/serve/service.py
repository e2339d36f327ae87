"""The reward service without HTTP: tests for problems, rewards for completions, Best-of-N, OpenRLHF.

The FastAPI app is a thin shell over ``RewardService``; a notebook user (or the load benchmark's
in-process baseline) can await these methods directly. Every method is async and never blocks the
event loop: tester calls and executions run in threads (see ``tester`` and ``execution``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cure_bench.serve.config import ServeConfig
from cure_bench.serve.errors import BadRequestError, PayloadTooLargeError
from cure_bench.serve.execution import ExecutionService, JudgeRequest
from cure_bench.serve.models import (
    GetRewardRequest,
    GetRewardResponse,
    ScoreItem,
    ScoreOptions,
    ScoreResult,
    SelectRequest,
    SelectResponse,
    SlimeRewardDetail,
    SlimeRewardRequest,
    TestOut,
    TestsRequest,
    TestsResponse,
)
from cure_bench.serve.prometheus import Registry
from cure_bench.serve.query_split import split_response
from cure_bench.serve.reward_rules import ExtractMode, parse_label, program_from, prompt_text, score_row, select_index
from cure_bench.serve.run_code import RunCodeRequest, RunCodeResponse, run_code_response
from cure_bench.serve.store import TestSet
from cure_bench.serve.tester import TesterService
from cure_bench.types import ExecJob, Verdict

log = logging.getLogger(__name__)

NO_TESTS = "the tester produced no usable test for this problem (reward 0)"


@dataclass
class _Prepared:
    """One item, resolved: its test set and the program to run (None when none was found)."""

    test_set: TestSet
    program: str | None


class RewardService:
    """Scores completions against tests the tester wrote; one instance per server."""

    def __init__(self, config: ServeConfig, tester: TesterService, execution: ExecutionService, metrics: Registry):
        self.config = config
        self.tester = tester
        self.execution = execution
        self.metrics = metrics

    async def tests(self, request: TestsRequest) -> TestsResponse:
        k = request.num_tests or self.config.k_case
        if k > self.config.max_num_tests:
            raise BadRequestError(f"num_tests {k} is above this server's limit {self.config.max_num_tests}")
        test_set, cached = await self.tester.tests_for(request.problem, k, request.task_id)
        return TestsResponse(
            task_id=request.task_id or test_set.task_id,
            tests=[TestOut(input=t.input, output=t.output) for t in test_set.tests],
            cached=cached,
            samples=test_set.samples,
        )

    async def score(self, items: Sequence[ScoreItem], options: ScoreOptions) -> list[ScoreResult]:
        """One result per item, in order; rewards follow ``options.reward``."""
        results, _ = await self._score(items, options)
        return results

    async def _score(
        self, items: Sequence[ScoreItem], options: ScoreOptions
    ) -> tuple[list[ScoreResult], list[list[Verdict]]]:
        """Results and the verdict rows behind them."""
        self._check_size(len(items), "items")
        test_sets = await self._test_sets(items)
        programs = [program_from(item.completion, item.code, options.extract) for item in items]
        too_big = {i for i, p in enumerate(programs) if p is not None and len(p) > self.config.max_code_bytes}
        prepared = [_Prepared(test_sets[i], None if i in too_big else p) for i, p in enumerate(programs)]
        rows = await self._judge(prepared, options)
        self.metrics.inc("cure_serve_items_scored_total", len(items))
        results = []
        for i, (item, prep, row) in enumerate(zip(items, prepared, rows, strict=True)):
            score = score_row(row, options.reward)
            error = None
            if i in too_big:
                error = f"the program is above this server's max_code_bytes {self.config.max_code_bytes} (reward 0)"
            elif prep.program is None:
                error = _no_program_message(item, options.extract)
            elif not prep.test_set.tests:
                error = NO_TESTS
            results.append(
                ScoreResult(
                    task_id=item.task_id or prep.test_set.task_id,
                    reward=score.reward,
                    pass_rate=score.pass_rate,
                    passed=score.passed,
                    total=score.total,
                    extract_ok=prep.program is not None,
                    error=error,
                )
            )
        return results, rows

    async def select(self, request: SelectRequest) -> SelectResponse:
        """Best-of-N among the candidates by the tester's tests, picked by the request's ranker (CURE's rule)."""
        self._check_size(len(request.candidates), "candidates")
        items = [ScoreItem(problem=request.problem, task_id=request.task_id, completion=c) for c in request.candidates]
        results, rows = await self._score(items, request.options)
        passed = [r.passed for r in results]
        try:
            best = select_index(rows, request.ranker)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
        return SelectResponse(
            task_id=results[0].task_id,
            best_index=best,
            ranker=request.ranker,
            scores=[r.pass_rate for r in results],
            passed=passed,
            total=results[0].total,
        )

    async def get_reward(self, request: GetRewardRequest) -> GetRewardResponse:
        """OpenRLHF's remote reward model: the response is found in the query (``query_split``); never the
        prompt text. A query whose response cannot be found gets reward 0 and says so in ``extra_logs``."""
        if not request.query:  # an empty shard of a batch split over several reward URLs
            return GetRewardResponse(
                rewards=[], scores=[], extra_logs={"pass_rate": [], "extract_ok": [], "num_tests": []}
            )
        items, unfound = [], []
        for i, query in enumerate(request.query):
            problem, task_id = parse_label(request.labels[i])
            if problem is None and task_id is None:
                raise BadRequestError(
                    f"labels[{i}] gives no problem: send the problem text, or a JSON object with 'problem' or "
                    "'task_id' (OpenRLHF: --data.label_key naming a dataset column that holds it)"
                )
            response = split_response(query, request.prompts[i] if request.prompts is not None else None)
            if response is None:
                unfound.append(i)
            items.append(ScoreItem(problem=problem, task_id=task_id, completion=response or ""))
        results = await self.score(items, request.options)
        if unfound:
            log.warning("get_reward: no response found in %d of %d queries (reward 0)", len(unfound), len(items))
        return GetRewardResponse(
            rewards=[r.reward for r in results],
            scores=[r.pass_rate for r in results],
            extra_logs={
                "pass_rate": [r.pass_rate for r in results],
                "extract_ok": [float(r.extract_ok) for r in results],
                "num_tests": [float(r.total) for r in results],
            },
        )

    async def slime_reward(self, request: SlimeRewardRequest) -> SlimeRewardDetail:
        """slime's ``remote_rm``: one sample; the label (else metadata, else the prompt) names the problem."""
        problem, task_id = parse_label(request.label)
        if problem is None and task_id is None and request.metadata:
            problem, task_id = parse_label({k: v for k, v in request.metadata.items() if k in ("problem", "task_id")})
        if problem is None and task_id is None:
            problem = prompt_text(request.prompt)
        if problem is None and task_id is None:
            raise BadRequestError(
                "the sample names no problem: set its label to the problem text (or JSON with 'problem' or "
                "'task_id'), or send a prompt with a user message"
            )
        item = ScoreItem(problem=problem, task_id=task_id, completion=request.response)
        result = (await self.score([item], request.options))[0]
        return SlimeRewardDetail(
            reward=result.reward,
            pass_rate=result.pass_rate,
            passed=result.passed,
            num_tests=result.total,
            extract_ok=result.extract_ok,
            error=result.error,
        )

    async def run_code(self, request: RunCodeRequest) -> RunCodeResponse:
        """SandboxFusion's ``/run_code`` for Python: one execution, no comparison (see ``run_code``)."""
        size = len(request.code.encode("utf-8"))
        if size > self.config.max_code_bytes:
            raise PayloadTooLargeError(
                f"code is {size} bytes; this server runs programs of at most {self.config.max_code_bytes} bytes "
                "(max_code_bytes)"
            )
        memory = self.config.memory_limit_mb
        if request.memory_limit_MB != -1:
            memory = min(memory, request.memory_limit_MB)
        job = ExecJob(request.code, request.stdin or "", time_limit_s=request.run_timeout, memory_limit_mb=memory)
        return run_code_response(await self.execution.run_one(job))

    def _check_size(self, n: int, what: str) -> None:
        if n > self.config.max_items:
            raise BadRequestError(f"{n} {what} in one request; this server takes at most {self.config.max_items}")

    async def _test_sets(self, items: Sequence[ScoreItem]) -> list[TestSet]:
        """The test set of every item; each distinct problem or task_id is looked up once, concurrently."""
        k = self.config.k_case
        lookups: dict[tuple[str, str], asyncio.Future[TestSet] | asyncio.Task[TestSet]] = {}
        which: list[tuple[str, str]] = []
        for item in items:
            if item.problem is not None:
                ref = ("key", self.tester.key_for(item.problem, k))
                if ref not in lookups:
                    lookups[ref] = asyncio.ensure_future(self._by_problem(item.problem, k))
            else:
                ref = ("task", str(item.task_id))
                if ref not in lookups:
                    lookups[ref] = asyncio.ensure_future(self.tester.tests_for_task(str(item.task_id)))
            which.append(ref)
        outcomes = await asyncio.gather(*lookups.values(), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return [lookups[ref].result() for ref in which]

    async def _by_problem(self, problem: str, k: int) -> TestSet:
        test_set, _cached = await self.tester.tests_for(problem, k)
        return test_set

    async def _judge(self, prepared: Sequence[_Prepared], options: ScoreOptions) -> list[list[Verdict]]:
        """Verdict row of every item: items of one problem go to the sandbox as one table."""
        time_limit = options.time_limit_s or self.config.time_limit_s
        groups: dict[str, list[int]] = {}
        for i, prep in enumerate(prepared):
            groups.setdefault(prep.test_set.key, []).append(i)
        requests = [
            JudgeRequest(
                task_id=prepared[idx[0]].test_set.task_id,
                programs=[prepared[i].program for i in idx],
                tests=prepared[idx[0]].test_set.tests,
                time_limit_s=time_limit,
                memory_limit_mb=self.config.memory_limit_mb,
            )
            for idx in groups.values()
        ]
        tables = await self.execution.judge(requests)
        rows: list[list[Verdict]] = [[] for _ in prepared]
        for idx, table in zip(groups.values(), tables, strict=True):
            for position, i in enumerate(idx):
                rows[i] = table[position]
        return rows


def _no_program_message(item: ScoreItem, extract: ExtractMode) -> str:
    if item.code is not None or extract is ExtractMode.NONE:
        return "the program is empty (reward 0)"
    return "no ```python block found in the completion (reward 0); send extract='none' to run it as is"
