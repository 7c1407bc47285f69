"""One evaluation protocol for every recommender, in the gate and in the benchmarks.

A recommender is judged on its top-k lists for a set of users against what they did
next (``truth``), with what they already had excluded. Per-user precision, recall,
NDCG, MAP and hit rate at each k are averaged with a bootstrap confidence interval over
users (the users are the sample, so the interval says how much the figure would move
on another set of customers like these). Beyond accuracy: catalogue coverage, novelty
(mean self-information of recommended items, -log2 of the share of users who had them)
and intra-list diversity (1 - mean cosine similarity between the items of a list).
Slices are boolean masks over the evaluated users (warm, cold-start users, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.evaluation.metrics import (
    coverage,
    hit_rate_at_k,
    hits_from_pairs,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from models.ranking.topk import best_of, without

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")
Scorer = Callable[[np.ndarray], np.ndarray]  # user rows -> (len(rows), n_items) scores


@dataclass(frozen=True)
class Protocol:
    ks: tuple[int, ...] = (5, 10, 20)
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    batch: int = 2048  # users scored at once: bounds memory at batch x n_items floats


@dataclass
class Task:
    """Who is evaluated on what: rows of ``truth`` and ``exclude`` are the users' rows."""

    users: np.ndarray  # (n,) user rows to evaluate
    truth: sp.csr_matrix  # (n_users, n_items) relevant items
    exclude: sp.csr_matrix  # (n_users, n_items) items never to recommend nor count
    slices: dict[str, np.ndarray]  # name -> (n,) bool mask over ``users``


def task(
    truth: sp.csr_matrix, exclude: sp.csr_matrix, slices: dict[str, np.ndarray] | None = None
) -> Task:
    """Users with at least one relevant item that is not excluded, and the slices
    (masks over all user rows) restricted to them; "all" is always there."""
    truth = truth.tocsr().astype(bool).astype(np.float32)
    exclude = exclude.tocsr().astype(bool).astype(np.float32)
    kept = truth - truth.multiply(exclude)
    kept.eliminate_zeros()
    users = np.flatnonzero(np.diff(kept.indptr) > 0)
    masks = {"all": np.ones(len(users), bool)}
    for name, mask in (slices or {}).items():
        masks[name] = np.asarray(mask, bool)[users]
    return Task(users=users, truth=kept.tocsr(), exclude=exclude, slices=masks)


def rank(scorer: Scorer, t: Task, k: int, batch: int = 2048) -> np.ndarray:
    """Top-``k`` item indices for every evaluated user, excluded items left out (-1 pads
    a list when fewer than ``k`` items remain)."""
    out = np.full((len(t.users), k), -1, dtype=np.int64)
    for start in range(0, len(t.users), batch):
        rows = t.users[start : start + batch]
        out[start : start + len(rows)] = best_of(without(scorer(rows), t.exclude[rows]), k)
    return out


