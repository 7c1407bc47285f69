"""From the lake to LightFM's inputs: temporal split, weighted interactions, features.

Features are first written as *tokens* in long format (``id, token, weight``), e.g.
``category=laptops`` or ``spend=3``. Tokens do not depend on any index, so a model can
encode users and items it never saw (cold start, or a champion scored on a newer
window) with its own feature map. Matrices are then built vectorised from the token
tables and the maps of LightFM's ``Dataset``, which is saved with the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm.data import Dataset

from models.config import FeatureConfig
from models.data.columns import Columns
from models.data.ids import IdMap
from models.ranking.topk import top_per_row

C = Columns
TOKEN = "token"  # a feature name prefix, not a secret  # nosec B105
ID = "id"
PRICE_BAND_NAMES = {1: ("any",), 2: ("low", "high"), 3: ("budget", "mid", "premium")}
# The contract's item columns, which become features their own way (or none).
CATALOGUE_COLUMNS = {C.item, C.title, C.category, C.brand, C.price, C.in_stock, C.margin}
WORD = r"[^\W\d_]{3,}"  # a run of 3+ letters (no digits: "coffee machine 319")


@dataclass
class Split:
    """Events before the cutoff train the model; events from it on evaluate it."""

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp


@dataclass
class UserSide:
    """What the training window says about each user, computed from that user's events
    alone: so it can be computed per partition of users (on Dask) and combined exactly.
    Bands over users (spend, activity, ...) are global and come after combining."""

    pairs: pd.DataFrame  # user, item, decayed weight; sorted by (user, item)
    activity: pd.Series  # events per user
    spend: pd.Series  # buyers only: revenue
    orders: pd.Series  # buyers only: distinct orders
    recency: pd.Series  # buyers only: days since the last purchase
    likes: pd.DataFrame  # user, category, share: the user's top categories


@dataclass
class FeatureSet:
    """Everything training and evaluation need, with LightFM's id and feature maps."""

    dataset: Dataset
    interactions: sp.coo_matrix  # (n_users, n_items), 1 where the user interacted
    weights: sp.coo_matrix  # (n_users, n_items), decayed event weights, same pattern
    user_features: sp.csr_matrix  # (n_users, n_user_features), rows sum to 1
    item_features: sp.csr_matrix  # (n_items, n_item_features), rows sum to 1
    user_tokens: pd.DataFrame
    item_tokens: pd.DataFrame
    split: Split
    items: pd.DataFrame
    users: pd.DataFrame
    item_weight: np.ndarray  # (n_items,) decayed training weight per item (a feature input)
    item_trend: np.ndarray  # (n_items,), customers per item, counted by recency (trend)
    newcomer_trend: np.ndarray  # (n_items,), the same among customers in their first day

    @cached_property
    def user_map(self) -> IdMap:
        """Customers in the order of the matrices' rows."""
        return IdMap(list(self.dataset.mapping()[0]))

    @cached_property
    def item_map(self) -> IdMap:
        """Items in the order of the matrices' columns."""
        return IdMap(list(self.dataset.mapping()[2]))

    @property
    def user_ids(self) -> np.ndarray:
        return self.user_map.ids

    @property
    def item_ids(self) -> np.ndarray:
        return self.item_map.ids

    @cached_property
    def item_categories(self) -> np.ndarray:
        """(n_items,) integer codes of the items' categories, in the matrices' order."""
        return pd.factorize(self.items[C.category].astype(str))[0]

    @cached_property
    def seen_items(self) -> np.ndarray:
        """(n_items,) bool: the items someone interacted with in the training window; the
        others (new arrivals) are known by their features alone."""
        return np.diff(self.interactions.tocsc().indptr) > 0

    @cached_property
    def on_seen_items(self) -> tuple[sp.coo_matrix, sp.coo_matrix, sp.csr_matrix]:
        """The interactions, weights and item features of :attr:`seen_items` only: what
        LightFM trains on with features (:func:`models.recommenders.hybrid.fit_epoch`),
        sliced once, not every epoch."""
        if self.seen_items.all():
            return self.interactions, self.weights, self.item_features
        seen = np.flatnonzero(self.seen_items)
        return (
            self.interactions.tocsc()[:, seen].tocoo(),
            self.weights.tocsc()[:, seen].tocoo(),
            self.item_features[seen],
        )

    def summary(self) -> dict[str, int | str]:
        return {
            "users": self.interactions.shape[0],
            "items": self.interactions.shape[1],
            "interactions": int(self.interactions.nnz),
            "user_features": self.user_features.shape[1],
            "item_features": self.item_features.shape[1],
            "train_events": len(self.split.train),
            "test_events": len(self.split.test),
            "cutoff": str(self.split.cutoff),
        }


