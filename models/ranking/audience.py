"""Audiences: the customers most likely to buy an item (or any item of a category or
brand) soon, for a campaign. Item to users, through the served answer's own terms.

A customer's score for a target is the best, over the target's items, of what the served
blend (:mod:`models.recommenders.blend`) adds up for that customer and item: the model's
affinity standardised over the catalogue per customer (:class:`Affinity`: its mean and
spread follow from the catalogue's moments, so no customer is scored against every item),
plus buy-again (purchases x the item's repeat rate) and interest, by the shop's chosen
weights; then how much the customer buys at all and buys in the target's categories
(:class:`Leaning`). The neighbours and trend terms are left out: the first needs every
item's score per customer, the second is the same for everyone.

:class:`Audiences` lays out what a request reads once per window (the customers' folded
vectors, the signals by item, each customer's purchase lines overall and per category),
so a request costs one small matrix product and reads only the target's columns. The
offline protocol (:mod:`models.evaluation.audiences`) holds it against the targeting
rules a marketer would use instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.ranking.policies import sparse_rows
from models.recommenders.blend import Mix, Signals
from models.recommenders.hybrid import Vectors, score_moments, score_spreads


class Affinity:
    """A user's affinity for items, standardised over the whole catalogue (zero mean, unit
    spread): the common scale of the served blend and of audiences. The mean and spread of
    any user's scores follow from the catalogue's moments in O(d^2), without scoring every
    item."""

    def __init__(self, items: np.ndarray, item_bias: np.ndarray):
        self.items, self.item_bias = items, item_bias
        self.centre = np.append(
            items.mean(axis=0, dtype=np.float64), item_bias.mean(dtype=np.float64)
        )
        self.moments = score_moments(items, item_bias)

    def standard(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean and spread of each user's (rows of ``users``) scores over the
        catalogue; the spread floored above 0."""
        u = np.atleast_2d(users)
        mean = u @ self.centre[:-1] + self.centre[-1]
        spread = np.maximum(score_spreads(u, self.moments), 1e-6)
        return mean, spread

    def folded(self, users: np.ndarray) -> np.ndarray:
        """(n, d + 2) float32 rows [u / s, 1 / s, -m / s] (m, s: each user's mean and
        spread): ``folded @ self.augmented(items).T`` is the standardised affinity, in one
        matrix product."""
        mean, spread = self.standard(users)
        scale = 1 / spread[:, None]
        return np.hstack([users * scale, scale, -mean[:, None] * scale]).astype(np.float32)

    def augmented(self, items: np.ndarray) -> np.ndarray:
        """(len(items), d + 2) float32 rows [v, b, 1] for item positions ``items``."""
        return np.hstack(
            [self.items[items], self.item_bias[items, None], np.ones((len(items), 1))]
        ).astype(np.float32)


@dataclass(frozen=True)
class Leaning:
    """How much a customer's buying at all (purchase lines in the window) and buying in
    the target's categories weigh beside the affinity, in the affinity's spreads (log
    scale); chosen on the validation window (:func:`models.evaluation.audiences.choose`).
    The blend ranks items for one customer, where how much the customer buys cancels
    out; an audience ranks customers, where it does not."""

    activity: float = 0.0
    category: float = 0.0


class Audiences:
    """Item-to-users scores over one window's model and signals. ``vectors`` None (a
    served baseline has no affinity): the leaning alone. ``categories``: (n_items,)
    category codes, for the leaning's category term."""

    def __init__(self, vectors: Vectors | None, signals: Signals, categories: np.ndarray | None):
        self.affinity: Affinity | None = None
        self.users = np.empty((0, 0), np.float32)  # folded vectors (Affinity.folded)
        if vectors is not None:
            self.affinity = Affinity(vectors.items, vectors.item_bias)
            self.users = self.affinity.folded(vectors.users)
        purchases = sp.csr_matrix(signals.purchases)
        self.purchases = purchases.tocsc()  # a target reads its columns
        self.interest = sp.csc_matrix(signals.interest)
        self.repeat_rate = signals.repeat_rate
        self.activity = np.log1p(np.asarray(purchases.sum(axis=1), np.float64).ravel())
        self.categories = categories
        if categories is not None:
            n_codes = int(categories.max()) + 1 if len(categories) else 0
            member = sp.csr_matrix(
                (np.ones(len(categories)), (np.arange(len(categories)), categories)),
                shape=(len(categories), n_codes),
            )
            self.per_category = sp.csc_matrix(purchases @ member)  # lines per category

    def affinity_of(self, items: np.ndarray, mix: Mix) -> np.ndarray:
        """(n_customers,) each customer's best blend score over ``items`` (positions):
        standardised affinity plus buy-again and interest by ``mix``'s weights."""
        if self.affinity is None:
            return np.zeros(len(self.activity))
        scores = self.affinity.augmented(items) @ self.users.T  # (items, customers)
        for weight, matrix, per_item in (
            (mix.again, self.purchases, self.repeat_rate[items]),
            (mix.interest, self.interest, np.ones(len(items))),
        ):
            if weight:
                at, rows, values = sparse_rows(matrix, items)  # the items' columns
                add = weight * values * per_item[at]
                np.add.at(scores, (at, rows), add.astype(np.float32))
        return scores.max(axis=0).astype(np.float64)

    def terms(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per customer: log(1 + purchase lines in the window) and log(1 + purchase lines
        in the categories of ``items``) (zeros without categories)."""
        if self.categories is None:
            return self.activity, np.zeros_like(self.activity)
        codes = np.unique(self.categories[items])
        _, rows, lines = sparse_rows(self.per_category, codes)
        inside = np.bincount(rows, weights=lines, minlength=len(self.activity))
        return self.activity, np.log1p(inside)

    def scores(self, items: np.ndarray, mix: Mix, leaning: Leaning = Leaning()) -> np.ndarray:
        """(n_customers,) the audience's ranking score for a target of ``items``."""
        best = self.affinity_of(items, mix)
        if leaning.activity or leaning.category:
            activity, category = self.terms(items)
            best += leaning.activity * activity + leaning.category * category
        return best

    def bought(self, items: np.ndarray) -> np.ndarray:
        """Mask of customers who bought one of ``items`` in the window."""
        return self._touched(self.purchases, items)

    def looked(self, items: np.ndarray) -> np.ndarray:
        """Mask of customers who interacted with one of ``items`` in the window."""
        return self._touched(self.interest, items)

    def _touched(self, matrix: sp.csc_matrix, items: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(self.activity), bool)
        _, rows, values = sparse_rows(matrix, items)
        mask[rows[values != 0]] = True
        return mask


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
    out ``excluded`` (a boolean mask). Linear in the customers, then a sort of ``n``."""
    s = np.asarray(scores, dtype=np.float64)
    if excluded is not None:
        s = np.where(excluded, -np.inf, s)
    n = min(n, int(np.isfinite(s).sum()))
    if n <= 0:
        return np.empty(0, np.int64)
    kth = np.partition(s, len(s) - n)[len(s) - n]  # the n-th best score
    above = np.flatnonzero(s > kth)
    chosen = np.concatenate([above, np.flatnonzero(s == kth)[: n - len(above)]])
    return chosen[np.lexsort((chosen, -s[chosen]))]
