"""What every converter shares: reading source rows, skip reasons, the report, atomic output.

A converter is a function ``rows -> (task rows | Skip)``; this module does the file walking around
it, so the per-source modules hold only the source's own rules.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError, MissingExtraError, TaskFileError
from cure_bench.fileio import atomic_write_json, atomic_writer
from cure_bench.tasks.reader import iter_task_rows

logger = logging.getLogger(__name__)


class Skip(Exception):
    """A source row that does not become a task; ``reason`` is a short stable code counted in the report."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class ConversionReport:
    """Counts per skip reason and one line per skipped row; written next to the output as JSON."""

    source: str
    input: str
    output: str
    total: int = 0
    converted: int = 0
    verified: bool = False
    unverified: int = 0  # converted rows that had no reference solution to run
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_rows: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, row_id: str, exc: Skip) -> None:
        self.skipped[exc.reason] += 1
        self.skipped_rows.append({"id": row_id, "reason": exc.reason, "detail": exc.detail[:300]})
        logger.debug("skip %s: %s", row_id, exc)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input": self.input,
            "output": self.output,
            "total": self.total,
            "converted": self.converted,
            "verified_in_sandbox": self.verified,
            "converted_without_reference": self.unverified,
            "skipped": dict(self.skipped.most_common()),
            "skipped_rows": self.skipped_rows,
            "notes": self.notes,
        }


def report_path(output: str | Path) -> Path:
    """``OUT.json`` -> ``OUT.report.json``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.report.json")


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Source rows from JSON array / JSONL (optionally .gz) or Parquet, one at a time."""
    p = Path(path)
    if not p.is_file():
        raise TaskFileError(str(p), "no such file" if not p.exists() else "not a file")
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".parquet":
        yield from _read_parquet(p)
    elif suffixes and suffixes[-1] == ".gz":
        yield from _read_gzip(p)
    else:
        for _, row in iter_task_rows(p):
            yield row


def _read_gzip(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        text_start = fh.read(1)
    if text_start == "[":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)  # gzipped arrays are small in practice (HumanEval ships as .jsonl.gz)
        if not isinstance(data, list):
            raise TaskFileError(str(path), "expected a JSON array or JSONL rows")
        yield from (_as_object(path, i, r) for i, r in enumerate(data))
        return
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TaskFileError(str(path), f"malformed JSON at line {lineno}: {exc.msg}") from None
                yield _as_object(path, lineno - 1, row)


def _as_object(path: Path, index: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise TaskFileError(str(path), "expected a JSON object", row=index)
    return row


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("train", "reading Parquet source files", "convert the file to JSONL first") from None
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=64):
        yield from batch.to_pylist()


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def write_json_array(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Stream rows into ``path`` atomically as a JSON array, one row per line (JSONL for ``.jsonl``)."""
    jsonl = Path(path).suffix.lower() == ".jsonl"
    count = 0
    with atomic_writer(path) as fh:
        if not jsonl:
            fh.write("[")
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            if jsonl:
                fh.write(line + "\n")
            else:
                fh.write(("\n" if count == 0 else ",\n") + line)
            count += 1
        if not jsonl:
            fh.write("\n]\n")
    return count


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_json(path, data)


def check_output_path(output: str | Path, inputs: Iterable[str | Path]) -> None:
    out = Path(output).resolve()
    if any(out == Path(p).resolve() for p in inputs):
        raise ConfigError(f"-o {output}: the output would overwrite the input; choose another path")
    if out.suffix.lower() not in (".json", ".jsonl"):
        raise ConfigError(f"-o {output}: the output must end in .json (JSON array) or .jsonl")
