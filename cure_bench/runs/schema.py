"""The typed contract of a run's files: ``summary.json`` (manifest, metrics, counts) and ``samples.jsonl`` rows.

Writers build these records and call ``to_json``; readers call ``from_json``, which checks every field it
relies on and names the file, line and field of what is wrong. ``summary.json`` carries ``schema_version``:
a reader refuses a file written by a newer toolkit (its numbers may mean something this version does not
know) instead of misreading it, and reads files written before the version existed as version 1.

The manifest keeps the keys it has always had, in the same order; keys a newer feature adds and this module
does not type (and keys of older runs it no longer writes) survive a read/write round trip in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cure_bench.errors import CureError

SCHEMA_VERSION = 1
"""Bump when a key changes meaning or goes away; adding keys does not need a bump."""


class RunFileError(CureError):
    """A run file does not match the schema (or was written by a newer cure-toolkit)."""


def _obj(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RunFileError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _opt_int(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise RunFileError(f"{where}: expected an integer, got {value!r}")
    return int(value)


def _str_list(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RunFileError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def _opt_bool(where: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise RunFileError(f"{where}: expected true or false, got {value!r}")


def _opt_float(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RunFileError(f"{where}: expected a number, got {value!r}")
    return float(value)


def check_schema_version(where: str, data: Mapping[str, Any]) -> int:
    """The file's schema version (1 when absent); a newer one than this toolkit knows is an error."""
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RunFileError(f"{where}, field 'schema_version': expected a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise RunFileError(
            f"{where}: written with run-file schema {version}, but this cure-toolkit reads up to {SCHEMA_VERSION}; "
            "upgrade cure-toolkit (pip install -U cure-toolkit) to read it"
        )
    return version


@dataclass
class DatasetRecord:
    """Which tasks a run used: enough to reload them and prove they are the same."""

    name: str | None = None
    path: str | None = None
    sha256: str | None = None
    fingerprint: str | None = None
    n_tasks: int | None = None
    limit: int | None = None
    start_date: str | None = None
    end_date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, where: str, data: Any) -> DatasetRecord:
        if data is None or isinstance(data, str):  # runs written before the dataset was a record
            return cls(name=data)
        obj = _obj(where, data)
        return cls(
            name=None if obj.get("name") is None else str(obj["name"]),
            path=None if obj.get("path") is None else str(obj["path"]),
            sha256=None if obj.get("sha256") is None else str(obj["sha256"]),
            fingerprint=None if obj.get("fingerprint") is None else str(obj["fingerprint"]),
            n_tasks=_opt_int(f"{where}.n_tasks", obj.get("n_tasks")),
            limit=_opt_int(f"{where}.limit", obj.get("limit")),
            start_date=None if obj.get("start_date") is None else str(obj["start_date"]),
            end_date=None if obj.get("end_date") is None else str(obj["end_date"]),
            extra=_extra(cls, obj),
        )


@dataclass
class Manifest:
    """The run's identity card (``summary.json``'s ``run``): enough to tell whether two runs are comparable."""

    tool: str = "cure-toolkit"
    version: str | None = None
    mode: str | None = None  # "bench" | "bon" | "single"
    command: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    coder: dict[str, Any] | None = None
    tester: dict[str, Any] | None = None
    dataset: DatasetRecord = field(default_factory=DatasetRecord)
    sampling: dict[str, Any] = field(default_factory=dict)
    k_code: int | None = None
    k_case: int | None = None
    bon: list[str] = field(default_factory=list)
    max_test: int | None = None
    show_examples: bool | None = None
    compare: str | None = None
    memory_limit_mb: int | None = None
    judge_compat: list[str] = field(default_factory=list)  # [] = python3 semantics (sandbox/compat.py)
    prompts: dict[str, Any] = field(default_factory=dict)
    sandbox: dict[str, Any] = field(default_factory=dict)
    packages: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = _to_json(self)
        out["dataset"] = self.dataset.to_json()
        return out

    @classmethod
    def from_json(cls, where: str, data: Any) -> Manifest:
        obj = _obj(where, data)
        bon = obj.get("bon") or []
        if isinstance(bon, str):
            bon = [s.strip() for s in bon.split(",") if s.strip()]
        if not isinstance(bon, list):
            raise RunFileError(f"{where}, field 'bon': expected a list like ['4x4'], got {bon!r}")
        return cls(
            tool=str(obj.get("tool") or "cure-toolkit"),
            version=None if obj.get("version") is None else str(obj["version"]),
            mode=None if obj.get("mode") is None else str(obj["mode"]),
            command=None if obj.get("command") is None else str(obj["command"]),
            started_at=obj.get("started_at"),
            finished_at=obj.get("finished_at"),
            seconds=_opt_float(f"{where}, field 'seconds'", obj.get("seconds")),
            coder=_opt_obj(f"{where}, field 'coder'", obj.get("coder")),
            tester=_opt_obj(f"{where}, field 'tester'", obj.get("tester")),
            dataset=DatasetRecord.from_json(f"{where}, field 'dataset'", obj.get("dataset")),
            sampling=_opt_obj(f"{where}, field 'sampling'", obj.get("sampling")) or {},
            k_code=_opt_int(f"{where}, field 'k_code'", obj.get("k_code")),
            k_case=_opt_int(f"{where}, field 'k_case'", obj.get("k_case")),
            bon=[str(b) for b in bon],
            max_test=_opt_int(f"{where}, field 'max_test'", obj.get("max_test")),
            show_examples=_opt_bool(f"{where}, field 'show_examples'", obj.get("show_examples")),
            compare=None if obj.get("compare") is None else str(obj["compare"]),
            memory_limit_mb=_opt_int(f"{where}, field 'memory_limit_mb'", obj.get("memory_limit_mb")),
            judge_compat=_str_list(f"{where}, field 'judge_compat'", obj.get("judge_compat")),
            prompts=_opt_obj(f"{where}, field 'prompts'", obj.get("prompts")) or {},
            sandbox=_opt_obj(f"{where}, field 'sandbox'", obj.get("sandbox")) or {},
            packages=_opt_obj(f"{where}, field 'packages'", obj.get("packages")) or {},
            extra=_extra(cls, obj),
        )


