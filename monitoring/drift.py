"""Data drift between the windows, with Evidently's DataDriftPreset and its tests: each
column's distance and the drifted share pass or fail at the configured thresholds, in the
report itself (so the HTML report and the UI show why retraining was asked for)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.presets import DataDriftPreset

from models.config import MonitorConfig
from monitoring.windows import CATEGORICAL, NUMERICAL

DATA_TAG, PREDICTIONS_TAG = "data-drift", "prediction-drift"


@dataclass(frozen=True)
class Check:
    """One of Evidently's tests in the report: a column's distance, or the drifted share,
    against its configured threshold (what the report's Tests tab and the UI show)."""

    name: str
    passed: bool
    description: str


@dataclass(frozen=True)
class Drift:
    share: float  # share of watched columns that drifted
    scores: dict[str, float]  # column -> distance
    thresholds: dict[str, float]
    drifted: list[str]
    snapshot: Snapshot
    checks: list[Check]


def drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cfg: MonitorConfig,
    numerical: tuple[str, ...] = NUMERICAL,
    categorical: tuple[str, ...] = CATEGORICAL,
    tag: str = DATA_TAG,
) -> Drift:
    """Per-column distances (methods and thresholds from ``cfg``) and the drifted share;
    the columns default to the watched event columns. ``tag`` tells the reports apart on
    the dashboard."""
    definition = DataDefinition(
        numerical_columns=list(numerical), categorical_columns=list(categorical)
    )
    preset = DataDriftPreset(
        columns=[*numerical, *categorical],
        num_method=cfg.num_method,
        num_threshold=cfg.num_threshold,
        cat_method=cfg.cat_method,
        cat_threshold=cfg.cat_threshold,
        drift_share=cfg.drift_share,
    )
    snapshot = Report([preset], tags=[tag], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    thresholds = {c: cfg.num_threshold for c in numerical} | {
        c: cfg.cat_threshold for c in categorical
    }
    scores: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        column = metric["config"].get("column")
        if metric["config"]["type"].endswith("ValueDrift") and column in thresholds:
            scores[column] = float(metric["value"])
    drifted = [c for c, v in scores.items() if v >= thresholds[c]]
    checks = [
        Check(str(t["name"]), str(t["status"]).endswith("SUCCESS"), str(t["description"]))
        for t in snapshot.dict().get("tests", [])
    ]
    return Drift(
        share=len(drifted) / max(len(scores), 1),
        scores=scores,
        thresholds=thresholds,
        drifted=drifted,
        snapshot=snapshot,
        checks=checks,
    )
