"""Ranking metrics as pure functions of a hit matrix.

``hits`` is a boolean (n_users, k) matrix: ``hits[u, r]`` is True when the item ranked
``r`` (0-based) for user ``u`` is relevant. ``n_relevant`` (n_users,) counts the user's
relevant items. Every function returns the per-user values; average them for a report.
"""

from __future__ import annotations

import numpy as np


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(hits: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / hits.shape[1]


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / np.maximum(n_relevant, 1)


def hit_rate_at_k(hits: np.ndarray) -> np.ndarray:
    return hits.any(axis=1).astype(float)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """DCG of the list over the DCG of an ideal list with min(n_relevant, k) hits on top."""
    k = hits.shape[1]
    disc = _discounts(k)
    dcg = (hits * disc).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_relevant, k)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg, dtype=float), where=ideal > 0)


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Mean of precision@r over the ranks r of the hits, over min(n_relevant, k)."""
    k = hits.shape[1]
    precision_at_r = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    total = (precision_at_r * hits).sum(axis=1)
    return total / np.maximum(np.minimum(n_relevant, k), 1)


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    if n_items == 0:
        return 0.0
    return float(np.unique(recommended[recommended >= 0]).size / n_items)


def hits_from_pairs(
    top: np.ndarray, truth_users: np.ndarray, truth_items: np.ndarray, n_items: int
) -> np.ndarray:
    """Hit matrix of ``top`` (n_users, k) item indices against the relevant (row, item) pairs.

    Pairs are encoded as ``row * n_items + item`` and looked up with ``np.isin``:
    no Python loop over users or items.
    """
    codes = np.arange(top.shape[0])[:, None] * n_items + top
    truth = truth_users.astype(np.int64) * n_items + truth_items.astype(np.int64)
    return np.isin(codes, truth)


def ranking_report(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, float]:
    """Mean of each per-user metric at the list length of ``hits``."""
    k = hits.shape[1]
    if hits.shape[0] == 0:
        return {
            f"{name}_at_{k}": float("nan")
            for name in ("precision", "recall", "ndcg", "map", "hit_rate")
        }
    return {
        f"precision_at_{k}": float(precision_at_k(hits).mean()),
        f"recall_at_{k}": float(recall_at_k(hits, n_relevant).mean()),
        f"ndcg_at_{k}": float(ndcg_at_k(hits, n_relevant).mean()),
        f"map_at_{k}": float(map_at_k(hits, n_relevant).mean()),
        f"hit_rate_at_{k}": float(hit_rate_at_k(hits).mean()),
    }
