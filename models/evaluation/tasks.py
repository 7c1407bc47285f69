"""A shop's temporal split as evaluation tasks, and every model scored on them.

The one way cartlift judges a model on a shop's holdout, for the gate, tuning and the
quality report alike: what customers bought after the cutoff is the truth; items they
bought before are excluded (discovery) or not (repeat purchases counted). Slices, defined
once here: ``warm`` and ``cold_users`` (no event before the cutoff) customers, and the
``new_items`` task (the same customers judged only on items nobody touched before the
cutoff). Every model answers through :mod:`models.recommenders.base` and is ranked and
scored by :mod:`models.evaluation.protocol`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.config import EvaluateConfig, Objective, excludes_purchased
from models.data.columns import Columns
from models.evaluation.protocol import Protocol, Scorer, Task, evaluate_per_user, paired, task
from models.evaluation.shopping import (
    cross_sell_cases,
    judge_cross_sell,
    judge_upsell,
    upsell_cases,
)
from models.features.build import FeatureSet
from models.ranking.engine import Answer, Engine
from models.ranking.policies import Filters
from models.recommenders.base import pairs

C = Columns


def _bought_before(fs: FeatureSet) -> sp.csr_matrix:
    """Who bought what before the cutoff."""
    train = fs.split.train
    return pairs(train[train[C.event] == "purchase"], fs.user_map, fs.item_map)


def _catalogue(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Prices and category codes in the feature set's item order."""
    prices = pd.to_numeric(fs.items[C.price], errors="coerce").fillna(0).to_numpy(float)
    return prices, pd.factorize(fs.items[C.category].astype(str))[0]


VARIANTS = {"bought items excluded": True, "repeat purchases counted": False}  # name -> exclude


def variant(exclude_purchased: bool) -> str:
    """The name of a variant of the truth, as reports and logs say it."""
    return "bought items excluded" if exclude_purchased else "repeat purchases counted"


def repeat_share(events: pd.DataFrame) -> float:
    """The share of purchase lines that buy again what the same customer bought at an
    earlier time: how much a shop lives on replenishment (groceries, supplies) rather than
    discovery. The shop's objective is chosen from it (0 when nothing was bought)."""
    buys = events[events[C.event] == "purchase"]
    if buys.empty:
        return 0.0
    first = buys.groupby([C.user, C.item])[C.timestamp].transform("min")
    return float((buys[C.timestamp] > first).mean())


def objective(cfg: EvaluateConfig, fs: FeatureSet) -> Objective:
    """The shop's objective: as configured, or (``auto``) chosen from the training
    window's repeat share. The gate, the blend's weights, the report and the service's
    default all follow it."""
    return cfg.resolve(repeat_share(fs.split.train))


TASKS = ("customers", "new_items")


def tasks(fs: FeatureSet, exclude_purchased: bool) -> dict[str, Task]:
    """Two tasks. In ``customers``, every customer who bought after the cutoff, with slices
    ``warm`` and ``cold_users``; in ``new_items``, the same customers judged only on items
    with no event before the cutoff."""
    users, items = fs.user_map, fs.item_map
    train, test = fs.split.train, fs.split.test
    truth = pairs(test[test[C.event] == "purchase"], users, items)
    bought = _bought_before(fs)
    exclude = bought if exclude_purchased else sp.csr_matrix(bought.shape, dtype=np.float32)
    seen = pairs(train, users, items)
    cold_user = np.diff(seen.indptr) == 0
    cold_item = np.asarray(seen.sum(axis=0)).ravel() == 0
    new_items = truth @ sp.diags(cold_item.astype(np.float32))
    customers, arrivals = TASKS
    return {
        customers: task(truth, exclude, {"warm": ~cold_user, "cold_users": cold_user}),
        arrivals: task(new_items.tocsr(), exclude),
    }


def compare(
    fs: FeatureSet,
    scorers: dict[str, Scorer],
    exclude_purchased: bool,
    protocol: Protocol,
    beyond_accuracy: bool = True,
) -> pd.DataFrame:
    """Every scorer on every task of the split: the protocol's table with a ``task``
    column. Novelty uses the share of customers who had each item before the cutoff;
    diversity, item categories (``beyond_accuracy=False`` leaves both out)."""
    return compare_paired(fs, scorers, exclude_purchased, protocol, None, beyond_accuracy)[0]


DIFFERENCE_COLUMNS = ["task", "slice", "model", "metric", "k", "difference", "lower", "upper"]


