"""Converters from benchmark originals to the CURE task schema (`cure data convert`).

    report = convert("mbpp", "sanitized-mbpp.json", "mbpp_stdio.json")

Sources: ``mbpp``, ``humaneval`` (functional asserts -> stdio by the JSON-lines rule, references verified
in the sandbox), ``lcb`` (LiveCodeBench code_generation_lite, private tests unpickled by a restricted
unpickler), ``codecontests`` (DeepMind CodeContests) and ``codeforces`` (open-r1/codeforces): stdio
problems with exact-match checking only. Each run writes the tasks atomically and a
``<out>.report.json`` with the number of rows skipped per reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from cure_bench.errors import ConfigError, TaskFileError
from cure_bench.tasks.convert.common import ConversionReport, Skip, check_output_path, read_rows, report_path
from cure_bench.tasks.convert.options import ConvertOptions, Item
from cure_bench.tasks.convert.verify import Candidate, verify_candidates
from cure_bench.tasks.reader import row_to_task

logger = logging.getLogger(__name__)

__all__ = ["SOURCES", "ConversionReport", "ConvertOptions", "Skip", "convert", "convert_rows", "iter_converted"]

Converter = Callable[[Iterable[dict[str, Any]], ConvertOptions], Iterator[Item]]


def _converter(source: str) -> Converter:
    if source == "mbpp":
        from cure_bench.tasks.convert.mbpp import convert_mbpp

        return convert_mbpp
    if source == "humaneval":
        from cure_bench.tasks.convert.humaneval import convert_humaneval

        return convert_humaneval
    if source == "lcb":
        from cure_bench.tasks.convert.lcb import convert_lcb

        return convert_lcb
    if source == "codecontests":
        from cure_bench.tasks.convert.codecontests import convert_codecontests

        return convert_codecontests
    if source == "codeforces":
        from cure_bench.tasks.convert.codeforces import convert_codeforces

        return convert_codeforces
    raise ConfigError(f"--from {source!r}: use one of {', '.join(SOURCES)}")


SOURCES = ("mbpp", "humaneval", "lcb", "codecontests", "codeforces")


BATCH = 256
"""Source rows converted (and their references verified) per batch: memory stays bounded on huge sources."""


def iter_converted(
    source: str,
    rows: Iterable[dict[str, Any]],
    options: ConvertOptions | None = None,
    report: ConversionReport | None = None,
    on_result: Callable[[], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Convert source rows to task rows lazily, in source order; skipped rows are counted in ``report``.

    References are verified batch by batch in one sandbox kept open for the whole stream.
    """
    options = options or ConvertOptions()
    report = report or ConversionReport(source=source, input="", output="")
    items = islice(_converter(source)(rows, options), options.limit)
    with contextlib.ExitStack() as stack:
        box = None
        for batch in _batches(items, BATCH):
            report.total += len(batch)
            candidates = [item for _, item in batch if isinstance(item, Candidate)]
            verdicts: dict[int, Skip | None] = {}
            if options.verify and candidates:
                if box is None:
                    from cure_bench.sandbox import Sandbox

                    box = stack.enter_context(
                        Sandbox(workers=options.workers, isolation=options.isolation, use_cache=False)
                    )
                results = verify_candidates(box, candidates, margin=options.verify_margin, on_result=on_result)
                verdicts = {id(c): r for c, r in zip(candidates, results, strict=True)}
                report.verified = True
            elif candidates and not report.notes:
                report.notes.append("reference solutions were NOT run on the converted tests (--no-verify)")
            yield from _finish(source, batch, verdicts, report)


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _finish(
    source: str, batch: list[Item], verdicts: dict[int, Skip | None], report: ConversionReport
) -> Iterator[dict[str, Any]]:
    for row_id, item in batch:
        failure = item if isinstance(item, Skip) else verdicts.get(id(item))
        row = item.row if isinstance(item, Candidate) else item
        if failure is None and isinstance(row, dict):
            try:
                row_to_task(row, path=report.output or source, row=report.converted)
            except TaskFileError as exc:
                failure = Skip(INVALID, str(exc))
        if failure is not None:
            report.skip(row_id, failure)
            continue
        if not (isinstance(item, Candidate) and report.verified):
            report.unverified += 1
        report.converted += 1
        yield row  # type: ignore[misc]


def convert_rows(
    source: str,
    rows: Iterable[dict[str, Any]],
    options: ConvertOptions | None = None,
    report: ConversionReport | None = None,
) -> list[dict[str, Any]]:
    """:func:`iter_converted`, collected into a list (for notebooks and small sources)."""
    return list(iter_converted(source, rows, options, report))


INVALID = "breaks the task schema"


def convert(
    source: str,
    input_path: str | Path,
    output_path: str | Path,
    options: ConvertOptions | None = None,
    on_result: Callable[[], None] | None = None,
) -> ConversionReport:
    """Convert a source file into a CURE task file plus ``<out>.report.json``; returns the report."""
    from cure_bench.tasks.convert.common import write_json, write_json_array

    _converter(source)  # unknown source: fail before reading anything
    check_output_path(output_path, [input_path])
    report = ConversionReport(source=source, input=str(input_path), output=str(output_path))
    rows = iter_converted(source, read_rows(input_path), options, report, on_result)
    write_json_array(output_path, rows)
    write_json(report_path(output_path), report.to_json())
    logger.info(
        "%s: %d of %d rows converted; skipped: %s", output_path, report.converted, report.total, dict(report.skipped)
    )
    return report