def temporal_split(events: pd.DataFrame, holdout_days: int) -> Split:
    """Hold out the last ``holdout_days`` whole days of events."""
    if events.empty:
        raise ValueError("no events to split: the lake's events table is empty")
    cutoff = (
        events[C.timestamp].max().normalize()
        + pd.Timedelta(days=1)
        - pd.Timedelta(days=holdout_days)
    )
    before = events[C.timestamp] < cutoff
    if not before.any():
        raise ValueError(
            f"all events fall in the last {holdout_days} days: nothing left to train on; "
            "lower features.holdout_days"
        )
    return Split(train=events[before], test=events[~before], cutoff=cutoff)


def interaction_weights(
    train: pd.DataFrame, cutoff: pd.Timestamp, cfg: FeatureConfig
) -> pd.DataFrame:
    """Sum of event weights per (user, item), each halved every ``half_life_days``.

    A purchase counts more than a cart, a cart more than a view; recent behaviour counts
    more than old behaviour, so the model follows the shop's present.
    """
    age_days = (cutoff - train[C.timestamp]).dt.total_seconds().to_numpy() / 86_400.0
    decay = np.exp2(-age_days / cfg.half_life_days)
    kind = train[C.event].map(cfg.event_weights).fillna(0.0).to_numpy(dtype=float)
    frame = pd.DataFrame(
        {C.user: train[C.user].to_numpy(), C.item: train[C.item].to_numpy(), C.weight: kind * decay}
    )
    frame = frame[frame[C.weight] > 0]
    return frame.groupby([C.user, C.item], sort=True, observed=True)[C.weight].sum().reset_index()


def trend(
    train: pd.DataFrame, item_ids: np.ndarray, cutoff: pd.Timestamp, half_life_days: float
) -> np.ndarray:
    """What is selling now: each item's customers, each counted by how recently they last
    touched it (1 at the cutoff, halved every ``half_life_days``), in ``item_ids`` order.

    A short half-life makes this last week's best sellers without a hard window edge."""
    last = train.groupby([C.item, C.user], observed=True)[C.timestamp].max()
    age_days = (cutoff - last).dt.total_seconds().to_numpy() / 86_400.0
    per_item = (
        pd.Series(np.exp2(-age_days / half_life_days), index=last.index)
        .groupby(level=0, observed=True)
        .sum()
    )
    return pd.Series(item_ids).map(per_item).fillna(0.0).to_numpy(dtype=np.float64)


def first_days(train: pd.DataFrame, days: float = 1.0) -> pd.DataFrame:
    """Each customer's events in the first ``days`` after their first event."""
    first = train[C.user].map(train.groupby(C.user, observed=True)[C.timestamp].min())
    return train[train[C.timestamp] < first + pd.Timedelta(days=days)]


def trends(
    train: pd.DataFrame, item_ids: np.ndarray, cutoff: pd.Timestamp, cfg: FeatureConfig
) -> tuple[np.ndarray, np.ndarray]:
    """What sells now to everyone, and to newcomers (customers in their first day): a
    new customer picks differently from a regular (Online Retail: docs/quality.md)."""
    return (
        trend(train, item_ids, cutoff, cfg.trend_half_life_days),
        trend(first_days(train), item_ids, cutoff, cfg.newcomer_half_life_days),
    )


def _bands(values: pd.Series, n: int) -> pd.Series:
    """Quantile band 1..n of each value (ties share a band)."""
    if n <= 1 or values.empty:
        return pd.Series(1, index=values.index)
    ranks = values.rank(method="average", pct=True)
    return pd.Series(np.ceil(ranks * n).clip(1, n).astype(int), index=values.index)


def _long(ids: pd.Series, tokens: pd.Series, weight: float | pd.Series = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            ID: ids.to_numpy(),
            TOKEN: tokens.to_numpy(),
            C.weight: np.broadcast_to(np.asarray(weight, dtype=float), len(ids)),
        }
    )


