"""Ranking policies: filters, cross-sell, upsell, similar items and popularity.

Pure functions over a :class:`~models.ranking.catalogue.Catalogue` (one array per
attribute, in the model's item order), item embeddings and association rules. Every
policy returns a score per catalogue item, with ``-inf`` for items it must never return;
:func:`best` picks the top k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.data.columns import Columns
from models.ranking.catalogue import Catalogue
from models.ranking.topk import top_k_scores

C = Columns
NEVER = -np.inf


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
        mask &= cat.in_categories(cat.codes(f.include_categories))
    if f.exclude_categories:
        mask &= ~cat.in_categories(cat.codes(f.exclude_categories))
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


def sparse_rows(mat: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row number, column, value) of every entry in ``rows`` of a CSR matrix (of a CSC
    matrix, the same for its columns: (column number, row, value)).

    Slices the CSR arrays directly: for the few rows of a cart this is several times
    faster than scipy's fancy indexing, which validates and converts on every call.
    """
    starts, ends = mat.indptr[rows], mat.indptr[rows + 1]
    counts = ends - starts
    offsets = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    return np.repeat(np.arange(len(rows)), counts), mat.indices[offsets], mat.data[offsets]


def cross_sell(
    lift: sp.csr_matrix,
    cart: np.ndarray,
    cat: Catalogue,
    affinity_z: np.ndarray | None,
    candidates: np.ndarray | None = None,
    affinity_weight: float = 1.0,
    substitute_penalty: float = 1.0,
    neighbours: sp.csr_matrix | None = None,
    neighbours_weight: float = 0.0,
) -> np.ndarray:
    """Scores of the items that complete a cart (of ``candidates``, default all items).

    Complement signals: the log of the summed lift from the cart's items (bought together
    in one order more than by chance) and, by ``neighbours_weight``, the cart's items
    through the item-to-item weights ``neighbours`` (EASE's: bought by the same customers,
    at any time), standardised over the catalogue; both in spreads of the lift, so one
    weight suits shops with dense and sparse baskets alike. Personal signal: the user's
    standardised affinity (``affinity_z``, zero mean and unit spread over the catalogue,
    given for the same positions as ``candidates``), by weight (1 suits both datasets of
    docs/quality.md).
    Items of a cart item's category that the baskets never show bought with the cart are
    substitutes, not complements: penalised (a shop whose customers buy several of a
    kind, bags in three designs, keeps them). Cart items get -inf. ``cart`` holds
    catalogue positions (known items only).
    """
    n = len(cat.item_ids)
    _, cols, vals = sparse_rows(lift, cart)
    with_lift, inverse = np.unique(cols, return_inverse=True)
    summed = np.bincount(inverse, weights=vals, minlength=len(with_lift))
    # Spread and top of the complement signal from its few non-zero entries.
    values = np.log1p(summed)
    mean = values.sum() / n
    spread = np.sqrt(max((values**2).sum() / n - mean**2, 0.0))
    top = values.max() if values.size else 0.0
    if candidates is None:
        candidates = np.arange(n)
    # log1p(summed lift) of each candidate: 0 where it has none.
    at = np.minimum(np.searchsorted(with_lift, candidates), max(len(with_lift) - 1, 0))
    found = with_lift[at] == candidates if len(with_lift) else np.zeros(len(candidates), bool)
    scores = np.where(found, values[at] if len(values) else 0.0, 0.0)
    if neighbours is not None and neighbours_weight:
        scores += (
            neighbours_weight
            * max(spread, 1e-3)
            * _standardised_sum(neighbours, cart, candidates, n)
        )
    if affinity_z is not None:
        scores += affinity_z * (affinity_weight * max(spread, 1e-3))
    table = np.zeros(len(cat.categories), dtype=bool)
    table[cat.category_code[cart]] = True
    substitutes = table[cat.category_code[candidates]] & ~found
    scores[substitutes] -= substitute_penalty * max(top, 1.0)
    scores[np.isin(candidates, cart)] = NEVER
    return scores


def _standardised_sum(
    weights: sp.csr_matrix, rows: np.ndarray, candidates: np.ndarray, n: int
) -> np.ndarray:
    """The sum of ``weights``' ``rows``, standardised over its ``n`` columns (from its few
    non-zeros), at ``candidates``."""
    summed = np.asarray(weights[rows].sum(axis=0)).ravel()
    mean = summed.sum() / n
    spread = np.sqrt(max((summed**2).sum() / n - mean**2, 0.0))
    return (summed[candidates] - mean) / (spread if spread > 0 else 1.0)


