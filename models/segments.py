"""Customer segments for a marketing team: RFM scores and behavioural clusters, each
cluster named by what sets it apart.

**RFM**, per customer with a purchase in the window, as of the window's end:
recency (days since the last purchase), frequency (orders: distinct order ids, else
purchase days) and monetary value (spend: quantity x price). Each is scored 1 to 5 by
quintile of the customers' ranks (5: the most recent, most frequent, highest spend; ties
broken by customer id, so scores are stable). The RFM segment reads recency and
frequency, the usual grid: champions (R 4-5, F 4-5), loyal (F 4-5), promising (R 4-5,
F 2-3), new (R 4-5, F 1), at risk (R 1-2, F 3-5), hibernating (R 1-2, F 1-2), needs
attention (the rest). Customers who never bought are "browsers".

**Clusters** (k-means over buyers): the share of each category in the customer's
purchase lines (the ``top_categories`` largest; the rest pooled), the price tier (the mean
percentile of the prices paid among the category's purchase lines: 0 cheapest, 1
dearest), orders per 30 days and items per order (both log-scaled). Columns are
standardised and each of the four aspects carries the same total weight, so forty
categories do not drown the price tier. The number of clusters is the one with the
highest silhouette over a seeded sample of buyers (stated in the report with every
candidate's score). A cluster's name says what distinguishes it: its category with the
highest lift over the shop, its price tier, its order rhythm and its basket size against
the shop's ("premium coffee machines, monthly, large baskets").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from models.data.columns import Columns

C = Columns

RFM_SEGMENTS = (
    "champions",
    "loyal",
    "promising",
    "new",
    "at risk",
    "hibernating",
    "needs attention",
)
BROWSERS = "browsers"  # customers with no purchase: no RFM, no cluster
NO_CLUSTER = -1
LIFT = 1.15  # a category names a cluster when its share there is 15% above the shop's


def leanings(profiles: pd.DataFrame, n: int = 3) -> pd.Series:
    """Per cluster, the ``n`` categories whose share most exceeds the shop's (customer-
    weighted), with their lift: what the segments' table shows instead of every share."""
    shares = [c for c in profiles.columns if c.startswith("share: ")]
    weights = profiles["customers"] / profiles["customers"].sum()
    shop = profiles[shares].mul(weights, axis=0).sum().replace(0, np.nan)
    lift = (profiles[shares] / shop).fillna(0)

    def top(row: pd.Series) -> str:
        best = row[row > 1].sort_values(ascending=False).head(n)
        return ", ".join(f"{str(c).removeprefix('share: ')} x{v:.2f}" for c, v in best.items())

    return lift.apply(top, axis=1)


@dataclass(frozen=True)
class Segmentation:
    """One run's segments: a row per customer, the clusters' profiles and how k was chosen."""

    table: (
        pd.DataFrame
    )  # user_id, recency_days, orders, spend, r, f, m, rfm, rfm_segment, cluster, segment
    profiles: pd.DataFrame  # per cluster: name, customers, revenue, the behavioural means
    silhouettes: dict[int, float]  # candidate k -> silhouette on the sample
    k: int
    features: list[str]  # the behavioural columns the clusters were fitted on


def purchases_of(events: pd.DataFrame) -> pd.DataFrame:
    """Purchase lines with their spend and an order key (the order id, else the day)."""
    bought = events[events[C.event] == "purchase"].copy()
    bought["spend"] = bought[C.quantity].astype(float) * bought[C.price].astype(float)
    day = bought[C.timestamp].dt.strftime("%Y-%m-%d")
    order = bought[C.order].astype("string") if C.order in bought else day
    bought["order"] = order.fillna("day " + day)
    return bought


