"""Bundles: a pack of items that completes an anchor (an item or a cart), with a price.

The pack grows one item at a time. Each step takes the candidate with the best served
cross-sell score for the anchor (co-purchase lift, the blend's item-to-item weights and
the customer's affinity by ``ranking.bundle_affinity``:
:func:`models.ranking.policies.cross_sell`) plus, by
``ranking.bundle_together``, log(1 + the orders that held the whole pack so far together
with it): multi-item co-occurrence, so the pack's items go with each other and not only
with the anchor. Where the shop counts repeats, the engine adds the customer's own
purchases to the candidates and their scores (``ranking.bundle_history``), since a
regular's order repeats their usual items. Hard rules: never an item the filters rule
out (out of stock, by default) and never two substitutes, two items of one category that
the orders never show bought together (the rungs of one price ladder: a customer takes
one of them).

The price (:func:`price`): the items' prices summed, less ``ranking.bundle_discount``,
less only as much as keeps the pack's margin at or above ``ranking.bundle_margin_floor``
of what the customer pays. Where an item's margin is unknown the floor cannot be checked:
no discount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.ranking.policies import NEVER, sparse_rows


@dataclass(frozen=True)
class Price:
    full: float  # the items' prices summed
    price: float  # what the pack costs the customer, rounded up to the cent
    discount: float  # 1 - price / full
    margin: float | None  # (price - cost) / price; None when an item's margin is unknown
    note: str  # why the discount is what it is


def price(prices: np.ndarray, margins: np.ndarray, discount: float, floor: float) -> Price:
    """The pack's price: ``discount`` off the summed ``prices``, cut to what keeps the
    margin (``margins``: each item's share of its price) at or above ``floor``. The
    price is rounded up to the cent, so rounding never takes the margin under the floor."""
    full = round(float(np.sum(prices)), 2)
    if full <= 0:
        return Price(full, full, 0.0, None, "no discount: the pack has no price")
    if not np.isfinite(margins).all():
        return Price(full, full, 0.0, None, "no discount: an item's margin is unknown")
    cost = float(np.sum(prices * (1 - margins)))
    # margin after a discount d: (full (1 - d) - cost) / (full (1 - d)) >= floor
    # <=> full (1 - d) >= cost / (1 - floor)
    lowest = cost / (1 - floor)
    held = lowest > full * (1 - discount)  # the floor, not the discount, sets the price
    paid = min(math.ceil(round(max(full * (1 - discount), min(lowest, full)) * 100, 6)) / 100, full)
    given = 1 - paid / full
    margin = (paid - cost) / paid
    if paid >= full:
        note = "no discount: the pack's margin is at the floor already" if held else "no discount"
    elif held:
        note = f"{given:.0%} off: more would take the margin under {floor:.0%}"
    else:
        note = f"{discount:.0%} off"
    return Price(full, paid, given, margin, note)


def substitutes(
    lift: sp.csr_matrix, category: np.ndarray, pack: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Mask of ``candidates`` that share a category with an item of ``pack`` without
    the orders showing them bought with it (no lift): the same price ladder's rungs."""
    rows, cols, _ = sparse_rows(lift, pack)
    out = np.zeros(len(candidates), bool)
    for at, p in enumerate(pack.tolist()):
        same = category[candidates] == category[p]
        out |= same & ~np.isin(candidates, cols[rows == at])
    return out


def together(orders: sp.csc_matrix, pack: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each candidate, the orders (columns of ``orders``: items; rows: orders) that
    held every item of ``pack`` and the candidate."""
    held = np.ones(orders.shape[0], bool)
    for p in pack.tolist():
        mask = np.zeros(orders.shape[0], bool)
        mask[orders.indices[orders.indptr[p] : orders.indptr[p + 1]]] = True
        held &= mask
    if not held.any():
        return np.zeros(len(candidates))
    part = orders[:, candidates]
    hits = held[part.indices].astype(np.float64)
    counts = np.add.reduceat(np.append(hits, 0.0), part.indptr[:-1])
    counts[np.diff(part.indptr) == 0] = 0.0
    return counts


def grow(
    scores: np.ndarray,
    candidates: np.ndarray,
    anchor: np.ndarray,
    k: int,
    lift: sp.csr_matrix,
    category: np.ndarray,
    orders: sp.csc_matrix | None,
    weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` candidates added to ``anchor`` one at a time (module docstring):
    (positions, the score each was chosen on). ``scores``: the candidates' cross-sell
    scores for the anchor (-inf: never)."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[substitutes(lift, category, anchor, candidates)] = NEVER
    pack, chosen, values = anchor, [], []
    for _ in range(k):
        step = scores
        if orders is not None and weight:
            step = scores + weight * np.log1p(together(orders, pack, candidates))
        at = int(np.argmax(step))
        if not np.isfinite(step[at]):
            break
        item = candidates[at]
        chosen.append(int(item))
        values.append(float(step[at]))
        pack = np.append(pack, item)
        scores[at] = NEVER
        scores[substitutes(lift, category, np.array([item]), candidates)] = NEVER
    return np.array(chosen, dtype=np.int64), np.array(values)
