"""Audiences: the customers most likely to buy an item (or any item of a category or
brand) soon, for a campaign. Item to users, through the served answer's own terms.

A customer's score for a target is the best, over the target's items, of what the served
blend (:mod:`models.recommenders.blend`) adds up for that customer and item: the model's
affinity standardised over the catalogue per customer (its mean and spread follow from
the catalogue's moments, so no customer is scored against every item), plus buy-again
(purchases x the item's repeat rate) and interest, by the shop's chosen weights; then how
much the customer buys at all and buys in the target's categories (:class:`Leaning`). The
neighbours and trend terms are left out: the first needs every item's score per customer,
the second is the same for everyone.

The offline protocol (:mod:`models.evaluation.audiences`) holds it against the targeting
rules a marketer would use instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.recommenders.blend import Mix, Signals
from models.recommenders.hybrid import Vectors, score_moments, score_spreads


class Affinity:
    """Every customer's standardised affinity for any set of items, from one model's
    vectors; the per-customer mean and spread are computed once."""

    def __init__(self, vectors: Vectors):
        self.vectors = vectors
        moments = score_moments(vectors.items, vectors.item_bias)
        centre = np.append(vectors.items.mean(axis=0), vectors.item_bias.mean())
        users = vectors.users.astype(np.float64)
        self.mean = users @ centre[:-1] + centre[-1]
        spread = score_spreads(vectors.users, moments)
        self.spread = np.where(spread > 0, spread, 1.0)

    def z(self, items: np.ndarray, users: np.ndarray | None = None) -> np.ndarray:
        """(customers, len(items)) standardised affinities (all customers, or ``users``)."""
        u = self.vectors.users if users is None else self.vectors.users[users]
        mean = self.mean if users is None else self.mean[users]
        spread = self.spread if users is None else self.spread[users]
        raw = u @ self.vectors.items[items].T + self.vectors.item_bias[items]
        return (raw - mean[:, None]) / spread[:, None]


@dataclass(frozen=True)
class Leaning:
    """How much a customer's buying at all (purchase lines in the window) and buying in
    the target's categories weigh beside the affinity, in the affinity's spreads (log
    scale); chosen on the validation window (:func:`models.evaluation.audiences.choose`).
    The blend ranks items for one customer, where how much the customer buys cancels
    out; an audience ranks customers, where it does not."""

    activity: float = 0.0
    category: float = 0.0


def audience_scores(
    affinity: Affinity,
    signals: Signals | None,
    mix: Mix,
    items: np.ndarray,
    leaning: Leaning = Leaning(),
    categories: np.ndarray | None = None,
) -> np.ndarray:
    """(n_customers,) each customer's best blend score over ``items`` (positions), plus
    the ``leaning`` terms (``categories``: (n_items,) codes, for the category term)."""
    scores = affinity.z(items)
    if signals is not None:
        for weight, matrix, per_item in (
            (mix.again, signals.purchases, signals.repeat_rate[items]),
            (mix.interest, signals.interest, None),
        ):
            if weight:
                part = np.asarray(sp.csr_matrix(matrix)[:, items].todense(), dtype=np.float64)
                scores += weight * (part if per_item is None else part * per_item)
    best = scores.max(axis=1)
    if signals is not None and (leaning.activity or leaning.category):
        activity, category = leaning_terms(signals, items, categories)
        best += leaning.activity * activity + leaning.category * category
    return best


def leaning_terms(
    signals: Signals, items: np.ndarray, categories: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: log(1 + purchase lines in the window) and log(1 + purchase lines in
    the categories of ``items``) (zeros without ``categories``)."""
    purchases = sp.csr_matrix(signals.purchases)
    activity = np.log1p(np.asarray(purchases.sum(axis=1)).ravel())
    if categories is None:
        return activity, np.zeros_like(activity)
    inside = np.flatnonzero(np.isin(categories, np.unique(categories[items])))
    return activity, np.log1p(np.asarray(purchases[:, inside].sum(axis=1)).ravel())


def leading(items: np.ndarray, popularity: np.ndarray, cap: int) -> np.ndarray:
    """The ``cap`` items of ``items`` most customers bought (all when fewer): what a
    category's audience is scored over, so its cost stays bounded in a large catalogue
    (customers x cap x dimensions per request) while the items that sell stay in."""
    if len(items) <= cap:
        return items
    order = np.lexsort((items, -popularity[items]))
    return np.sort(items[order[:cap]])


def rank(scores: np.ndarray, n: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """The ``n`` best positions by ``scores`` (ties: the lower position first), leaving
    out ``excluded`` (a boolean mask)."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if excluded is not None:
        s[excluded] = -np.inf
    order = np.lexsort((np.arange(len(s)), -s))
    order = order[np.isfinite(s[order])]
    return order[:n]
