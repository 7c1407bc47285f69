"""Session recommenders: what a visitor will touch next, from what they touched in this
session (a prefix), whoever they are.

:class:`SessionModel` holds what is learnt from past sessions, as arrays (what a bundle can
carry). It scores a batch of prefixes at once, a prefix being a sparse row of recency
weights over the items (:func:`models.evaluation.sessions.prefixes`), in a few sparse
products (the offline protocol); one request's session it scores by plain array
arithmetic, to the same figures (:meth:`SessionModel.score_one`). Its components:

- ``popularity``: sessions per item (what an unknown visitor gets today);
- ``knn``: session-kNN (Jannach and Ludewig, 2017; with a recency-weighted
  prefix, V-SKNN, Ludewig and Jannach, 2018): the ``neighbours`` past sessions most
  similar to the prefix (the items they share, over the square root of their length),
  each item scored by the summed similarity of the neighbours that hold it;
- ``rules``: sequential rules, how often an item followed another within ``steps`` steps of a
  past session, a follower d steps on counting 1 / d (Ludewig and Jannach, 2018);
- ``ease``: EASE's closed-form item-to-item weights (Steck, 2019) learnt on
  sessions instead of customers;
- ``category``: the prefix's categories, each item by log(1 + its sessions);
- :meth:`SessionModel.blend`: cartlift's: a weighted sum of ``ease``, ``rules``, ``knn``
  and ``category``, each scaled per prefix by its largest score, weights chosen on a
  validation window (:func:`models.evaluation.sessions.choose_blend`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from models.features.sessions import Sessions
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE

Scorer = Callable[[sp.csr_matrix], np.ndarray]  # prefixes (cases x items) -> scores
COMPONENTS = ("ease", "rules", "knn", "category")
DECAY = 1.0  # in a prefix of n steps, step j (1-based) weighs (j / n) ** DECAY


def prefix(items: np.ndarray, n_items: int, decay: float = DECAY) -> sp.csr_matrix:
    """One session's items (positions, oldest first) as a prefix row: what a request
    with a session is scored on. An item touched twice sums its weights."""
    n = len(items)
    weight = ((np.arange(n) + 1) / max(n, 1)) ** decay
    return sp.csr_matrix(
        (weight.astype(np.float32), (np.zeros(n, np.int64), np.asarray(items, np.int64))),
        shape=(1, n_items),
    )


def transitions(train: Sessions, steps: int = 3) -> sp.csr_matrix:
    """(items, items): how often b followed a within ``steps`` steps of a session, a
    follower d steps on counting 1 / d."""
    items = train.items
    session_of = np.repeat(np.arange(len(train)), train.lengths)
    rows, cols, vals = [], [], []
    for d in range(1, steps + 1):
        a = np.arange(max(len(items) - d, 0))
        same = session_of[a] == session_of[a + d]
        rows.append(items[a[same]])
        cols.append(items[a[same] + d])
        vals.append(np.full(int(same.sum()), 1.0 / d, np.float32))
    n = train.n_items
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    out.sum_duplicates()
    return out


def scaled(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its largest finite magnitude: components on one scale."""
    top = np.where(np.isfinite(scores), np.abs(scores), 0.0).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return scores / top


def without_seen(scores: np.ndarray, p: sp.csr_matrix) -> np.ndarray:
    """``scores`` (in place) with the prefix's own items last."""
    rows, cols = p.nonzero()
    scores[rows, cols] = -np.inf
    return scores


