"""What a visitor does next: the offline protocol for in-session answers.

Holdout visitors are treated as anonymous: for each holdout session (two steps or more)
and each prefix of its first n steps (n = 1 .. ``max_prefix``), the item at step n + 1 is
the one to find. Hit rate@k (the next item in the top k) and MRR@k (1 / its rank) per
case are averaged per session first (a long session counts once), and two recommenders
are compared by a paired bootstrap over sessions. Weights are chosen on a validation
window carved from the end of the training window, never on the holdout.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.data.ids import IdMap
from models.features.sessions import GAP, Sessions, sessionize
from models.recommenders import sessions as rec
from models.recommenders.sessions import (
    DECAY,
    FEATURES,
    Prefixes,
    Ranker,
    Scorer,
    SessionModel,
    Weights,
)


@dataclass(frozen=True)
class Cases:
    """Next-item questions: the prefix of session ``session`` of ``length`` steps, whose
    next step is ``target``."""

    session: np.ndarray
    length: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def next_item_cases(sessions: Sessions, max_prefix: int = 5) -> Cases:
    """Every prefix of 1 .. ``max_prefix`` steps that has a next step."""
    lengths = sessions.lengths
    per = np.clip(lengths - 1, 0, max_prefix)
    session = np.repeat(np.arange(len(sessions)), per)
    offset = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
    length = offset + 1
    target = sessions.items[sessions.starts[session] + length]
    return Cases(session, length, target)


def prefixes(sessions: Sessions, cases: Cases, decay: float = 0.0) -> Prefixes:
    """Each case's prefix: over the items, the step j of n weighing (j / n) ** decay
    (0: all alike; larger: the last steps count more; an item seen twice sums), its last
    item and its length."""
    steps = cases.length
    case = np.repeat(np.arange(len(cases)), steps)
    j = np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)  # 0-based step
    n = np.repeat(steps, steps)
    item = sessions.items[np.repeat(sessions.starts[cases.session], steps) + j]
    weight = ((j + 1) / n) ** decay
    matrix = sp.csr_matrix(
        (weight.astype(np.float32), (case, item)), shape=(len(cases), sessions.n_items)
    )
    last = sessions.items[sessions.starts[cases.session] + cases.length - 1]
    return Prefixes(matrix, last, cases.length)


@dataclass
class Scores:
    """Per case: the next item's rank (1-based; k + 1 when outside the top k)."""

    rank: np.ndarray
    session: np.ndarray
    k: int

    def per_session(self, metric: str) -> pd.Series:
        hit = self.rank <= self.k
        values = hit.astype(float) if metric == "hit_rate" else np.where(hit, 1.0 / self.rank, 0.0)
        return pd.Series(values).groupby(self.session).mean()

    def mean(self, metric: str) -> float:
        return float(self.per_session(metric).mean())


