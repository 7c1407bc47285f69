"""Baselines behind one interface: what a shop could build in an afternoon.

Every baseline learns from the same :class:`Interactions` (the training window as
matrices) and answers two questions, vectorised over the catalogue:

- ``scores(rows)``: (len(rows), n_items) scores for users (personal recommendations);
- ``related(carts)``: (n_carts, n_items) scores of items that go with each row's set of
  items, ``carts`` a 0/1 (n_carts, n_items) matrix (carts for cross-sell, one-item rows
  for an upsell anchor).

Filters (exclusions, category, price) are applied by the caller, the same for every
model, so the comparison is between the scores alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp


@dataclass
class Interactions:
    """The training window: who interacted with what, item categories, and baskets."""

    matrix: sp.csr_matrix  # (n_users, n_items) interaction weights
    item_category: np.ndarray  # (n_items,) integer category codes
    baskets: sp.csr_matrix | None = None  # (n_baskets, n_items) 0/1 incidence
    recent: sp.csr_matrix | None = None  # (n_users, n_items) the window's last days only

    @property
    def binary(self) -> sp.csr_matrix:
        out = self.matrix.tocsr().astype(bool).astype(np.float32)
        out.eliminate_zeros()
        return out


class Baseline(Protocol):
    name: str

    def fit(self, data: Interactions) -> Baseline: ...

    def scores(self, rows: np.ndarray) -> np.ndarray: ...

    def related(self, carts: sp.csr_matrix) -> np.ndarray: ...


def _popularity(data: Interactions) -> np.ndarray:
    """Users who interacted with each item."""
    return np.asarray(data.binary.sum(axis=0), dtype=np.float64).ravel()


def _users_per_item(matrix: sp.csr_matrix) -> np.ndarray:
    return np.asarray((matrix != 0).sum(axis=0), dtype=np.float64).ravel()


def _fitted(matrix: sp.csr_matrix | None) -> sp.csr_matrix:
    if matrix is None:
        raise RuntimeError("call fit() before asking the baseline for scores")
    return matrix


def _dense(m: sp.spmatrix | np.ndarray) -> np.ndarray:
    if sp.issparse(m):
        return np.asarray(m.toarray(), dtype=np.float32)  # type: ignore[union-attr]
    return np.asarray(m, dtype=np.float32)


@dataclass
class GlobalPopularity:
    """The best sellers, the same for everyone."""

    name: str = "popularity"
    pop: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, data: Interactions) -> GlobalPopularity:
        self.pop = _popularity(data)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.pop.astype(np.float32), (len(rows), 1))

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return self.scores(np.arange(carts.shape[0]))


@dataclass
class RecentPopularity(GlobalPopularity):
    """The best sellers of the window's last days: what a shop puts on its home page, and
    a seasonal shop's strongest simple signal; ties broken by the whole window."""

    name: str = "popularity, last days"

    def fit(self, data: Interactions) -> RecentPopularity:
        if data.recent is None:
            raise ValueError("recent popularity needs the window's last days (recent)")
        whole = _popularity(data)
        self.pop = _users_per_item(data.recent) + whole / (whole.max() + 1.0)
        return self


@dataclass
class CategoryPopularity:
    """The best sellers of the categories a customer buys most, in that order; customers
    without history get the global best sellers. For a set of items: the best sellers of
    their categories first."""

    name: str = "popularity per category"
    pop: np.ndarray = field(default_factory=lambda: np.zeros(0))
    category: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    user_category: sp.csr_matrix | None = None  # (n_users, n_categories) shares
    item_category: sp.csr_matrix | None = None  # (n_items, n_categories) one-hot

    def fit(self, data: Interactions) -> CategoryPopularity:
        self.pop = _popularity(data)
        self.category = np.asarray(data.item_category, dtype=np.int64)
        n_cat = int(self.category.max()) + 1 if len(self.category) else 0
        self.item_category = sp.csr_matrix(
            (np.ones(len(self.category)), (np.arange(len(self.category)), self.category)),
            shape=(len(self.category), n_cat),
        )
        counts = data.binary @ self.item_category
        totals = np.asarray(counts.sum(axis=1)).ravel()
        self.user_category = sp.csr_matrix(sp.diags(1 / np.maximum(totals, 1)) @ counts)
        return self

    def _tiebreak(self) -> np.ndarray:
        # Popularity scaled into [0, 1): orders items inside a category share level.
        return (self.pop / (self.pop.max() + 1)).astype(np.float32)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        share = _dense(_fitted(self.user_category)[rows])[:, self.category]
        return share + self._tiebreak()

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        same = _dense(carts @ _fitted(self.item_category))[:, self.category] > 0
        return same.astype(np.float32) + self._tiebreak()


def top_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (vectorised: one sort of all entries)."""
    m = m.tocsr()
    m.sort_indices()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-m.data, row))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - m.indptr[row[order]]
    keep = rank < n
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)


@dataclass
class ItemKNN:
    """Item-based neighbours: cosine similarity of items over the customers who had them
    (co-occurrence), the ``neighbours`` most similar kept per item; a customer's score
    for an item sums its similarity to what the customer had."""

    neighbours: int = 100
    name: str = "item-kNN"
    history: sp.csr_matrix | None = None
    sim: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> ItemKNN:
        x = data.binary
        co = (x.T @ x).tocsr().astype(np.float64)
        norms = np.sqrt(co.diagonal())
        inv = sp.diags(1 / np.maximum(norms, 1e-12))
        cos = (inv @ co @ inv).tocsr()
        cos.setdiag(0)
        cos.eliminate_zeros()
        self.sim = top_per_row(cos, self.neighbours).T.tocsr()  # column j: j's neighbours
        self.history = x
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return _dense(_fitted(self.history)[rows] @ _fitted(self.sim))

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return _dense(carts @ _fitted(self.sim))


@dataclass
class AssociationRules:
    """Rules i -> j mined from baskets (models.recommenders.rules); an item's score sums the
    confidence of the rules leading to it from the given items (the cart, or what the
    customer bought)."""

    min_count: int = 2
    name: str = "association rules"
    history: sp.csr_matrix | None = None
    confidence: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> AssociationRules:
        from models.recommenders.rules import from_incidence

        if data.baskets is None:
            raise ValueError("association rules need baskets (orders) in the training window")
        self.confidence = from_incidence(data.baskets, self.min_count).confidence()
        self.history = data.binary
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return _dense(_fitted(self.history)[rows] @ _fitted(self.confidence))

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return _dense(carts @ _fitted(self.confidence))


@dataclass
class ImplicitALS:
    """Matrix factorisation for implicit feedback (the ``implicit`` library's ALS):
    confidence 1 + alpha * weight on observed pairs."""

    factors: int = 64
    regularization: float = 0.01
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 0
    name: str = "implicit ALS"
    user_factors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    item_factors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def fit(self, data: Interactions) -> ImplicitALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # One thread: implicit's parallel solver sums in a varying order, so its factors
        # (and every figure that uses them) would differ run to run in the last digits.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=1,
            )
            model.fit(data.matrix.tocsr().astype(np.float32), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors[rows] @ self.item_factors.T

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return np.asarray(carts @ self.item_factors) @ self.item_factors.T