def per_user(top: np.ndarray, t: Task, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """``<metric>_at_<k>`` -> per-user values, for every k in ``ks``."""
    truth = t.truth[t.users].tocoo()
    n_items = t.truth.shape[1]
    # A padded slot (-1) becomes item n_items, which is relevant to no one.
    hits_all = hits_from_pairs(np.where(top < 0, n_items, top), truth.row, truth.col, n_items + 1)
    n_rel = np.bincount(truth.row, minlength=len(t.users))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hits = hits_all[:, :k]
        out[f"precision_at_{k}"] = precision_at_k(hits)
        out[f"recall_at_{k}"] = recall_at_k(hits, n_rel)
        out[f"ndcg_at_{k}"] = ndcg_at_k(hits, n_rel)
        out[f"map_at_{k}"] = map_at_k(hits, n_rel)
        out[f"hit_rate_at_{k}"] = hit_rate_at_k(hits)
    return out


def bootstrap_ci(
    values: np.ndarray, n: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Mean and the percentile bootstrap interval of the mean (``n`` resamples of the
    users, drawn in chunks so memory stays bounded)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    if n == 0:  # the gate and tuning need the mean alone
        return float(values.mean()), float("nan"), float("nan")
    means = np.empty(n)
    chunk = max(1, 4_000_000 // len(values))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        idx = rng.integers(0, len(values), size=(m, len(values)))
        means[start : start + m] = values[idx].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(lo), float(hi)


def novelty(top: np.ndarray, item_share: np.ndarray) -> float:
    """Mean self-information -log2(share of users who had the item) of recommended items."""
    valid = top >= 0
    if not valid.any():
        return float("nan")
    share = np.clip(item_share[np.where(valid, top, 0)], 1e-12, 1.0)
    return float((-np.log2(share) * valid).sum() / valid.sum())


def intra_list_diversity(top: np.ndarray, item_vectors: np.ndarray) -> float:
    """1 - mean cosine similarity between the items of each list (vectors: any item
    description, e.g. category one-hots or embeddings)."""
    if top.shape[1] < 2:
        return float("nan")
    norms = np.linalg.norm(item_vectors, axis=1, keepdims=True)
    unit = np.divide(item_vectors, norms, out=np.zeros_like(item_vectors), where=norms > 0)
    lists = unit[np.where(top >= 0, top, 0)] * (top >= 0)[..., None]
    sims = np.einsum("nid,njd->nij", lists, lists)
    k = top.shape[1]
    off = (sims.sum(axis=(1, 2)) - np.einsum("nii->n", sims)) / (k * (k - 1))
    return float(1 - off.mean())


def evaluate(
    name: str,
    scorer: Scorer,
    t: Task,
    protocol: Protocol,
    item_share: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per (slice, metric): model, slice, metric, k, mean, lower, upper, users."""
    return evaluate_per_user(name, scorer, t, protocol, item_share, item_vectors)[0]


def evaluate_per_user(
    name: str,
    scorer: Scorer,
    t: Task,
    protocol: Protocol,
    item_share: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """:func:`evaluate`'s table and the per-user values behind it (``<metric>_at_<k>`` ->
    one value per evaluated user), for paired comparisons between models."""
    k_max = max(protocol.ks)
    top = rank(scorer, t, k_max, protocol.batch)
    values = per_user(top, t, protocol.ks)
    rng = np.random.default_rng(protocol.seed)
    rows: list[tuple] = []
    for slice_name, mask in t.slices.items():
        for key, per in values.items():
            metric, at = key.rsplit("_at_", 1)
            mean, lo, hi = bootstrap_ci(per[mask], protocol.bootstrap, protocol.confidence, rng)
            rows.append((name, slice_name, metric, int(at), mean, lo, hi, int(mask.sum())))
    n_items = t.truth.shape[1]
    for k in protocol.ks:
        extra = {"coverage": coverage(top[:, :k], n_items)}
        if item_share is not None:
            extra["novelty"] = novelty(top[:, :k], item_share)
        if item_vectors is not None:
            extra["diversity"] = intra_list_diversity(top[:, :k], item_vectors)
        for metric, value in extra.items():
            rows.append((name, "all", metric, k, value, np.nan, np.nan, len(t.users)))
    table = pd.DataFrame(
        rows, columns=["model", "slice", "metric", "k", "mean", "lower", "upper", "users"]
    )
    return table, values


def paired(ours: np.ndarray, theirs: np.ndarray, protocol: Protocol) -> tuple[float, float, float]:
    """Mean difference ``ours - theirs`` over the same users and its percentile bootstrap
    interval, both models resampled together (a paired bootstrap): far narrower than
    two separate intervals, because most of the spread is which customers were drawn,
    and that cancels in the difference."""
    rng = np.random.default_rng(protocol.seed)
    diff = np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)
    return bootstrap_ci(diff, protocol.bootstrap, protocol.confidence, rng)


def slice_means(scorer: Scorer, t: Task, k: int, metric: str = "ndcg") -> dict[str, float]:
    """Mean ``metric``@``k`` per slice (no intervals): what tuning compares between epochs
    and configurations."""
    values = per_user(rank(scorer, t, k), t, (k,))[f"{metric}_at_{k}"]
    return {
        name: float(values[mask].mean()) if mask.any() else float("nan")
        for name, mask in t.slices.items()
    }
