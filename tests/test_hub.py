"""Hub resolution that survives the authors' rename, against a fake hub (huggingface_hub calls monkeypatched).

MBPP is registered with three candidates, tried in order:
  Gen-Verse/MBPP-ReasonFlux : test/MBPP-ReasonFlux.json   (the readme's new name, file named by the script's rule)
  Gen-Verse/MBPP-ReasonFlux : test/MBPP.json              (the repo renamed, the file kept)
  Gen-Verse/MBPP            : test/MBPP.json              (upstream download_data.py)
No test touches the network: every hub call goes to ``FakeHub``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cure_bench.cli import app
from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import DatasetError
from cure_bench.runs.files import build_manifest
from cure_bench.tasks import hub
from cure_bench.tasks.registry import find_spec, load_dataset_tasks, resolve_dataset

NEW, OLD = "Gen-Verse/MBPP-ReasonFlux", "Gen-Verse/MBPP"
ROWS = [{"task_id": "m1", "question": "print 1", "test_input": [""], "test_output": ["1\n"]}]


@dataclass
class FakeRepo:
    files: dict[str, list[dict[str, Any]]]
    refs: dict[str, str] = field(default_factory=lambda: {"main": "a" * 40})  # revision -> commit sha
    gated: bool = False


class FakeHub:
    """``repo_info`` and ``hf_hub_download`` over in-memory repositories; records every call."""

    def __init__(self, repos: dict[str, FakeRepo]):
        self.repos = repos
        self.info_calls: list[tuple[str, str | None]] = []
        self.downloads: list[dict[str, Any]] = []

    def _error(self, cls: type[Exception], message: str) -> Exception:
        response = httpx.Response(404, request=httpx.Request("GET", "https://huggingface.co/api/datasets/x"))
        return cls(message, response=response)

    def _repo(self, repo_id: str) -> FakeRepo:
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        if repo_id not in self.repos:
            raise self._error(RepositoryNotFoundError, f"404 Client Error: Repository Not Found for {repo_id}")
        if self.repos[repo_id].gated:
            raise self._error(GatedRepoError, "403 Client Error: gated")
        return self.repos[repo_id]

    def _sha(self, repo: FakeRepo, revision: str | None) -> str:
        from huggingface_hub.errors import RevisionNotFoundError

        revision = revision or "main"
        if revision in repo.refs:
            return repo.refs[revision]
        if revision in repo.refs.values():
            return revision
        raise self._error(RevisionNotFoundError, f"404 Client Error: Revision Not Found: {revision}")

    def repo_info(self, repo_id: str, *, repo_type: str | None = None, revision: str | None = None, **_: Any) -> Any:
        assert repo_type == "dataset"
        self.info_calls.append((repo_id, revision))
        repo = self._repo(repo_id)
        sha = self._sha(repo, revision)
        return SimpleNamespace(
            sha=sha, siblings=[SimpleNamespace(rfilename=f) for f in [".gitattributes", *repo.files]]
        )

    def hf_hub_download(self, **kwargs: Any) -> str:
        self.downloads.append(kwargs)
        repo = self._repo(kwargs["repo_id"])
        self._sha(repo, kwargs["revision"])
        target = Path(kwargs["local_dir"]) / kwargs["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(repo.files[kwargs["filename"]]))
        return str(target)


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub

    def install(repos: dict[str, FakeRepo]) -> FakeHub:
        fake = FakeHub(repos)
        monkeypatch.setattr(huggingface_hub, "repo_info", fake.repo_info)
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
        monkeypatch.setattr(huggingface_hub, "list_repo_files", _never)
        return fake

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "check_hub_resolves", lambda name: None)
    return install


def _never(*args: object, **kwargs: object) -> Any:
    raise AssertionError("the hub must not be asked")


def _record(folder: Path) -> dict[str, Any]:
    return json.loads((folder / hub.SOURCE_FILE).read_text())


def test_mbpp_candidates_are_new_names_first_then_the_old() -> None:
    spec = find_spec("MBPP")
    assert spec is not None
    assert [(c.repo_id, c.filename) for c in spec.candidates] == [
        (NEW, "test/MBPP-ReasonFlux.json"),
        (NEW, "test/MBPP.json"),
        (OLD, "test/MBPP.json"),
    ]
    single = find_spec("CodeForces")
    assert single is not None and [(c.repo_id, c.filename) for c in single.candidates] == [
        ("Gen-Verse/CodeForces", "test/CodeForces.json")
    ]


def test_old_name_only(fake_hub, tmp_path: Path) -> None:
    fake = fake_hub({OLD: FakeRepo({"test/MBPP.json": ROWS}, refs={"main": "b" * 40})})
    resolved = resolve_dataset("MBPP", cache_dir=tmp_path)
    assert resolved.path == tmp_path / "MBPP" / "test" / "MBPP.json"
    assert resolved.hub is not None and (resolved.hub.repo_id, resolved.hub.sha) == (OLD, "b" * 40)
    assert fake.info_calls == [(NEW, None), (OLD, None)]  # the new repo was asked once for both of its candidates
    assert fake.downloads[0]["revision"] == "b" * 40  # downloaded at the commit that was listed
    assert (fake.downloads[0]["repo_type"], fake.downloads[0]["local_dir"]) == ("dataset", tmp_path / "MBPP")
    assert _record(tmp_path / "MBPP") == {
        "repo_id": OLD,
        "filename": "test/MBPP.json",
        "sha": "b" * 40,
        "revision": None,
    }


@pytest.mark.parametrize("filename", ["test/MBPP-ReasonFlux.json", "test/MBPP.json"])
def test_new_name_only(fake_hub, tmp_path: Path, filename: str) -> None:
    fake = fake_hub({NEW: FakeRepo({filename: ROWS})})
    resolved = resolve_dataset("mbpp", cache_dir=tmp_path)
    assert resolved.path == tmp_path / "MBPP" / filename
    assert resolved.hub is not None and (resolved.hub.repo_id, resolved.hub.filename) == (NEW, filename)
    assert fake.info_calls == [(NEW, None)]
    assert [t.task_id for t in load_dataset_tasks("MBPP", cache_dir=tmp_path)[0]] == ["m1"]


def test_both_names_the_first_candidate_wins_and_the_old_repo_is_never_asked(fake_hub, tmp_path: Path) -> None:
    fake = fake_hub({NEW: FakeRepo({"test/MBPP.json": ROWS}), OLD: FakeRepo({"test/MBPP.json": ROWS})})
    resolved = resolve_dataset("MBPP", cache_dir=tmp_path)
    assert resolved.hub is not None and resolved.hub.repo_id == NEW
    assert fake.info_calls == [(NEW, None)]
    assert [(d["repo_id"], d["filename"]) for d in fake.downloads] == [(NEW, "test/MBPP.json")]


def test_neither_lists_every_candidate_and_what_the_hub_answered(fake_hub, tmp_path: Path) -> None:
    fake_hub({OLD: FakeRepo({"test/other.json": ROWS})})
    with pytest.raises(DatasetError) as info:
        resolve_dataset("MBPP", cache_dir=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "cannot download dataset 'MBPP'" in msg and "none of its 3 hub locations" in msg
    assert f"hf://datasets/{NEW}/test/MBPP-ReasonFlux.json (no such repository (404))" in msg
    assert f"hf://datasets/{NEW}/test/MBPP.json (no such repository (404))" in msg
    assert f"hf://datasets/{OLD}/test/MBPP.json (the repository exists at aaaaaaaaaaaa but has no such file" in msg
    assert "it holds test/other.json" in msg
    assert not (tmp_path / "MBPP").exists()


def test_gated_repo_is_listed_and_the_next_candidate_tried(fake_hub, tmp_path: Path) -> None:
    fake_hub({NEW: FakeRepo({"test/MBPP.json": ROWS}, gated=True)})
    with pytest.raises(DatasetError, match=r"gated: accept its terms on the hub and log in"):
        resolve_dataset("MBPP", cache_dir=tmp_path)


def test_pinned_revision(fake_hub, tmp_path: Path) -> None:
    refs = {"main": "c" * 40, "v1": "d" * 40}
    fake = fake_hub({OLD: FakeRepo({"test/MBPP.json": ROWS}, refs=refs)})
    pinned = resolve_dataset("MBPP@v1", cache_dir=tmp_path)
    assert pinned.path == tmp_path / "MBPP@v1" / "test" / "MBPP.json" and pinned.name == "MBPP@v1"
    assert pinned.hub is not None and (pinned.hub.sha, pinned.hub.revision) == ("d" * 40, "v1")
    assert fake.info_calls == [(NEW, "v1"), (OLD, "v1")] and fake.downloads[-1]["revision"] == "d" * 40
    assert _record(tmp_path / "MBPP@v1")["revision"] == "v1"
    latest = resolve_dataset("MBPP", cache_dir=tmp_path)  # the unpinned copy is cached apart
    assert latest.path == tmp_path / "MBPP" / "test" / "MBPP.json" and latest.hub and latest.hub.sha == "c" * 40
    by_keyword = resolve_dataset("MBPP", cache_dir=tmp_path, revision="v1")  # warm: no hub call
    assert by_keyword.hub == pinned.hub and len(fake.downloads) == 2
    offline = resolve_dataset(pinned.name, cache_dir=tmp_path, download=False)  # what a re-score would pass
    assert offline.path == pinned.path and offline.hub == pinned.hub
    with pytest.raises(DatasetError, match=r"at revision 'v9'.*no revision 'v9'"):
        resolve_dataset("MBPP@v9", cache_dir=tmp_path)


def test_pinned_revision_from_the_cli(fake_hub, tmp_path: Path) -> None:
    fake = fake_hub({NEW: FakeRepo({"test/MBPP.json": ROWS}, refs={"main": "e" * 40, "v2": "f" * 40})})
    result = CliRunner().invoke(
        app, ["data", "download", "MBPP", "--revision", "v2", "--cache-dir", str(tmp_path)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert f"from hf://datasets/{NEW}/test/MBPP.json at {'f' * 40}" in result.output
    assert fake.downloads[0]["revision"] == "f" * 40 and (tmp_path / "MBPP@v2" / "test" / "MBPP.json").is_file()


def test_cache_records_the_source_and_a_warm_cache_asks_nothing(fake_hub, tmp_path: Path, monkeypatch) -> None:
    fake_hub({OLD: FakeRepo({"test/MBPP.json": ROWS}, refs={"main": "1" * 40})})
    first = resolve_dataset("MBPP", cache_dir=tmp_path)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "repo_info", _never)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _never)
    again = resolve_dataset("MBPP", cache_dir=tmp_path, download=False)
    assert again.path == first.path and again.hub == first.hub and again.hub is not None
    assert again.hub.sha == "1" * 40  # read back from source.json


def test_manifest_records_the_hub_location_and_commit(fake_hub, tmp_path: Path) -> None:
    fake_hub({NEW: FakeRepo({"test/MBPP-ReasonFlux.json": ROWS}, refs={"main": "9" * 40})})
    tasks, resolved = load_dataset_tasks("MBPP", cache_dir=tmp_path)
    cfg = BenchConfig(dataset="MBPP", coder=ModelConfig(model="m"))
    manifest = build_manifest(
        cfg, dataset=resolved, fingerprint="fp", n_tasks=len(tasks), bon=[], generators={}, sandbox={},
        prompt_sha256="p", templates=(None, None), started=0.0,
    )  # fmt: skip
    ds = manifest.to_json()["dataset"]
    assert ds["hub"] == {"repo_id": NEW, "filename": "test/MBPP-ReasonFlux.json", "sha": "9" * 40, "revision": None}
    assert ds["source"] == f"hf://datasets/{NEW}/test/MBPP-ReasonFlux.json"
    assert ds["name"] == "MBPP" and ds["sha256"] == resolved.sha256 and ds["strict"] is False


def test_force_resolves_again(fake_hub, tmp_path: Path) -> None:
    repos = {NEW: FakeRepo({"test/MBPP.json": ROWS}, refs={"main": "2" * 40})}
    fake = fake_hub(repos)
    resolve_dataset("MBPP", cache_dir=tmp_path)
    repos[NEW].refs["main"] = "3" * 40
    result = CliRunner().invoke(app, ["data", "download", "MBPP", "--force", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(fake.downloads) == 2 and _record(tmp_path / "MBPP")["sha"] == "3" * 40


def test_unreachable_hub_stops_at_the_first_candidate(fake_hub, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    calls: list[str] = []

    def refused(repo_id: str, **kwargs: Any) -> Any:
        calls.append(repo_id)
        raise httpx.ConnectError("[Errno 111] Connection refused\ntrace")

    fake_hub({})
    monkeypatch.setattr(huggingface_hub, "repo_info", refused)
    with pytest.raises(DatasetError) as info:
        resolve_dataset("MBPP", cache_dir=tmp_path)
    msg = str(info.value)
    assert calls == [NEW] and "\n" not in msg
    assert "the hub is unreachable: ConnectError: [Errno 111] Connection refused" in msg
    assert "cure data download MBPP" in msg


def test_a_hand_filled_cache_is_used_with_no_commit_on_record(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "repo_info", _never)
    path = tmp_path / "MBPP" / "test" / "MBPP.json"  # the second candidate's file, copied in by hand
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(ROWS))
    resolved = resolve_dataset("MBPP", cache_dir=tmp_path)
    assert resolved.path == path and resolved.hub is not None
    assert (resolved.hub.repo_id, resolved.hub.sha) == (NEW, None)


def test_revision_refused_for_files_and_the_bundled_sample(tmp_path: Path) -> None:
    task_file = tmp_path / "t.json"
    task_file.write_text(json.dumps(ROWS))
    with pytest.raises(DatasetError, match="applies to registered hub datasets"):
        resolve_dataset(str(task_file), revision="v1")
    with pytest.raises(DatasetError, match="bundled with cure"):
        resolve_dataset("sample@v1")
