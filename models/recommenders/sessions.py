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
  validation window (:func:`models.evaluation.sessions.choose_blend`); then, when the
  validation window taught one, a :class:`Ranker` re-orders the blend's top
  :data:`CANDIDATES` by every signal at once (:data:`FEATURES`: the components, the same
  read backwards, from the last item alone, with recent neighbours weighing more, title
  words in common, what sells lately), as a shop's second-stage ranker does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier

from models.features.sessions import Sessions
from models.ranking.topk import top_k_scores
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE

COMPONENTS = ("ease", "rules", "knn", "category")
DECAY = 1.0  # in a prefix of n steps, step j (1-based) weighs (j / n) ** DECAY
# What the ranker reads per candidate: item-level signals first (each a score per item),
# then the blend's score, the candidate's popularity, all-time and lately, and the
# prefix's length and weight on the candidate itself.
SIGNALS = (
    "knn",
    "recent_knn",
    "rules",
    "rules_back",
    "rules_last",
    "ease",
    "ease_last",
    "category",
    "title",
    "title_last",
)
FEATURES = (*SIGNALS, "blend", "popularity", "recent_popularity", "length", "seen")
CANDIDATES = 50  # the blend's best the ranker re-orders (100 or 200: no better, measured)
EXCLUDED = -1e9  # the blend score the ranker reads for an item the prefix excludes
RECENT_DAYS = 14  # "lately": a training window's last two weeks
NEIGHBOUR_DAYS = 30.0  # a neighbour session this many days older weighs 1/e as much