def quintile(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Scores 1-5 by quintile of the ranks (ties broken by the index's order)."""
    ranks = values.rank(method="first", ascending=higher_is_better)
    return pd.Series(np.ceil(5 * ranks / len(values)).clip(1, 5).astype(int), index=values.index)


def rfm_segment(r: pd.Series, f: pd.Series) -> pd.Series:
    """The recency-frequency grid's segment names (module docstring)."""
    recent, lapsed = r >= 4, r <= 2
    conditions = [
        recent & (f >= 4),
        f >= 4,
        recent & (f >= 2),
        recent & (f == 1),
        lapsed & (f >= 3),
        lapsed & (f <= 2),
    ]
    return pd.Series(np.select(conditions, RFM_SEGMENTS[:-1], RFM_SEGMENTS[-1]), index=r.index)


def rfm(bought: pd.DataFrame, asof: pd.Timestamp) -> pd.DataFrame:
    """Per buyer (sorted by id): recency_days, orders, spend, r, f, m, rfm, rfm_segment."""
    per = (
        bought.groupby(C.user)
        .agg(last=(C.timestamp, "max"), orders=("order", "nunique"), spend=("spend", "sum"))
        .sort_index()
    )
    per["recency_days"] = (asof - per["last"]).dt.total_seconds() / 86400
    per["r"] = quintile(per["recency_days"], higher_is_better=False)
    per["f"] = quintile(per["orders"].astype(float))
    per["m"] = quintile(per["spend"])
    per["rfm"] = per["r"].astype(str) + per["f"].astype(str) + per["m"].astype(str)
    per["rfm_segment"] = rfm_segment(per["r"], per["f"])
    return per.drop(columns="last")


def behaviour(
    bought: pd.DataFrame, items: pd.DataFrame, window_days: float, top_categories: int
) -> pd.DataFrame:
    """Per buyer (sorted by id): category shares (``share: <category>``), price_tier,
    orders_per_30_days and items_per_order."""
    lines = bought.merge(items[[C.item, C.category]], on=C.item, how="left")
    lines[C.category] = lines[C.category].fillna("unknown").astype(str)
    biggest = lines[C.category].value_counts()
    kept = sorted(biggest.index[:top_categories])
    if len(biggest) > top_categories:
        lines.loc[~lines[C.category].isin(kept), C.category] = "other categories"
        kept.append("other categories")
    shares = pd.crosstab(lines[C.user], lines[C.category], normalize="index")
    shares = shares.reindex(columns=kept, fill_value=0.0)
    shares.columns = [f"share: {c}" for c in shares.columns]
    # Where the price paid lies among the category's purchase lines (0 cheapest, 1
    # dearest): the shop's average buyer sits at 0.5, whatever the catalogue's long tail.
    lines["tier"] = lines.groupby(C.category)[C.price].rank(pct=True)
    per = pd.DataFrame(index=shares.index)
    per["price_tier"] = lines.groupby(C.user)["tier"].mean()
    orders = lines.groupby(C.user)["order"].nunique()
    per["orders_per_30_days"] = orders * 30 / max(window_days, 1.0)
    per["items_per_order"] = lines.groupby(C.user)[C.item].size() / orders
    return pd.concat([shares, per], axis=1).sort_index()


def _design(frame: pd.DataFrame) -> np.ndarray:
    """Standardised columns; each aspect (the category shares as one) weighs the same."""
    values = frame.copy()
    for column in ("orders_per_30_days", "items_per_order"):
        values[column] = np.log1p(values[column])
    std = values.std(ddof=0).replace(0, 1.0)
    z = (values - values.mean()) / std
    shares = [c for c in z.columns if c.startswith("share: ")]
    z[shares] = z[shares] / np.sqrt(max(len(shares), 1))
    return z.to_numpy(dtype=np.float64)


def choose_k(
    x: np.ndarray, candidates: tuple[int, ...], sample: int, seed: int
) -> tuple[int, dict[int, float]]:
    """The candidate k with the highest silhouette over a seeded sample of rows."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    scores: dict[int, float] = {}
    for k in candidates:
        if k >= len(rows):
            continue
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x[rows])
        if len(set(labels)) > 1:
            scores[k] = float(silhouette_score(x[rows], labels))
    if not scores:
        return 1, scores
    return max(scores, key=lambda k: (scores[k], -k)), scores


def _rhythm(orders_per_30_days: float) -> str:
    if orders_per_30_days >= 3:
        return "weekly"
    if orders_per_30_days >= 0.8:
        return "monthly"
    if orders_per_30_days >= 0.25:
        return "quarterly"
    return "occasional"


def name_clusters(frame: pd.DataFrame, labels: np.ndarray) -> dict[int, str]:
    """Each cluster's name from what distinguishes it from the shop (module docstring);
    names that come out alike are numbered."""
    shares = [c for c in frame.columns if c.startswith("share: ")]
    overall = frame.mean()
    shop_basket = float(frame["items_per_order"].median())
    names: dict[int, str] = {}
    for cluster in sorted(set(labels)):
        part = frame[labels == cluster]
        mean = part.mean()
        lift = (mean[shares] / overall[shares].replace(0, np.nan)).fillna(0)
        lift = lift[mean[shares] >= 0.05]  # a category a real share of their lines
        words = []
        tier = float(mean["price_tier"])
        if tier >= 0.6:
            words.append("premium")
        elif tier <= 0.4:
            words.append("budget")
        category = (
            str(lift.idxmax()).removeprefix("share: ")
            if len(lift) and lift.max() >= LIFT
            else "mixed"
        )
        words.append(category if category != "other categories" else "assorted")
        parts = [" ".join(words), _rhythm(float(part["orders_per_30_days"].median()))]
        basket = float(part["items_per_order"].median())
        if basket >= 1.25 * shop_basket:
            parts.append("large baskets")
        elif basket <= 0.8 * shop_basket:
            parts.append("small baskets")
        names[int(cluster)] = ", ".join(parts)
    seen: dict[str, int] = {}
    for cluster, name in names.items():
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[cluster] = f"{name} ({seen[name]})"
    return names


def segment(
    events: pd.DataFrame,
    items: pd.DataFrame,
    *,
    window_days: float,
    candidates: tuple[int, ...],
    sample: int,
    top_categories: int,
    seed: int,
) -> Segmentation:
    """Every customer of ``events`` (the last ``window_days``) with RFM and a cluster."""
    if events.empty:
        raise ValueError("no events to segment: the lake's events table is empty")
    asof = events[C.timestamp].max()
    window = events[events[C.timestamp] > asof - pd.Timedelta(days=window_days)]
    bought = purchases_of(window)
    customers = pd.Index(sorted(window[C.user].astype(str).unique()), name=C.user)
    if bought.empty:
        table = pd.DataFrame(index=customers)
        table["rfm_segment"], table["cluster"], table["segment"] = BROWSERS, NO_CLUSTER, BROWSERS
        return Segmentation(table.reset_index(), pd.DataFrame(), {}, 0, [])
    bought[C.user] = bought[C.user].astype(str)
    scores = rfm(bought, asof)
    frame = behaviour(bought, items, window_days, top_categories)
    x = _design(frame)
    # One thread: k-means' OpenMP start-up outweighs its work on a shop's few thousand
    # buyers (ten times slower on 400 with two threads than with one).
    with threadpool_limits(1):
        k, silhouettes = choose_k(x, candidates, sample, seed)
        labels = (
            KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
            if k > 1
            else np.zeros(len(frame), int)
        )
    labels = _by_size(labels)
    names = name_clusters(frame, labels)
    table = scores.join(pd.Series(labels, index=frame.index, name="cluster"))
    table["segment"] = table["cluster"].map(names)
    table = table.reindex(customers)
    table["rfm_segment"] = table["rfm_segment"].fillna(BROWSERS)
    table["segment"] = table["segment"].fillna(BROWSERS)
    table["cluster"] = table["cluster"].fillna(NO_CLUSTER).astype(int)
    profiles = frame.groupby(labels).mean()
    profiles.insert(0, "customers", np.bincount(labels))
    profiles.insert(1, "revenue", scores.loc[frame.index, "spend"].groupby(labels).sum().to_numpy())
    profiles.insert(0, "segment", [names[c] for c in profiles.index])
    profiles.index.name = "cluster"
    return Segmentation(table.reset_index(), profiles, silhouettes, k, list(frame.columns))


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster numbers by size, largest 0: stable reading from one run to the next."""
    order = np.argsort(-np.bincount(labels), kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[labels]


def migration(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Customers per (previous segment, current segment), over customers in both runs."""
    both = previous[[C.user, "segment"]].merge(
        current[[C.user, "segment"]], on=C.user, suffixes=(" before", " now")
    )
    return pd.crosstab(both["segment before"], both["segment now"])
