"""Top-k retrieval from precomputed representations: dot products and argpartition."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BATCH_USERS = 2048


def top_k(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    item_bias: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` items per user by ``user_vecs @ item_vecs.T + item_bias``.

    Parameters
    ----------
    user_vecs : (n_users, d) float array
    item_vecs : (n_items, d) float array
    item_bias : (n_items,) float array (a user bias does not change a user's ranking)
    exclude : optional (n_users, n_items) sparse matrix; its non-zeros are never returned

    Returns
    -------
    (indices, scores), each (n_users, k'), best first, k' = min(k, n_items). Where a user
    has fewer than k' allowed items the tail holds -inf scores.
    """
    n_users, n_items = user_vecs.shape[0], item_vecs.shape[0]
    k = min(k, n_items)
    out_idx = np.empty((n_users, k), dtype=np.int64)
    out_score = np.empty((n_users, k), dtype=np.float32)
    for start in range(0, n_users, BATCH_USERS):
        stop = min(start + BATCH_USERS, n_users)
        scores = (user_vecs[start:stop] @ item_vecs.T + item_bias).astype(np.float32)
        if exclude is not None:
            block = exclude[start:stop].tocoo()
            scores[block.row, block.col] = -np.inf
        out_idx[start:stop], out_score[start:stop] = top_k_scores(scores, k)
    return out_idx, out_score


def top_k_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of each row of a dense score matrix, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    # Stable order: by score, then by item index, so ties are deterministic.
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)