@dataclass
class Summary:
    """``summary.json``: the manifest, the metrics (catalogue names) and the counts behind them."""

    run: Manifest
    metrics: dict[str, Any]
    counts: dict[str, Any]
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run": self.run.to_json(),
            "metrics": self.metrics,
            "counts": self.counts,
        }

    @classmethod
    def from_json(cls, where: str, data: Any) -> Summary:
        obj = _obj(where, data)
        version = check_schema_version(where, obj)
        return cls(
            run=Manifest.from_json(f"{where}, field 'run'", obj.get("run") or {}),
            metrics=_opt_obj(f"{where}, field 'metrics'", obj.get("metrics")) or {},
            counts=_opt_obj(f"{where}, field 'counts'", obj.get("counts")) or {},
            schema_version=version,
        )


@dataclass
class AnswerRecord:
    """One raw model answer as saved: its text, token count and why generation stopped."""

    text: str
    tokens: int | None = None
    finish_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens, "finish_reason": self.finish_reason}


@dataclass
class GeneratedTestRecord:
    """One extracted generated test and the index of the tester answer it came from."""

    input: str
    output: str
    answer_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "answer_index": self.answer_index}


@dataclass
class SampleRow:
    """One line of ``samples.jsonl``: everything produced for one task, in generation order.

    ``table`` stays the verdict table's JSON form here (``TaskTable.from_json`` reads it), so this module
    depends on nothing but the error tree; hidden tests are not copied (re-scoring reloads them).
    """

    task_id: str
    question: str | None = None
    time_limit: float | None = None
    max_test: int | None = None
    coder_messages: list[list[str]] | None = None
    tester_messages: list[list[str]] | None = None
    code_answers: list[AnswerRecord] = field(default_factory=list)
    programs: list[str | None] = field(default_factory=list)
    test_answers: list[AnswerRecord] = field(default_factory=list)
    generated_tests: list[GeneratedTestRecord] = field(default_factory=list)
    dropped_test_answers: int | None = None
    table: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = _to_json(self)
        out["code_answers"] = [a.to_json() for a in self.code_answers]
        out["test_answers"] = [a.to_json() for a in self.test_answers]
        out["generated_tests"] = [t.to_json() for t in self.generated_tests]
        return out

    @classmethod
    def from_json(cls, where: str, data: Any) -> SampleRow:
        obj = _obj(where, data)
        table = obj.get("table")
        if table is not None and not isinstance(table, dict):
            raise RunFileError(f"{where}, field 'table': expected a verdict table object")
        return cls(
            task_id=str(obj.get("task_id") or (table or {}).get("task_id") or ""),
            question=None if obj.get("question") is None else str(obj["question"]),
            time_limit=_opt_float(f"{where}, field 'time_limit'", obj.get("time_limit")),
            max_test=_opt_int(f"{where}, field 'max_test'", obj.get("max_test")),
            coder_messages=obj.get("coder_messages"),
            tester_messages=obj.get("tester_messages"),
            code_answers=_answers(f"{where}, field 'code_answers'", obj.get("code_answers")),
            programs=_programs(f"{where}, field 'programs'", obj.get("programs")),
            test_answers=_answers(f"{where}, field 'test_answers'", obj.get("test_answers")),
            generated_tests=_tests(f"{where}, field 'generated_tests'", obj.get("generated_tests")),
            dropped_test_answers=_opt_int(f"{where}, field 'dropped_test_answers'", obj.get("dropped_test_answers")),
            table=table,
            extra=_extra(cls, obj),
        )


def _answers(where: str, value: Any) -> list[AnswerRecord]:
    out: list[AnswerRecord] = []
    for i, item in enumerate(value or []):
        obj = _obj(f"{where}[{i}]", item)
        text = obj.get("text")
        if not isinstance(text, str):
            raise RunFileError(f"{where}[{i}], field 'text': expected a string")
        reason = obj.get("finish_reason")
        out.append(AnswerRecord(text, _opt_int(f"{where}[{i}].tokens", obj.get("tokens")), reason))
    return out


def _programs(where: str, value: Any) -> list[str | None]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(p is None or isinstance(p, str) for p in value):
        raise RunFileError(f"{where}: expected a list of programs (strings or null)")
    return list(value)


def _tests(where: str, value: Any) -> list[GeneratedTestRecord]:
    out: list[GeneratedTestRecord] = []
    for i, item in enumerate(value or []):
        if not isinstance(item, dict) or "input" not in item or "output" not in item:
            raise RunFileError(f"{where}: each item needs 'input' and 'output' (item {i})")
        index = _opt_int(f"{where}[{i}].answer_index", item.get("answer_index"))
        out.append(GeneratedTestRecord(str(item["input"]), str(item["output"]), index))
    return out


def _opt_obj(where: str, value: Any) -> dict[str, Any] | None:
    return None if value is None else _obj(where, value)


def _typed_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.name != "extra"]


def _extra(cls: type, obj: Mapping[str, Any]) -> dict[str, Any]:
    known = set(_typed_names(cls))
    return {k: v for k, v in obj.items() if k not in known}


def _to_json(record: Any) -> dict[str, Any]:
    """Typed fields in declaration order (the order the files have always had), then the extra keys."""
    out = {name: getattr(record, name) for name in _typed_names(type(record))}
    out.update(record.extra)
    return out
