"""A shop's temporal split as a protocol task, and every model scored on it.

Bridges :mod:`models.features.build` (the shop's contract data, split at the cutoff) and
:mod:`models.evaluation.protocol`: the training window becomes :class:`~models.recommenders.baselines.Interactions`
for the baselines, what customers bought after the cutoff becomes the truth, and LightFM
(collaborative or hybrid) becomes one more scorer. Two variants of the truth: repeat
purchases counted, or items a customer bought before the cutoff excluded (discovery).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.data.columns import Columns
from models.evaluation.protocol import Protocol, Scorer, Task, evaluate, task
from models.evaluation.shopping import (
    cross_sell_cases,
    judge_cross_sell,
    judge_upsell,
    upsell_cases,
)
from models.features.build import FeatureSet
from models.ranking.engine import Answer, Engine
from models.ranking.policies import Filters, buy_again
from models.recommenders.baselines import Interactions
from models.recommenders.hybrid import HybridModel

C = Columns


def _pairs(fs: FeatureSet, frame: pd.DataFrame) -> sp.csr_matrix:
    """(user, item) rows of ``frame`` as a 0/1 matrix in the feature set's order."""
    user_map, _, item_map, _ = fs.dataset.mapping()
    pairs = frame[[C.user, C.item]].drop_duplicates()
    rows = pairs[C.user].map(user_map)
    cols = pairs[C.item].map(item_map)
    known = rows.notna() & cols.notna()
    return sp.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (rows[known].astype(int), cols[known].astype(int))),
        shape=(len(user_map), len(item_map)),
    )


def _bought_before(fs: FeatureSet) -> sp.csr_matrix:
    """Who bought what before the cutoff."""
    train = fs.split.train
    return _pairs(fs, train[train[C.event] == "purchase"])


