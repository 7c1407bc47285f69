"""Recommendation quality on served lists and their feedback, as Evidently reports.

Two reports per run. The *quality* report has Evidently's recommender metrics
(precision, NDCG, hit rate and MRR by rank; novelty and popularity bias against the
champion's training interactions; personalisation across lists): for people to read.
The *summary* holds one mean per metric (precision@k, NDCG@k, hit rate@k over served
lists, and the champion's offline NDCG@k on its holdout beside them), so the workspace
dashboard can plot online quality over time against what the model promised offline.

Each served list is one "user" of Evidently's ranking task (keyed by request id): the
same list the customer saw, judged by what that customer did with it. Lists nobody
reacted to count (``no_feedback_users=True``), as in :func:`monitoring.quality.per_list`.
"""

from __future__ import annotations

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.datasets import Recsys
from evidently.core.report import Snapshot
from evidently.metrics import (
    MRR,
    NDCG,
    HitRate,
    MeanValue,
    Novelty,
    Personalization,
    PopularityBiasMetric,
    PrecisionTopK,
)

from models.data.columns import Columns
from monitoring.quality import per_list, ranked

C = Columns
QUALITY_TAG = "quality"
SUMMARY_COLUMNS = ("precision", "ndcg", "hit", "offline_ndcg")

_RANKING = Recsys(
    user_id="request_id",
    item_id="item_id",
    target="target",
    prediction="rank",
    recommendations_type="rank",
)


def _ranking_definition() -> DataDefinition:
    return DataDefinition(
        numerical_columns=["rank", "target"],
        categorical_columns=["request_id", "item_id"],
        ranking=[_RANKING],
    )


def quality_report(log: pd.DataFrame, train: pd.DataFrame, k: int) -> Snapshot:
    """Evidently's recommender metrics over the served lists in ``log``; ``train`` holds
    the champion's training interactions (user id, item id) for novelty and popularity
    bias. Raises ValueError when ``log`` has no served list."""
    flat = ranked(log, k)
    if flat.empty:
        raise ValueError("no served lists in the window")
    current = flat.assign(target=flat["hit"].astype(int))[
        ["request_id", "item_id", "rank", "target"]
    ]
    history = pd.DataFrame(
        {
            "request_id": train[C.user].astype(str).to_numpy(),
            "item_id": train[C.item].astype(str).to_numpy(),
            "rank": 1,
            "target": 1,
        }
    )
    # Evidently reads its by-rank curves at rank k: when every served list was shorter
    # (a shop asking for k=5 while the monitor judges at 10), judge at the longest one.
    k = min(k, int(current["rank"].max()))
    topk = {"k": k, "no_feedback_users": True}
    report = Report(
        [
            PrecisionTopK(**topk),
            NDCG(**topk),
            HitRate(**topk),
            MRR(**topk),
            Novelty(k=k),
            PopularityBiasMetric(k=k),
            Personalization(k=k),
        ],
        tags=[QUALITY_TAG],
    )
    definition = _ranking_definition()
    return report.run(
        Dataset.from_pandas(current, data_definition=definition),
        None,
        additional_data={
            "current_train_data": Dataset.from_pandas(history, data_definition=definition)
        },
    )


def quality_summary(log: pd.DataFrame, k: int, offline_ndcg: float | None) -> Snapshot:
    """Means over served lists of per-list precision@k, NDCG@k and hit@k, with the
    champion's offline NDCG@k as a reference line (a constant column: Evidently's
    dashboard plots series of metric values, so the promise travels as one)."""
    per = per_list(log, k)
    if per.empty:
        raise ValueError("no served lists in the window")
    frame = per[["precision", "ndcg", "hit"]].assign(
        offline_ndcg=float("nan") if offline_ndcg is None else offline_ndcg
    )
    definition = DataDefinition(numerical_columns=list(SUMMARY_COLUMNS))
    return Report([MeanValue(column=c) for c in SUMMARY_COLUMNS], tags=[QUALITY_TAG]).run(
        Dataset.from_pandas(frame.reset_index(drop=True), data_definition=definition), None
    )
