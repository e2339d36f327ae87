"""Pure pieces of the reward server: scoring rules, labels, the test store, metrics text, config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cure_bench.errors import ConfigError
from cure_bench.serve import ServeConfig
from cure_bench.serve.prometheus import Registry
from cure_bench.serve.reward_rules import (
    ExtractMode,
    RewardMode,
    parse_label,
    program_from,
    score_row,
    select_index,
)
from cure_bench.serve.store import TestSet, TestStore, cache_key, normalise_problem
from cure_bench.serve.transport import make_item, resolve_url
from cure_bench.serve.trl_reward import message_text as _message_text
from cure_bench.types import TestCase, Verdict

A, W, T = Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.TIME_LIMIT
IDENTITY = {"backend": "openai", "model": "m", "base_url": "http://x/v1"}


def test_score_row_pass_rate_and_all_pass() -> None:
    assert score_row([A, W, A, T], RewardMode.PASS_RATE).reward == 0.5
    assert score_row([A, W, A, T], RewardMode.ALL_PASS).reward == 0.0
    full = score_row([A, A], RewardMode.ALL_PASS)
    assert (full.reward, full.pass_rate, full.passed, full.total) == (1.0, 1.0, 2, 2)
    empty = score_row([], RewardMode.ALL_PASS)  # no tests: nothing was shown correct
    assert (empty.reward, empty.pass_rate, empty.total) == (0.0, 0.0, 0)


def best_index(passed: list[int], total: int = 5) -> int:
    """The registry's pick from verdict rows with ``passed[i]`` accepted tests out of ``total``."""
    return select_index([[A] * p + [W] * (total - p) for p in passed])


def test_best_index_is_most_passed_first_on_ties() -> None:
    assert best_index([1, 3, 3, 2]) == 1
    assert best_index([0, 0, 0]) == 0
    assert best_index([2, 1, 5]) == 2
    with pytest.raises(ValueError):
        best_index([])


def test_program_from_each_mode() -> None:
    answer = "plan\n```python\nprint(1)\n```\nthen\n```python\nprint(2)\n```"
    assert program_from(answer, None, ExtractMode.LAST_PYTHON_BLOCK) == "print(2)"
    assert program_from(answer, None, ExtractMode.NONE) == answer
    assert program_from("no code", None, ExtractMode.LAST_PYTHON_BLOCK) is None
    assert program_from(None, "print(3)", ExtractMode.LAST_PYTHON_BLOCK) == "print(3)"
    assert program_from(None, "   ", ExtractMode.NONE) is None
    assert (
        program_from("<think>```python\nprint(0)\n```</think>no final code", None, ExtractMode.LAST_PYTHON_BLOCK)
        is None
    )


def test_parse_label_forms() -> None:
    assert parse_label("Print the sum of a and b.") == ("Print the sum of a and b.", None)
    assert parse_label(json.dumps({"problem": "P", "task_id": 7})) == ("P", "7")
    assert parse_label({"task_id": "abc"}) == (None, "abc")
    assert parse_label("{not json but a problem") == ("{not json but a problem", None)
    assert parse_label("   ") == (None, None)
    assert parse_label(None) == (None, None)
    assert parse_label("[1, 2]") == ("[1, 2]", None)  # only objects are labels; anything else is problem text


def test_cache_key_ignores_whitespace_but_not_tester_prompt_or_k() -> None:
    base = cache_key("Read n.\n  Print n.", IDENTITY, "h", 16)
    assert normalise_problem(" Read n.\n  Print n. ") == "Read n. Print n."
    assert cache_key("Read n. Print n.", IDENTITY, "h", 16) == base
    assert cache_key("Read n. Print n!", IDENTITY, "h", 16) != base
    assert cache_key("Read n. Print n.", {**IDENTITY, "model": "other"}, "h", 16) != base
    assert cache_key("Read n. Print n.", {**IDENTITY, "base_url": "http://y/v1"}, "h", 16) != base
    assert cache_key("Read n. Print n.", IDENTITY, "h2", 16) != base
    assert cache_key("Read n. Print n.", IDENTITY, "h", 8) != base


def _set(key: str, task_id: str = "t") -> TestSet:
    return TestSet(key, task_id, "problem", 2, 2, (TestCase("1\n", "2\n"), TestCase("a\tb\n", 'q"\n')))