def _catalogue(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Prices and category codes in the feature set's item order."""
    prices = pd.to_numeric(fs.items[C.price], errors="coerce").fillna(0).to_numpy(float)
    return prices, pd.factorize(fs.items[C.category].astype(str))[0]


def interactions(fs: FeatureSet, recent_days: int = 7) -> Interactions:
    """The training window for the baselines: decayed event weights, item categories,
    the baskets (orders) of the purchases, and who interacted with what in the last
    ``recent_days`` before the cutoff."""
    _, _, item_map, _ = fs.dataset.mapping()
    _, category = _catalogue(fs)
    bought = fs.split.train[
        (fs.split.train[C.event] == "purchase") & fs.split.train[C.order].notna()
    ]
    bought = bought[bought[C.item].isin(item_map.keys())]
    orders = pd.factorize(bought[C.order])[0]
    baskets = sp.csr_matrix(
        (np.ones(len(orders), np.float32), (orders, bought[C.item].map(item_map).to_numpy())),
        shape=(int(orders.max()) + 1 if len(orders) else 0, len(item_map)),
    )
    train = fs.split.train
    recent = _pairs(
        fs, train[train[C.timestamp] >= fs.split.cutoff - pd.Timedelta(days=recent_days)]
    )
    return Interactions(
        matrix=fs.weights.tocsr(), item_category=category, baskets=baskets, recent=recent
    )


def tasks(fs: FeatureSet, exclude_purchased: bool) -> dict[str, Task]:
    """Two tasks. In "customers", every customer who bought after the cutoff, with slices
    warm and cold-start (no event before the cutoff); in "new items", the same customers
    judged only on items with no event before the cutoff."""
    train, test = fs.split.train, fs.split.test
    truth = _pairs(fs, test[test[C.event] == "purchase"])
    bought = _bought_before(fs)
    exclude = bought if exclude_purchased else sp.csr_matrix(bought.shape, dtype=np.float32)
    seen = _pairs(fs, train)
    cold_user = np.diff(seen.indptr) == 0
    cold_item = np.asarray(seen.sum(axis=0)).ravel() == 0
    slices = {"warm": ~cold_user, "cold_users": cold_user}
    new_items = truth @ sp.diags(cold_item.astype(np.float32))
    return {
        "customers": task(truth, exclude, slices),
        "new items": task(new_items.tocsr(), exclude),
    }


def lightfm_scorer(model: HybridModel, fs: FeatureSet) -> Scorer:
    """Scores from the model's precomputed representations (what serving uses)."""
    vec = model.vectors(fs.user_ids, fs.user_tokens, fs.item_ids, fs.item_tokens)
    return lambda rows: vec.users[rows] @ vec.items.T + vec.item_bias


def with_buy_again(fs: FeatureSet, scorer: Scorer) -> Scorer:
    """``scorer`` as the engine serves it when a shop allows repeat purchases: what each
    customer bought before the cutoff lifted (:func:`models.ranking.policies.buy_again`)."""
    bought = _bought_before(fs)
    return lambda rows: buy_again(np.asarray(scorer(rows), dtype=np.float64), bought[rows])


def compare(
    fs: FeatureSet, scorers: dict[str, Scorer], exclude_purchased: bool, protocol: Protocol
) -> pd.DataFrame:
    """Every scorer on every task of the split; adds a ``task`` column. Novelty uses the
    share of customers who had each item before the cutoff; diversity, item categories."""
    seen = _pairs(fs, fs.split.train)
    share = np.asarray(seen.sum(axis=0)).ravel() / max(seen.shape[0], 1)
    _, codes = _catalogue(fs)
    onehot = np.eye(codes.max() + 1 if len(codes) else 1, dtype=np.float32)[codes]
    frames = []
    for task_name, t in tasks(fs, exclude_purchased).items():
        for name, scorer in scorers.items():
            table = evaluate(name, scorer, t, protocol, share, onehot)
            frames.append(table.assign(task=task_name))
    return pd.concat(frames, ignore_index=True)


# --- cross-sell and upsell ---------------------------------------------------------------

CartScorer = Callable[[np.ndarray, sp.csr_matrix], np.ndarray]  # (users, carts) -> scores
EVERYTHING = Filters(in_stock_only=False)  # holdout purchases were in stock when bought


def from_lists(lists: list[list[int]], n_items: int) -> np.ndarray:
    """Score matrix of ranked lists: the first item highest, unlisted items -inf."""
    scores = np.full((len(lists), n_items), -np.inf)
    for row, items in enumerate(lists):  # one list per case: evaluation, not serving
        scores[row, items] = np.arange(len(items), 0, -1)
    return scores


def _engine(ask: Callable[[list[str], str], Answer], fs: FeatureSet) -> CartScorer:
    """A scorer asking the engine once per case with the case's items and customer."""
    users, items = fs.user_ids, fs.item_ids
    pos = {item: i for i, item in enumerate(items)}

    def score(rows: np.ndarray, carts: sp.csr_matrix) -> np.ndarray:
        lists = [
            [pos[s.item_id] for s in ask(list(items[carts[i].indices]), str(users[rows[i]])).items]
            for i in range(len(rows))
        ]
        return from_lists(lists, len(items))

    return score


def engine_cross_sell(engine: Engine, fs: FeatureSet, k: int) -> CartScorer:
    """The product's own cross-sell (co-purchase lift plus the customer's affinity)."""
    return _engine(lambda cart, user: engine.cross_sell(cart, user, k, EVERYTHING), fs)


def engine_upsell(engine: Engine, fs: FeatureSet, k: int) -> CartScorer:
    """The product's own upsell (embedding closeness to the anchor plus affinity)."""
    return _engine(lambda anchor, user: engine.upsell(anchor[0], user, k, None, EVERYTHING), fs)


def cross_sell_table(fs: FeatureSet, scorers: dict[str, CartScorer], k: int = 10) -> pd.DataFrame:
    """Hit rate, MRR and revenue-weighted hit rate at ``k`` on the holdout's baskets."""
    user_map, _, item_map, _ = fs.dataset.mapping()
    prices, _ = _catalogue(fs)
    cases = cross_sell_cases(fs.split.test, user_map, item_map, prices)
    rows = [
        {"model": name, **judge_cross_sell(score(cases.users, cases.carts), cases, k)}
        for name, score in scorers.items()
    ]
    return pd.DataFrame(rows).astype({"cases": int})


def upsell_table(fs: FeatureSet, scorers: dict[str, CartScorer], k: int = 10) -> pd.DataFrame:
    """Hit rate at ``k`` and mean uplift of hits on the holdout's pricier purchases."""
    user_map, _, item_map, _ = fs.dataset.mapping()
    prices, category = _catalogue(fs)
    events = pd.concat([fs.split.train, fs.split.test])  # the split partitions the events
    cases = upsell_cases(events, fs.split.cutoff, user_map, item_map, prices, category)
    anchors = sp.csr_matrix(
        (np.ones(len(cases.anchor)), (np.arange(len(cases.anchor)), cases.anchor)),
        shape=(len(cases.anchor), len(prices)),
    )
    rows = [
        {"model": name, **judge_upsell(score(cases.users, anchors), cases, prices, category, k)}
        for name, score in scorers.items()
    ]
    return pd.DataFrame(rows).astype({"cases": int})


def cheapest_pricier(fs: FeatureSet) -> CartScorer:
    """The naive upsell: the next-cheapest pricier item of the category first."""
    prices, _ = _catalogue(fs)
    return lambda rows, anchors: np.tile(-prices, (len(rows), 1))
