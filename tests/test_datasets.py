"""Dataset registry: names and aliases, paths, the cache (offline once warm), hub errors, date windows."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from cure_bench.errors import DatasetError, TaskFileError
from cure_bench.tasks import registry as ds
from cure_bench.tasks.reader import file_sha256
from cure_bench.tasks.registry import (
    REGISTRY,
    cached_path,
    default_cache_dir,
    find_spec,
    load_dataset_tasks,
    parse_date,
    resolve_dataset,
)


def _rows(n: int, **dates: list[object]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {"question": f"q{i}", "test_input": ["1"], "test_output": ["1"], "name": f"p{i}"}
        for key, values in dates.items():
            row[key] = values[i]
        rows.append(row)
    return rows


def _populate(cache: Path, name: str, rows: list[dict[str, object]]) -> Path:
    spec = find_spec(name)
    assert spec is not None
    path = cached_path(spec, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def test_registry_has_the_gen_verse_datasets() -> None:
    by_name = {s.name: s for s in REGISTRY}
    assert set(by_name) == {
        "sample",
        "CodeContests_train",
        "CodeContests",
        "CodeForces",
        "LiveBench",
        "LiveCodeBench",
        "MBPP",
    }
    assert by_name["CodeForces"].repo_id == "Gen-Verse/CodeForces"
    assert by_name["CodeForces"].filename == "test/CodeForces.json"
    assert by_name["CodeContests"].filename == "test/CodeContests.json"
    assert by_name["CodeContests_train"].filename == "train/CodeContests_train.json"
    for renamed in ("MBPP", "LiveCodeBench", "LiveBench"):  # both the readme's new names and the script's old ones
        places = {(c.repo_id, c.filename) for c in by_name[renamed].candidates}
        assert (f"Gen-Verse/{renamed}-ReasonFlux", f"test/{renamed}-ReasonFlux.json") in places
        assert (f"Gen-Verse/{renamed}-ReasonFlux", f"test/{renamed}.json") in places
        assert (f"Gen-Verse/{renamed}", f"test/{renamed}.json") in places
    assert by_name["LiveCodeBench"].has_dates and by_name["LiveBench"].has_dates
    assert not by_name["MBPP"].has_dates
    aliases = [a.lower() for s in REGISTRY for a in s.names()]
    assert len(aliases) == len(set(aliases)), "an alias must name one dataset"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("mbpp", "MBPP"),
        ("MBPP-ReasonFlux", "MBPP"),
        ("livecodebench_v5", "LiveCodeBench"),
        ("LIVECODEBENCH", "LiveCodeBench"),
        ("codecontests_test", "CodeContests"),
        ("codecontests-train", "CodeContests_train"),
        ("Sample", "sample"),
    ],
)
def test_names_are_case_insensitive_with_aliases(given: str, expected: str) -> None:
    spec = find_spec(given)
    assert spec is not None and spec.name == expected


def test_bundled_sample_resolves_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_dataset("sample")
    assert resolved.spec is not None and resolved.spec.bundled
    assert resolved.path.name == "sample.jsonl" and resolved.path.is_file()
    assert resolved.sha256 == file_sha256(resolved.path)


def test_existing_path_wins_over_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("MBPP").write_text(json.dumps(_rows(2)))
    resolved = resolve_dataset("MBPP")
    assert resolved.spec is None and resolved.path == Path("MBPP")
    tasks, _ = load_dataset_tasks(str(tmp_path / "MBPP"))
    assert [t.task_id for t in tasks] == ["p0", "p1"]


def test_unknown_name_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        resolve_dataset(str(tmp_path / "missing.json"))
    msg = str(info.value)
    assert "missing.json" in msg and "LiveCodeBench" in msg and "must point to an existing" in msg


def test_directory_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        resolve_dataset(str(tmp_path))


def test_cache_dir_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CURE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("CURE_CACHE", str(tmp_path / "c"))
    with pytest.warns(DeprecationWarning, match=r"\$CURE_CACHE is deprecated: set \$CURE_CACHE_DIR"):
        assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CURE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "cure" / "datasets"


def test_one_cache_root_for_datasets_exec_and_reward_serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cure_bench.sandbox import default_cache_dir as exec_cache_dir
    from cure_bench.serve.config import default_cache_dir as serve_cache_dir

    monkeypatch.setenv("CURE_CACHE_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("CURE_CACHE", str(tmp_path / "old"))  # the new variable wins, silently
    dirs = (default_cache_dir(), exec_cache_dir(), serve_cache_dir())
    assert dirs == (tmp_path / "root" / "datasets", tmp_path / "root" / "exec", tmp_path / "root" / "reward-serve")
    monkeypatch.delenv("CURE_CACHE_DIR")
    monkeypatch.delenv("CURE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert exec_cache_dir() == tmp_path / "xdg" / "cure" / "exec"
    assert default_cache_dir() == tmp_path / "xdg" / "cure" / "datasets"


def test_warm_cache_uses_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> str:
        raise AssertionError("the hub must not be contacted when the file is cached")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    path = _populate(tmp_path, "CodeForces", _rows(3))
    assert path == tmp_path / "CodeForces" / "test" / "CodeForces.json"
    tasks, resolved = load_dataset_tasks("codeforces", cache_dir=tmp_path, limit=2)
    assert len(tasks) == 2 and resolved.name == "CodeForces" and resolved.path == path
    assert resolved.describe()["source"] == "hf://datasets/Gen-Verse/CodeForces/test/CodeForces.json"


def test_offline_download_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetError) as info:
        resolve_dataset("MBPP", cache_dir=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "cannot download dataset 'MBPP'" in msg and "offline" in msg and "cure data download MBPP" in msg
    assert not (tmp_path / "MBPP" / "test" / "MBPP.json").exists()


def test_unresolvable_hub_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import huggingface_hub

    from cure_bench.tasks import hub

    def no_dns(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(-2, "Name or service not known")

    def never(*args: object, **kwargs: object) -> str:
        raise AssertionError("no hub call without name resolution")

    for var in hub.PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", never)
    monkeypatch.setattr(huggingface_hub, "repo_info", never)
    with pytest.raises(DatasetError) as info:
        resolve_dataset("CodeContests", cache_dir=tmp_path)
    assert "unreachable: cannot resolve huggingface.co (Name or service not known)" in str(info.value)


def test_download_false_requires_cache(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not in the cache.*cure data download CodeForces"):
        resolve_dataset("CodeForces", cache_dir=tmp_path, download=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", date(2024, 5, 1)),
        ("2024-05-01T23:59:59", date(2024, 5, 1)),
        ("2024-05-01 00:00:00+00:00", date(2024, 5, 1)),
        (1714521600, date(2024, 5, 1)),
        (1714521600000, date(2024, 5, 1)),
        ("May 2024", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_date(value: object, expected: date | None) -> None:
    assert parse_date(value) == expected


def test_date_window_is_inclusive_and_applies_before_limit(tmp_path: Path) -> None:
    days = ["2024-01-10T00:00:00", "2024-02-01T00:00:00", "2024-03-05T00:00:00", "2024-04-20T00:00:00", None]
    _populate(tmp_path, "LiveCodeBench", _rows(5, contest_date=days))
    got, _ = load_dataset_tasks("LiveCodeBench", cache_dir=tmp_path, start_date="2024-02-01", end_date="2024-03-05")
    assert [t.task_id for t in got] == ["p1", "p2"]
    got, _ = load_dataset_tasks("lcb", cache_dir=tmp_path, start_date="2024-02-01", limit=1)
    assert [t.task_id for t in got] == ["p1"]
    got, _ = load_dataset_tasks("lcb", cache_dir=tmp_path, end_date=date(2024, 1, 31))
    assert [t.task_id for t in got] == ["p0"]


def test_date_window_reads_livebench_release_date(tmp_path: Path) -> None:
    _populate(tmp_path, "LiveBench", _rows(2, release_date=["2024-06-24", "2024-08-31"]))
    got, _ = load_dataset_tasks("LiveBench", cache_dir=tmp_path, start_date="2024-07-01")
    assert [t.task_id for t in got] == ["p1"]


def test_date_flags_refused_without_dates(tmp_path: Path) -> None:
    _populate(tmp_path, "MBPP", _rows(2))
    with pytest.raises(DatasetError, match="--start-date: dataset 'MBPP' has no task dates"):
        load_dataset_tasks("MBPP", cache_dir=tmp_path, start_date="2024-01-01")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(_rows(2)))
    with pytest.raises(DatasetError, match="--end-date: dataset 'plain' has no task dates"):
        load_dataset_tasks(str(plain), end_date="2024-01-01")
    dated = tmp_path / "dated.json"
    dated.write_text(json.dumps(_rows(2, contest_date=["2023-01-01", "2023-02-01"])))
    got, _ = load_dataset_tasks(str(dated), start_date="2023-01-15")
    assert [t.task_id for t in got] == ["p1"]
    got, _ = load_dataset_tasks(str(dated), start_date="2030-01-01")  # dated, just none in the window
    assert got == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"start_date": "01/02/2024"}, "--start-date '01/02/2024': expected a date as YYYY-MM-DD"),
        ({"start_date": "2024-03-01", "end_date": "2024-02-01"}, "is after --end-date"),
        ({"limit": -1}, "--limit must be >= 0"),
    ],
)
def test_bad_flags(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(fragment)):
        load_dataset_tasks("sample", **kwargs)  # type: ignore[arg-type]


def test_module_exports() -> None:
    for name in ds.__all__:
        assert hasattr(ds, name)


def test_rows_left_out_are_on_the_resolved_dataset_within_window_and_limit(tmp_path: Path) -> None:
    days = ["2024-01-10", "2024-02-01", "2024-03-05", "2024-04-20"]
    rows = _rows(4, contest_date=days)
    rows[0]["test_input"] = []  # outside the window below
    rows[2]["test_input"] = []  # inside it
    _populate(tmp_path, "LiveCodeBench", rows)
    tasks, resolved = load_dataset_tasks("lcb", cache_dir=tmp_path, start_date="2024-02-01")
    assert [t.task_id for t in tasks] == ["p1", "p3"]
    assert [(s.task_id, s.reason) for s in resolved.skipped] == [("p2", "no hidden tests")]
    assert resolved.skip_counts() == {
        "skipped_tasks": [{"task_id": "p2", "row": 3, "reason": "no hidden tests", "field": "test_input"}],
        "skipped_tasks_by_reason": {"no hidden tests": 1},
    }
    _, first_two = load_dataset_tasks("lcb", cache_dir=tmp_path, limit=1)  # stops before row 2 is read
    assert [s.task_id for s in first_two.skipped] == ["p0"]
    with pytest.raises(TaskFileError, match="row 1, field 'test_input': is empty"):
        load_dataset_tasks("lcb", cache_dir=tmp_path, strict=True)
