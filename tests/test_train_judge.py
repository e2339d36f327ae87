"""The training reward function: rows -> sandbox verdict tables -> CURE advantages, per row, in row order."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest

from cure_bench.types import Task, TestCase
from cure_train.data import CODE, TEST, PromptSettings, TaskPairSampler, build_rows, view_for_tester
from cure_train.reward_fn import CureJudge, expand_columns, group_rows, sandbox_builder
from cure_train.rewards import RewardConfig, task_rewards


def code(src: str) -> str:
    return f"Let me think.\n```python\n{src}\n```\n"


def test_answer(inp: str, out: str) -> str:
    return f"Reasoning...\n**Test Input:**\n```\n{inp}\n```\n**Test Output:**\n```\n{out}\n```\n**Explanation:**\nok"


test_answer.__test__ = False  # type: ignore[attr-defined]

DOUBLE = Task(
    "double", "Print twice n.", 2.0, [TestCase("1\n", "2\n")], [TestCase("3\n", "6\n"), TestCase("5\n", "10\n")]
)
NEG = Task("neg", "Print -n.", 2.0, [], [TestCase("4\n", "-4\n")])

# task 0 (double): programs correct / passes only "3" / no program; tests good / bad / unextractable
ROWS_0 = [
    (0, CODE, code("print(int(input()) * 2)"), 10),
    (0, CODE, code("n = int(input())\nprint(6 if n == 3 else 0)"), 20),
    (0, CODE, "I cannot solve this.", 30),
    (0, TEST, test_answer("7", "14"), 5),
    (0, TEST, test_answer("3", "7"), 6),
    (0, TEST, "no test here", 7),
]
# task 1 (neg): every program wrong -> only a code signal if pass rates differ (they do not) -> no signal
ROWS_1 = [
    (1, CODE, code("print(input())"), 10),
    (1, CODE, code("print(0)"), 10),
    (1, CODE, code("print(1/0)"), 10),
    (1, TEST, test_answer("1", "-1"), 5),
    (1, TEST, test_answer("2", "-2"), 5),
    (1, TEST, test_answer("3", "-3"), 5),
]


@pytest.fixture(scope="module")
def judge() -> Iterator[CureJudge]:
    j = CureJudge(
        [DOUBLE, NEG],
        [DOUBLE.hidden_tests, NEG.hidden_tests],
        RewardConfig(),
        k=3,
        open_builder=sandbox_builder(workers=2, isolation="auto"),
    )
    yield j
    j.close()


def test_score_matches_task_rewards_on_the_expected_tables(judge: CureJudge) -> None:
    score = judge.score(ROWS_0 + ROWS_1)
    # hand-worked verdicts of task 0: hidden tests (3 -> 6, 5 -> 10); generated tests (7 -> 14, 3 -> 7, none)
    gt = [[1, 1], [1, 0], [0, 0]]
    gen = [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    code_adv, test_adv = task_rewards(gt, gen, [10, 20, 30], [5, 6, 7], RewardConfig())
    assert code_adv is not None and test_adv is not None
    np.testing.assert_allclose(score.advantages[:3], code_adv)
    np.testing.assert_allclose(score.advantages[3:6], test_adv)
    # by hand: test rewards [+1 (rejects both wrong), -0 (lets none through), -0] -> z-normalised
    np.testing.assert_allclose(score.advantages[3:6], [np.sqrt(2), -1 / np.sqrt(2), -1 / np.sqrt(2)])
    assert score.advantages[6:] == [0.0] * 6  # task 1: no program passes anything -> no signal at all
    stats = score.stats
    assert stats["n_tasks"] == 2 and stats["signal_share"] == 0.5
    assert stats["code_signal_share"] == 0.5 and stats["test_signal_share"] == 0.5
    assert stats["code_reward_mean"] == pytest.approx((1 + 0.5 + 0) / 6)
    assert stats["code_acc"] == pytest.approx(1 / 6)
    assert stats["no_program_share"] == pytest.approx(1 / 6) and stats["no_test_share"] == pytest.approx(1 / 6)
    assert stats["unit_test_acc"] == pytest.approx(1 / 2)  # task 0: of 2 extracted tests, 1 is passed by P0
    assert stats["code_length_mean"] == pytest.approx(15.0)


def test_advantages_follow_the_rows_in_any_order(judge: CureJudge) -> None:
    ordered = judge.score(ROWS_0 + ROWS_1)
    by_text = {row[2]: adv for row, adv in zip(ROWS_0 + ROWS_1, ordered.advantages, strict=True)}
    shuffled = ROWS_1 + ROWS_0
    random.Random(3).shuffle(shuffled)
    # each answer keeps its own advantage wherever it sits (its verdicts travel with it)
    again = judge.score(shuffled)
    for row, adv in zip(shuffled, again.advantages, strict=True):
        assert adv == pytest.approx(by_text[row[2]])


def test_call_returns_one_number_per_completion(judge: CureJudge) -> None:
    rows = ROWS_0 + ROWS_1
    completions = [[{"role": "assistant", "content": text}] for _, _, text, _ in rows]
    out = judge(
        prompts=[[]] * len(rows),
        completions=completions,
        completion_ids=[[0] * n for *_, n in rows],
        task_index=[r[0] for r in rows],
        role=[r[1] for r in rows],
        trainer_state=None,
    )
    assert len(out) == len(rows) and judge.last is not None and judge.last.advantages == out


def test_group_rows_refuses_split_tasks() -> None:
    with pytest.raises(RuntimeError, match="task 0: the batch holds 3 programs and 0 tests"):
        group_rows(ROWS_0[:3], k=3)
    with pytest.raises(ValueError, match="unknown role"):
        group_rows([(0, "other", "", 1)], k=1)


def test_expand_columns_puts_false_where_no_test_was_extracted() -> None:
    full = expand_columns([[True, False], [True, True]], kept=[0, 2], n_columns=3)
    assert full.tolist() == [[True, False, False], [True, False, True]]
    assert expand_columns([[], []], kept=[], n_columns=2).tolist() == [[False, False], [False, False]]


def test_rows_and_tester_task_view() -> None:
    rows = build_rows([DOUBLE, NEG], PromptSettings(show_examples=True, max_examples=1))
    assert [(r["task_index"], r["role"]) for r in rows] == [(0, CODE), (0, TEST), (1, CODE), (1, TEST)]
    assert rows[0]["prompt"][-1]["role"] == "user" and "Print twice n." in rows[0]["prompt"][-1]["content"]
    assert "We already have one test sample" in rows[1]["prompt"][-1]["content"]
    hidden = build_rows([DOUBLE], PromptSettings(show_examples=False))
    assert "We already have" not in hidden[1]["prompt"][-1]["content"]
    many = Task("m", "q", 1.0, [TestCase("1", "1"), TestCase("2", "2")], [])
    assert len(view_for_tester(many, 1).example_tests) == 1 and view_for_tester(DOUBLE, 1) is DOUBLE


def test_task_pair_sampler_keeps_pairs_and_replays_the_same_order() -> None:
    sampler = TaskPairSampler(n_tasks=5, tasks_per_batch=2, mini_repeat_count=3, repeat_count=2, seed=7)
    stream = list(sampler)
    batch = 2 * 2 * 3  # rows of one generation batch
    assert len(stream) == len(sampler) == 2 * 2 * batch  # 2 full batches (5 // 2), each repeated twice
    for start in range(0, len(stream), batch):
        chunk = stream[start : start + batch]
        tasks = {row // 2 for row in chunk}
        assert len(tasks) == 2
        for task in tasks:  # both roles of every task, k times each, contiguous
            assert chunk.count(2 * task) == 3 and chunk.count(2 * task + 1) == 3
    assert stream[:batch] == stream[batch : 2 * batch]  # repeated for the accumulation micro-steps
    again = TaskPairSampler(n_tasks=5, tasks_per_batch=2, mini_repeat_count=3, repeat_count=2, seed=7)
    assert list(again) == stream  # same seed, same epoch -> same order (what --resume relies on)
    sampler.set_epoch(1)
    assert sampler.batches(1) != sampler.batches(0) or sampler.task_order(1) != sampler.task_order(0)
    with pytest.raises(ValueError, match="cannot fill one step"):
        TaskPairSampler(n_tasks=1, tasks_per_batch=2, mini_repeat_count=2)


def test_lengths_exclude_the_closing_eos_and_feed_length_regularisation() -> None:
    efficient = RewardConfig(enable_efficient=True, min_len_threshold=1, max_len_threshold=100)
    j = CureJudge(
        [DOUBLE],
        [DOUBLE.hidden_tests],
        efficient,
        k=4,
        open_builder=sandbox_builder(workers=2, isolation="auto"),
        eos_token_ids=[99],
    )
    # four correct programs: all rewards 1, kept by enable_efficient, then ranked by length
    rows = [
        (0, CODE, code("print(int(input()) * 2)"), 10),
        (0, CODE, code("n = int(input())\nprint(n + n)"), 14),
        (0, CODE, code("print(2 * int(input()))"), 30),
        (0, CODE, code("x = int(input())\nprint(x * 2)"), 40),
        *ROWS_0[3:],
        (0, TEST, test_answer("0", "0"), 8),
    ]
    ids = [[1] * n + [99] if i % 2 else [1] * n for i, (*_, n) in enumerate(rows)]  # odd rows end with EOS
    try:
        out = j(
            prompts=[[]] * len(rows),
            completions=[[{"role": "assistant", "content": r[2]}] for r in rows],
            completion_ids=ids,
            task_index=[r[0] for r in rows],
            role=[r[1] for r in rows],
        )
    finally:
        j.close()
    gt = [[1, 1]] * 4
    gen = [[1, 0, 0, 1]] * 4
    code_adv, test_adv = task_rewards(gt, gen, [10, 14, 30, 40], [5, 6, 7, 8], efficient)
    assert code_adv is not None and test_adv is not None
    np.testing.assert_allclose(out[:4], code_adv)
    np.testing.assert_allclose(out[4:], test_adv)
    counted_eos, _ = task_rewards(gt, gen, [10, 15, 30, 40], [5, 6, 7, 8], efficient)
    assert counted_eos is not None and not np.allclose(counted_eos, code_adv)  # the test can tell the two apart