def ranks(scores: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """The target's rank in its row, ties counted against it, capped at k + 1."""
    own = scores[np.arange(len(target)), target]
    above = (scores > own[:, None]).sum(axis=1) + (scores == own[:, None]).sum(axis=1) - 1
    return np.minimum(above + 1, k + 1)


def evaluate(
    scorer: Scorer, sessions: Sessions, cases: Cases, decay: float, k: int = 10, chunk: int = 2048
) -> Scores:
    p = prefixes(sessions, cases, decay)
    out = np.empty(len(cases), np.int64)
    for lo in range(0, len(cases), chunk):
        part = np.asarray(scorer(p.part(lo, lo + chunk)))
        out[lo : lo + chunk] = ranks(part, cases.target[lo : lo + chunk], k)
    return Scores(out, cases.session, k)


@dataclass(frozen=True)
class Paired:
    difference: float
    low: float
    high: float
    ratio: float


def paired(a: Scores, b: Scores, metric: str, samples: int = 1000, seed: int = 0) -> Paired:
    """Mean over sessions of a minus b, with a 95% bootstrap interval over sessions."""
    x, y = a.per_session(metric), b.per_session(metric)
    d = (x - y).to_numpy()
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (samples, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Paired(float(d.mean()), float(low), float(high), x.mean() / max(y.mean(), 1e-12))


@dataclass
class Window:
    """Sessions before a cutoff (to learn from) and after it, sampled, with their cases."""

    train: Sessions
    test: Sessions
    cases: Cases


def window(
    before: pd.DataFrame,
    after: pd.DataFrame,
    items: IdMap,
    max_sessions: int = 5000,
    max_prefix: int = 5,
    seed: int = 0,
    gap: pd.Timedelta = GAP,
) -> Window:
    """Sessions of ``before``, and up to ``max_sessions`` sessions of ``after`` of two steps
    or more (sampled with ``seed``) with their next-item cases."""
    train = sessionize(before, items, gap)
    test = sessionize(after, items, gap)
    long = np.flatnonzero(test.lengths >= 2)
    if len(long) > max_sessions:
        long = np.sort(np.random.default_rng(seed).choice(long, max_sessions, replace=False))
    test = test.take(long)
    return Window(train, test, next_item_cases(test, max_prefix))


GRID = {  # 32 points: small enough to choose at every training
    "ease": (0.0, 1.0),
    "rules": (0.5, 1.0),
    "knn": (0.0, 1.0),
    "category": (0.0, 0.3),
    "exclude_seen": (True, False),
}


def choose_blend(
    w: Window,
    categories: np.ndarray,
    grid: dict[str, tuple] | None = None,
    k: int = 10,
    model: SessionModel | None = None,
) -> tuple[Weights, pd.DataFrame]:
    """The blend's weights with the best hit rate@k on ``w`` (a validation window: the
    training window's last days against what came before them); every point of the grid
    with its hit rate and MRR. ``model``: the one fitted on ``w.train``, if at hand."""
    grid = grid or GRID
    model = model or SessionModel.fit(w.train, categories)
    p = prefixes(w.test, w.cases, DECAY).weights
    scaled = {name: rec.scaled(model.component(name, p)) for name in rec.COMPONENTS}
    seen_rows, seen_cols = p.nonzero()
    rows = []
    for values in itertools.product(*grid.values()):
        weights = Weights(**dict(zip(grid, values, strict=True)))
        if not any(weights.of(c) for c in rec.COMPONENTS):
            continue
        total = np.zeros(p.shape, np.float32)
        for c in rec.COMPONENTS:
            total += weights.of(c) * scaled[c]
        if weights.exclude_seen:
            total[seen_rows, seen_cols] = -np.inf
        got = Scores(ranks(total, w.cases.target, k), w.cases.session, k)
        rows.append((*values, got.mean("hit_rate"), got.mean("mrr")))
    table = pd.DataFrame(rows, columns=[*grid, "hit_rate", "mrr"])
    best = table.sort_values(["hit_rate", "mrr"], ascending=False, kind="stable").iloc[0]
    chosen = Weights(
        **{c: float(best[c]) for c in rec.COMPONENTS}, exclude_seen=bool(best["exclude_seen"])
    )
    return chosen, table


MIN_SESSIONS = 50  # fewer validation sessions to choose on: the default weights


@dataclass(frozen=True)
class Taught:
    """What the validation window said of a ranker: the blend's and the ranker's hit
    rate@k on the half of its sessions the ranker did not learn from, and the ranker
    (learnt on every session) when it did better, else None."""

    ranker: Ranker | None
    blend_hit_rate: float
    ranker_hit_rate: float


NO_RANKER = Taught(None, float("nan"), float("nan"))  # not asked for, or nothing to learn


def _candidate_ranks(scores: np.ndarray, y: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """The next item's rank among each case's candidates by ``scores`` (k + 1 when it is
    not one of them or is excluded)."""
    scores = np.where(excluded, -np.inf, scores)
    has = y.any(axis=1) & ~(excluded & y).any(axis=1)
    col = y.argmax(axis=1)
    got = ranks(scores, col, k)
    return np.where(has, got, k + 1)


def learn_ranker(
    w: Window, model: SessionModel, weights: Weights, k: int = 10, seed: int = 0
) -> Taught:
    """The second stage (:class:`Ranker`), taught on ``w`` (a validation window; ``model``
    fitted on its ``train``) to re-order the blend's candidates, and kept only if, learnt
    on half of the window's sessions, it finds the next item more often than the blend on
    the other half."""
    if not len(w.cases):
        return NO_RANKER
    p = prefixes(w.test, w.cases, DECAY)
    step = rec.rows_per_pass(w.test.n_items)
    taught = [model.features(p.part(lo, lo + step), weights) for lo in range(0, len(p), step)]
    top = np.concatenate([t for t, _ in taught])
    x = np.concatenate([f for _, f in taught])
    y = top == w.cases.target[:, None]
    excluded = (x[..., FEATURES.index("seen")] > 0) & weights.exclude_seen
    learn = w.cases.session % 2 == 0
    if not (y[learn].any() and y[~learn].any()):
        return NO_RANKER
    half = Ranker.fit(x[learn].reshape(-1, len(FEATURES)), y[learn].ravel(), seed)
    order = -np.arange(top.shape[1], dtype=np.float32)  # the blend's: best first
    held = ~learn
    blend = Scores(
        _candidate_ranks(np.broadcast_to(order, y[held].shape), y[held], excluded[held], k),
        w.cases.session[held],
        k,
    ).mean("hit_rate")
    ranked = Scores(
        _candidate_ranks(half.score(x[held]), y[held], excluded[held], k),
        w.cases.session[held],
        k,
    ).mean("hit_rate")
    kept = Ranker.fit(x.reshape(-1, len(FEATURES)), y.ravel(), seed) if ranked > blend else None
    return Taught(kept, blend, ranked)


@dataclass(frozen=True)
class Learnt:
    """What training keeps for in-session answers: the model fitted on the whole training
    window (with the ranker the validation window taught, if any), the weights it chose,
    that choice's table (None when the validation window held too few sessions) and what
    it said of the ranker."""

    model: SessionModel
    weights: Weights
    table: pd.DataFrame | None
    taught: Taught | None = None


def learn(
    train: pd.DataFrame,
    cutoff: pd.Timestamp,
    validation_days: int,
    items: IdMap,
    categories: np.ndarray,
    title: sp.csr_matrix | None = None,
    ranker: bool = True,
    max_sessions: int = 2000,
) -> Learnt:
    """Sessions of the training window (events before ``cutoff``): the blend's weights
    and (with ``ranker``) the ranker chosen on its last ``validation_days`` against what
    came before them, then the model fitted on all of it. ``title``: the items' title
    similarity."""
    inner = cutoff - pd.Timedelta(days=validation_days)
    when = train["timestamp"]
    w = window(train[when < inner], train[when >= inner], items, max_sessions=max_sessions)
    weights, table, taught = Weights(), None, None
    if len(w.test) >= MIN_SESSIONS and len(w.train):
        inner_model = SessionModel.fit(w.train, categories, title)
        weights, table = choose_blend(w, categories, model=inner_model)
        taught = learn_ranker(w, inner_model, weights) if ranker else None
    model = SessionModel.fit(sessionize(train, items), categories, title)
    kept = taught.ranker if taught else None
    return Learnt(replace(model, ranker=kept), weights, table, taught)


@dataclass(frozen=True)
class Comparison:
    """The session protocol's answer for one shop: per recommender (popularity, SKNN,
    V-SKNN, cartlift's blend) hit rate@k and MRR@k over holdout sessions; the blend
    against the strongest of the others, paired; the weights the validation window chose."""

    table: pd.DataFrame  # model, hit_rate, mrr, note
    strongest: str
    against: dict[str, Paired]  # metric -> cartlift minus the strongest
    weights: Weights
    taught: Taught  # what the validation window said of the ranker
    sessions: int  # holdout sessions scored
    cases: int  # their next-item questions
    k: int

    @property
    def ratio(self) -> float:
        return self.against["hit_rate"].ratio


BLEND = "cartlift session blend"
KNN = (("SKNN", 0.0), ("V-SKNN", 1.0))  # session-kNN without and with a recency-weighted prefix


def _knn_excludes_seen(w: Window, categories: np.ndarray, decay: float, k: int) -> bool:
    """Whether session-kNN (with this prefix decay) does better on ``w`` without the
    prefix's own items: each baseline in its strongest version."""
    model = SessionModel.fit(w.train, categories)
    hit = {
        drop: evaluate(model.scorer("knn", drop), w.test, w.cases, decay, k).mean("hit_rate")
        for drop in (False, True)
    }
    return hit[True] > hit[False]


def compare(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    items: IdMap,
    categories: np.ndarray,
    validation_days: int,
    max_sessions: int = 5000,
    k: int = 10,
    title: sp.csr_matrix | None = None,
    ranker: bool = True,
) -> Comparison | None:
    """Session recommenders on ``holdout``'s sessions (visitors treated as anonymous),
    learnt on ``train``'s. Every choice (the blend's weights and its ranker; whether SKNN
    and V-SKNN may bring the prefix's own items back) is made on a validation window,
    ``train``'s last ``validation_days`` against what came before them. None when the
    holdout or the validation window has too few sessions to say anything."""
    when = train["timestamp"]
    inner = when.max() - pd.Timedelta(days=validation_days)
    validation = window(train[when < inner], train[when >= inner], items, max_sessions)
    test = window(train, holdout, items, max_sessions)
    if min(len(validation.test), len(test.test)) < MIN_SESSIONS or not len(validation.train):
        return None
    inner = SessionModel.fit(validation.train, categories, title)
    weights, _ = choose_blend(validation, categories, k=k, model=inner)
    taught = learn_ranker(validation, inner, weights, k) if ranker else NO_RANKER
    model = replace(SessionModel.fit(test.train, categories, title), ranker=taught.ranker)
    scored = {"popularity": evaluate(model.scorer("popularity"), test.test, test.cases, 0.0, k)}
    notes = {"popularity": "sessions per item"}
    for name, decay in KNN:
        drop = _knn_excludes_seen(validation, categories, decay, k)
        scored[name] = evaluate(model.scorer("knn", drop), test.test, test.cases, decay, k)
        notes[name] = "the prefix's own items excluded" if drop else "the prefix's items kept"
    scored[BLEND] = evaluate(model.blend(weights), test.test, test.cases, DECAY, k)
    notes[BLEND] = (
        ", ".join(f"{c} {weights.of(c):g}" for c in rec.COMPONENTS if weights.of(c))
        + (", the prefix's own items excluded" if weights.exclude_seen else "")
        + (f", its top {rec.CANDIDATES} re-ranked" if taught.ranker else "")
    )
    rivals = {n: s for n, s in scored.items() if n != BLEND}
    strongest = max(rivals, key=lambda n: rivals[n].mean("hit_rate"))
    table = pd.DataFrame(
        [(n, s.mean("hit_rate"), s.mean("mrr"), notes[n]) for n, s in scored.items()],
        columns=["model", "hit_rate", "mrr", "note"],
    )
    return Comparison(
        table,
        strongest,
        {m: paired(scored[BLEND], rivals[strongest], m) for m in ("hit_rate", "mrr")},
        weights,
        taught,
        len(test.test),
        len(test.cases),
        k,
    )
