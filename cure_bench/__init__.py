"""CURE toolkit: evaluate, train and serve co-evolving LLM coders and unit testers (arXiv 2506.03136).

The public surface, for notebooks and scripts (each name loads its module on first use, so ``import
cure_bench`` stays cheap: no numpy, torch or openai until a name that needs them is touched)::

    from cure_bench import BenchConfig, ModelConfig, run_bench      # `cure bench` / `cure bon` as a call
    from cure_bench import RefineConfig, run_refine                 # `cure refine` as a call (docs/refine.md)
    from cure_bench import load_tasks, resolve_dataset              # task files and registered datasets
    from cure_bench import Sandbox, build_tables, judge             # the execution engine
    from cure_bench import compute_metrics, RANKERS                 # verdict tables -> numbers
    from cure_bench import load_run, build_report, rescore_run      # saved runs -> analysis
    from cure_bench import CureError                                # the root of every error we raise

docs/architecture.md maps the packages onto the data path.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # configuration and the pipeline
    "BenchConfig": "cure_bench.config",
    "ModelConfig": "cure_bench.config",
    "run_bench": "cure_bench.pipeline",
    "BenchResult": "cure_bench.pipeline",
    "RefineConfig": "cure_bench.refine",
    "RefineResult": "cure_bench.refine",
    "run_refine": "cure_bench.refine",
    # contracts
    "Task": "cure_bench.types",
    "TestCase": "cure_bench.types",
    "TaskTable": "cure_bench.types",
    "Verdict": "cure_bench.types",
    "SamplingParams": "cure_bench.types",
    "Completion": "cure_bench.types",
    "Generator": "cure_bench.types",
    "ExecJob": "cure_bench.types",
    "ExecResult": "cure_bench.types",
    "CureError": "cure_bench.errors",
    # stage 1: tasks
    "load_tasks": "cure_bench.tasks.reader",
    "iter_tasks": "cure_bench.tasks.reader",
    "validate_task_file": "cure_bench.tasks.reader",
    "resolve_dataset": "cure_bench.tasks.registry",
    "REGISTRY": "cure_bench.tasks.registry",
    # stage 2: generation
    "make_generator": "cure_bench.generation.backends",
    "extract_program": "cure_bench.generation.extract",
    "extract_test": "cure_bench.generation.extract",
    # stage 3: sandbox
    "Sandbox": "cure_bench.sandbox",
    "build_tables": "cure_bench.sandbox",
    "judge": "cure_bench.sandbox",
    # stage 4: scoring
    "compute_metrics": "cure_bench.scoring.metrics",
    "RANKERS": "cure_bench.scoring.rankers",
    # stage 5: runs and analysis
    "load_run": "cure_bench.runs.reader",
    "Summary": "cure_bench.runs.schema",
    "build_report": "cure_bench.analysis.report",
    "rescore_run": "cure_bench.analysis.rescore",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cure_bench' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
