"""A run directory's files as two runs of one command must agree on them: what differs between any two runs
(paths, ports, timings, machine state) blanked, the caches read as sets of rows (their order of writing is the
order of the work, which overlap changes; their content must not change)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def normalised(run_dir: Path, server_urls: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """samples.jsonl and summary.json with what differs between any two runs of one command blanked: the run
    directory (and its parent), the scripted servers' ports, the timings, the command line and the sandbox's
    cgroup names and uid block (machine state, not results)."""

    def clean(text: str) -> str:
        text = text.replace(str(run_dir), "<run>").replace(str(run_dir.parent), "<parent>")  # hidden from programs
        for i, url in enumerate(server_urls):
            text = text.replace(url, f"<server{i}>")
        return text

    samples = [json.loads(clean(line)) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    summary = json.loads(clean((run_dir / "summary.json").read_text()))
    for key in ("started_at", "finished_at", "seconds", "command"):
        summary["run"].pop(key)
    summary["run"]["sandbox"].pop("accounting")  # cgroup paths carry a per-sandbox random suffix
    summary["run"]["sandbox"].pop("program_uids")  # the first uid block no other sandbox on the machine holds
    return samples, summary


def generation_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every stored sample (request key, index, text, tokens, finish reason), sorted; not when it was stored."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, idx, text, tokens, finish_reason FROM samples").fetchall()
    return sorted(rows)


def exec_keys(run_dir: Path) -> set[str]:
    """The executions the exec cache holds (by job key; a result's timings differ from run to run)."""
    with sqlite3.connect(run_dir / "exec_cache" / "results.sqlite") as db:
        return {key for (key,) in db.execute("SELECT key FROM results")}


def refine_files(out: Path, server_urls: Sequence[str]) -> dict[str, Any]:
    """A finished `cure refine` run: round 0 (as a bench run), summary.json past round 0's manifest, the
    trajectories, and both runs' generation and exec caches."""
    summary = json.loads((out / "summary.json").read_text().replace(str(out), "<run>"))
    summary.pop("run")  # round 0's manifest, compared with round 0
    return {
        "round0": normalised(out / "round-0", server_urls),
        "round0_generations": generation_rows(out / "round-0" / "generations.sqlite"),
        "round0_exec": exec_keys(out / "round-0"),
        "summary": summary,
        "samples": (out / "samples.jsonl").read_text(),
        "generations": generation_rows(out / "refine_generations.sqlite"),
        "exec": exec_keys(out),
    }
