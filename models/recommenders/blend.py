"""The served answer: the hybrid's affinity blended with the signals a shop's analyst leans
on, each weighed on the validation window.

A customer's score for an item is, in spreads of the customer's own scores::

    z(model) + again * purchases x repeat rate + interest * interest + trend * trend
             + neighbours * z(items like theirs)

- ``z(model)``: the model's scores standardised over the catalogue, per customer;
- ``purchases x repeat rate``: how often the customer bought the item, times how often
  the item's buyers buy it again (smoothed towards its category's rate): buy-again where
  items are replenished (coffee), next to nothing where they are not (a sofa);
- ``interest``: the customer's decayed interactions, 1 at their strongest (what they
  looked at, put in the cart or bought);
- ``trend``: what sells now (log customers over the trend's half-life, standardised over
  the catalogue);
- ``items like theirs``: the customer's items through EASE's item-to-item weights (the
  strongest per item, negative ones included), standardised per customer.

A new arrival (an item nobody interacted with in the window, ranked by the model from its
features alone) earns no signal and, with the model alone, would never be shown, so never
be learnt: the one that matches the customer best is lifted to rank ``Mix.arrival``
among the items the customer has not bought (``ranking.new_arrival_rank``; 0: off).

Customers with no history in the window get the model alone (its newcomers' trend
included) and the new arrival. Every signal comes from the training window alone, so the
blend is judged on the holdout exactly as it is served. The weights (:class:`Mix`) are
chosen per variant of the truth (bought items excluded or not) on a validation window
carved from the training window (:func:`models.evaluation.tuning.choose_mix`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.data.columns import Columns
from models.data.ids import IdMap
from models.features.build import FeatureSet
from models.recommenders.base import Interactions, Recommender, counts, fitted, ones
from models.recommenders.hybrid import trend_scale

C = Columns
PRIOR_BUYERS = 5.0  # an item's repeat rate leans on its category's as if it had 5 more buyers


@dataclass(frozen=True)
class Mix:
    """The blend's weights, in spreads of the customer's model scores."""

    again: float = 0.0
    interest: float = 0.0
    trend: float = 0.0
    neighbours: float = 0.0
    arrival: int = 0  # the rank the best-matching new arrival is lifted to (0: none)

    def described(self) -> str:
        return (
            f"buy-again {self.again:g}, interest {self.interest:g}, trend {self.trend:g}, "
            f"neighbours {self.neighbours:g}"
            + (f", a new arrival at rank {self.arrival}" if self.arrival else "")
        )


PLAIN = {True: Mix(), False: Mix()}  # the model alone, in both variants


@dataclass
class Signals:
    """What the blend adds to the model: one training window's per-customer signals, in
    its user and item order, and the item-to-item weights learned with the model.
    Customers with no history in the window (rows -1 or empty) get none of them: they
    are ranked by the model alone, its newcomers' trend included."""

    purchases: sp.csr_matrix  # (n_users, n_items) purchase lines per customer and item
    repeat_rate: np.ndarray  # (n_items,) smoothed share of buyers who bought it again
    interest: sp.csr_matrix  # (n_users, n_items) decayed interactions, rows scaled to max 1
    trend: np.ndarray  # (n_items,) standardised log customers over the trend's half-life
    neighbours: sp.csr_matrix | None = None  # (n_items, n_items) item-to-item weights
    new_item_trend: float = 0.0  # where an item nobody bought lies on the trend's scale
    arrivals: np.ndarray | None = None  # (n_items,) bool: nobody interacted in the window

    @classmethod
    def of(cls, fs: FeatureSet, neighbours: sp.csr_matrix | None = None) -> Signals:
        """The window's signals; ``neighbours`` from the model trained with it
        (:meth:`models.recommenders.baselines.EASE.strongest`, in ``fs``'s item order)."""
        train = fs.split.train
        purchases = counts(train[train[C.event] == "purchase"], fs.user_map, fs.item_map)
        weights = sp.csr_matrix(fs.weights, dtype=np.float32)
        top = np.asarray(weights.max(axis=1).todense()).ravel()
        interest = sp.csr_matrix(sp.diags(1 / np.maximum(top, 1e-12)) @ weights)
        trend, new_item = trend_scale(fs.item_trend)
        return cls(
            purchases,
            repeat_rate(purchases, fs.item_categories),
            interest,
            trend,
            neighbours,
            new_item,
            ~fs.seen_items,
        )

    @classmethod
    def empty(cls, n_users: int, n_items: int) -> Signals:
        """No signal at all: how a version written before the blend is served."""
        nothing = sp.csr_matrix((n_users, n_items), dtype=np.float32)
        flat = np.zeros(n_items, np.float32)
        return cls(nothing, flat, nothing.copy(), flat.copy())

    @property
    def _arrived(self) -> np.ndarray:
        """:attr:`arrivals`, none for signals written without them."""
        return self.arrivals if self.arrivals is not None else np.zeros(len(self.trend), bool)

    @property
    def shop_rate(self) -> float:
        """The repeat rate of an item these signals never saw: the shop's median."""
        return float(np.median(self.repeat_rate)) if len(self.repeat_rate) else 0.0

    @property
    def bought(self) -> sp.csr_matrix:
        """0/1: who bought what in the window."""
        return ones(self.purchases)

    def add(self, scores: np.ndarray, rows: np.ndarray, mix: Mix) -> np.ndarray:
        """``scores`` (len(rows), n_items), standardised model scores, plus the signals
        of customers ``rows`` (-1: a customer the window never saw), in place."""
        arrival = self._best_arrival(scores) if mix.arrival else None
        safe = np.where(rows >= 0, rows, 0)
        with_history = (rows >= 0) & (np.diff(self.interest.indptr)[safe] > 0)
        if with_history.any():
            self._add_history(scores, rows, with_history, mix)
        if arrival is not None:
            self._lift(scores, rows, arrival, mix.arrival)
        return scores

    def _best_arrival(self, scores: np.ndarray) -> np.ndarray | None:
        """Per row, the new arrival the model scores highest; None without any."""
        if self.arrivals is None or not self.arrivals.any():
            return None
        at = np.flatnonzero(self.arrivals)
        return at[np.argmax(scores[:, at], axis=1)]

    def _lift(self, scores: np.ndarray, rows: np.ndarray, arrival: np.ndarray, rank: int) -> None:
        """Raise each row's ``arrival`` to just below the row's (``rank`` - 1)-th best
        item among those the customer did not buy (bought items may be left out of the
        answer), unless it already ranks higher."""
        others = scores.copy()
        known = np.flatnonzero(rows >= 0)
        bought = self.purchases[rows[known]].tocoo()
        others[known[bought.row], bought.col] = -np.inf
        line = np.arange(len(rows))
        others[line, arrival] = -np.inf
        if rank <= 1:  # first: just above the best of the others
            lifted = np.nextafter(others.max(axis=1), np.inf)
        else:  # just below the (rank - 1)-th best; fewer others: it stays where it is
            place = min(rank - 1, others.shape[1]) - 1
            lifted = np.nextafter(-np.partition(-others, place, axis=1)[:, place], -np.inf)
        scores[line, arrival] = np.maximum(scores[line, arrival], lifted)

    def _add_history(
        self, scores: np.ndarray, rows: np.ndarray, with_history: np.ndarray, mix: Mix
    ) -> None:
        at = np.flatnonzero(with_history)
        taken = rows[with_history]
        if mix.trend:
            scores[at] += mix.trend * self.trend
        if mix.neighbours and self.neighbours is not None:
            near = np.asarray((ones(self.interest[taken]) @ self.neighbours).todense())
            scores[at] += mix.neighbours * standardised(near)
        for weight, matrix, per_item in (
            (mix.again, self.purchases, self.repeat_rate),
            (mix.interest, self.interest, None),
        ):
            if not weight:
                continue
            part = matrix[taken].tocoo()
            values = part.data * weight
            if per_item is not None:
                values = values * per_item[part.col]
            np.add.at(scores, (at[part.row], part.col), values)

    def onto(
        self, user_ids: np.ndarray, item_ids: np.ndarray, users: IdMap, items: IdMap
    ) -> Signals:
        """These signals (over ``user_ids`` x ``item_ids``, the window they came from)
        in another window's order: what a version serves, scored on a newer holdout.
        Customers and items these signals never saw get none (new items: the shop's
        repeat rate and a new item's trend; new arrivals)."""
        move_users, _ = _move(user_ids, users)
        move_items, new = _move(item_ids, items)
        return Signals(
            sp.csr_matrix(move_users @ self.purchases @ move_items.T),
            np.where(new, self.shop_rate, move_items @ self.repeat_rate).astype(np.float32),
            sp.csr_matrix(move_users @ self.interest @ move_items.T),
            np.where(new, self.new_item_trend, move_items @ self.trend).astype(np.float32),
            None
            if self.neighbours is None
            else sp.csr_matrix(move_items @ self.neighbours @ move_items.T),
            self.new_item_trend,
            new | (move_items @ self._arrived.astype(np.float32) > 0),
        )

    def grown(self, n_items: int) -> Signals:
        """The same signals over a catalogue grown to ``n_items`` (new items appended:
        never bought, no neighbours, the shop's repeat rate, a new item's trend: new
        arrivals)."""
        extra = n_items - len(self.trend)
        if extra <= 0:
            return self
        return Signals(
            padded(self.purchases, self.purchases.shape[0], n_items),
            np.concatenate([self.repeat_rate, np.full(extra, self.shop_rate)]),
            padded(self.interest, self.interest.shape[0], n_items),
            np.concatenate([self.trend, np.full(extra, self.new_item_trend, np.float32)]),
            None if self.neighbours is None else padded(self.neighbours, n_items, n_items),
            self.new_item_trend,
            np.concatenate([self._arrived, np.ones(extra, bool)]),
        )


