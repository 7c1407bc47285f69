"""What the service recommended, one row per served item, for prediction drift.

Items are described by what they are (category, price), where they were placed (rank),
how sure the model was (score) and whether the answer was a cold start: a champion whose
answers slide toward other categories, cheaper items or more cold starts is seeing a
different shop than it learned, even before feedback says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.data.columns import Columns
from models.data.predictions import LIST_ENDPOINTS

C = Columns
NUMERICAL = ("price", "score", "rank")
CATEGORICAL = ("endpoint", "category", "cold_start")


def served_items(log: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Explode served lists into one row per item with the watched columns."""
    if log.empty or "endpoint" not in log or "items" not in log:
        return pd.DataFrame(columns=[*NUMERICAL, *CATEGORICAL])
    lists = log[log["endpoint"].isin(LIST_ENDPOINTS)]
    lists = lists[lists["items"].map(lambda x: isinstance(x, list) and len(x) > 0)]
    if lists.empty:
        return pd.DataFrame(columns=[*NUMERICAL, *CATEGORICAL])
    sizes = lists["items"].map(len).to_numpy()
    item_ids = np.concatenate(lists["items"].to_numpy())
    scores = np.concatenate(
        [
            s if isinstance(s, list) and len(s) == n else [np.nan] * n
            for s, n in zip(lists.get("scores", [None] * len(lists)), sizes, strict=True)
        ]
    )
    catalogue = items.set_index(C.item)
    ids = pd.Series(item_ids)
    cold = lists["cold_start"] if "cold_start" in lists else pd.Series(False, index=lists.index)
    return pd.DataFrame(
        {
            "price": ids.map(catalogue[C.price]).to_numpy(dtype=float),
            "score": scores.astype(float),
            "rank": (
                np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes) + 1
            ).astype(float),
            "endpoint": np.repeat(lists["endpoint"].to_numpy(), sizes),
            "category": ids.map(catalogue[C.category]).fillna("unknown").astype(str).to_numpy(),
            "cold_start": np.repeat(cold.eq(True).astype(str).to_numpy(), sizes),
        }
    )
