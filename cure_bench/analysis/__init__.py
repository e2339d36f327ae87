"""Analysis of saved runs: BoN scaling surfaces, rankers, bootstrap CIs, `cure report` and `cure rescore`.

Everything here works offline on the files a bench run wrote (``summary.json`` and ``samples.jsonl``).
numpy is imported by these modules; matplotlib only when a plot is drawn.
"""

from cure_bench.analysis.analyze import AnalysisSettings, RunAnalysis, analyze_run
from cure_bench.analysis.bootstrap import Interval, metric_intervals, resample_counts
from cure_bench.analysis.report import Report, build_report, rich_table
from cure_bench.analysis.surface import BonSurface, SurfaceSettings, compute_surface
from cure_bench.runs.reader import RunData, RunDirError, RunTask, load_run
from cure_bench.scoring.rankers import REGISTRY, RankerSpec, TaskArrays, expected_pick, register

__all__ = [
    "REGISTRY",
    "AnalysisSettings",
    "BonSurface",
    "Interval",
    "RankerSpec",
    "Report",
    "RunAnalysis",
    "RunData",
    "RunDirError",
    "RunTask",
    "SurfaceSettings",
    "TaskArrays",
    "analyze_run",
    "build_report",
    "compute_surface",
    "expected_pick",
    "load_run",
    "metric_intervals",
    "register",
    "resample_counts",
    "rich_table",
]
