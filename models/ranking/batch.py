"""Batch scoring: top-k for many users at once, for e-mail campaigns and caches."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.ranking.bundle import Bundle
from models.ranking.topk import top_k


def recommend_all(
    bundle: Bundle,
    user_ids: np.ndarray | None,
    k: int,
    exclude_purchased: bool = True,
    in_stock_only: bool = True,
) -> pd.DataFrame:
    """Long table (user_id, rank, item_id, score) for the given known users (all if None).

    Vectorised over users in blocks (``models.ranking.topk.top_k``): one matrix product and one
    ``argpartition`` per block, no per-user Python work. Unknown ids are dropped.
    """
    model = bundle.model
    pos = pd.Series(np.arange(len(model.user_ids)), index=pd.Index(model.user_ids))
    rows = (
        np.arange(len(model.user_ids))
        if user_ids is None
        else pos.reindex(user_ids).dropna().to_numpy(np.int64)
    )
    exclude = bundle.purchased[rows] if exclude_purchased else None
    bias = model.item_bias.copy()
    if in_stock_only:
        bias[~bundle.catalogue.in_stock] = -np.inf
    idx, scores = top_k(model.user_emb[rows], model.item_emb, bias, k, exclude=exclude)
    n = idx.shape[1]
    return pd.DataFrame(
        {
            "user_id": np.repeat(model.user_ids[rows], n),
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int16), len(rows)),
            "item_id": model.item_ids[idx.ravel()],
            "score": scores.ravel(),
        }
    )
