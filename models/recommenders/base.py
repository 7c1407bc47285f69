"""The one interface every recommender answers through, and the data it learns from.

A recommender is fitted on :class:`Interactions` (the training window as matrices, in the
feature set's user and item order) and answers two questions, vectorised over the
catalogue:

- ``scores(rows)``: (len(rows), n_items) scores for users (personal recommendations);
- ``related(carts)``: (n_carts, n_items) scores of items that go with each row's set of
  items, ``carts`` a 0/1 (n_carts, n_items) matrix (a cart for cross-sell, a one-item
  row for an upsell anchor).

Higher is better. Exclusions, filters and the upsell's price rule are applied by the
callers (:func:`models.ranking.topk.recommend`, :func:`models.ranking.topk.related_to`,
:func:`models.ranking.policies.upsell_candidates`), the same for every model, so models
differ in their scores alone. ``save`` / ``load`` keep a fitted recommender.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.artifacts import load_pickle, save_pickle
from models.data.columns import Columns
from models.data.ids import IdMap
from models.features.build import FeatureSet

C = Columns
R = TypeVar("R", bound="Recommender")


class NotFittedError(RuntimeError):
    """A recommender was asked for scores before ``fit``."""


@dataclass
class Interactions:
    """The training window: who interacted with what, item categories, baskets, and what
    each customer bought; with the feature set when a model learns from features too."""

    matrix: sp.csr_matrix  # (n_users, n_items) decayed interaction weights
    item_category: np.ndarray  # (n_items,) integer category codes
    baskets: sp.csr_matrix | None = None  # (n_baskets, n_items) 0/1 incidence of orders
    recent: sp.csr_matrix | None = None  # (n_users, n_items) the window's last days only
    purchases: sp.csr_matrix | None = None  # (n_users, n_items) how many times bought
    features: FeatureSet | None = None  # user and item features (hybrid models)

    @property
    def purchased(self) -> sp.csr_matrix | None:
        """(n_users, n_items) 0/1: bought in the window."""
        return None if self.purchases is None else ones(self.purchases)

    @property
    def binary(self) -> sp.csr_matrix:
        return ones(self.matrix)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.matrix.shape[0], self.matrix.shape[1])

    @classmethod
    def from_features(cls, fs: FeatureSet, recent_days: int = 7) -> Interactions:
        """The feature set's training window in its own order: decayed event weights, item
        categories, the baskets (orders) of the purchases, what each customer bought, and
        who interacted with what in the last ``recent_days`` before the cutoff."""
        users, items = fs.user_map, fs.item_map
        train = fs.split.train
        buys = train[train[C.event] == "purchase"]
        in_order = buys[buys[C.order].notna() & items.has(buys[C.item])]
        orders = pd.factorize(in_order[C.order])[0]
        baskets = sp.csr_matrix(
            (np.ones(len(orders), np.float32), (orders, items.rows(in_order[C.item]))),
            shape=(int(orders.max()) + 1 if len(orders) else 0, len(items)),
        )
        recent = train[train[C.timestamp] >= fs.split.cutoff - pd.Timedelta(days=recent_days)]
        return cls(
            matrix=fs.weights.tocsr(),
            item_category=fs.item_categories,
            baskets=baskets,
            recent=pairs(recent, users, items),
            purchases=counts(buys, users, items),
            features=fs,
        )


def ones(matrix: sp.spmatrix) -> sp.csr_matrix:
    """1 (float32) where ``matrix`` is non-zero."""
    out = sp.csr_matrix(matrix).astype(bool).astype(np.float32)
    out.eliminate_zeros()
    return out


def pairs(frame: pd.DataFrame, users: IdMap, items: IdMap) -> sp.csr_matrix:
    """(user, item) rows of ``frame`` as a 0/1 (len(users), len(items)) matrix; ids the
    maps do not know are left out."""
    both = frame[[C.user, C.item]].drop_duplicates()
    rows, cols = users.positions(both[C.user]), items.positions(both[C.item])
    known = (rows >= 0) & (cols >= 0)
    return sp.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (rows[known], cols[known])),
        shape=(len(users), len(items)),
    )


def counts(frame: pd.DataFrame, users: IdMap, items: IdMap) -> sp.csr_matrix:
    """How many rows of ``frame`` each (user, item) pair has, as a (len(users),
    len(items)) matrix: an order line counts once, whatever its quantity."""
    rows, cols = users.positions(frame[C.user]), items.positions(frame[C.item])
    known = (rows >= 0) & (cols >= 0)
    out = sp.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (rows[known], cols[known])),
        shape=(len(users), len(items)),
    )
    out.sum_duplicates()
    return out


class Recommender(Protocol):
    """What every recommender answers (see the module's docstring)."""

    @property
    def name(self) -> str: ...

    def fit(self: R, data: Interactions) -> R: ...

    def scores(self, rows: np.ndarray) -> np.ndarray: ...

    def related(self, carts: sp.csr_matrix) -> np.ndarray: ...


def customers_per_item(matrix: sp.spmatrix) -> np.ndarray:
    """How many customers interacted with each item: the one popularity cartlift knows
    (the gate, the report, ``/popular`` and the anonymous visitor's answer use it)."""
    return np.asarray((sp.csr_matrix(matrix) != 0).sum(axis=0), dtype=np.float64).ravel()


T = TypeVar("T")


def fitted(value: T | None, what: str = "the recommender") -> T:
    if value is None:
        raise NotFittedError(f"call fit() before asking {what} for scores")
    return value


def save(recommender: Recommender, path: Path) -> Path:
    """Keep a fitted recommender (a pickle of cartlift's own objects, see docs/security.md)."""
    return save_pickle(recommender, path)


def load(path: Path) -> Recommender:
    return load_pickle(path, object)  # type: ignore[return-value]
