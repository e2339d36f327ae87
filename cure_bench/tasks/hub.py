"""Downloads from the Hugging Face hub that survive a rename: ordered candidates, the first that exists wins.

CURE's authors renamed their dataset repositories: ``data/download_data.py`` builds ``Gen-Verse/{name}`` with
``{split}/{name}.json``, while the later ``data/readme.md`` passes ``LiveBench-ReasonFlux`` and friends. So a
registered dataset names a short ordered list of (repo id, file) candidates, old and new names. Resolution
asks the hub for each candidate repository once (``repo_info``: its commit sha and file list in one answer),
takes the first candidate whose file is there, and downloads that file *at that sha*, so what is recorded is
exactly what was read. The record (repo id, file, sha, pinned revision) is written beside the file as
``source.json`` and goes into the run manifest. When nothing matches, the error lists every candidate and what
the hub answered for it. A hub that cannot be reached ends the search at once: the other candidates would
get the same answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cure_bench.errors import DatasetError
from cure_bench.fileio import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["SOURCE_FILE", "HubCandidate", "HubSource", "cache_folder", "cached_file", "fetch", "resolve"]

SOURCE_FILE = "source.json"
"""Written beside a downloaded file: which candidate won, at which commit."""


@dataclass(frozen=True)
class HubCandidate:
    """One place a dataset file may live on the hub."""

    repo_id: str
    filename: str

    def __str__(self) -> str:
        return f"hf://datasets/{self.repo_id}/{self.filename}"


@dataclass(frozen=True)
class HubSource:
    """The candidate that was used: repo id, file, commit sha (None for a cache filled by hand), pinned revision."""

    repo_id: str
    filename: str
    sha: str | None
    revision: str | None = None

    @property
    def url(self) -> str:
        return str(HubCandidate(self.repo_id, self.filename))

    def to_json(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "filename": self.filename, "sha": self.sha, "revision": self.revision}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HubSource:
        return cls(str(data["repo_id"]), str(data["filename"]), data.get("sha"), data.get("revision"))


def cache_folder(root: Path, name: str, revision: str | None) -> Path:
    """``<root>/<name>``, or ``<root>/<name>@<revision>`` for a pinned revision (both can sit side by side)."""
    return root / (name if revision is None else f"{name}@{revision.replace('/', '_')}")


def cached_file(
    folder: Path, candidates: Sequence[HubCandidate], revision: str | None
) -> tuple[Path, HubSource] | None:
    """The file already in ``folder``: the one ``source.json`` names, else the first candidate file present.

    The second case is a cache filled by hand (or by an older version): used as is, with no sha on record.
    """
    record = folder / SOURCE_FILE
    if record.is_file():
        try:
            source = HubSource.from_json(json.loads(record.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            source = None
        if source is not None and (folder / source.filename).is_file():
            return folder / source.filename, source
    for candidate in candidates:
        path = folder / candidate.filename
        if path.is_file():
            return path, HubSource(candidate.repo_id, candidate.filename, None, revision)
    return None


def resolve(name: str, candidates: Sequence[HubCandidate], revision: str | None = None) -> HubSource:
    """The first candidate that exists on the hub (at ``revision`` when pinned), with the commit sha it is at."""
    listings: dict[str, tuple[str, set[str]] | str] = {}
    tried: list[str] = []
    for candidate in candidates:
        if candidate.repo_id not in listings:
            listings[candidate.repo_id] = _list_repo(name, candidate, revision)
        listing = listings[candidate.repo_id]
        if isinstance(listing, str):
            tried.append(f"{candidate} ({listing})")
            continue
        sha, files = listing
        if candidate.filename in files:
            if tried:
                logger.info("%s: using %s at %s (not found: %s)", name, candidate, sha[:12], "; ".join(tried))
            return HubSource(candidate.repo_id, candidate.filename, sha, revision)
        tried.append(f"{candidate} ({_missing_file(sha, files)})")
    at = f" at revision {revision!r}" if revision else ""
    raise DatasetError(
        f"cannot download dataset '{name}': none of its {len(tried)} hub locations has the file{at}; tried "
        + "; ".join(tried)
        + ". The registry may be out of date: pass a task file path, or a --revision that has the file"
    )


def _missing_file(sha: str, files: set[str]) -> str:
    json_files = sorted(f for f in files if f.endswith((".json", ".jsonl", ".parquet")))
    holds = f"; it holds {', '.join(json_files[:6])}" if json_files else ""
    return f"the repository exists at {sha[:12]} but has no such file{holds}"


def _list_repo(name: str, candidate: HubCandidate, revision: str | None) -> tuple[str, set[str]] | str:
    """(commit sha, file names) of a repository, or what the hub answered instead (a short phrase)."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        with _quiet_hub_logs():
            info = huggingface_hub.repo_info(candidate.repo_id, repo_type="dataset", revision=revision)
            sha = str(info.sha)
            siblings = getattr(info, "siblings", None)
            if siblings is None:  # not every answer carries the file list: ask for it at the same commit
                files = set(huggingface_hub.list_repo_files(candidate.repo_id, repo_type="dataset", revision=sha))
            else:
                files = {s.rfilename for s in siblings}
    except GatedRepoError:
        return "gated: accept its terms on the hub and log in with `hf auth login`"
    except RepositoryNotFoundError:
        return "no such repository (404)"
    except RevisionNotFoundError:
        return f"no revision {revision!r}"
    except HfHubHTTPError as exc:
        return _first_line(exc)
    except Exception as exc:  # offline mode, DNS, refused connection, timeout: no other candidate fares better
        logger.debug("listing %s failed", candidate.repo_id, exc_info=True)
        raise DatasetError(unreachable_message(name, exc)) from None
    return sha, files


