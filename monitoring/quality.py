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

LIST_ENDPOINTS = ("recommend", "cross_sell", "upsell", "similar_items", "popular")


def served_lists(log: pd.DataFrame) -> pd.DataFrame:
    """One row per served list (request_id, endpoint, items), from prediction log records."""
    if log.empty or "endpoint" not in log:
        return pd.DataFrame(columns=["request_id", "endpoint", "items"])
    lists = log[log["endpoint"].isin(LIST_ENDPOINTS)]
    return lists[["request_id", "endpoint", "items"]].drop_duplicates("request_id")


def feedback_quality(log: pd.DataFrame, k: int) -> dict[str, float]:
    """precision@k, NDCG@k (binary relevance) and hit rate@k over served lists."""
    lists = served_lists(log)
    out = {"lists": float(len(lists)), f"precision_at_{k}": 0.0, f"ndcg_at_{k}": 0.0}
    out[f"hit_rate_at_{k}"] = 0.0
    if lists.empty:
        return out
    feedback = log[log["endpoint"] == "feedback"] if "endpoint" in log else log.iloc[:0]
    pairs = feedback.reindex(columns=["request_id", "item_id"]).dropna().drop_duplicates()
    relevant = pd.MultiIndex.from_frame(pairs)
    # Position of each served item, then whether feedback named it: one flat array.
    flat = lists.assign(items=lists["items"].map(lambda x: list(x)[:k])).explode("items")
    flat = flat.dropna(subset=["items"])
    flat["rank"] = flat.groupby("request_id").cumcount()
    flat["hit"] = pd.MultiIndex.from_arrays([flat["request_id"], flat["items"]]).isin(relevant)
    flat["gain"] = flat["hit"] / np.log2(flat["rank"] + 2)
    per = flat.groupby("request_id").agg(hits=("hit", "sum"), dcg=("gain", "sum"))
    per = per.reindex(lists["request_id"], fill_value=0)
    n_rel = pairs["request_id"].value_counts().reindex(per.index, fill_value=0)
    ideal_n = np.minimum(n_rel.to_numpy(), k)
    discounts = np.concatenate([[0.0], np.cumsum(1 / np.log2(np.arange(2, k + 2)))])
    idcg = discounts[ideal_n]
    ndcg = np.divide(per["dcg"].to_numpy(), idcg, out=np.zeros(len(per)), where=idcg > 0)
    out[f"precision_at_{k}"] = float((per["hits"] / k).mean())
    out[f"ndcg_at_{k}"] = float(ndcg.mean())
    out[f"hit_rate_at_{k}"] = float((per["hits"] > 0).mean())
    return out
