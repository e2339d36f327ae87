"""The generation cache and the cache-aware driver: keys, durability, resume asks only for what is missing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cure_bench.errors import BackendError, ConfigError
from cure_bench.generation.cache import GenerationCache
from cure_bench.generation.runner import generate_all
from cure_bench.types import ChatMessages, Completion, GenerationRequest, SampleCallback, SamplingParams

MSG_A: ChatMessages = (("system", "be brief"), ("user", "task A"))
MSG_B: ChatMessages = (("user", "task B"),)
PARAMS = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=256, seed=None)


class ScriptedGenerator:
    """In-process Generator: answers '<last user message>#<index>'; can fail after N samples."""

    backend = "scripted"

    def __init__(self, model: str = "m", fail_after: int | None = None, skip: set[int] | None = None) -> None:
        self.model = model
        self.fail_after = fail_after
        self.skip = skip or set()
        self.asked: list[tuple[str, tuple[int, ...]]] = []
        self.delivered = 0

    def generate(self, requests: Sequence[GenerationRequest], on_sample: SampleCallback) -> None:
        for req in requests:
            self.asked.append((req.messages[-1][1], req.sample_indices))
            for i in req.sample_indices:
                if self.fail_after is not None and self.delivered >= self.fail_after:
                    raise BackendError("scripted failure")
                if i in self.skip:
                    continue
                on_sample(req, i, Completion(text=f"{req.messages[-1][1]}#{i}", tokens=i, finish_reason="stop"))
                self.delivered += 1

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model}

    def close(self) -> None:
        pass


def texts(results: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in row] for row in results]


# -- keys -------------------------------------------------------------------------------------------


def test_request_key_is_stable_and_changes_with_every_part() -> None:
    key = GenerationCache.request_key("openai", "m", MSG_A, PARAMS)
    assert key == GenerationCache.request_key("openai", "m", tuple(MSG_A), SamplingParams(0.7, 0.95, 256, None))
    assert len(key) == 64 and int(key, 16) >= 0
    variants = {
        GenerationCache.request_key("vllm", "m", MSG_A, PARAMS),
        GenerationCache.request_key("openai", "m2", MSG_A, PARAMS),
        GenerationCache.request_key("openai", "m", MSG_B, PARAMS),
        GenerationCache.request_key("openai", "m", (("system", "be brief"), ("user", "task A ")), PARAMS),
        GenerationCache.request_key("openai", "m", (("user", "be brief"), ("user", "task A")), PARAMS),
        GenerationCache.request_key("openai", "m", MSG_A, SamplingParams(0.8, 0.95, 256, None)),
        GenerationCache.request_key("openai", "m", MSG_A, SamplingParams(0.7, 1.0, 256, None)),
        GenerationCache.request_key("openai", "m", MSG_A, SamplingParams(0.7, 0.95, 512, None)),
        GenerationCache.request_key("openai", "m", MSG_A, SamplingParams(0.7, 0.95, 256, 1)),
    }
    assert key not in variants and len(variants) == 9


# -- storage ----------------------------------------------------------------------------------------


def test_put_get_roundtrip_survives_reopen_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "run" / "generations.sqlite"
    with GenerationCache(path) as cache:
        cache.put("k1", 0, Completion("zero", 3, "stop"))
        cache.put("k1", 2, Completion("two ünïcode", None, None))
        cache.put("k2", 0, Completion("other", 1, "length"))
        cache.put("k1", 0, Completion("zero again", 4, "stop"))  # same index replaces
        assert cache.get("missing") == {}
    with GenerationCache(path) as cache:
        assert cache.get("k1") == {0: Completion("zero again", 4, "stop"), 2: Completion("two ünïcode", None, None)}
        assert cache.get("k2") == {0: Completion("other", 1, "length")}
        assert cache.count() == 3
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_sample_is_durable_the_moment_put_returns(tmp_path: Path) -> None:
    """A process killed right after put() (no close, no atexit) still leaves the sample on disk."""
    path = tmp_path / "c.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        from cure_bench.generation.cache import GenerationCache
        from cure_bench.types import Completion
        cache = GenerationCache({str(path)!r})
        for i in range(3):
            cache.put("k", i, Completion(f"s{{i}}"))
        os._exit(9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert proc.returncode == 9
    with GenerationCache(path) as cache:
        assert {i: c.text for i, c in cache.get("k").items()} == {0: "s0", 1: "s1", 2: "s2"}


def test_unreadable_cache_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "generations.sqlite"
    path.write_bytes(b"this is not an sqlite database, just some bytes" * 100)
    with pytest.raises(ConfigError, match=r"generations\.sqlite.*--no-resume"):
        GenerationCache(path)


def test_cache_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    GenerationCache(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = '999' WHERE name = 'schema_version'")
    db.close()
    with pytest.raises(ConfigError, match="schema 999"):
        GenerationCache(path)


# -- generate_all -----------------------------------------------------------------------------------


def test_generate_all_asks_once_per_prompt_and_returns_ordered_samples(tmp_path: Path) -> None:
    gen = ScriptedGenerator()
    progress: list[tuple[int, int]] = []
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        out = generate_all(gen, cache, [(MSG_A, 3), (MSG_B, 2)], PARAMS, on_progress=lambda *a: progress.append(a))
    assert texts(out) == [["task A#0", "task A#1", "task A#2"], ["task B#0", "task B#1"]]
    assert [c.tokens for c in out[0]] == [0, 1, 2]
    assert gen.asked == [("task A", (0, 1, 2)), ("task B", (0, 1))]
    assert progress[0] == (0, 5) and progress[-1] == (5, 5) and len(progress) == 6


def test_resume_asks_only_for_missing_indices_and_more_k_reuses_the_first(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with GenerationCache(path) as cache:
        with pytest.raises(BackendError, match="scripted failure"):
            generate_all(ScriptedGenerator(fail_after=4), cache, [(MSG_A, 3), (MSG_B, 3)], PARAMS)
        assert cache.count() == 4  # every sample delivered before the failure is kept
    gen = ScriptedGenerator()
    progress: list[tuple[int, int]] = []
    with GenerationCache(path) as cache:
        out = generate_all(gen, cache, [(MSG_A, 3), (MSG_B, 5)], PARAMS, on_progress=lambda *a: progress.append(a))
    assert gen.asked == [("task B", (1, 2, 3, 4))]
    assert progress[0] == (4, 8)
    assert texts(out)[1] == [f"task B#{i}" for i in range(5)]
    gen = ScriptedGenerator()
    with GenerationCache(path) as cache:
        again = generate_all(gen, cache, [(MSG_A, 3), (MSG_B, 5)], PARAMS)
    assert gen.asked == [] and texts(again) == texts(out)


def test_other_model_or_params_do_not_reuse_samples(tmp_path: Path) -> None:
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        generate_all(ScriptedGenerator(model="m1"), cache, [(MSG_A, 2)], PARAMS)
        gen = ScriptedGenerator(model="m2")
        generate_all(gen, cache, [(MSG_A, 2)], PARAMS)
        assert gen.asked == [("task A", (0, 1))]
        gen = ScriptedGenerator(model="m1")
        generate_all(gen, cache, [(MSG_A, 2)], SamplingParams(temperature=0.0))
        assert gen.asked == [("task A", (0, 1))]


def test_identical_prompts_share_one_request_with_the_largest_k(tmp_path: Path) -> None:
    gen = ScriptedGenerator()
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        out = generate_all(gen, cache, [(MSG_A, 2), (MSG_B, 1), (MSG_A, 4), (MSG_B, 0)], PARAMS)
    assert gen.asked == [("task A", (0, 1, 2, 3)), ("task B", (0,))]
    assert texts(out) == [["task A#0", "task A#1"], ["task B#0"], [f"task A#{i}" for i in range(4)], []]


def test_a_generator_that_skips_samples_is_reported(tmp_path: Path) -> None:
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(BackendError, match=r"without samples \[1\].*re-run"):
            generate_all(ScriptedGenerator(skip={1}), cache, [(MSG_A, 3)], PARAMS)
        assert sorted(cache.get(GenerationCache.request_key("scripted", "m", MSG_A, PARAMS))) == [0, 2]


def test_nothing_to_ask_does_not_call_the_generator(tmp_path: Path) -> None:
    gen = ScriptedGenerator()
    with GenerationCache(tmp_path / "c.sqlite") as cache:
        assert generate_all(gen, cache, [], PARAMS) == []
        assert generate_all(gen, cache, [(MSG_A, 0)], PARAMS) == [[]]
    assert gen.asked == []


def test_on_completion_sees_only_freshly_generated_samples(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with GenerationCache(path) as cache:
        generate_all(ScriptedGenerator(), cache, [(MSG_A, 2)], PARAMS)
    seen: list[str] = []
    with GenerationCache(path) as cache:
        generate_all(ScriptedGenerator(), cache, [(MSG_A, 4)], PARAMS, on_completion=lambda c: seen.append(c.text))
    assert seen == ["task A#2", "task A#3"]  # the two cached samples are not counted as new tokens