def rows_per_pass(n_items: int) -> int:
    """Prefixes scored at once with every signal: about 8M scores per signal (32 MB), so
    a 100,000-item catalogue goes 80 at a time and a small one 1,024."""
    return int(np.clip(2**23 // max(n_items, 1), 16, 1024))


@dataclass(frozen=True)
class Prefixes:
    """Session prefixes to score: each one's recency weights over the items (a sparse
    row; an item touched twice sums its weights), its last item and its length."""

    weights: sp.csr_matrix  # (prefixes, items)
    last: np.ndarray  # (prefixes,) item positions
    length: np.ndarray  # (prefixes,) steps

    def __len__(self) -> int:
        return self.weights.shape[0]

    def part(self, lo: int, hi: int) -> Prefixes:
        return Prefixes(self.weights[lo:hi], self.last[lo:hi], self.length[lo:hi])


Scorer = Callable[[Prefixes], np.ndarray]  # prefixes -> scores (prefixes x items)


def prefix(items: np.ndarray, n_items: int, decay: float = DECAY) -> Prefixes:
    """One session's items (positions, oldest first) as a prefix: what a request with a
    session is scored on."""
    items = np.asarray(items, np.int64)
    n = len(items)
    weight = ((np.arange(n) + 1) / max(n, 1)) ** decay
    row = sp.csr_matrix(
        (weight.astype(np.float32), (np.zeros(n, np.int64), items)), shape=(1, n_items)
    )
    return Prefixes(row, items[-1:], np.array([n]))


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


def _at(
    matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """sum_r weights[r] * matrix[rows[r], cols], by binary search in each row (sorted
    indices): a few columns of a sparse product without the product."""
    out = np.zeros(len(cols), np.float32)
    for r, wr in zip(rows, weights, strict=True):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        held = matrix.indices[lo:hi]
        where = np.minimum(np.searchsorted(held, cols), max(hi - lo - 1, 0))
        hit = (held[where] == cols) if hi > lo else np.zeros(len(cols), bool)
        out[hit] += wr * matrix.data[lo:hi][where[hit]]
    return out


def reranked(ranker: Ranker, blend: np.ndarray, top: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``blend`` (in place) with its candidates ``top`` (features ``x``) above every other
    item, in the ranker's order: each scored the row's best blend score + 1 + its chance
    of being next (an excluded one stays out)."""
    kept = np.isfinite(np.take_along_axis(blend, top, axis=1))
    best = blend.max(axis=1, keepdims=True)  # no +inf; -inf only if all are out
    best[~np.isfinite(best)] = 0.0
    ranked = np.where(kept, best + 1.0 + ranker.score(x), -np.inf)
    np.put_along_axis(blend, top, ranked.astype(np.float32), axis=1)
    return blend


def scaled(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its largest finite magnitude: components on one scale. (Two
    reductions, no temporaries, unless a row holds an infinity: on the request path.)"""
    top = np.maximum(scores.max(axis=1, keepdims=True), -scores.min(axis=1, keepdims=True))
    if not np.isfinite(top).all():
        top = np.where(np.isfinite(scores), np.abs(scores), 0.0).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return scores / top


def without_seen(scores: np.ndarray, p: sp.csr_matrix) -> np.ndarray:
    """``scores`` (in place) with the prefix's own items last."""
    rows, cols = p.nonzero()
    scores[rows, cols] = -np.inf
    return scores


# The ranker's trees: on Online Retail's sessions as good as 300 trees of depth 14, at a
# fifth of the walk.
TREES = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "max_depth": 6,
    "early_stopping": False,
}


def leaf_size(rows: int) -> int:
    """The fewest candidates a leaf of the ranker's trees holds."""
    return int(np.clip(rows // 1000, 5, 200))


@dataclass(frozen=True)
class Ranker:
    """The second stage: gradient-boosted trees that score a prefix's candidates by the
    chance each is the next item, from :data:`FEATURES` (never missing: an excluded item's
    blend score is :data:`EXCLUDED`); learnt on a validation window's next-item questions
    (:func:`models.evaluation.sessions.learn_ranker`).

    Learnt with scikit-learn's histogram boosting, then held as complete binary trees
    (a shallower leaf repeated below itself) and walked for every tree at once, a level a
    step: the same figures as ``predict_proba`` (tested) for a fraction of its cost on one
    request's candidates (scikit-learn walks its trees one Python call each: 1.3 ms for
    100 trees and 100 candidates, profiled)."""

    feature: np.ndarray  # (trees * inner,) the feature each inner node splits on
    threshold: np.ndarray  # (trees * inner,) float64: at most this goes left
    value: np.ndarray  # (trees * 2 ** depth,) each leaf's share of the log-odds
    depth: int
    baseline: float  # the log-odds before any tree

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, seed: int = 0) -> Ranker:
        """``x`` (candidates, features) and ``y`` (candidates,) whether each was next. A
        leaf holds at least 200 candidates (fewer on a small window: a thousandth of them,
        at least 5)."""
        trees = HistGradientBoostingClassifier(
            **TREES, min_samples_leaf=leaf_size(len(y)), random_state=seed
        ).fit(x, y)
        nodes = [predictor[0].nodes for predictor in trees._predictors]
        depth = max(int(n["depth"].max()) for n in nodes)
        inner = 2**depth - 1
        feature = np.zeros((len(nodes), inner), np.int64)
        threshold = np.full((len(nodes), inner), np.inf)  # padding: always left
        value = np.zeros((len(nodes), 2**depth))
        for t, tree in enumerate(nodes):
            stack = [(0, 0, 0)]  # (node, its place in level order, its level)
            while stack:
                node, place, level = stack.pop()
                if tree["is_leaf"][node]:
                    below = 2 ** (depth - level)  # the leaf slots under this place
                    first = (place + 1) * below - 1 - inner  # the leftmost of them
                    value[t, first : first + below] = tree["value"][node]
                    continue
                feature[t, place] = tree["feature_idx"][node]
                threshold[t, place] = tree["num_threshold"][node]
                stack.append((int(tree["left"][node]), 2 * place + 1, level + 1))
                stack.append((int(tree["right"][node]), 2 * place + 2, level + 1))
        return cls(
            feature.ravel(),
            threshold.ravel(),
            value.ravel(),
            depth,
            float(np.ravel(trees._baseline_prediction)[0]),
        )

    def score(self, x: np.ndarray) -> np.ndarray:
        """(..., features) -> (...,) the chance each candidate is next."""
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        inner = 2**self.depth - 1
        trees = len(self.value) >> self.depth
        base = np.arange(trees) * inner
        place = np.zeros((len(flat), trees), np.int64)
        rows = np.arange(len(flat))[:, None]
        for _ in range(self.depth):
            at = base + place
            place = 2 * place + 1 + (flat[rows, self.feature[at]] > self.threshold[at])
        leaf = (np.arange(trees) << self.depth) + place - inner
        raw = self.baseline + self.value[leaf].sum(axis=1)
        return (1.0 / (1.0 + np.exp(-raw))).reshape(x.shape[:-1])


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
    session_recency: np.ndarray  # (n_sessions,) exp(-age in days / NEIGHBOUR_DAYS)
    rules: sp.csr_matrix  # (n_items, n_items) transitions
    ease: sp.csr_matrix  # (n_items, n_items) EASE's weights learnt on sessions, strongest kept
    member: sp.csr_matrix  # (n_items, n_categories) 0/1
    title: sp.csr_matrix  # (n_items, n_items) title words in common (zeros without titles)
    popularity: np.ndarray  # (n_items,) sessions per item
    recent_popularity: np.ndarray  # (n_items,) sessions per item in the last RECENT_DAYS
    neighbours: int = 100
    ranker: Ranker | None = None  # the second stage, when a validation window taught one
    # Derived once, not per request: the sessions by item, the rules read backwards,
    # log(1 + popularity).
    by_item: sp.csr_matrix = field(init=False, repr=False)
    rules_back: sp.csr_matrix = field(init=False, repr=False)
    log_popularity: np.ndarray = field(init=False, repr=False)
    log_recent_popularity: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_item = self.sessions.T.tocsr()
        self.rules_back = self.rules.T.tocsr()
        self.log_popularity = np.log1p(self.popularity).astype(np.float32)
        self.log_recent_popularity = np.log1p(self.recent_popularity).astype(np.float32)
        for matrix in (self.rules, self.rules_back, self.ease, self.title):
            matrix.sort_indices()  # what :func:`_at` searches

    @classmethod
    def fit(
        cls,
        train: Sessions,
        categories: np.ndarray,
        title: sp.csr_matrix | None = None,
        neighbours: int = 100,
        rule_steps: int = 3,
        l2: float = 200.0,
        per_item: int = 200,
    ) -> SessionModel:
        """``title``: items' title similarity (:func:`models.features.build.title_similarity`).
        ``per_item``: EASE's weights of largest magnitude kept per item (sparse: what a
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
        began = train.began.astype("datetime64[s]").astype(np.int64)
        age = (began.max(initial=0) - began) / 86_400.0  # days before the last session
        recent = sp.diags((age <= RECENT_DAYS).astype(np.float32)) @ x
        return cls(
            sessions=x,
            session_norms=np.sqrt(np.maximum(train.lengths, 1)).astype(np.float32),
            session_recency=np.exp(-age / NEIGHBOUR_DAYS).astype(np.float32),
            rules=transitions(train, rule_steps),
            ease=ease,
            member=member,
            title=sp.csr_matrix((n, n), dtype=np.float32) if title is None else title,
            popularity=np.asarray(x.sum(axis=0)).ravel().astype(np.float32),
            recent_popularity=np.asarray(recent.sum(axis=0)).ravel().astype(np.float32),
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

    def _knn(self, p: sp.csr_matrix, chunk: int = 512, recency: bool = False) -> np.ndarray:
        """Session-kNN; with ``recency`` each past session's similarity is weighed by how
        recent it is (before the neighbours are chosen)."""
        out = np.zeros(p.shape, np.float32)
        per = min(self.neighbours, self.sessions.shape[0])
        if per == 0:
            return out
        for lo in range(0, p.shape[0], chunk):
            part = p[lo : lo + chunk]
            sim = np.asarray((part @ self.by_item).todense(), dtype=np.float32)  # (chunk, sessions)
            sim /= self.session_norms[None, :]
            if recency:
                sim *= self.session_recency[None, :]
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

        def score(p: Prefixes) -> np.ndarray:
            out = self.component(name, p.weights)
            return without_seen(out, p.weights) if exclude_seen else out

        return score

    def signals(self, p: Prefixes) -> dict[str, np.ndarray]:
        """Every item-level signal the ranker reads (:data:`SIGNALS`), prefixes x items."""
        last = sp.csr_matrix(
            (np.ones(len(p), np.float32), (np.arange(len(p)), p.last)), shape=p.weights.shape
        )
        w = p.weights
        out = {name: self.component(name, w) for name in COMPONENTS}
        out["recent_knn"] = self._knn(w, recency=True)
        for name, rows, matrix in (
            ("rules_back", w, self.rules_back),
            ("rules_last", last, self.rules),
            ("ease_last", last, self.ease),
            ("title", w, self.title),
            ("title_last", last, self.title),
        ):
            out[name] = (rows @ matrix).toarray().astype(np.float32)
        return out

    def _blend(self, parts: dict[str, np.ndarray], p: Prefixes, weights: Weights) -> np.ndarray:
        blend = np.zeros(p.weights.shape, np.float32)
        for name in COMPONENTS:
            if weights.of(name):
                blend += weights.of(name) * scaled(parts[name])
        return without_seen(blend, p.weights) if weights.exclude_seen else blend

    def _features(
        self, at: dict[str, np.ndarray], top: np.ndarray, best: np.ndarray, p: Prefixes
    ) -> np.ndarray:
        """The ranker's features (prefixes x candidates x :data:`FEATURES`) of the
        candidates ``top``, from each signal's values ``at`` them and the blend's ``best``."""
        rows = np.repeat(np.arange(len(p)), np.diff(p.weights.indptr))
        seen = np.zeros(top.shape, np.float32)  # the prefix's weight on each candidate
        for r, item, weight in zip(rows, p.weights.indices, p.weights.data, strict=True):
            seen[r][top[r] == item] += weight
        columns = [at[name] for name in SIGNALS] + [
            np.where(np.isfinite(best), best, EXCLUDED),
            self.log_popularity[top],
            self.log_recent_popularity[top],
            np.broadcast_to(p.length[:, None], top.shape),
            seen,
        ]
        return np.stack(columns, axis=-1).astype(np.float32)

    def _lesson(
        self, parts: dict[str, np.ndarray], p: Prefixes, blend: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The blend's top :data:`CANDIDATES` per prefix (best first, ties by item) and
        their features, every signal over the whole catalogue at hand (``parts``)."""
        top, best = top_k_scores(blend, CANDIDATES)
        at = {name: np.take_along_axis(parts[name], top, axis=1) for name in SIGNALS}
        return top, self._features(at, top, best, p)

    def features(self, p: Prefixes, weights: Weights) -> tuple[np.ndarray, np.ndarray]:
        """For each prefix, the blend's candidates (best first) and their features: a
        ranker's lesson."""
        parts = self.signals(p)
        return self._lesson(parts, p, self._blend(parts, p, weights))

    def score_one(self, items: np.ndarray, weights: Weights) -> np.ndarray:
        """:meth:`blend`'s scores for one session (item positions, oldest first), without
        sparse products: what a request pays (the batch form's sparse machinery costs
        more than the arithmetic for a single short prefix). The ranker's extra signals
        are read at the candidates only."""
        row = prefix(items, len(self.popularity))
        pos, w = row.weights.indices, row.weights.data  # one entry per distinct item
        n = len(self.popularity)

        def through(matrix: sp.csr_matrix) -> np.ndarray:
            acc = np.zeros(n, np.float32)
            for p, wp in zip(pos, w, strict=True):
                lo, hi = matrix.indptr[p], matrix.indptr[p + 1]
                acc[matrix.indices[lo:hi]] += wp * matrix.data[lo:hi]
            return acc

        every = self.ranker is not None  # the ranker reads every component
        parts: dict[str, np.ndarray] = {}
        if every or weights.ease:
            parts["ease"] = through(self.ease)
        if every or weights.rules:
            parts["rules"] = through(self.rules)
        if every or weights.knn:
            parts["knn"] = self._knn_one(pos, w, recency=False)
        if every or weights.category:
            codes = self.member.indices  # one category per item
            per = np.zeros(self.member.shape[1], np.float32)
            np.add.at(per, codes[pos], w)
            parts["category"] = per[codes] * self.log_popularity
        blend = self._blend({c: v[None, :] for c, v in parts.items()}, row, weights)
        if self.ranker is None:
            return blend[0]
        top, best = top_k_scores(blend, CANDIDATES)
        c = top[0]
        at = {name: values[c] for name, values in parts.items()}
        at["recent_knn"] = self._knn_one(pos, w, recency=True)[c]
        last, one = row.last, np.ones(1, np.float32)
        for name, matrix, by, weight in (
            ("rules_back", self.rules_back, pos, w),
            ("rules_last", self.rules, last, one),
            ("ease_last", self.ease, last, one),
            ("title", self.title, pos, w),
            ("title_last", self.title, last, one),
        ):
            at[name] = _at(matrix, by, weight, c)
        x = self._features({k: v[None, :] for k, v in at.items()}, top, best, row)
        return reranked(self.ranker, blend, top, x)[0]

    def _knn_one(self, pos: np.ndarray, w: np.ndarray, recency: bool) -> np.ndarray:
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
        if recency:
            sim *= self.session_recency[near]
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
        """cartlift's session answer: the weighted sum of the scaled components, its
        candidates re-ordered by the ranker when there is one."""

        ranker = self.ranker

        def score(p: Prefixes) -> np.ndarray:
            if ranker is None:
                parts = {c: self.component(c, p.weights) for c in COMPONENTS if weights.of(c)}
                return self._blend(parts, p, weights)
            step = rows_per_pass(p.weights.shape[1])
            out = []
            for part in (p.part(lo, lo + step) for lo in range(0, len(p), step)):
                parts = self.signals(part)
                blend = self._blend(parts, part, weights)
                out.append(reranked(ranker, blend, *self._lesson(parts, part, blend)))
            return np.concatenate(out)

        return score
