"""Offline evaluation on the temporal holdout, the same protocol for every recommender.

Ground truth: the items a user bought (``target_events``) after the cutoff. With
``exclude_purchased`` the items a user bought before the cutoff are neither recommended
nor counted as relevant, so the score measures discovery, not re-ordering.
Slices: all users; cold-start users (no event before the cutoff); cold-start items
(relevant items with no event before the cutoff, for users who bought one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.config import EvaluateConfig
from models.data.columns import Columns
from models.evaluation.metrics import coverage, hits_from_pairs, ranking_report
from models.features.build import FeatureSet
from models.ranking.topk import top_k
from models.recommenders.hybrid import Recommender

C = Columns
SLICES = ("all", "cold_users", "cold_items")


@dataclass
class Holdout:
    """Relevant (user row, item index) pairs and what to exclude, in the catalogue's order."""

    user_ids: np.ndarray  # evaluated users
    truth_rows: np.ndarray
    truth_items: np.ndarray
    exclude: sp.csr_matrix  # (n_eval_users, n_items)
    cold_user: np.ndarray  # (n_eval_users,) bool
    cold_item: np.ndarray  # (n_items,) bool


def holdout(fs: FeatureSet, cfg: EvaluateConfig) -> Holdout:
    """The evaluation targets of a feature set's split."""
    item_pos = pd.Series(np.arange(len(fs.item_ids)), index=pd.Index(fs.item_ids))
    train, test = fs.split.train, fs.split.test
    target = test[test[C.event].isin(cfg.target_events)][[C.user, C.item]].drop_duplicates()
    bought = train[train[C.event] == "purchase"][[C.user, C.item]].drop_duplicates()
    if cfg.exclude_purchased:
        target = target.merge(bought, how="left", indicator=True)
        target = target[target["_merge"] == "left_only"].drop(columns="_merge")
    users = np.asarray(sorted(target[C.user].unique()), dtype=object)
    user_pos = pd.Series(np.arange(len(users)), index=pd.Index(users))
    rows = target[C.user].map(user_pos).to_numpy(dtype=np.int64)
    items = target[C.item].map(item_pos).to_numpy(dtype=np.int64)
    if cfg.exclude_purchased:
        seen = bought[bought[C.user].isin(user_pos.index)]
        ex_r = seen[C.user].map(user_pos).to_numpy(dtype=np.int64)
        ex_c = seen[C.item].map(item_pos).to_numpy(dtype=np.int64)
    else:
        ex_r = ex_c = np.empty(0, np.int64)
    exclude = sp.csr_matrix(
        (np.ones(len(ex_r), np.float32), (ex_r, ex_c)), shape=(len(users), len(item_pos))
    )
    warm_users = set(train[C.user].unique())
    warm_items = pd.Index(train[C.item].unique())
    return Holdout(
        user_ids=users,
        truth_rows=rows,
        truth_items=items,
        exclude=exclude,
        cold_user=~np.isin(users, list(warm_users)),
        cold_item=~item_pos.index.isin(warm_items),
    )


def evaluate(
    rec: Recommender, fs: FeatureSet, ho: Holdout, cfg: EvaluateConfig
) -> dict[str, float]:
    """Metrics at ``cfg.k`` per slice, keyed ``<metric>_at_<k>`` (all users) and
    ``<slice>.<metric>_at_<k>``, plus catalogue coverage and user counts."""
    vec = rec.vectors(ho.user_ids, fs.user_tokens, fs.item_ids, fs.item_tokens)
    top, _ = top_k(vec.users, vec.items, vec.item_bias, cfg.k, exclude=ho.exclude)
    n_items = len(fs.item_ids)
    out: dict[str, float] = {}
    for name in SLICES:
        if name == "cold_items":
            keep_pair = ho.cold_item[ho.truth_items]
            user_mask = np.zeros(len(ho.user_ids), bool)
            user_mask[ho.truth_rows[keep_pair]] = True
        else:
            user_mask = ho.cold_user if name == "cold_users" else np.ones(len(ho.user_ids), bool)
            keep_pair = user_mask[ho.truth_rows]
        rows = np.flatnonzero(user_mask)
        new_row = np.full(len(ho.user_ids), -1)
        new_row[rows] = np.arange(len(rows))
        t_rows, t_items = new_row[ho.truth_rows[keep_pair]], ho.truth_items[keep_pair]
        hits = hits_from_pairs(top[rows], t_rows, t_items, n_items)
        n_rel = np.bincount(t_rows, minlength=len(rows))
        report = ranking_report(hits, n_rel)
        prefix = "" if name == "all" else f"{name}."
        out.update({prefix + key: value for key, value in report.items()})
        out[f"{prefix}users"] = float(len(rows))
    out[f"coverage_at_{cfg.k}"] = coverage(top, n_items)
    return out