def user_side(
    train: pd.DataFrame, items: pd.DataFrame, cutoff: pd.Timestamp, cfg: FeatureConfig
) -> UserSide:
    """Per-user interaction weights and aggregates of ``train`` (any subset of users)."""
    buys = train[train[C.event] == "purchase"]
    likes = pd.DataFrame(columns=[C.user, "category", "share"])
    if cfg.n_preferred_categories:
        cats = train[[C.user]].assign(
            category=train[C.item].map(items.set_index(C.item)[C.category])
        )
        share = cats.groupby([C.user, "category"]).size().rename("n").reset_index()
        share["share"] = share["n"] / share.groupby(C.user)["n"].transform("sum")
        top = share.sort_values([C.user, "share", "category"], ascending=[True, False, True])
        likes = top.groupby(C.user).head(cfg.n_preferred_categories)[[C.user, "category", "share"]]
    return UserSide(
        pairs=interaction_weights(train, cutoff, cfg),
        activity=train.groupby(C.user).size(),
        spend=(buys[C.price] * buys[C.quantity]).groupby(buys[C.user]).sum(),
        orders=buys.groupby(C.user)[C.order].nunique(),
        recency=(cutoff - buys.groupby(C.user)[C.timestamp].max()).dt.days,
        likes=likes.reset_index(drop=True),
    )


def combine(parts: list[UserSide]) -> UserSide:
    """One UserSide from those of disjoint sets of users, ordered as if computed at once."""
    series = lambda name: pd.concat([getattr(p, name) for p in parts]).sort_index()  # noqa: E731
    pairs = pd.concat([p.pairs for p in parts], ignore_index=True)
    likes = pd.concat([p.likes for p in parts], ignore_index=True)
    return UserSide(
        pairs=pairs.sort_values([C.user, C.item], kind="stable", ignore_index=True),
        activity=series("activity"),
        spend=series("spend"),
        orders=series("orders"),
        recency=series("recency"),
        likes=likes.sort_values(
            [C.user, "share", "category"], ascending=[True, False, True], ignore_index=True
        ),
    )


