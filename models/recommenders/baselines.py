"""The baselines: what a shop could build in an afternoon, behind the one interface of
:mod:`models.recommenders.base`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from models.ranking.topk import top_per_row
from models.recommenders.base import Interactions, Recommender, customers_per_item, fitted


def _dense(m: sp.spmatrix | np.ndarray) -> np.ndarray:
    if sp.issparse(m):
        return np.asarray(m.toarray(), dtype=np.float32)  # type: ignore[union-attr]
    return np.asarray(m, dtype=np.float32)


@dataclass
class Popularity:
    """The best sellers, the same for everyone: customers per item in the training window
    (:func:`~models.recommenders.base.customers_per_item`)."""

    name: str = "popularity"
    pop: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, data: Interactions) -> Popularity:
        self.pop = customers_per_item(data.matrix)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.pop.astype(np.float32), (len(rows), 1))

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return self.scores(np.arange(carts.shape[0]))


@dataclass
class RecentPopularity(Popularity):
    """The best sellers of the window's last days: what a shop puts on its home page, and
    a seasonal shop's strongest simple signal; ties broken by the whole window."""

    name: str = "popularity, last days"

    def fit(self, data: Interactions) -> RecentPopularity:
        if data.recent is None:
            raise ValueError("recent popularity needs the window's last days (recent)")
        whole = customers_per_item(data.matrix)
        self.pop = customers_per_item(data.recent) + whole / (whole.max() + 1.0)
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
        self.pop = customers_per_item(data.matrix)
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
        share = _dense(fitted(self.user_category)[rows])[:, self.category]
        return share + self._tiebreak()

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        same = _dense(carts @ fitted(self.item_category))[:, self.category] > 0
        return same.astype(np.float32) + self._tiebreak()


@dataclass
class PersonalFrequency:
    """Buy again: each customer's most often bought items first, then what they looked at
    or put in the cart (most recent and most often first), then the best sellers. The
    strongest simple answer where customers repeat their purchases (groceries, supplies);
    where bought items are excluded it is the customer's unbought interests, then
    popularity. For a set of items: the best sellers."""

    name: str = "personal frequency"
    pop: np.ndarray = field(default_factory=lambda: np.zeros(0))
    purchases: sp.csr_matrix | None = None
    interest: sp.csr_matrix | None = None  # decayed interactions, each row scaled to max 1

    def fit(self, data: Interactions) -> PersonalFrequency:
        if data.purchases is None:
            raise ValueError("personal frequency needs the window's purchase counts (purchases)")
        self.pop = customers_per_item(data.matrix)
        self.purchases = data.purchases.tocsr()
        weights = data.matrix.tocsr().astype(np.float32)
        top = np.asarray(weights.max(axis=1).todense()).ravel()
        self.interest = sp.csr_matrix(sp.diags(1 / np.maximum(top, 1e-12)) @ weights)
        return self

    def _popular(self) -> np.ndarray:
        return (self.pop / (self.pop.max() + 1)).astype(np.float32)  # in [0, 1)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        # Tiers: a purchase count (>= 1) outranks any interest (< 0.5 + 0.25), which
        # outranks an item the customer never touched (popularity alone, < 0.25).
        out = _dense(fitted(self.purchases)[rows])
        touched = _dense(fitted(self.interest)[rows])
        out += np.where(touched > 0, 0.25 + 0.5 * touched, 0.0)
        return out + 0.25 * self._popular()

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return np.tile(self._popular(), (carts.shape[0], 1))


@dataclass
class EASE:
    """Embarrassingly shallow autoencoder (Steck, 2019): item-item weights in closed form,
    ``B = I - P / diag(P)`` with ``P = (X'X + l2 I)^-1``, zero diagonal; a customer's
    score for an item sums the weights from what they had. Strong on sparse data. The
    inverse is dense, so only the ``max_items`` items most customers had take part (the
    others score 0): at 8,000 items the inverse alone took 19 s on this 2-core machine,
    and the fit holds two 8,000 x 8,000 float64 matrices (1 GB) at its peak."""

    l2: float = 500.0
    max_items: int = 8_000
    name: str = "EASE"
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    history: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> EASE:
        x = data.binary
        pop = customers_per_item(x)
        order = np.argsort(-pop, kind="stable")[: self.max_items]
        self.keep = np.sort(order[pop[order] > 0])
        sub = x[:, self.keep]
        gram = (sub.T @ sub).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        del gram
        inverse /= -np.diag(inverse).copy()  # in place: one dense matrix less at the peak
        np.fill_diagonal(inverse, 0.0)
        self.weights = inverse.astype(np.float32)
        self.history = x
        return self

    def strongest(self, per_item: int) -> sp.csr_matrix:
        """The weights as a sparse (n_items, n_items) matrix holding each item's
        ``per_item`` weights of largest magnitude, negative ones included (an item that
        makes another unlikely says as much as one that makes it likely: dropping them
        cost a tenth of the blend's NDCG@10 on Online Retail): what the served blend
        needs, at a fraction of the dense matrix's memory."""
        n = fitted(self.history).shape[1]
        per = min(per_item, len(self.keep))
        if per == 0:
            return sp.csr_matrix((n, n), dtype=np.float32)
        cols = np.argpartition(-np.abs(self.weights), per - 1, axis=1)[:, :per]
        values = np.take_along_axis(self.weights, cols, axis=1).ravel()
        rows = np.repeat(self.keep, per)
        out = sp.csr_matrix((values, (rows, self.keep[cols.ravel()])), shape=(n, n))
        out.eliminate_zeros()
        return out

    def _through(self, x: sp.csr_matrix) -> np.ndarray:
        out = np.zeros(x.shape, np.float32)
        out[:, self.keep] = np.asarray(sp.csr_matrix(x)[:, self.keep] @ self.weights)
        return out

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self._through(fitted(self.history)[rows])

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return self._through(carts)


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
        return _dense(fitted(self.history)[rows] @ fitted(self.sim))

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return _dense(carts @ fitted(self.sim))


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
        return _dense(fitted(self.history)[rows] @ fitted(self.confidence))

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return _dense(carts @ fitted(self.confidence))


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


RECENT_DAYS = 7  # "last week's best sellers": what a shop would try first


SIMPLE_BASELINES = (
    "popularity",
    f"popularity, last {RECENT_DAYS} days",
    "personal frequency",
    "item-kNN",
    "EASE",
)


def simple_baselines(
    ease_l2: float, names: tuple[str, ...] = SIMPLE_BASELINES
) -> list[Recommender]:
    """The simple answers every candidate must beat before it is served (the gate's bar,
    and the fallback served when none does): best sellers, last week's best sellers,
    each customer's own favourites, item-kNN and EASE with its regularisation chosen on
    the validation window; those in ``names`` (popularity always). Unfitted; fit on
    :class:`Interactions` with ``recent_days=RECENT_DAYS``."""
    unknown = set(names) - set(SIMPLE_BASELINES)
    if unknown:
        raise ValueError(
            f"gate.against names unknown baselines {sorted(unknown)}; "
            f"known: {', '.join(SIMPLE_BASELINES)}"
        )
    every: list[Recommender] = [
        Popularity(),
        RecentPopularity(name=SIMPLE_BASELINES[1]),
        PersonalFrequency(),
        ItemKNN(),
        EASE(l2=ease_l2),
    ]
    return [m for m in every if m.name in names or m.name == "popularity"]
