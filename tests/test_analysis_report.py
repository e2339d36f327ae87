"""Run directories built by hand in the bench's format: loading, `build_report` files, and rescoring."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from cure_bench.analysis import AnalysisSettings, SurfaceSettings, build_report, load_run
from cure_bench.analysis.rescore import RescoreOptions, rescore_run
from cure_bench.errors import ConfigError, DatasetError
from cure_bench.runs.reader import RunDirError
from cure_bench.scoring.metrics import compute_metrics
from cure_bench.types import TaskTable, TestCase
from tests.test_analysis_rankers import make_table, random_table

FAST = AnalysisSettings(resamples=200, surface=SurfaceSettings(samples=32))


def write_run(
    path: Path,
    tables: list[TaskTable],
    *,
    model: str = "coder-a",
    dataset: dict[str, Any] | None = None,
    programs: list[list[str | None]] | None = None,
    generated: list[list[TestCase]] | None = None,
    single: bool = False,
    metrics: dict[str, Any] | None = None,
    **manifest: Any,
) -> Path:
    """A run directory as the bench writes it: summary.json + samples.jsonl (table via TaskTable.to_json)."""
    path.mkdir(parents=True, exist_ok=True)
    k_code = max(t.n_programs for t in tables)
    k_case = 0 if single else max(t.n_generated for t in tables)
    # a manifest without "protocol" is a run scored before protocols existed: today's (chat) rules
    bon = [] if single else compute_metrics(tables, bon=[(2, 2), (k_code, k_case)], protocol="chat").metrics["bon"]
    rows = []
    for i, table in enumerate(tables):
        tests = generated[i] if generated else [TestCase(f"{j}\n", f"{j}\n") for j in range(table.n_generated)]
        rows.append(
            {
                "task_id": table.task_id,
                "question": "q",
                "time_limit": 1.0,
                "max_test": len(table.hidden[0]) if table.hidden else 0,
                "programs": programs[i] if programs else ["print(1)"] * table.n_programs,
                "generated_tests": [
                    {"input": t.input, "output": t.output, "answer_index": j} for j, t in enumerate(tests)
                ],
                "table": table.to_json(),
            }
        )
    result = compute_metrics(
        tables, bon=[(2, 2), (k_code, k_case)] if not single else [], single=single, protocol="chat"
    )
    run = {
        "mode": "single" if single else "bench",
        "coder": {"model": model, "backend": "openai"},
        "tester": None if single else {"model": model, "backend": "openai"},
        "dataset": dataset or {"name": "toy", "path": "/nonexistent/toy.json", "sha256": "0" * 64},
        "k_code": k_code,
        "k_case": k_case,
        "bon": list(bon),
        "max_test": 8,
        "compare": "whitespace",
        **manifest,
    }
    summary = {"run": run, "metrics": metrics if metrics is not None else result.metrics, "counts": result.counts}
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def toy_tables(seed: int, n: int = 8, k: int = 4, t: int = 4) -> list[TaskTable]:
    rng = random.Random(seed)
    return [random_table(rng, k, t, f"task{i}") for i in range(n)]


def test_load_run_round_trip(tmp_path: Path) -> None:
    tables = toy_tables(0)
    run = load_run(write_run(tmp_path / "r", tables, model="m1"))
    assert [t.table for t in run.tasks] == tables
    assert run.label == "m1 / toy"
    assert run.k_code == 4 and run.k_case == 4
    assert run.bon == [(2, 2), (4, 4)]
    assert not run.single
    assert run.tasks[0].generated_tests[1] == TestCase("1\n", "1\n")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "summary.json").unlink(), "summary.json: no such file"),
        (lambda p: (p / "samples.jsonl").unlink(), "samples.jsonl: no such file"),
        (lambda p: (p / "summary.json").write_text("{oops"), "summary.json: not valid JSON"),
        (lambda p: _append(p, "{not json\n"), "line 9: not valid JSON"),
        (lambda p: _append(p, json.dumps({"task_id": "x", "table": None}) + "\n"), "line 9, field 'table': missing"),
        (
            lambda p: _append_table(p, {"task_id": "x", "hidden": [["accepted"], []], "generated": []}),
            "line 9, field 'table.hidden': rows have different lengths",
        ),
        (
            lambda p: _append_table(p, {"task_id": "x", "hidden": [["maybe"]], "generated": []}),
            "line 9, field 'table': not a verdict table",
        ),
    ],
)
def test_load_run_errors_name_the_file_and_line(tmp_path: Path, damage: Any, message: str) -> None:
    path = write_run(tmp_path / "r", toy_tables(0))
    damage(path)
    with pytest.raises(RunDirError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_run(path)


def _append(path: Path, line: str) -> None:
    with (path / "samples.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line)


def _append_table(path: Path, table: dict[str, Any]) -> None:
    _append(path, json.dumps({"task_id": "x", "table": table}) + "\n")


def test_load_run_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a directory"):
        load_run(tmp_path / "nope")


def test_report_on_two_runs_writes_pngs_and_markdown(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", toy_tables(1), model="coder-a")
    b = write_run(tmp_path / "b", toy_tables(2), model="coder-b", dataset={"name": "other", "sha256": "1" * 64})
    report = build_report([a, b], tmp_path / "out", FAST)
    names = sorted(p.name for p in report.files)
    assert names == sorted(
        [
            "run1_bon_heatmap.png",
            "run1_bon_curves.png",
            "run2_bon_heatmap.png",
            "run2_bon_curves.png",
            "per_dataset.png",
            "analysis.json",
            "report.html",
            "report.md",
        ]
    )
    for f in report.files:
        assert f.is_file() and f.stat().st_size > 0
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    for png in (p for p in report.files if p.suffix == ".png"):
        assert f"]({png.name})" in md  # relative links: the folder can be moved as a whole
    assert "coder-a / toy" in md and "coder-b / other" in md
    code_acc = compute_metrics(toy_tables(1), protocol="chat").metrics["code_acc"]
    assert f"| code_acc | {100 * code_acc:.1f} [" in md
    data = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert data["runs"][0]["metrics"]["code_acc"]["value"] == code_acc
    assert set(data["runs"][0]["bon_cells"]["4x4"]) == {"cure_first", "cure_tie_aware", "codet", "majority_vote"}


def test_report_is_deterministic(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", toy_tables(3))
    first = build_report([a], None, FAST).analyses[0].to_json()
    again = build_report([a], None, FAST).analyses[0].to_json()
    assert first == again


def test_report_mixes_single_and_bench_runs(tmp_path: Path) -> None:
    single_tables = [make_table(f"s{i}", ["A", "W", "A"][i:] + ["W"] * i, [""] * (3)) for i in range(3)]
    s = write_run(tmp_path / "s", single_tables, model="one-shot", single=True)
    b = write_run(tmp_path / "b", toy_tables(4), model="bon")
    report = build_report([s, b], tmp_path / "out", FAST)
    assert report.analyses[0].surface is None
    assert "unit_test_acc" not in report.analyses[0].intervals
    assert not (tmp_path / "out" / "run1_bon_heatmap.png").exists()
    assert (tmp_path / "out" / "run2_bon_heatmap.png").is_file()


def test_two_runs_of_one_model_get_distinct_names(tmp_path: Path) -> None:
    a = write_run(tmp_path / "first", toy_tables(1))
    b = write_run(tmp_path / "second", toy_tables(2))
    report = build_report([a, b], None, FAST)
    assert report.names == ["coder-a / toy (first)", "coder-a / toy (second)"]


def test_disagreeing_summary_is_flagged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = write_run(tmp_path / "a", toy_tables(1), metrics={"code_acc": 0.999})
    with caplog.at_level(logging.WARNING):
        build_report([a], None, FAST)
    assert "code_acc recomputed from samples.jsonl" in caplog.text


# ------------------------------------------------------------------------------------------------
# rescore (real sandbox)
# ------------------------------------------------------------------------------------------------

FLOAT_PROGRAM = "a, b = map(float, input().split())\nprint(a + b)\n"  # 0.1 0.2 -> 0.30000000000000004
WRONG_PROGRAM = "print(0)\n"


def write_dataset(path: Path) -> dict[str, Any]:
    rows = [
        {
            "task_id": "add",
            "question": "Print a + b.",
            "test_time_limit": 2,
            "test_input": ["0.1 0.2\n", "1 2\n"],
            "test_output": ["0.3\n", "3.0\n"],
        },
        {
            "task_id": "zero",
            "question": "Print 0.",
            "test_time_limit": 2,
            "test_input": ["x\n"],
            "test_output": ["0\n"],
        },
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    from cure_bench.tasks.reader import task_fingerprint
    from cure_bench.tasks.registry import load_dataset_tasks

    tasks, resolved = load_dataset_tasks(path)
    return {"name": "adds", "path": str(path), "sha256": resolved.sha256, "fingerprint": task_fingerprint(tasks)}


def rescore_fixture(tmp_path: Path) -> Path:
    """Judged with whitespace comparison: the float program fails '0.3' and passes '3.0'."""
    dataset = write_dataset(tmp_path / "adds.json")
    tables = [
        make_table("add", ["WA", "WW"], ["A", "W"]),
        make_table("zero", ["R", "A"], ["R", "A"]),  # the float program crashes on "x"
    ]
    programs = [[FLOAT_PROGRAM, WRONG_PROGRAM], [FLOAT_PROGRAM, WRONG_PROGRAM]]
    generated = [[TestCase("2 2\n", "4.0\n")], [TestCase("y\n", "0\n")]]
    return write_run(tmp_path / "run", tables, dataset=dataset, programs=programs, generated=generated)


def test_rescore_with_float_comparison_writes_a_new_summary(tmp_path: Path) -> None:
    run_dir = rescore_fixture(tmp_path)
    original = (run_dir / "summary.json").read_bytes()
    result = rescore_run(run_dir, RescoreOptions(compare="float", workers=2, exec_cache=False))
    assert result.summary_path == run_dir / "summary.rescore-float.json"
    assert (run_dir / "summary.json").read_bytes() == original  # never overwritten
    summary = json.loads(result.summary_path.read_text())
    assert summary["run"]["compare"] == "float"
    assert summary["run"]["rescore"]["verdict_changes"]["hidden"] == 1
    assert summary["run"]["rescore"]["verdict_changes"]["by_kind"] == {"wrong_answer->accepted": 1}
    # the float program now solves "add": 2 of 4 programs correct (it also solves nothing else)
    assert summary["metrics"]["code_acc"] == 0.5
    rescored = load_run(result.summary_path)
    assert rescored.variant == "float"
    assert rescored.tasks[0].table.hidden[0] == make_table("x", ["AA"], [""]).hidden[0]
    report = build_report([run_dir, result.summary_path], None, FAST)
    assert report.names[1].endswith("(rescore float)")
    assert report.analyses[1].intervals["code_acc"].value == 0.5


def test_rescore_time_limit_is_recorded_and_named(tmp_path: Path) -> None:
    run_dir = rescore_fixture(tmp_path)
    result = rescore_run(run_dir, RescoreOptions(time_limit=3.0, workers=2, exec_cache=False))
    assert result.summary_path.name == "summary.rescore-tl3.json"
    assert result.summary["run"]["rescore"]["time_limit"] == 3.0
    assert result.summary["metrics"]["code_acc"] == 0.25  # same judge otherwise: only "zero"/print(0) right


def test_rescore_refuses_a_changed_dataset(tmp_path: Path) -> None:
    run_dir = rescore_fixture(tmp_path)
    data = json.loads((tmp_path / "adds.json").read_text())
    data[0]["test_output"][0] = "0.30000000000000004\n"
    (tmp_path / "adds.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"sha256 .* differs from the run's"):
        rescore_run(run_dir, RescoreOptions(workers=1))


def test_rescore_rejects_a_bad_name(tmp_path: Path) -> None:
    run_dir = rescore_fixture(tmp_path)
    with pytest.raises(ConfigError, match="--out"):
        rescore_run(run_dir, RescoreOptions(name="../evil"))


def test_rescore_needs_a_dataset_it_can_find(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "r", toy_tables(0), dataset={"name": "no-such-dataset-xyz", "path": "/nope.json"})
    with pytest.raises(DatasetError, match="no-such-dataset-xyz"):
        rescore_run(run_dir, RescoreOptions())


def test_sha_of_fixture_is_the_file_hash(tmp_path: Path) -> None:
    info = write_dataset(tmp_path / "d.json")
    assert info["sha256"] == hashlib.sha256((tmp_path / "d.json").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "tables",
    [
        [make_table("t1", ["A", "W"], ["", ""]), make_table("t2", ["W", "W"], ["", ""])],  # no generated tests
        [make_table("t1", ["A", "W"], ["A", "W"], ["x", "y"])],  # a single task
        [make_table("t1", ["", ""], ["A", "W"])],  # no hidden tests: nothing measurable
    ],
    ids=["no-tests", "one-task", "no-hidden"],
)
def test_report_survives_degenerate_runs(tmp_path: Path, tables: list[TaskTable]) -> None:
    run_dir = write_run(tmp_path / "r", tables)
    report = build_report([run_dir], tmp_path / "out", FAST)
    assert (tmp_path / "out" / "report.md").is_file()
    if not report.analyses[0].surface or not report.analyses[0].surface.task_ids:
        assert report.analyses[0].intervals["code_acc"].value is None
        assert "n/a" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("protocol", ["cure", None])
def test_rescore_scores_under_the_protocol_the_run_recorded(tmp_path: Path, protocol: str | None) -> None:
    dataset = write_dataset(tmp_path / "adds.json")
    tables = [make_table("add", ["WA", "WW"], ["A", "W"]), make_table("zero", ["R", "A"], ["", ""])]
    programs = [[FLOAT_PROGRAM, WRONG_PROGRAM], [FLOAT_PROGRAM, WRONG_PROGRAM]]
    generated: list[list[TestCase]] = [[TestCase("2 2\n", "4.0\n")], []]  # "zero": its tests never parsed
    extra = {} if protocol is None else {"protocol": protocol}
    run_dir = write_run(tmp_path / "run", tables, dataset=dataset, programs=programs, generated=generated, **extra)
    result = rescore_run(run_dir, RescoreOptions(workers=2, exec_cache=False, name="again"))
    metrics, counts = result.summary["metrics"], result.summary["counts"]
    rescored = load_run(result.summary_path).tables
    if protocol == "cure":  # "zero" is left out of every metric, and the all-tasks view sits beside
        assert counts["dropped_tasks"] == 1 and counts["n_tasks_scored"] == 1
        assert metrics["code_acc"] == compute_metrics(rescored[:1], protocol="cure").metrics["code_acc"]
        assert metrics["all_tasks"]["code_acc"] == compute_metrics(rescored, protocol="chat").metrics["code_acc"]
    else:  # a run scored before protocols existed keeps today's rules
        assert "dropped_tasks" not in counts and "all_tasks" not in metrics
        assert metrics["code_acc"] == compute_metrics(rescored, protocol="chat").metrics["code_acc"]