def partition_by_user(events: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """``n`` disjoint parts of ``events``, each holding all events of its users (by a
    stable hash of the user id, so the same user lands in the same part every run)."""
    part = pd.util.hash_pandas_object(events[C.user], index=False).to_numpy() % n
    return [events[part == k] for k in range(n)]


def user_tokens(
    users: pd.DataFrame, side: UserSide, cutoff: pd.Timestamp, cfg: FeatureConfig
) -> pd.DataFrame:
    """Attribute, tenure, RFM-style and preferred-category tokens per user.

    Attributes are every users column besides the id; RFM bands are quantiles over the
    users who bought in the training window; a user with no purchases gets ``buyer=no``.
    """
    parts = []
    for col in users.columns:
        if col in (C.user, C.signup_date):
            continue
        has = users[col].notna()
        parts.append(_long(users.loc[has, C.user], col + "=" + users.loc[has, col].astype(str)))
    if C.signup_date in users:
        signup = pd.to_datetime(users[C.signup_date])
        months = (cutoff - signup).dt.days / 30.4
        tenure = pd.cut(
            months, [-np.inf, 3, 12, 24, np.inf], labels=["<3m", "3-12m", "1-2y", "2y+"]
        )
        has = tenure.notna() & (months >= 0)
        parts.append(_long(users.loc[has, C.user], "tenure=" + tenure[has].astype(str)))

    activity = side.activity
    parts.append(
        _long(
            activity.index.to_series(),
            "activity=" + _bands(activity, cfg.n_activity_bands).astype(str),
        )
    )
    buyers = side.spend.index.to_series()
    parts.append(_long(buyers, "spend=" + _bands(side.spend, cfg.n_spend_bands).astype(str)))
    parts.append(_long(buyers, "orders=" + _bands(side.orders, cfg.n_activity_bands).astype(str)))
    parts.append(
        _long(buyers, "recency=" + _bands(-side.recency, cfg.n_activity_bands).astype(str))
    )
    non_buyers = users.loc[~users[C.user].isin(buyers), C.user]
    parts.append(_long(non_buyers, pd.Series("buyer=no", index=non_buyers.index)))
    if cfg.n_preferred_categories:
        top = side.likes
        parts.append(
            _long(
                top[C.user],
                "likes=" + top["category"].astype(str),
                top["share"] * cfg.n_preferred_categories,
            )
        )

    tokens = pd.concat(parts, ignore_index=True)
    tokens[C.weight] *= cfg.user_feature_weight
    return tokens


def title_words(ids: pd.Series, titles: pd.Series, vocabulary: int) -> pd.DataFrame:
    """Title words as ``word=<w>`` tokens, so items a sparse catalogue sells rarely share
    signal with the words they have in common: runs of 3+ letters, lower-cased; only the
    ``vocabulary`` words found in the most titles (in at least 2, at most half of them:
    a word every item has tells nothing); an item's words share a weight of 1."""
    words = titles.fillna("").astype(str).str.lower().str.findall(WORD)
    long = pd.DataFrame({ID: ids.to_numpy(), "word": words.to_numpy()}).explode("word")
    long = long.dropna().drop_duplicates()
    if long.empty:
        return _long(pd.Series([], dtype=object), pd.Series([], dtype=object))
    df = long["word"].value_counts()
    df = df[(df >= 2) & (df <= 0.5 * len(ids))]
    kept = df.sort_index().sort_values(ascending=False, kind="stable").head(vocabulary).index
    long = long[long["word"].isin(set(kept))]
    share = 1.0 / long.groupby(ID)["word"].transform("size")
    return _long(long[ID], "word=" + long["word"], share)


def title_similarity(
    items: pd.DataFrame,
    item_ids: np.ndarray,
    vocabulary: int,
    per_item: int = 50,
    chunk: int = 2_000,
) -> sp.csr_matrix:
    """(items, items) in ``item_ids``' order: the cosine of two items' title words
    (:func:`title_words`, the ``vocabulary`` commonest), each word weighed by its inverse
    document frequency; the ``per_item`` most similar kept per item (all zeros without
    titles). What relates two products no session has shown together yet: the same line
    in another colour, a new arrival to its range. Computed ``chunk`` items at a time: a
    word a thousand titles share is a million pairs."""
    n = len(item_ids)
    if C.title not in items or not vocabulary:
        return sp.csr_matrix((n, n), dtype=np.float32)
    titles = items.drop_duplicates(C.item).set_index(C.item)[C.title].reindex(item_ids)
    words = title_words(pd.Series(np.arange(n)), titles.reset_index(drop=True), vocabulary)
    if words.empty:
        return sp.csr_matrix((n, n), dtype=np.float32)
    code, vocab = pd.factorize(words[TOKEN])
    w = sp.csr_matrix(
        (np.ones(len(words)), (words[ID].to_numpy(np.int64), code)), shape=(n, len(vocab))
    )
    w = w @ sp.diags(np.log(n / np.asarray(w.sum(axis=0)).ravel()))
    norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=1)).ravel())
    w = (sp.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ w).tocsr()
    parts = []
    for lo in range(0, n, chunk):
        sim = (w[lo : lo + chunk] @ w.T).tocsr()
        sim.setdiag(0.0, k=lo)  # an item is not its own neighbour
        sim.eliminate_zeros()
        parts.append(top_per_row(sim, per_item))
    return sp.vstack(parts).tocsr().astype(np.float32)


def item_tokens(items: pd.DataFrame, popularity: pd.Series, cfg: FeatureConfig) -> pd.DataFrame:
    """Category, brand, price band within the category, popularity band, every other
    column of the items table and the title's words per item.

    ``popularity`` is the decayed training weight per item id; items without any get no
    popularity band: a new arrival is known by what it is, not by a "never bought" token
    the model could only learn to push down.
    """
    parts = [
        _long(items[C.item], "category=" + items[C.category].astype(str)),
        _long(items[C.item], "brand=" + items[C.brand].astype(str)),
    ]
    names = PRICE_BAND_NAMES.get(cfg.n_price_bands)
    band = (
        items.groupby(C.category)[C.price]
        .transform(lambda p: pd.Series(_bands(p, cfg.n_price_bands), index=p.index))
        .astype(int)
    )
    label = band.map(dict(enumerate(names, start=1))) if names else band.astype(str)
    parts.append(_long(items[C.item], "price=" + label.astype(str)))
    pop = items[C.item].map(popularity).fillna(0.0)
    seen = pop > 0
    pop_band = pd.Series(
        _bands(pop[seen], cfg.n_popularity_bands).astype(str), index=pop[seen].index
    )
    parts.append(_long(items.loc[seen, C.item], "popularity=" + pop_band))
    for col in items.columns:
        if col in CATALOGUE_COLUMNS:
            continue
        value = items[col].astype("string").str.strip()
        has = value.notna() & (value != "")
        parts.append(_long(items.loc[has, C.item], col + "=" + value[has].astype(str)))
    if cfg.title_words and C.title in items:
        parts.append(title_words(items[C.item], items[C.title], cfg.title_words))
    tokens = pd.concat(parts, ignore_index=True)
    tokens[C.weight] *= cfg.item_feature_weight
    return tokens


