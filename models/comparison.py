"""A shop's temporal split as a protocol task, and every model scored on it.

Bridges :mod:`models.features` (the shop's contract data, split at the cutoff) and
:mod:`models.protocol`: the training window becomes :class:`~models.baselines.Interactions`
for the baselines, what customers bought after the cutoff becomes the truth, and LightFM
(collaborative or hybrid) becomes one more scorer. Two variants of the truth: repeat
purchases counted, or items a customer bought before the cutoff excluded (discovery).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.baselines import Interactions
from models.columns import Columns
from models.features import FeatureSet
from models.hybrid import HybridModel
from models.protocol import Protocol, Scorer, Task, evaluate, task

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


def interactions(fs: FeatureSet) -> Interactions:
    """The training window for the baselines: decayed event weights, item categories,
    and the baskets (orders) of the purchases."""
    _, _, item_map, _ = fs.dataset.mapping()
    category = pd.factorize(fs.items[C.category].astype(str))[0]
    bought = fs.split.train[
        (fs.split.train[C.event] == "purchase") & fs.split.train[C.order].notna()
    ]
    bought = bought[bought[C.item].isin(item_map.keys())]
    orders = pd.factorize(bought[C.order])[0]
    baskets = sp.csr_matrix(
        (np.ones(len(orders), np.float32), (orders, bought[C.item].map(item_map).to_numpy())),
        shape=(int(orders.max()) + 1 if len(orders) else 0, len(item_map)),
    )
    return Interactions(matrix=fs.weights.tocsr(), item_category=category, baskets=baskets)


def tasks(fs: FeatureSet, exclude_purchased: bool) -> dict[str, Task]:
    """ "customers": every customer who bought after the cutoff, with slices warm and
    cold-start (no event before the cutoff); "new items": the same, judged only on items
    with no event before the cutoff."""
    train, test = fs.split.train, fs.split.test
    truth = _pairs(fs, test[test[C.event] == "purchase"])
    bought = _pairs(fs, train[train[C.event] == "purchase"])
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


def compare(
    fs: FeatureSet, scorers: dict[str, Scorer], exclude_purchased: bool, protocol: Protocol
) -> pd.DataFrame:
    """Every scorer on every task of the split; adds a ``task`` column. Novelty uses the
    share of customers who had each item before the cutoff; diversity, item categories."""
    seen = _pairs(fs, fs.split.train)
    share = np.asarray(seen.sum(axis=0)).ravel() / max(seen.shape[0], 1)
    codes = pd.factorize(fs.items[C.category].astype(str))[0]
    onehot = np.eye(codes.max() + 1 if len(codes) else 1, dtype=np.float32)[codes]
    frames = []
    for task_name, t in tasks(fs, exclude_purchased).items():
        for name, scorer in scorers.items():
            table = evaluate(name, scorer, t, protocol, share, onehot)
            frames.append(table.assign(task=task_name))
    return pd.concat(frames, ignore_index=True)