def _move(ids: np.ndarray, onto: IdMap) -> tuple[sp.csr_matrix, np.ndarray]:
    """The 0/1 (len(onto), len(ids)) matrix moving rows in ``ids`` order onto ``onto``'s
    order, and which of ``onto``'s ids ``ids`` lacks."""
    at = onto.positions(ids)
    kept = np.flatnonzero(at >= 0)
    move = sp.csr_matrix(
        (np.ones(len(kept), np.float32), (at[kept], kept)), shape=(len(onto), len(ids))
    )
    missing = np.ones(len(onto), bool)
    missing[at[kept]] = False
    return move, missing


def realigned(neighbours: sp.csr_matrix, item_ids: np.ndarray, items: IdMap) -> sp.csr_matrix:
    """Item-to-item weights over ``item_ids`` (a model's catalogue) moved onto the item
    order of ``items`` (a newer window's): items either side lacks drop out."""
    move, _ = _move(item_ids, items)
    return sp.csr_matrix(move @ neighbours @ move.T)


def padded(m: sp.csr_matrix, rows: int, cols: int) -> sp.csr_matrix:
    """The same CSR matrix with empty rows and columns appended, to (rows, cols)."""
    indptr = np.append(m.indptr, np.full(rows - m.shape[0], m.nnz, m.indptr.dtype))
    return sp.csr_matrix((m.data, m.indices, indptr), shape=(rows, cols))


