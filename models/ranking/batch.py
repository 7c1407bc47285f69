"""Batch scoring: top-k for many users at once, for e-mail campaigns and caches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.config import excludes_purchased
from models.data.ids import IdMap
from models.ranking.bundle import Bundle
from models.ranking.engine import widened
from models.ranking.topk import top_k
from models.recommenders.blend import standardised

MAX_K = 100  # the longest list an answer may ask for (HTTP API and registered model)


def recommend_all(
    bundle: Bundle,
    user_ids: np.ndarray | None,
    k: int,
    exclude_purchased: bool | None = None,
    in_stock_only: bool = True,
    keep_unknown: bool = False,
) -> pd.DataFrame:
    """Long table (user_id, rank, item_id, score) for the given users (all known if None):
    the served blend, as :meth:`models.ranking.engine.Engine.recommend` answers one
    customer (``exclude_purchased`` defaults to the shop's objective).

    Vectorised over users in blocks (``models.ranking.topk.top_k``): one matrix product,
    the blend's signals and one ``argpartition`` per block, no per-user Python work.
    Unknown ids are dropped, or with ``keep_unknown`` ranked as the model ranks for a
    customer it never saw.
    """
    if exclude_purchased is None:
        exclude_purchased = excludes_purchased(bundle.objective)
    model = bundle.model
    if user_ids is None:
        ids = model.user_ids
    else:
        ids = np.asarray(user_ids, dtype=object)
        if not keep_unknown:
            ids = ids[IdMap(model.user_ids).has(ids)]
    rows = IdMap(model.user_ids).positions(ids)
    known = rows >= 0
    exclude = None
    if exclude_purchased:
        exclude = bundle.purchased[np.where(known, rows, 0)]
        exclude = sp.csr_matrix(sp.diags(known.astype(np.float32)) @ exclude)
    users = model.vectors(ids, None, np.empty(0, dtype=object), None).users
    bias = model.item_bias.copy()
    mix = bundle.mix(exclude_purchased)
    baseline = bundle.personal

    def blend(block: np.ndarray, start: int, stop: int) -> np.ndarray:
        at = rows[start:stop]
        if baseline is not None:  # the served baseline; customers it never saw: popularity
            block = np.tile(bundle.popularity.astype(np.float32), (len(at), 1))
            if (at >= 0).any():
                block[at >= 0] = widened(baseline.scores(at[at >= 0]), block.shape[1])
        else:
            block = bundle.signals.add(standardised(block), at, mix)
        if in_stock_only:
            block[:, ~bundle.catalogue.in_stock] = -np.inf
        return block

    idx, scores = top_k(users, model.item_emb, bias, k, exclude=exclude, adjust=blend)
    n = idx.shape[1]
    return pd.DataFrame(
        {
            "user_id": np.repeat(ids, n),
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int16), len(ids)),
            "item_id": model.item_ids[idx.ravel()],
            "score": scores.ravel(),
        }
    )


def predict_frame(bundle: Bundle, model_input: pd.DataFrame) -> pd.DataFrame:
    """The registered model's answer to a frame of ``user_id`` (and optional ``k``): every
    customer ranked, a customer the model never saw as it ranks for newcomers; nothing
    excluded, since a caller of the raw model applies its own rules."""
    users = model_input["user_id"].astype(str).to_numpy(dtype=object)
    k = int(min(MAX_K, model_input["k"].max() if "k" in model_input else 10))
    table = recommend_all(
        bundle, users, k, exclude_purchased=False, in_stock_only=False, keep_unknown=True
    )
    return table.astype({"rank": np.int64, "score": float})