def anchors(lift: sp.csr_matrix, cart: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """For each chosen item, the cart item it is most bought with (-1 when none)."""
    if cart.size == 0 or chosen.size == 0:
        return np.full(chosen.size, -1)
    row, col, val = sparse_rows(lift, cart)
    order = np.argsort(chosen)
    at = np.minimum(np.searchsorted(chosen, col, sorter=order), len(chosen) - 1)
    hit = chosen[order[at]] == col
    block = np.zeros((len(cart), len(chosen)))
    block[row[hit], order[at[hit]]] = val[hit]
    return np.where(block.max(axis=0) > 0, cart[block.argmax(axis=0)], -1)


def upsell(
    anchor: int,
    item_emb: np.ndarray,
    cat: Catalogue,
    user_vec: np.ndarray | None,
    item_bias: np.ndarray | None = None,
    max_price_ratio: float | None = None,
    affinity_weight: float = 3.0,
    margin_weight: float = 0.2,
    norms: np.ndarray | None = None,
    taste: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pricier alternatives to ``anchor`` in its category: (positions, scores).

    Only items of the same category with a price strictly above the anchor's (and at most
    ``max_price_ratio`` times it) are candidates, and only they are scored: by embedding
    similarity to the anchor, the user's affinity (``user_vec``, standardised over the
    candidates) and, where items carry one, their margin. Affinity weighs three times
    the closeness: on the default shop and Online Retail the pricier item a customer goes
    on to buy follows their taste more than the anchor (docs/quality.md). Closeness is
    measured on ``taste`` (``norms`` are its norms) when given, else on ``item_emb``.
    """
    members = cat.members[cat.category_code[anchor]]
    price = cat.price[members]
    keep = price > cat.price[anchor]
    if max_price_ratio is not None:
        keep &= price <= cat.price[anchor] * max_price_ratio
    cand = members[keep]
    like = item_emb if taste is None else taste
    near = like[cand]
    if norms is None:
        cand_norms, anchor_norm = np.linalg.norm(near, axis=1), np.linalg.norm(like[anchor])
    else:
        cand_norms, anchor_norm = norms[cand], norms[anchor]
    scores = near @ like[anchor] / np.maximum(cand_norms * anchor_norm, 1e-12)
    if user_vec is not None and cand.size:
        affinity = item_emb[cand] @ user_vec + (0.0 if item_bias is None else item_bias[cand])
        scores = scores + affinity_weight * standardise(affinity)
    margin = cat.margin[cand]
    if np.isfinite(margin).any():
        scores = scores + margin_weight * np.nan_to_num(margin, nan=0.0)
    return cand, scores


def cosine(
    item_emb: np.ndarray,
    anchor: int,
    norms: np.ndarray | None = None,
    item_emb_t: np.ndarray | None = None,
) -> np.ndarray:
    """Cosine similarity of every item to ``anchor`` (the anchor itself gets -inf);
    ``item_emb_t``, the same matrix laid out (d, n), makes the product faster."""
    norms = np.linalg.norm(item_emb, axis=1) if norms is None else norms
    dots = item_emb @ item_emb[anchor] if item_emb_t is None else item_emb[anchor] @ item_emb_t
    sims = dots / np.maximum(norms * norms[anchor], 1e-12)
    sims[anchor] = NEVER
    return sims


def popular(popularity: np.ndarray, cat: Catalogue, category: str | None = None) -> np.ndarray:
    """Popularity scores, optionally within one category."""
    scores = popularity.astype(float).copy()
    if category is not None:
        scores[~cat.in_categories(cat.codes([category]))] = NEVER
    return scores


def upsell_candidates(
    scores: np.ndarray,
    anchor: int,
    prices: np.ndarray,
    category: np.ndarray,
    max_price_ratio: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The upsell rule for any recommender's item scores: only items of the anchor's
    category, strictly pricier (at most ``max_price_ratio`` times its price), are
    candidates; returns (positions, their scores). The engine's :func:`upsell` keeps the
    same rule through the catalogue's category members."""
    keep = (category == category[anchor]) & (prices > prices[anchor])
    if max_price_ratio is not None:
        keep &= prices <= prices[anchor] * max_price_ratio
    cand = np.flatnonzero(keep)
    return cand, np.asarray(scores)[cand]
