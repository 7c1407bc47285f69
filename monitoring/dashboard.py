"""The Evidently workspace project that holds every monitor run, and its dashboard:
drift share of shop data and served answers, per-column distances, quality on feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import counter_panel, line_plot_panel
from evidently.ui.workspace import Workspace

from monitoring.drift import DATA_TAG, PREDICTIONS_TAG
from monitoring.recsys import QUALITY_TAG
from monitoring.windows import CATEGORICAL, NUMERICAL

PROJECT = "cartlift monitoring"


def project(path: Path, k: int) -> tuple[Workspace, Any]:
    """The Evidently workspace project, with the dashboard's panels added where missing
    (a workspace made by an earlier version gains the new ones)."""
    workspace = Workspace.create(str(path))
    found = workspace.search_project(PROJECT)
    project = (
        found[0]
        if found
        else workspace.create_project(PROJECT, "cartlift: drift of shop data and served answers")
    )
    share = "evidently:metric_v2:DriftedColumnsCount"
    mean = "evidently:metric_v2:MeanValue"

    def series(legend: str, tag: str, metric: str = share, **labels: str) -> PanelMetric:
        labels = labels or {"value_type": "share"}
        return PanelMetric(legend=legend, metric=metric, metric_labels=labels, tags=[tag])

    panels = [
        counter_panel(
            "Share of drifted shop columns (last run)", [series("share", DATA_TAG)], size="half"
        ),
        counter_panel(
            "Share of drifted answer columns (last run)",
            [series("share", PREDICTIONS_TAG)],
            size="half",
        ),
        line_plot_panel(
            "Drift share over time",
            [series("shop data", DATA_TAG), series("served answers", PREDICTIONS_TAG)],
        ),
        line_plot_panel(
            "Drift of the shop's columns (distance; drift at 0.1)",
            [
                series(column, DATA_TAG, "evidently:metric_v2:ValueDrift", column=column)
                for column in (*NUMERICAL, *CATEGORICAL)
            ],
        ),
        line_plot_panel(
            f"Quality on feedback over time (@{k}; offline: the champion's holdout)",
            [
                series(f"precision@{k}", QUALITY_TAG, mean, column="precision"),
                series(f"NDCG@{k}", QUALITY_TAG, mean, column="ndcg"),
                series(f"hit rate@{k}", QUALITY_TAG, mean, column="hit"),
                series(f"offline NDCG@{k}", QUALITY_TAG, mean, column="offline_ndcg"),
            ],
        ),
    ]
    board = project.dashboard
    have = {panel.title for panel in board.model().panels}
    for panel in panels:
        if panel.title not in have:
            board.add_panel(panel)
    return workspace, project
