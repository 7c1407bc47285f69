"""Ranking policies: filters, cross-sell, upsell, similar items and popularity.

Pure functions over a :class:`Catalogue` (one array per attribute, in the model's item
order), item embeddings and association rules. Every policy returns a score per catalogue
item, with ``-inf`` for items it must never return; :func:`best` picks the top k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.columns import Columns
from models.ranking import top_k_scores

C = Columns
NEVER = -np.inf


@dataclass
class Catalogue:
    """The items a model can recommend, as aligned arrays."""

    item_ids: np.ndarray  # (n_items,) object
    category: np.ndarray  # (n_items,) object
    price: np.ndarray  # (n_items,) float
    in_stock: np.ndarray  # (n_items,) bool
    margin: np.ndarray  # (n_items,) float, NaN where unknown
    title: np.ndarray  # (n_items,) object

    @classmethod
    def from_items(cls, items: pd.DataFrame, item_ids: np.ndarray) -> Catalogue:
        frame = items.set_index(C.item).reindex(item_ids)
        margin = frame[C.margin] if C.margin in frame else pd.Series(np.nan, index=frame.index)
        return cls(
            item_ids=np.asarray(item_ids, dtype=object),
            category=frame[C.category].fillna("unknown").to_numpy(dtype=object),
            price=frame[C.price].to_numpy(dtype=float),
            in_stock=frame[C.in_stock].fillna(False).to_numpy(dtype=bool),
            margin=pd.to_numeric(margin, errors="coerce").to_numpy(dtype=float),
            title=frame[C.title].fillna("").to_numpy(dtype=object),
        )

    def positions(self, ids: list[str]) -> np.ndarray:
        """Catalogue position of each id, -1 where unknown."""
        pos = pd.Series(np.arange(len(self.item_ids)), index=pd.Index(self.item_ids))
        return pos.reindex(ids).fillna(-1).to_numpy(dtype=np.int64)


@dataclass(frozen=True)
class Filters:
    """What a shop may restrict a list to."""

    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True


def allowed(cat: Catalogue, f: Filters) -> np.ndarray:
    """Boolean mask of the items that pass the filters."""
    mask = np.ones(len(cat.item_ids), dtype=bool)
    if f.include_categories:
        mask &= np.isin(cat.category, list(f.include_categories))
    if f.exclude_categories:
        mask &= ~np.isin(cat.category, list(f.exclude_categories))
    if f.min_price is not None:
        mask &= cat.price >= f.min_price
    if f.max_price is not None:
        mask &= cat.price <= f.max_price
    if f.in_stock_only:
        mask &= cat.in_stock
    return mask


def best(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k positions and scores of one score vector, dropping ``-inf`` (forbidden) items."""
    idx, val = top_k_scores(scores[None, :], k)
    keep = np.isfinite(val[0])
    return idx[0][keep], val[0][keep]


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit spread over the finite entries, so signals can be mixed by weight."""
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros_like(x)
    mu, sd = x[finite].mean(), x[finite].std()
    return (x - mu) / (sd if sd > 0 else 1.0)


def cross_sell(
    lift: sp.csr_matrix,
    cart: np.ndarray,
    cat: Catalogue,
    affinity: np.ndarray | None,
    affinity_weight: float = 0.3,
    substitute_penalty: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of items that complete a cart, and for each the cart item it goes best with.

    Complement signal: the log of the summed lift from the cart's items (bought together
    more than by chance). Personal signal: the user's standardised affinity, by weight.
    Items of a cart item's category are substitutes, not complements: penalised. Cart
    items are never returned. ``cart`` holds catalogue positions (known items only).
    """
    block = lift[cart].toarray() if len(cart) else np.zeros((0, len(cat.item_ids)))
    complement = np.log1p(block.sum(axis=0))
    anchor = cart[block.argmax(axis=0)] if len(cart) else np.full(len(cat.item_ids), -1)
    scores = complement.copy()
    if affinity is not None:
        scores += affinity_weight * standardise(affinity) * max(complement.std(), 1e-3)
    scores -= (
        substitute_penalty * np.isin(cat.category, cat.category[cart]) * max(complement.max(), 1.0)
    )
    scores[cart] = NEVER
    return scores, anchor


def upsell(
    anchor: int,
    item_emb: np.ndarray,
    cat: Catalogue,
    affinity: np.ndarray | None,
    max_price_ratio: float | None = None,
    affinity_weight: float = 0.3,
    margin_weight: float = 0.2,
) -> np.ndarray:
    """Scores of pricier alternatives to ``anchor`` in its category.

    Only items of the same category with a price strictly above the anchor's (and at most
    ``max_price_ratio`` times it) are candidates. Ranked by embedding similarity to the
    anchor, the user's affinity and, where items carry one, their margin.
    """
    candidates = (cat.category == cat.category[anchor]) & (cat.price > cat.price[anchor])
    if max_price_ratio is not None:
        candidates &= cat.price <= cat.price[anchor] * max_price_ratio
    scores = cosine(item_emb, anchor)
    if affinity is not None:
        scores = scores + affinity_weight * standardise(np.where(candidates, affinity, np.nan))
    if np.isfinite(cat.margin).any():
        scores = scores + margin_weight * np.nan_to_num(cat.margin, nan=0.0)
    return np.where(candidates, scores, NEVER)


def cosine(item_emb: np.ndarray, anchor: int) -> np.ndarray:
    """Cosine similarity of every item to ``anchor`` (the anchor itself gets -inf)."""
    norms = np.linalg.norm(item_emb, axis=1)
    sims = item_emb @ item_emb[anchor] / np.maximum(norms * norms[anchor], 1e-12)
    sims[anchor] = NEVER
    return sims


def popular(popularity: np.ndarray, cat: Catalogue, category: str | None = None) -> np.ndarray:
    """Popularity scores, optionally within one category."""
    scores = popularity.astype(float).copy()
    if category is not None:
        scores[cat.category != category] = NEVER
    return scores
