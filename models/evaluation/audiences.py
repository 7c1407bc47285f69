"""The offline protocol for audiences: for the holdout's purchases of an item or of a
category, did each targeting rule, from the training window alone, pick the customers who
then bought it?

Targets: the items with the most holdout buyers (at least ``min_buyers``; up to
``max_items``) and every category with at least ``min_buyers``. Each rule ranks every
customer the model knows; its audience is the top N (N = 100 and 1% of customers), leaving
out who bought the target in the training window's last ``recent_days`` (the same for every
rule). Precision@N: the share of the audience who bought the target in the holdout; lift:
precision over the share of all customers who did. Rules:

- ``cartlift``: :meth:`models.ranking.audience.Audiences.scores` (the served answer, item
  to users);
- ``RFM``: best customers first (the sum of the R, F and M quintiles, spend breaking
  ties), the same list for every target;
- ``category's customers``: the most purchase lines in the target's category, RFM breaking
  ties (a category manager's list).

Ratios compare mean precision over targets; the interval is a paired bootstrap over
targets of the difference (both rules on the same resampled targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.data.columns import Columns
from models.features.build import FeatureSet
from models.ranking.audience import rank
from models.segments import purchases_of, rfm

C = Columns


@dataclass(frozen=True)
class Target:
    kind: str  # "item" or "category"
    name: str
    items: np.ndarray  # item positions
    category: str
    buyers: np.ndarray  # customer positions who bought it in the holdout


def _positions(fs: FeatureSet, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    users = fs.user_map.positions(frame[C.user].to_numpy())
    items = fs.item_map.positions(frame[C.item].to_numpy())
    keep = (users >= 0) & (items >= 0)
    return users[keep], items[keep]


def targets(fs: FeatureSet, min_buyers: int = 10, max_items: int = 50) -> list[Target]:
    """The holdout's most bought items and every category, each with its buyers."""
    test = fs.split.test
    users, items = _positions(fs, test[test[C.event] == "purchase"])
    bought = pd.DataFrame({"user": users, "item": items}).drop_duplicates()
    categories = np.asarray(fs.items.set_index(C.item).loc[fs.item_ids, C.category], dtype=str)
    found = []
    per_item = bought.groupby("item")["user"].unique()
    counts = per_item.map(len).sort_values(ascending=False, kind="stable")
    for item in counts[counts >= min_buyers].index[:max_items]:
        found.append(
            Target(
                "item",
                str(fs.item_ids[item]),
                np.array([item]),
                categories[item],
                np.asarray(per_item[item]),
            )
        )
    bought["category"] = categories[bought["item"].to_numpy()]
    for category, group in bought.groupby("category"):
        buyers = group["user"].unique()
        if len(buyers) >= min_buyers:
            at = np.flatnonzero(categories == category)
            found.append(Target("category", str(category), at, str(category), buyers))
    return found


def rfm_values(fs: FeatureSet) -> np.ndarray:
    """Best customers first: R + F + M per customer position (0: never bought)."""
    train = fs.split.train
    bought = purchases_of(train)
    if bought.empty:
        return np.zeros(len(fs.user_ids))
    bought[C.user] = bought[C.user].astype(str)
    table = rfm(bought, fs.split.cutoff)
    value = table["r"] + table["f"] + table["m"] + table["spend"] / (table["spend"].max() + 1)
    ids = pd.Index(np.asarray(fs.user_ids).astype(str))
    return value.reindex(ids).fillna(0.0).to_numpy(dtype=np.float64)


def category_lines(fs: FeatureSet) -> Callable[[str], np.ndarray]:
    """Per category, each customer's purchase lines in it over the training window."""
    train = fs.split.train
    users, items = _positions(fs, train[train[C.event] == "purchase"])
    categories = np.asarray(fs.items.set_index(C.item).loc[fs.item_ids, C.category], dtype=str)
    lines = pd.DataFrame({"user": users, "category": categories[items]})
    n = len(fs.user_ids)
    per = {
        str(category): np.bincount(group["user"].to_numpy(), minlength=n).astype(np.float64)
        for category, group in lines.groupby("category")
    }

    def of(category: str) -> np.ndarray:
        return per.get(category, np.zeros(n))

    return of


def recent_buyers(fs: FeatureSet, days: float) -> Callable[[np.ndarray], np.ndarray]:
    """A target's items -> mask of customers who bought one in the last ``days``."""
    train = fs.split.train
    recent = train[
        (train[C.event] == "purchase")
        & (train[C.timestamp] >= fs.split.cutoff - pd.Timedelta(days=days))
    ]
    users, items = _positions(fs, recent)
    n = len(fs.user_ids)

    def of(target_items: np.ndarray) -> np.ndarray:
        mask = np.zeros(n, bool)
        mask[users[np.isin(items, target_items)]] = True
        return mask

    return of