def repeat_rate(purchases: sp.csr_matrix, categories: np.ndarray | None = None) -> np.ndarray:
    """Per item, the share of its buyers who bought it more than once, smoothed by
    :data:`PRIOR_BUYERS` towards its category's share, itself smoothed towards the shop's
    (``categories``: (n_items,) integer codes; None: the shop's directly). An item with
    two buyers says little, and what its category says is closer than the shop: coffee
    beans are bought again and sofas are not (on the default shop, smoothing towards
    the category rather than the shop took the blend's NDCG@10 with repeats counted from
    0.2338 to 0.2391 on the holdout, weights chosen on the validation window)."""
    once = np.asarray((purchases > 0).sum(axis=0), dtype=np.float64).ravel()
    again = np.asarray((purchases > 1).sum(axis=0), dtype=np.float64).ravel()
    prior = np.full(len(once), again.sum() / max(once.sum(), 1.0))
    if categories is not None and len(categories):
        per_once = np.bincount(categories, once)[categories]
        per_again = np.bincount(categories, again)[categories]
        prior = (per_again + PRIOR_BUYERS * prior) / (per_once + PRIOR_BUYERS)
    return ((again + PRIOR_BUYERS * prior) / (once + PRIOR_BUYERS)).astype(np.float32)


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its spread (rows with no spread: centred only)."""
    out = np.asarray(scores, dtype=np.float32)
    out = out - out.mean(axis=1, keepdims=True)
    spread = out.std(axis=1, keepdims=True)
    out /= np.where(spread > 0, spread, 1.0)
    return out


@dataclass
class Blended:
    """A model's scores blended with a window's :class:`Signals` by a :class:`Mix`, as a
    :class:`~models.recommenders.base.Recommender` over the signals' customers and items.
    ``fit`` fits the model and takes the signals of the same window."""

    model: Recommender
    mix: Mix
    signals: Signals | None = None
    name: str = "cartlift"

    def fit(self, data: Interactions) -> Blended:
        if data.features is None:
            raise ValueError("the blend's signals come from a feature set: from_features")
        self.model.fit(data)
        self.signals = Signals.of(data.features)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        signals = fitted(self.signals, self.name)
        return signals.add(standardised(self.model.scores(rows)), rows, self.mix)

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        return self.model.related(carts)