def encode(
    tokens: pd.DataFrame,
    ids: np.ndarray,
    feature_map: dict[str, int],
    identity: np.ndarray | None,
    n_features: int,
) -> sp.csr_matrix:
    """Feature matrix (len(ids), n_features) from tokens; rows normalised to sum 1.

    ``identity`` gives each row's identity-feature column, or -1 for no identity (a
    cold user or item, represented by its metadata alone). Unknown tokens are ignored.
    """
    row = IdMap(ids).positions(tokens[ID])
    col = tokens[TOKEN].map(feature_map)
    keep = (row >= 0) & col.notna().to_numpy() & (tokens[C.weight] > 0).to_numpy()
    rows = [row[keep].astype(np.int64)]
    cols = [col[keep].to_numpy(dtype=np.int64)]
    vals = [tokens.loc[keep, C.weight].to_numpy(dtype=np.float32)]
    if identity is not None:
        has = identity >= 0
        rows.append(np.flatnonzero(has))
        cols.append(identity[has].astype(np.int64))
        vals.append(np.ones(int(has.sum()), dtype=np.float32))
    mat = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(ids), n_features),
        dtype=np.float32,
    )
    sums = np.asarray(mat.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums).astype(np.float32) @ mat)


def build(
    events: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    cfg: FeatureConfig,
    side: UserSide | None = None,
) -> FeatureSet:
    """Split, weight and featurise; fit LightFM's ``Dataset`` maps over the whole catalogue
    and every known user, so cold users and items have rows of their own.

    ``side``: the training window's per-user results when computed elsewhere (per
    partition, :func:`combine`); computed here otherwise."""
    split = temporal_split(events, cfg.holdout_days)
    if side is None:
        side = user_side(split.train, items, split.cutoff, cfg)
    pairs = side.pairs
    popularity = pairs.groupby(C.item)[C.weight].sum()
    u_tokens = user_tokens(users, side, split.cutoff, cfg)
    i_tokens = item_tokens(items, popularity, cfg)

    user_ids = np.asarray(sorted(set(users[C.user]) | set(events[C.user])), dtype=object)
    item_ids = items[C.item].to_numpy(dtype=object)
    dataset = Dataset()
    dataset.fit(
        users=user_ids,
        items=item_ids,
        user_features=sorted(u_tokens[TOKEN].unique()),
        item_features=sorted(i_tokens[TOKEN].unique()),
    )
    user_map, user_fmap, item_map, item_fmap = dataset.mapping()
    n_u, n_i = len(user_map), len(item_map)
    u = pairs[C.user].map(user_map).to_numpy(dtype=np.int32)
    i = pairs[C.item].map(item_map).to_numpy(dtype=np.int32)
    w = pairs[C.weight].to_numpy(dtype=np.float32)
    weights = sp.coo_matrix((w, (u, i)), shape=(n_u, n_i))
    interactions = sp.coo_matrix((np.ones_like(w), (u, i)), shape=(n_u, n_i))

    warm_users = np.zeros(n_u, bool)
    warm_users[u] = True
    warm_items = np.zeros(n_i, bool)
    warm_items[i] = True
    user_ids_ordered = np.asarray(list(user_map), dtype=object)
    user_identity = np.where(warm_users, np.arange(n_u), -1)  # identity features come first
    item_identity = np.where(warm_items, np.arange(n_i), -1)
    user_features = encode(u_tokens, user_ids_ordered, user_fmap, user_identity, len(user_fmap))
    item_features = encode(i_tokens, item_ids, item_fmap, item_identity, len(item_fmap))
    item_trend, newcomer_trend = trends(split.train, item_ids, split.cutoff, cfg)
    all_users = pd.DataFrame({C.user: user_ids_ordered}).merge(users, on=C.user, how="left")
    return FeatureSet(
        dataset=dataset,
        interactions=interactions,
        weights=weights,
        user_features=user_features,
        item_features=item_features,
        user_tokens=u_tokens,
        item_tokens=i_tokens,
        split=split,
        items=items.reset_index(drop=True),
        users=all_users,
        item_weight=items[C.item].map(popularity).fillna(0.0).to_numpy(),
        item_trend=item_trend,
        newcomer_trend=newcomer_trend,
    )
