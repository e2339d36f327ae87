import json
import os
import time

import pytest

from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import ConfigError
from cure_bench.runs import directory as rundir
from cure_bench.types import SamplingParams


def test_default_dir_resumes_the_newest_unfinished_run_with_the_same_settings(tmp_path):
    root = tmp_path / "runs"
    key = rundir.resume_key({"model": "m", "k": 4})
    other = rundir.resume_key({"model": "m", "k": 8})
    assert key != other

    first = rundir.resolve_run_dir(None, "m-sample", key, resume=True, runs_root=root)
    rundir.start_run(first, key, {})
    assert rundir.resolve_run_dir(None, "m-sample", key, resume=True, runs_root=root) == first
    # different settings, or --no-resume: a new directory
    assert rundir.resolve_run_dir(None, "m-sample", other, resume=True, runs_root=root) != first
    assert rundir.resolve_run_dir(None, "m-sample", key, resume=False, runs_root=root) != first
    # a finished run is never resumed
    (first / rundir.SUMMARY_FILE).write_text("{}")
    assert rundir.resolve_run_dir(None, "m-sample", key, resume=True, runs_root=root) != first


def test_newest_of_several_unfinished_runs_wins(tmp_path):
    root = tmp_path / "runs"
    key = "k1"
    old, new = root / "p-1", root / "p-2"
    for path in (old, new):
        rundir.start_run(path, key, {})
    past = time.time() - 100
    os.utime(old, (past, past))
    assert rundir.find_unfinished(root, "p", key) == new
    assert json.loads((new / rundir.RUN_FILE).read_text())["resume_key"] == key


def test_no_resume_with_explicit_dir_forgets_cached_generations(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / rundir.GENERATION_CACHE).write_text("x")
    (out / rundir.EXEC_CACHE_DIR).mkdir()
    (out / "summary.json").write_text("{}")
    (out / rundir.RUN_FILE).write_text('{"resume_key": "k", "settings": {}}')  # a finished run, same settings
    assert rundir.resolve_run_dir(out, "p", "k", resume=False) == out
    assert not (out / rundir.GENERATION_CACHE).exists() and not (out / rundir.EXEC_CACHE_DIR).exists()
    assert (out / "summary.json").exists()  # results stay until the new run replaces them atomically


def test_slug_makes_model_names_file_safe():
    assert rundir.slug("Qwen/Qwen2.5-7B-Instruct") == "Qwen--Qwen2.5-7B-Instruct"
    assert rundir.slug("a b:c") == "a_b_c"
    assert rundir.slug("[x]*") == "x"


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"k_code": 0}, "--k-code"),
        ({"k_case": 0}, "--k-case"),
        ({"max_test": 0}, "--max-test"),
        ({"limit": 0}, "--limit"),
        ({"bon": "4by4"}, "--bon"),
        ({"sampling": SamplingParams(temperature=3.0)}, "--temperature"),
        ({"sampling": SamplingParams(top_p=0.0)}, "--top-p"),
        ({"workers": 0}, "--workers"),
        ({"pass_at": (5,), "k_code": 4}, "pass@k"),
    ],
)
def test_bench_config_errors_name_the_flag(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        BenchConfig(dataset="sample", coder=ModelConfig("m"), **kwargs)


def test_single_mode_does_not_need_tests():
    cfg = BenchConfig(dataset="sample", coder=ModelConfig("m"), single=True, k_case=0)
    assert cfg.tester_model.model == "m"