def compare_paired(
    fs: FeatureSet,
    scorers: dict[str, Scorer],
    exclude_purchased: bool,
    protocol: Protocol,
    reference: str | None,
    beyond_accuracy: bool = True,
    metric: str = "ndcg",
    on_scored: Callable[[str, str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`compare`'s table, and each other model's ``metric`` (at every k, per task
    and slice) subtracted from ``reference``'s on the same customers, with a paired
    bootstrap interval (:func:`~models.evaluation.protocol.paired`): a difference whose
    interval lies above 0 is a win that another sample of customers would repeat.
    ``on_scored(task, model)`` hears each model scored on each task (a progress bar)."""
    share = onehot = None
    if beyond_accuracy:
        seen = pairs(fs.split.train, fs.user_map, fs.item_map)
        share = np.asarray(seen.sum(axis=0)).ravel() / max(seen.shape[0], 1)
        _, codes = _catalogue(fs)
        onehot = np.eye(codes.max() + 1 if len(codes) else 1, dtype=np.float32)[codes]
    frames, differences = [], []
    for task_name, t in tasks(fs, exclude_purchased).items():
        values = {}
        for name, scorer in scorers.items():
            table, values[name] = evaluate_per_user(name, scorer, t, protocol, share, onehot)
            frames.append(table.assign(task=task_name))
            if on_scored is not None:
                on_scored(task_name, name)
        if reference is None:
            continue
        for name in (n for n in scorers if n != reference):
            for slice_name, mask in t.slices.items():
                for k in protocol.ks:
                    key = f"{metric}_at_{k}"
                    ours, theirs = values[reference][key][mask], values[name][key][mask]
                    diff = paired(ours, theirs, protocol)
                    differences.append((task_name, slice_name, name, metric, k, *diff))
    return (
        pd.concat(frames, ignore_index=True),
        pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS),
    )


def flat(table: pd.DataFrame, model: str) -> dict[str, float]:
    """One model's rows of a :func:`compare` table as flat metrics: ``ndcg_at_10`` (all
    customers), ``warm.ndcg_at_10``, ``cold_users.ndcg_at_10``, ``new_items.ndcg_at_10``,
    ``coverage_at_10``, and the customers behind each (``users``, ``cold_users.users``)."""
    out: dict[str, float] = {}
    for r in table[table["model"] == model].itertuples(index=False):
        if r.task == "customers":
            prefix = "" if r.slice == "all" else f"{r.slice}."
        elif r.slice == "all":
            prefix = f"{r.task}."
        else:
            continue
        out[f"{prefix}{r.metric}_at_{r.k}"] = float(r.mean)  # type: ignore[arg-type]
        out[f"{prefix}users"] = float(r.users)  # type: ignore[arg-type]
    return out


def holdout_metrics(
    fs: FeatureSet, scorers: dict[str, Scorer], k: int, aim: Objective
) -> dict[str, dict[str, float]]:
    """The gate's figures: each scorer's metrics at ``k`` on the split's variant for the
    shop's objective, means only; the same table the quality report bootstraps."""
    protocol = Protocol(ks=(k,), bootstrap=0)
    table = compare(fs, scorers, excludes_purchased(aim), protocol, beyond_accuracy=False)
    return {name: flat(table, name) for name in scorers}


# --- cross-sell and upsell ---------------------------------------------------------------

CartScorer = Callable[[np.ndarray, sp.csr_matrix], np.ndarray]  # (users, carts) -> scores
EVERYTHING = Filters(in_stock_only=False)  # holdout purchases were in stock when bought


def from_lists(lists: list[np.ndarray], n_items: int) -> np.ndarray:
    """Score matrix of ranked lists: the first item highest, unlisted items -inf."""
    scores = np.full((len(lists), n_items), -np.inf)
    for row, items in enumerate(lists):  # one list per case: evaluation, not serving
        scores[row, items] = np.arange(len(items), 0, -1)
    return scores


def _engine(ask: Callable[[list[str], str], Answer], fs: FeatureSet) -> CartScorer:
    """A scorer asking the engine once per case with the case's items and customer."""
    users, items = fs.user_ids, fs.item_map

    def score(rows: np.ndarray, carts: sp.csr_matrix) -> np.ndarray:
        lists = [
            items.rows(
                [s.item_id for s in ask(list(items.ids[carts[i].indices]), str(users[r])).items]
            )
            for i, r in enumerate(rows)
        ]
        return from_lists(lists, len(items))

    return score


def engine_cross_sell(engine: Engine, fs: FeatureSet, k: int) -> CartScorer:
    """The product's own cross-sell (co-purchase lift plus the customer's affinity)."""
    return _engine(lambda cart, user: engine.cross_sell(cart, user, k, EVERYTHING), fs)


def engine_upsell(engine: Engine, fs: FeatureSet, k: int) -> CartScorer:
    """The product's own upsell (embedding closeness to the anchor plus affinity)."""
    return _engine(lambda anchor, user: engine.upsell(anchor[0], user, k, None, EVERYTHING), fs)


def cross_sell_table(
    fs: FeatureSet, scorers: dict[str, CartScorer], k: int = 10, at_most: int | None = None
) -> pd.DataFrame:
    """Hit rate, MRR and revenue-weighted hit rate at ``k`` on the holdout's baskets (at
    most ``at_most`` of them, a seeded sample, when given)."""
    prices, _ = _catalogue(fs)
    cases = cross_sell_cases(fs.split.test, fs.user_map, fs.item_map, prices)
    if at_most is not None:
        cases = cases.sample(at_most)
    rows = [
        {"model": name, **judge_cross_sell(score(cases.users, cases.carts), cases, k)}
        for name, score in scorers.items()
    ]
    return pd.DataFrame(rows).astype({"cases": int})


def upsell_table(fs: FeatureSet, scorers: dict[str, CartScorer], k: int = 10) -> pd.DataFrame:
    """Hit rate at ``k`` and mean uplift of hits on the holdout's pricier purchases."""
    prices, category = _catalogue(fs)
    events = pd.concat([fs.split.train, fs.split.test])  # the split partitions the events
    cases = upsell_cases(events, fs.split.cutoff, fs.user_map, fs.item_map, prices, category)
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