def fetch(
    name: str,
    candidates: Sequence[HubCandidate],
    folder: Path,
    *,
    revision: str | None = None,
    force: bool = False,
) -> tuple[Path, HubSource]:
    """Resolve the candidates and download the winner into ``folder`` (nothing fetched when already cached).

    Every failure becomes one :class:`DatasetError` line that says what to do; huggingface_hub writes to a
    temporary file and renames it, so an interrupted download leaves nothing half-written at the final path.
    """
    if not force:
        hit = cached_file(folder, candidates, revision)
        if hit is not None:
            return hit
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    if constants.HF_HUB_OFFLINE:
        raise DatasetError(unreachable_message(name, OfflineModeIsEnabled("HF_HUB_OFFLINE is set")))
    check_hub_resolves(name)
    source = resolve(name, candidates, revision)
    import huggingface_hub

    logger.info("downloading %s at %s into %s", source.url, (source.sha or "?")[:12], folder)
    try:
        with _quiet_hub_logs():
            path = huggingface_hub.hf_hub_download(
                repo_id=source.repo_id,
                filename=source.filename,
                repo_type="dataset",
                revision=source.sha or revision,
                local_dir=folder,
                force_download=force,
            )
    except Exception as exc:  # the hub raises many types (HTTP, offline, OS); all end the same way
        logger.debug("download of %s failed", source.url, exc_info=True)
        raise DatasetError(_download_error(name, source, exc)) from None
    atomic_write_json(folder / SOURCE_FILE, source.to_json())
    return Path(str(path)), source


def check_hub_resolves(name: str) -> None:
    """Fail in milliseconds, not after the hub client's ~20 s of retries, when the hub's name does not resolve.

    Skipped in offline mode (the client refuses by itself) and behind a proxy (the proxy resolves names).
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in PROXY_VARS):
        return
    host = urlsplit(constants.ENDPOINT).hostname
    if host:
        try:
            socket.getaddrinfo(host, 443)
        except socket.gaierror as exc:
            reason = ConnectionError(f"cannot resolve {host} ({exc.strerror or exc})")
            raise DatasetError(unreachable_message(name, reason)) from None


PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """The hub client logs each retry as a warning; our one-line error says it better."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def _hint(name: str) -> str:
    return f"download it on a connected machine with `cure data download {name}` and copy the cache folder here"


def unreachable_message(name: str, exc: Exception) -> str:
    """The hub could not be asked at all: offline mode, no route, or a timeout."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    head = f"cannot download dataset '{name}'"
    if isinstance(exc, OfflineModeIsEnabled | LocalEntryNotFoundError):
        return f"{head}: the hub is unreachable or offline mode is on (HF_HUB_OFFLINE); {_hint(name)}"
    if type(exc) is ConnectionError:
        return f"{head}: the hub is unreachable: {exc}; {_hint(name)}"
    return f"{head}: the hub is unreachable: {type(exc).__name__}: {_first_line(exc)}; {_hint(name)}"


def _download_error(name: str, source: HubSource, exc: Exception) -> str:
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    head = f"cannot download dataset '{name}' ({source.url})"
    if isinstance(exc, GatedRepoError):
        return f"{head}: the repository is gated; accept its terms on the hub and log in (`hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError | EntryNotFoundError):
        return f"{head}: listed by the hub but not found on download (404); try again, or pass a file path"
    if isinstance(exc, HfHubHTTPError):
        return f"{head}: {type(exc).__name__}: {_first_line(exc)}"
    return unreachable_message(name, exc).replace(f"'{name}'", f"'{name}' ({source.url})", 1)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
