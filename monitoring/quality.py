"""Recommendation quality from what customers did with the lists they were served.

The prediction log holds every served list (request id, items in order) and every
feedback event (request id, item, click / add_to_cart / purchase). A served item is
relevant when feedback names it for that request. Metrics are averaged over all served
lists of the recommendation endpoints, including lists nobody reacted to: that is the
online precision the shop sees, comparable from one window to the next.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.data.predictions import LIST_ENDPOINTS
from models.evaluation.metrics import hit_rate_at_k, ndcg_at_k, precision_at_k


def served_lists(log: pd.DataFrame) -> pd.DataFrame:
    """One row per served list (request_id, endpoint, items), from prediction log records."""
    if log.empty or "endpoint" not in log:
        return pd.DataFrame(columns=["request_id", "endpoint", "items"])
    lists = log[log["endpoint"].isin(LIST_ENDPOINTS)]
    if "error" in lists:  # a failed request showed nothing
        lists = lists[lists["error"].isna()]
    return lists[["request_id", "endpoint", "items"]].drop_duplicates("request_id")


def ranked(log: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per served item in the top ``k`` of each list: request_id, endpoint,
    item_id, rank (1 = first) and hit (feedback named it for that request)."""
    lists = served_lists(log)
    columns = ["request_id", "endpoint", "item_id", "rank", "hit"]
    if lists.empty:
        return pd.DataFrame(columns=columns)
    feedback = log[log["endpoint"] == "feedback"]
    pairs = feedback.reindex(columns=["request_id", "item_id"]).dropna().drop_duplicates()
    relevant = pd.MultiIndex.from_frame(pairs)
    flat = lists.assign(item_id=lists["items"].map(lambda x: list(x)[:k])).explode("item_id")
    flat = flat.dropna(subset=["item_id"])
    flat["rank"] = flat.groupby("request_id").cumcount() + 1
    flat["hit"] = pd.MultiIndex.from_arrays([flat["request_id"], flat["item_id"]]).isin(relevant)
    return flat[columns].reset_index(drop=True)


def per_list(log: pd.DataFrame, k: int) -> pd.DataFrame:
    """precision@k, NDCG@k (binary relevance) and hit@k of each served list, indexed by
    request_id, with the metrics of :mod:`models.evaluation.metrics` (the offline ones);
    lists nobody reacted to score 0."""
    lists = served_lists(log)
    flat = ranked(log, k)
    row = pd.Index(lists["request_id"]).get_indexer(flat["request_id"])
    hits = np.zeros((len(lists), k), dtype=bool)
    hits[row, flat["rank"].to_numpy(dtype=np.int64) - 1] = flat["hit"].to_numpy(dtype=bool)
    feedback = log[log["endpoint"] == "feedback"] if not lists.empty else log.iloc[:0]
    pairs = feedback.reindex(columns=["request_id", "item_id"]).dropna().drop_duplicates()
    n_rel = pairs["request_id"].value_counts().reindex(lists["request_id"], fill_value=0)
    return pd.DataFrame(
        {
            "endpoint": lists["endpoint"].to_numpy(),
            "precision": precision_at_k(hits),
            "ndcg": ndcg_at_k(hits, n_rel.to_numpy()),
            "hit": hit_rate_at_k(hits),
        },
        index=pd.Index(lists["request_id"], name="request_id"),
    )


def feedback_quality(log: pd.DataFrame, k: int) -> dict[str, float]:
    """precision@k, NDCG@k (binary relevance) and hit rate@k, averaged over served lists."""
    per = per_list(log, k)
    means = per[["precision", "ndcg", "hit"]].to_numpy().mean(axis=0) if len(per) else [0.0] * 3
    names = (f"precision_at_{k}", f"ndcg_at_{k}", f"hit_rate_at_{k}")
    return {"lists": float(len(per))} | {n: float(m) for n, m in zip(names, means, strict=True)}