def test_store_survives_reopen_and_binds_task_ids(tmp_path: Path) -> None:
    store = TestStore(tmp_path / "tests.sqlite")
    store.put(_set("k1", "t-1"))
    store.bind("alias", "k1")
    assert store.peek("k1") == _set("k1", "t-1")
    store.close()

    reopened = TestStore(tmp_path / "tests.sqlite")
    assert reopened.peek("k1") is None  # memory is empty after a restart...
    assert reopened.load("k1") == _set("k1", "t-1")  # ...SQLite has it
    assert reopened.peek("k1") is not None
    assert reopened.key_of("alias") == "k1" and reopened.key_of("t-1") == "k1"
    assert reopened.key_of("nope") is None and reopened.count() == 1
    reopened.close()


def test_memory_store_is_bounded_lru() -> None:
    store = TestStore(None, memory_size=2)
    store.put(_set("a"))
    store.put(_set("b"))
    assert store.peek("a") is not None  # a is now the most recent
    store.put(_set("c"))
    assert store.peek("b") is None and store.peek("a") is not None and store.peek("c") is not None
    assert store.load("b") is None  # no SQLite behind a memory-only store


def test_corrupt_cache_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "tests.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match=r"tests\.sqlite.*--cache-dir"):
        TestStore(bad)


def test_metrics_render_prometheus_text() -> None:
    reg = Registry()
    reg.describe("x_total", "counter", "Things.")
    reg.describe("lat_seconds", "histogram", "Latency.")
    reg.describe("idle_total", "counter", "Never touched.")
    reg.inc("x_total", endpoint='/a"b')
    reg.inc("x_total", 2, endpoint='/a"b')
    reg.observe("lat_seconds", 0.02, endpoint="/s")
    reg.observe("lat_seconds", 7.0, endpoint="/s")
    text = reg.render()
    assert "# TYPE x_total counter" in text and 'x_total{endpoint="/a\\"b"} 3' in text
    assert "idle_total 0" in text
    assert 'lat_seconds_bucket{endpoint="/s",le="0.01"} 0' in text
    assert 'lat_seconds_bucket{endpoint="/s",le="0.025"} 1' in text
    assert 'lat_seconds_bucket{endpoint="/s",le="10"} 2' in text
    assert 'lat_seconds_bucket{endpoint="/s",le="+Inf"} 2' in text
    assert 'lat_seconds_count{endpoint="/s"} 2' in text and 'lat_seconds_sum{endpoint="/s"} 7.02' in text
    assert reg.value("x_total", endpoint='/a"b') == 3 and reg.value("lat_seconds", endpoint="/s") == 2


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"tester": " "}, "--tester"),
        ({"k_case": 0}, "--k-case"),
        ({"k_case": 500}, "--k-case"),
        ({"workers": 0}, "--workers"),
        ({"port": 70000}, "--port"),
        ({"request_timeout_s": 0}, "--request-timeout"),
        ({"auth_token": ""}, "--auth-token"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
    ],
)
def test_config_rejects_bad_values_naming_the_flag(overrides: dict, flag: str, tmp_path: Path) -> None:
    settings = {"tester": "m", "cache_dir": tmp_path, **overrides}
    with pytest.raises(ConfigError, match=flag):
        ServeConfig(**settings)


def test_config_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CURE_CACHE_DIR", str(tmp_path))
    assert ServeConfig(tester="m").cache_dir == tmp_path / "reward-serve"
    monkeypatch.delenv("CURE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ServeConfig(tester="m").cache_dir == tmp_path / "xdg" / "cure" / "reward-serve"


def test_client_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURE_REWARD_URL", raising=False)
    with pytest.raises(ConfigError, match="CURE_REWARD_URL"):
        resolve_url(None)
    monkeypatch.setenv("CURE_REWARD_URL", "http://h:1/get_reward")
    assert resolve_url(None) == "http://h:1"
    assert resolve_url("http://h:2/") == "http://h:2"
    assert make_item("code", "P") == {"completion": "code", "problem": "P"}
    assert make_item("code", '{"task_id": "t"}') == {"completion": "code", "task_id": "t"}
    assert make_item("code", None, {"problem": "Q"}) == {"completion": "code", "problem": "Q"}
    with pytest.raises(ConfigError, match="ground truth"):
        make_item("code", "")
    conversation = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    assert _message_text(conversation, "assistant") == "ab"
    assert _message_text(conversation, "user") == "u1"
    assert _message_text("plain", "user") == "plain"