@dataclass(frozen=True)
class Weights:
    """The blend's weight per component (:data:`COMPONENTS`) and whether the prefix's own
    items may come back."""

    ease: float = 1.0
    rules: float = 1.0
    knn: float = 0.0
    category: float = 0.0
    exclude_seen: bool = True

    def of(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass
class SessionModel:
    """What past sessions teach, as arrays: fit once, then score prefixes."""

    sessions: sp.csr_matrix  # (n_sessions, n_items) 0/1, for session-kNN
    session_norms: np.ndarray  # (n_sessions,) sqrt(length)
    rules: sp.csr_matrix  # (n_items, n_items) transitions
    ease: sp.csr_matrix  # (n_items, n_items) EASE's weights learnt on sessions, strongest kept
    member: sp.csr_matrix  # (n_items, n_categories) 0/1
    popularity: np.ndarray  # (n_items,) sessions per item
    neighbours: int = 100
    # Derived once, not per request: the sessions by item, and log(1 + popularity).
    by_item: sp.csr_matrix = field(init=False, repr=False)
    log_popularity: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_item = self.sessions.T.tocsr()
        self.log_popularity = np.log1p(self.popularity).astype(np.float32)

    @classmethod
    def fit(
        cls,
        train: Sessions,
        categories: np.ndarray,
        neighbours: int = 100,
        rule_steps: int = 3,
        l2: float = 200.0,
        per_item: int = 200,
    ) -> SessionModel:
        """``per_item``: EASE's weights of largest magnitude kept per item (sparse: what a
        serving worker holds; the dense matrix is items squared)."""
        x = train.matrix()
        n = train.n_items
        ease = (
            EASE(l2=l2)
            .fit(Interactions(matrix=x, item_category=np.zeros(n, np.int64)))
            .strongest(per_item)
        )
        member = sp.csr_matrix(
            (np.ones(n, np.float32), (np.arange(n), categories)),
            shape=(n, int(categories.max()) + 1 if n else 0),
        )
        return cls(
            sessions=x,
            session_norms=np.sqrt(np.maximum(train.lengths, 1)).astype(np.float32),
            rules=transitions(train, rule_steps),
            ease=ease,
            member=member,
            popularity=np.asarray(x.sum(axis=0)).ravel().astype(np.float32),
            neighbours=neighbours,
        )

    def component(self, name: str, p: sp.csr_matrix) -> np.ndarray:
        """One component's scores (prefixes x items)."""
        if name == "popularity":
            return np.repeat(self.popularity[None, :], p.shape[0], axis=0)
        if name == "knn":
            return self._knn(p)
        if name == "rules":
            return (p @ self.rules).toarray().astype(np.float32)
        if name == "ease":
            return (p @ self.ease).toarray().astype(np.float32)
        if name == "category":
            return (p @ self.member @ self.member.T).toarray() * self.log_popularity
        raise ValueError(f"no session component {name!r} (one of popularity, {COMPONENTS})")

    def _knn(self, p: sp.csr_matrix, chunk: int = 512) -> np.ndarray:
        out = np.zeros(p.shape, np.float32)
        per = min(self.neighbours, self.sessions.shape[0])
        if per == 0:
            return out
        for lo in range(0, p.shape[0], chunk):
            part = p[lo : lo + chunk]
            sim = np.asarray((part @ self.by_item).todense(), dtype=np.float32)  # (chunk, sessions)
            sim /= self.session_norms[None, :]
            top = np.argpartition(-sim, per - 1, axis=1)[:, :per]
            kept = np.take_along_axis(sim, top, axis=1)
            rows = np.repeat(np.arange(part.shape[0]), per)
            near = sp.csr_matrix(
                (kept.ravel(), (rows, top.ravel())), shape=(part.shape[0], self.sessions.shape[0])
            )
            out[lo : lo + part.shape[0]] = (near @ self.sessions).toarray()
        return out

    def scorer(self, name: str, exclude_seen: bool = False) -> Scorer:
        """One component as a scorer (the baselines of the protocol)."""

        def score(p: sp.csr_matrix) -> np.ndarray:
            out = self.component(name, p)
            return without_seen(out, p) if exclude_seen else out

        return score

    def score_one(self, items: np.ndarray, weights: Weights) -> np.ndarray:
        """:meth:`blend`'s scores for one session (item positions, oldest first), without
        sparse products: what a request pays (the batch form's sparse machinery costs
        more than the arithmetic for a single short prefix)."""
        row = prefix(items, len(self.popularity))
        pos, w = row.indices, row.data  # one entry per distinct item, weights summed
        n = len(self.popularity)
        out = np.zeros(n, np.float32)

        def through(matrix: sp.csr_matrix) -> np.ndarray:
            acc = np.zeros(n, np.float32)
            for p, wp in zip(pos, w, strict=True):
                lo, hi = matrix.indptr[p], matrix.indptr[p + 1]
                acc[matrix.indices[lo:hi]] += wp * matrix.data[lo:hi]
            return acc

        parts: dict[str, np.ndarray] = {}
        if weights.ease:
            parts["ease"] = through(self.ease)
        if weights.rules:
            parts["rules"] = through(self.rules)
        if weights.knn:
            parts["knn"] = self._knn_one(pos, w)
        if weights.category:
            codes = self.member.indices  # one category per item
            per = np.zeros(self.member.shape[1], np.float32)
            np.add.at(per, codes[pos], w)
            parts["category"] = per[codes] * self.log_popularity
        for name, values in parts.items():
            top = float(np.abs(values).max()) or 1.0
            out += weights.of(name) / top * values
        if weights.exclude_seen:
            out[pos] = -np.inf
        return out

    def _knn_one(self, pos: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Session-kNN for one prefix, over the sessions that share an item with it."""
        n = len(self.popularity)
        spans = [(self.by_item.indptr[p], self.by_item.indptr[p + 1]) for p in pos]
        if not any(hi > lo for lo, hi in spans):
            return np.zeros(n, np.float32)
        held = np.concatenate([self.by_item.indices[lo:hi] for lo, hi in spans])
        weight = np.concatenate(
            [np.full(hi - lo, wp) for (lo, hi), wp in zip(spans, w, strict=True)]
        )
        near, at = np.unique(held, return_inverse=True)
        sim = np.bincount(at, weights=weight).astype(np.float32) / self.session_norms[near]
        if len(near) > self.neighbours:
            top = np.argpartition(-sim, self.neighbours - 1)[: self.neighbours]
            near, sim = near[top], sim[top]
        starts, ends = self.sessions.indptr[near], self.sessions.indptr[near + 1]
        cols = np.concatenate(
            [self.sessions.indices[lo:hi] for lo, hi in zip(starts, ends, strict=True)]
        )
        return np.bincount(cols, weights=np.repeat(sim, ends - starts), minlength=n).astype(
            np.float32
        )

    def blend(self, weights: Weights) -> Scorer:
        """cartlift's session answer: the weighted sum of the scaled components."""

        def score(p: sp.csr_matrix) -> np.ndarray:
            out = np.zeros(p.shape, np.float32)
            for name in COMPONENTS:
                if weights.of(name):
                    out += weights.of(name) * scaled(self.component(name, p))
            return without_seen(out, p) if weights.exclude_seen else out

        return score
