"""Session recommenders: what a visitor will touch next, from what they touched in this
session (a prefix), whoever they are.

Each scores a batch of prefixes at once, a prefix being a sparse row of recency weights
over the items (:func:`models.evaluation.sessions.prefixes`), so scoring is a few sparse
products:

- :func:`popularity`: sessions per item (what an unknown visitor gets today);
- :func:`session_knn`: session-kNN (Jannach and Ludewig, 2017; with a recency-weighted
  prefix, V-SKNN, Ludewig and Jannach, 2018): the ``neighbours`` past sessions most
  similar to the prefix (the items they share, over the square root of their length),
  each item scored by the summed similarity of the neighbours that hold it;
- :func:`sequential_rules`: how often an item followed another within ``steps`` steps of a
  past session, a follower d steps on counting 1 / d (Ludewig and Jannach, 2018);
- :func:`session_ease`: EASE's closed-form item-to-item weights (Steck, 2019) learnt on
  sessions instead of customers;
- :func:`category_prior`: the prefix's categories, each item by its popularity in them;
- :func:`blend`: cartlift's: a weighted sum of the above, each scaled per prefix by its
  largest score, weights chosen on a validation window
  (:func:`models.evaluation.sessions.choose_blend`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.features.sessions import Sessions
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE

Scorer = Callable[[sp.csr_matrix], np.ndarray]  # prefixes (cases x items) -> scores
COMPONENTS = ("ease", "rules", "knn", "category")


def popularity(train: Sessions) -> Scorer:
    counts = np.asarray(train.matrix().sum(axis=0)).ravel().astype(np.float32)

    def score(p: sp.csr_matrix) -> np.ndarray:
        return np.repeat(counts[None, :], p.shape[0], axis=0)

    return score


def session_knn(train: Sessions, neighbours: int = 100, chunk: int = 512) -> Scorer:
    s = train.matrix()
    st = s.T.tocsr()
    norms = np.sqrt(np.maximum(train.lengths, 1)).astype(np.float32)

    def score(p: sp.csr_matrix) -> np.ndarray:
        out = np.zeros(p.shape, np.float32)
        per = min(neighbours, s.shape[0])
        if per == 0:
            return out
        for lo in range(0, p.shape[0], chunk):
            part = p[lo : lo + chunk]
            sim = np.asarray((part @ st).todense(), dtype=np.float32)  # (chunk, sessions)
            sim /= norms[None, :]
            top = np.argpartition(-sim, per - 1, axis=1)[:, :per]
            kept = np.take_along_axis(sim, top, axis=1)
            rows = np.repeat(np.arange(part.shape[0]), per)
            near = sp.csr_matrix(
                (kept.ravel(), (rows, top.ravel())), shape=(part.shape[0], s.shape[0])
            )
            out[lo : lo + part.shape[0]] = (near @ s).toarray()
        return out

    return score


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


def sequential_rules(train: Sessions, steps: int = 3) -> Scorer:
    rules = transitions(train, steps)

    def score(p: sp.csr_matrix) -> np.ndarray:
        return (p @ rules).toarray().astype(np.float32)

    return score


def session_ease(train: Sessions, l2: float = 200.0, max_items: int = 8_000) -> Scorer:
    x = train.matrix()
    model = EASE(l2=l2, max_items=max_items).fit(
        Interactions(matrix=x, item_category=np.zeros(x.shape[1], np.int64))
    )

    def score(p: sp.csr_matrix) -> np.ndarray:
        return model.related(p)

    return score


def category_prior(train: Sessions, categories: np.ndarray) -> Scorer:
    """Items of the prefix's categories (weighted as the prefix weighs them), each by
    log(1 + sessions that touched it)."""
    n = train.n_items
    member = sp.csr_matrix(
        (np.ones(n, np.float32), (np.arange(n), categories)), shape=(n, int(categories.max()) + 1)
    )
    weight = np.log1p(np.asarray(train.matrix().sum(axis=0)).ravel()).astype(np.float32)

    def score(p: sp.csr_matrix) -> np.ndarray:
        return (p @ member @ member.T).toarray() * weight[None, :]

    return score


def scaled(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its largest magnitude: components on one scale."""
    top = np.abs(scores).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return scores / top


def unseen(scorer: Scorer) -> Scorer:
    """The same scores with the prefix's own items last."""

    def score(p: sp.csr_matrix) -> np.ndarray:
        out = np.array(scorer(p), dtype=np.float32)
        rows, cols = p.nonzero()
        out[rows, cols] = -np.inf
        return out

    return score


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


def components(train: Sessions, categories: np.ndarray) -> dict[str, Scorer]:
    return {
        "ease": session_ease(train),
        "rules": sequential_rules(train),
        "knn": session_knn(train),
        "category": category_prior(train, categories),
    }


def blend(parts: dict[str, Scorer], weights: Weights) -> Scorer:
    used: Sequence[str] = [c for c in COMPONENTS if weights.of(c)]

    def score(p: sp.csr_matrix) -> np.ndarray:
        out = np.zeros(p.shape, np.float32)
        for name in used:
            out += weights.of(name) * scaled(parts[name](p))
        return out

    return unseen(score) if weights.exclude_seen else score