def baseline_rules(fs: FeatureSet) -> dict[str, Callable[[Target], np.ndarray]]:
    value = rfm_values(fs)
    lines = category_lines(fs)
    return {
        "RFM": lambda target: value,
        "category's customers": lambda target: lines(target.category) + value / 100,
    }


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # rule, kind, n, precision, lift, targets
    differences: pd.DataFrame  # n, rule (baseline), ratio, difference, lower, upper
    targets: int


def compare(
    fs: FeatureSet,
    rules: dict[str, Callable[[Target], np.ndarray]],
    recent_days: float = 14.0,
    min_buyers: int = 10,
    max_items: int = 50,
    resamples: int = 1000,
    seed: int = 42,
    ours: str = "cartlift",
) -> Comparison:
    """Precision@N and lift of every rule over the holdout's targets (module docstring)."""
    n_users = len(fs.user_ids)
    sizes = sorted({100, max(1, n_users // 100)})
    found = targets(fs, min_buyers, max_items)
    if not found:
        raise ValueError(f"no item or category with {min_buyers}+ buyers in the holdout")
    excluded = recent_buyers(fs, recent_days)
    hits = {(name, n): np.zeros(len(found)) for name in rules for n in sizes}
    base = np.array([len(t.buyers) / n_users for t in found])
    for t_at, target in enumerate(found):
        skip = excluded(target.items)
        truth = np.zeros(n_users, bool)
        truth[target.buyers] = True
        for name, rule in rules.items():
            order = rank(rule(target), max(sizes), skip)
            for n in sizes:
                hits[name, n][t_at] = truth[order[:n]].sum() / n
    kinds = np.array([t.kind for t in found])
    rows = []
    for (name, n), precision in hits.items():
        for kind in ("all", "item", "category"):
            at = np.ones(len(found), bool) if kind == "all" else kinds == kind
            if at.any():
                rows.append(
                    {
                        "rule": name,
                        "targets": kind,
                        "n": n,
                        "precision": precision[at].mean(),
                        "lift": (precision[at] / base[at]).mean(),
                        "count": int(at.sum()),
                    }
                )
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(found), size=(resamples, len(found)))
    paired = []
    for n in sizes:
        for name in rules:
            if name == ours or ours not in rules:
                continue
            diff = hits[ours, n] - hits[name, n]
            means = diff[draws].mean(axis=1)
            theirs = hits[name, n].mean()
            paired.append(
                {
                    "n": n,
                    "rule": name,
                    "ratio": hits[ours, n].mean() / theirs if theirs > 0 else np.inf,
                    "difference": diff.mean(),
                    "lower": float(np.quantile(means, 0.025)),
                    "upper": float(np.quantile(means, 0.975)),
                }
            )
    return Comparison(pd.DataFrame(rows), pd.DataFrame(paired), len(found))


ACTIVITY = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
CATEGORY = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def choose(
    fs: FeatureSet,
    base: Callable[[Target], np.ndarray],
    terms: Callable[[Target], tuple[np.ndarray, np.ndarray]],
    recent_days: float = 14.0,
    min_buyers: int = 10,
    max_items: int = 50,
) -> tuple[tuple[float, float], float]:
    """The (activity, category) weights of :class:`models.ranking.audience.Leaning` whose
    audiences hold the most holdout buyers of ``fs`` (a validation window), mean precision
    at N = 100 and 1% of customers over its targets; and that precision. ``base`` gives a
    target's scores without leaning, ``terms`` the two leaning features per customer.
    Ties keep the lighter weights."""
    n_users = len(fs.user_ids)
    sizes = sorted({100, max(1, n_users // 100)})
    found = targets(fs, min_buyers, max_items)
    if not found:
        return (0.0, 0.0), float("nan")
    excluded = recent_buyers(fs, recent_days)
    cases = []
    for target in found:
        truth = np.zeros(n_users, bool)
        truth[target.buyers] = True
        cases.append((base(target), *terms(target), excluded(target.items), truth))
    best, best_value = (0.0, 0.0), -1.0
    for a in ACTIVITY:
        for c in CATEGORY:
            value = 0.0
            for scores, activity, category, skip, truth in cases:
                order = rank(scores + a * activity + c * category, max(sizes), skip)
                value += sum(truth[order[:n]].sum() / n for n in sizes) / len(sizes)
            value /= len(cases)
            if value > best_value + 1e-12:
                best, best_value = (a, c), value
    return best, best_value
