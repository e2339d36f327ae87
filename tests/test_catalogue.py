"""The metric catalogue and the ranker registry: one entry each, read by everything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cure_bench.scoring import catalogue
from cure_bench.scoring.metrics import compute_metrics, metric_names
from cure_bench.scoring.rankers import REGISTRY, RankerSpec, cure_first, register, registered, summary_rankers
from tests.test_metrics_protocol import ALL

ROOT = Path(__file__).resolve().parents[1]


def test_readme_carries_the_generated_metric_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert catalogue.markdown_table() in readme, "regenerate README's table: catalogue.markdown_table()"


def test_every_pooled_metric_is_computed_and_every_computed_metric_is_catalogued() -> None:
    names = catalogue.names(catalogue.POOLED)
    assert len(set(names)) == len(names)
    assert all(spec.part is not None for spec in catalogue.POOLED)
    metrics = compute_metrics(ALL, bon=[(2, 2)], pass_at=(1,), protocol="chat").metrics
    assert [k for k in metrics if k not in ("bon",) and not k.startswith("pass@")] == names
    for key in metrics:
        if key != "bon":
            assert catalogue.label(key)  # every scalar summary.json holds has a label
    assert catalogue.names(catalogue.pooled(single=True)) == ["code_acc", "code_accumulate_acc"]
    assert catalogue.train_log_names() == ["code_acc", "unit_test_acc", "p01", "p00"]
    with pytest.raises(KeyError, match="code_acc"):
        catalogue.get("code_accuracy")


def test_bon_keys_come_from_the_summary_rankers_in_order() -> None:
    assert [r.name for r in summary_rankers()] == ["cure_first", "cure_tie_aware"]
    assert metric_names([(4, 4)], [], single=False)[-4:] == [
        "bon/4x4/acc",
        "bon/4x4/accumulate_acc",
        "bon/4x4/tie_aware_acc",
        "bon/4x4/tie_aware_accumulate_acc",
    ]


def test_registering_checks_names_and_key_prefixes() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(RankerSpec("codet", "again", cure_first))
    with pytest.raises(ValueError, match="prefix 'tie_aware_'"):
        register(RankerSpec("other", "clash", cure_first, key_prefix="tie_aware_"))
    report_only = RankerSpec("hidden_one", "not in summary.json", cure_first, summary=False)
    with registered(report_only):
        assert "hidden_one" in REGISTRY and report_only not in summary_rankers()
        bon = compute_metrics(ALL, bon=[(2, 2)]).metrics["bon"]["2x2"]
        assert not any(k.startswith("hidden_one") for k in bon)
    assert "hidden_one" not in REGISTRY


def test_a_new_summary_ranker_adds_keys_and_replaces_none() -> None:
    def worst(sub: object) -> np.ndarray:  # submits the program with fewest passes: a ranker that must lose
        scores = sub.scores  # type: ignore[attr-defined]
        w = np.zeros(scores.shape)
        w[np.arange(scores.shape[0]), scores.argmin(axis=1)] = 1.0
        return w

    before = compute_metrics(ALL, bon=[(3, 3)]).metrics["bon"]["3x3"]
    with registered(RankerSpec("worst", "fewest tests passed", worst)):
        after = compute_metrics(ALL, bon=[(3, 3)]).metrics["bon"]["3x3"]
    assert {k: after[k] for k in before} == before  # the paper's keys and the tie-aware extra unchanged
    assert set(after) - set(before) == {"worst_acc", "worst_accumulate_acc"}
