"""The embedded default shop: a seeded, realistic dataset in the contract.

What is planted, so a model has something to learn and tests know the right answers:

- categories come in families whose members complement each other (a coffee machine
  raises the odds of coffee beans and a milk frother in the same order);
- every category has a price ladder of budget / mid / premium brands (substitutes), and
  customers have a price-tier preference, so upsell has real pricier alternatives;
- item popularity is Zipf within a category; customers belong to segments that drive
  both their attributes (age band, region) and their category tastes, so attributes
  predict taste for cold-start users;
- sessions go view -> add_to_cart -> purchase; some views move up the ladder before the
  purchase (the upsell pattern); consumables are bought again (repeat purchases);
- customers who sign up and items launched in the last ``cold_days`` only appear then.

Everything is vectorised over sessions; loops run over categories and tiers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from models.config import ShopConfig
from models.data.columns import Columns

C = Columns

# Families of mutually complementary categories, with a typical mid-tier price (GBP).
FAMILIES: tuple[tuple[tuple[str, float], ...], ...] = (
    (("coffee machines", 240.0), ("coffee beans", 12.0), ("milk frothers", 45.0)),
    (("laptops", 900.0), ("laptop bags", 45.0), ("computer mice", 30.0)),
    (("cameras", 650.0), ("memory cards", 25.0), ("tripods", 60.0)),
    (("running shoes", 110.0), ("sports socks", 12.0), ("fitness trackers", 120.0)),
    (("smartphones", 600.0), ("phone cases", 20.0), ("chargers", 25.0)),
    (("tents", 250.0), ("sleeping bags", 90.0), ("camping stoves", 55.0)),
    (("dog food", 35.0), ("dog toys", 12.0), ("dog beds", 60.0)),
    (("printers", 180.0), ("printer ink", 30.0), ("printer paper", 9.0)),
    (("yoga mats", 35.0), ("yoga blocks", 15.0), ("water bottles", 18.0)),
    (("headphones", 150.0), ("portable speakers", 90.0), ("audio cables", 10.0)),
    (("kitchen knives", 70.0), ("cutting boards", 30.0), ("knife sharpeners", 25.0)),
    (("bicycles", 700.0), ("bike helmets", 60.0), ("bike lights", 30.0)),
    (("strollers", 400.0), ("baby bottles", 15.0), ("diapers", 20.0)),
    (("game consoles", 450.0), ("video games", 55.0), ("game controllers", 60.0)),
    (("skincare", 28.0), ("sunscreen", 15.0), ("makeup brushes", 22.0)),
    (("board games", 35.0), ("puzzles", 20.0), ("card games", 12.0)),
)
CONSUMABLES = frozenset(
    {
        "coffee beans",
        "dog food",
        "printer ink",
        "printer paper",
        "diapers",
        "sunscreen",
        "sports socks",
        "baby bottles",
        "skincare",
    }
)
TIERS = ("budget", "mid", "premium")
TIER_PRICE = np.array([0.55, 1.0, 1.9])
TIER_MARGIN = np.array([0.12, 0.22, 0.34])
TIER_SHARE = np.array([0.40, 0.35, 0.25])
# How much a customer preferring tier row likes an item of tier column.
TIER_MATCH = np.array([[1.0, 0.2, 0.03], [0.2, 1.0, 0.2], [0.03, 0.2, 1.0]])
# A customer's favourite of the two brands at each tier weighs this much more.
BRAND_LOYALTY = 3.0
REGIONS = ("north", "south", "east", "west", "midlands", "scotland", "wales", "london")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
SYLLABLES = (
    "nor",
    "vik",
    "al",
    "pe",
    "na",
    "lu",
    "ma",
    "ro",
    "ka",
    "ze",
    "ti",
    "so",
    "bre",
    "ox",
    "qu",
    "in",
    "da",
    "fe",
    "lo",
    "mi",
    "sa",
    "tor",
    "ve",
    "ra",
)
N_SEGMENTS = 8
LAUNCH = "Launch"  # the category of the new line in shift()

P_REPLENISH, P_CART, P_UPSELL, P_PURCHASE, P_COMPLEMENT = 0.12, 0.42, 0.3, 0.68, 0.55


@dataclass
class Shop:
    """The three contract tables of a generated shop."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame


def _brand_names(rng: np.random.Generator, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        parts = rng.choice(SYLLABLES, size=rng.integers(2, 4))
        names.add("".join(parts).capitalize())
    return sorted(names)


def _categories(n: int) -> pd.DataFrame:
    """The first ``n`` categories, with family, base price and complements."""
    rows = [
        (name, fam, price, name in CONSUMABLES)
        for fam, members in enumerate(FAMILIES)
        for name, price in members
    ][:n]
    cats = pd.DataFrame(rows, columns=["category", "family", "base_price", "consumable"])
    return cats


def _sample_rows(rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per row from the categorical distribution ``cdf[rows]`` (inverse CDF)."""
    u = rng.random(len(rows))[:, None]
    return (u > cdf[rows]).sum(axis=1)


def _make_items(
    cfg: ShopConfig,
    rng: np.random.Generator,
    cats: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    n_cat = len(cats)
    share = rng.dirichlet(np.full(n_cat, 8.0))
    per_cat = np.maximum(np.round(share * cfg.n_items).astype(int), 6)
    per_cat[np.argmax(per_cat)] += cfg.n_items - per_cat.sum()
    category = np.repeat(np.arange(n_cat), per_cat)
    n = len(category)
    tier = rng.choice(3, size=n, p=TIER_SHARE)
    fam = cats["family"].to_numpy()[category]
    brands = _brand_names(rng, 6 * (fam.max() + 1))
    # Two brands per tier per family: brand identity carries the price tier.
    parity = rng.integers(0, 2, size=n)
    brand_idx = fam * 6 + tier * 2 + parity
    price = cats["base_price"].to_numpy()[category] * TIER_PRICE[tier] * rng.lognormal(0, 0.12, n)
    margin = np.clip(TIER_MARGIN[tier] + rng.normal(0, 0.03, n), 0.02, 0.6)
    # Zipf popularity within each category, on a random order of its items.
    rank = np.empty(n)
    for c in range(n_cat):
        idx = np.flatnonzero(category == c)
        rank[idx] = rng.permutation(len(idx)) + 1
    popularity = rank**-0.9
    cold = rng.random(n) < 0.06
    launch = np.where(
        cold,
        (end - pd.Timedelta(days=cfg.cold_days)).value
        + rng.random(n) * (pd.Timedelta(days=cfg.cold_days - 3).value),
        start.value,
    ).astype("int64")
    popularity = np.where(cold, popularity * 4.0 + 0.3, popularity)
    model_no = rng.integers(100, 999, size=n)
    names = cats["category"].to_numpy()[category]
    return pd.DataFrame(
        {
            C.item: [f"i{idx:06d}" for idx in range(n)],
            C.title: [
                f"{brands[b]} {nm.rstrip('s')} {m}"
                for b, nm, m in zip(brand_idx, names, model_no, strict=True)
            ],
            C.category: names,
            C.brand: np.asarray(brands, dtype=object)[brand_idx],
            C.price: np.round(price, 2),
            C.in_stock: rng.random(n) > 0.04,
            C.margin: np.round(margin, 3),
            "_category": category,
            "_tier": tier,
            "_brand_parity": parity,
            "_popularity": popularity,
            "_launch": pd.to_datetime(launch),
        }
    )


def _make_users(
    cfg: ShopConfig,
    rng: np.random.Generator,
    cats: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    n, n_cat = cfg.n_users, len(cats)
    n_fam = cats["family"].max() + 1
    segment = rng.integers(0, N_SEGMENTS, size=n)
    # Each segment loves two or three families, and has its own age and price profile.
    seg_fam = np.full((N_SEGMENTS, n_fam), 0.02)
    for s in range(N_SEGMENTS):
        seg_fam[s, rng.choice(n_fam, size=min(n_fam, 2 + s % 2), replace=False)] = 1.0
    seg_cat = seg_fam[:, cats["family"].to_numpy()] * rng.uniform(0.5, 1.5, (N_SEGMENTS, n_cat))
    seg_cat /= seg_cat.sum(axis=1, keepdims=True)
    personal = rng.dirichlet(np.full(n_cat, 0.1), size=n)
    affinity = 0.5 * seg_cat[segment] + 0.5 * personal
    seg_age = rng.dirichlet(np.full(len(AGE_BANDS), 0.4), size=N_SEGMENTS)
    seg_region = rng.dirichlet(np.full(len(REGIONS), 1.0), size=N_SEGMENTS)
    seg_tier = rng.dirichlet(np.full(3, 0.6), size=N_SEGMENTS)
    age = _sample_rows(rng, np.cumsum(seg_age, axis=1), segment)
    region = _sample_rows(rng, np.cumsum(seg_region, axis=1), segment)
    tier = _sample_rows(rng, np.cumsum(seg_tier, axis=1), segment)
    cold = rng.random(n) < 0.08
    span = (end - start - pd.Timedelta(days=cfg.cold_days)).value
    signup = np.where(
        cold,
        (end - pd.Timedelta(days=cfg.cold_days)).value
        + rng.random(n) * pd.Timedelta(days=cfg.cold_days - 2).value,
        start.value
        - rng.random(n) * pd.Timedelta(days=730).value
        + rng.random(n) * span * (rng.random(n) < 0.3),
    ).astype("int64")
    return pd.DataFrame(
        {
            C.user: [f"u{idx:06d}" for idx in range(n)],
            C.region: np.asarray(REGIONS, dtype=object)[region],
            C.age_band: np.asarray(AGE_BANDS, dtype=object)[age],
            C.signup_date: pd.to_datetime(signup).normalize(),
            # Taste: price tier and which of the tier's two brands the customer prefers.
            "_taste": tier * 2 + rng.integers(0, 2, size=n),
            "_activity": rng.lognormal(0, 0.8, n),
            "_affinity": list(affinity),
        }
    )


def _complement_of(
    cats: pd.DataFrame, category: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A random other member of each category's family (itself in a family of one)."""
    fam = cats["family"].to_numpy()
    same = (fam[:, None] == fam[None, :]) & ~np.eye(len(fam), dtype=bool)
    same[same.sum(axis=1) == 0] = np.eye(len(fam), dtype=bool)[same.sum(axis=1) == 0]
    cdf = np.cumsum(same / same.sum(axis=1, keepdims=True), axis=1)
    return _sample_rows(rng, cdf, category)


class _ItemSampler:
    """Draws items of a category for customers of a taste, respecting launch dates."""

    def __init__(self, items: pd.DataFrame, n_cat: int, rng: np.random.Generator):
        self.rng = rng
        self.items = items
        cat = items["_category"].to_numpy()
        tier = items["_tier"].to_numpy()
        pop = items["_popularity"].to_numpy()
        self.members: dict[int, np.ndarray] = {}
        parity = items["_brand_parity"].to_numpy()
        self.cdf: dict[tuple[int, int], np.ndarray] = {}
        for c in range(n_cat):
            idx = np.flatnonzero(cat == c)
            self.members[c] = idx
            for taste in range(6):
                loyal = np.where(parity[idx] == taste % 2, BRAND_LOYALTY, 1.0)
                w = pop[idx] * TIER_MATCH[taste // 2, tier[idx]] * loyal
                self.cdf[c, taste] = np.cumsum(w) / w.sum()
        self.launch = items["_launch"].to_numpy().astype("int64")

    def draw(self, category: np.ndarray, taste: np.ndarray, when: np.ndarray) -> np.ndarray:
        """Item index per row; an item not launched yet is redrawn, then replaced by the
        category's most popular established item."""
        out = np.empty(len(category), dtype=np.int64)
        for (c, t), cdf in self.cdf.items():
            rows = np.flatnonzero((category == c) & (taste == t))
            if rows.size:
                pick = np.searchsorted(cdf, self.rng.random(rows.size), side="right")
                out[rows] = self.members[c][np.minimum(pick, len(cdf) - 1)]
        early = self.launch[out] > when
        if early.any():
            rows = np.flatnonzero(early)
            again = self.draw(
                category[rows], taste[rows], np.full(rows.size, np.iinfo(np.int64).max)
            )
            still = self.launch[again] > when[rows]
            fallback = self.items.loc[self.items["_launch"] <= self.items["_launch"].min()]
            top = fallback.sort_values("_popularity", ascending=False).groupby("_category").head(1)
            top_by_cat = pd.Series(top.index.to_numpy(), index=top["_category"].to_numpy())
            again[still] = top_by_cat.reindex(category[rows][still]).to_numpy()
            out[rows] = again
        return out


@dataclass
class _World:
    """What the generator knows and a model must learn: the catalogue and customers with
    their hidden tastes, the sessions drawn for them, and each customer's favourite
    consumable. Drawn before any event, so :func:`purchase_odds` reads the same world."""

    rng: np.random.Generator
    end: pd.Timestamp
    cats: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    sampler: _ItemSampler
    affinity: np.ndarray  # (n_users, n_categories) category tastes, rows sum to 1
    s_user: np.ndarray  # per session: the customer
    s_time: np.ndarray  # per session: when (ns)
    s_cat: np.ndarray  # per session: the category browsed
    has_cons: np.ndarray  # per customer: likes some consumable enough to replenish it
    fav_item: np.ndarray  # per customer: the consumable replenished


def _world(cfg: ShopConfig) -> _World:
    rng = np.random.default_rng(cfg.seed)
    end = pd.Timestamp(cfg.end_date) + pd.Timedelta(hours=23, minutes=59)
    start = end - pd.Timedelta(days=cfg.days)
    cats = _categories(cfg.n_categories)
    items = _make_items(cfg, rng, cats, start, end)
    users = _make_users(cfg, rng, cats, start, end)
    sampler = _ItemSampler(items, len(cats), rng)

    # Sessions: count per customer from activity and the days the customer was around.
    first = np.maximum(users[C.signup_date].to_numpy().astype("int64"), start.value)
    active_share = (end.value - first) / (end.value - start.value)
    lam = cfg.sessions_per_user * users["_activity"].to_numpy() * active_share
    n_sess = rng.poisson(lam)
    s_user = np.repeat(np.arange(len(users)), n_sess)
    s_time = first[s_user] + (rng.random(s_user.size) * (end.value - first[s_user])).astype("int64")
    affinity = np.vstack(list(users["_affinity"]))
    s_cat = _sample_rows(rng, np.cumsum(affinity, axis=1), s_user)

    # Each customer's favourite consumable, re-bought in replenishment sessions.
    cons_aff = affinity * cats["consumable"].to_numpy()
    has_cons = cons_aff.sum(axis=1) > 0.05
    fav_cat = _sample_rows(
        rng,
        np.cumsum(cons_aff / np.maximum(cons_aff.sum(1, keepdims=True), 1e-12), axis=1),
        np.arange(len(users)),
    )
    fav_cat = np.minimum(fav_cat, len(cats) - 1)
    fav_item = sampler.draw(fav_cat, users["_taste"].to_numpy(), np.full(len(users), end.value))
    return _World(
        rng, end, cats, items, users, sampler, affinity, s_user, s_time, s_cat, has_cons, fav_item
    )


def generate(cfg: ShopConfig) -> Shop:
    """Generate the default shop described by ``cfg`` (same config, same bytes)."""
    w = _world(cfg)
    rng, end, cats, items, users, sampler = w.rng, w.end, w.cats, w.items, w.users, w.sampler
    s_user, s_time, s_cat, fav_item = w.s_user, w.s_time, w.s_cat, w.fav_item
    s_taste = users["_taste"].to_numpy()[s_user]
    n_s = s_user.size

    events: list[tuple[np.ndarray, np.ndarray, str, np.ndarray, np.ndarray]] = []

    def add(
        sess: np.ndarray,
        item: np.ndarray,
        kind: str,
        offset_s: np.ndarray,
        qty: np.ndarray | None = None,
    ):
        events.append(
            (sess, item, kind, offset_s, np.ones(sess.size, np.int64) if qty is None else qty)
        )

    # Replenishment sessions: a customer re-buys a favourite consumable.
    replenish = (
        (rng.random(n_s) < P_REPLENISH)
        & w.has_cons[s_user]
        & (sampler.launch[fav_item[s_user]] <= s_time)
    )
    rs = np.flatnonzero(replenish)
    r_item = fav_item[s_user[rs]]
    add(rs, r_item, "view", np.zeros(rs.size, np.int64))
    qty = rng.integers(1, 4, rs.size)
    add(rs, r_item, "add_to_cart", np.full(rs.size, 40), qty)
    add(rs, r_item, "purchase", np.full(rs.size, 120), qty)

    # Browsing sessions: a few views in one category.
    bs = np.flatnonzero(~replenish)
    n_views = 1 + rng.poisson(1.6, bs.size)
    v_sess = np.repeat(bs, n_views)
    v_pos = np.arange(v_sess.size) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    v_item = sampler.draw(s_cat[v_sess], s_taste[v_sess], s_time[v_sess])
    add(v_sess, v_item, "view", v_pos * 45)
    last_view = v_item[np.cumsum(n_views) - 1]
    carted = rng.random(bs.size) < P_CART
    cs = bs[carted]
    c_item = last_view[carted]
    # Upsell: look one tier up the ladder and take that one instead.
    up = (rng.random(cs.size) < P_UPSELL) & (s_taste[cs] < 4)
    if up.any():
        up_item = sampler.draw(s_cat[cs[up]], s_taste[cs[up]] + 2, s_time[cs[up]])
        pricier = items[C.price].to_numpy()[up_item] > items[C.price].to_numpy()[c_item[up]]
        rows = np.flatnonzero(up)[pricier]
        add(cs[rows], up_item[pricier], "view", (n_views[carted][rows]) * 45)
        c_item[rows] = up_item[pricier]
    add(cs, c_item, "add_to_cart", n_views[carted] * 45 + 60)
    bought = rng.random(cs.size) < P_PURCHASE
    ps = cs[bought]
    p_item = c_item[bought]
    # Complements: the basket grows into the purchased category's family.
    comp = rng.random(ps.size) < P_COMPLEMENT
    ks = ps[comp]
    k_cat = _complement_of(cats, s_cat[ks], rng)
    k_item = sampler.draw(k_cat, s_taste[ks], s_time[ks])
    base = n_views[carted][bought][comp] * 45 + 90
    add(ks, k_item, "view", base)
    add(ks, k_item, "add_to_cart", base + 30)
    add(ps, p_item, "purchase", n_views[carted][bought] * 45 + 300)
    add(ks, k_item, "purchase", base + 210)

    sess = np.concatenate([e[0] for e in events])
    item = np.concatenate([e[1] for e in events])
    kind = np.concatenate([np.full(e[0].size, e[2], dtype=object) for e in events])
    when = s_time[sess] + np.concatenate([e[3] for e in events]).astype("int64") * 1_000_000_000
    qty_all = np.concatenate([e[4] for e in events])
    order = pd.Series("o" + pd.Series(sess).astype(str)).where(kind == "purchase").to_numpy()
    frame = pd.DataFrame(
        {
            C.user: users[C.user].to_numpy()[s_user[sess]],
            C.item: items[C.item].to_numpy()[item],
            C.event: kind,
            C.timestamp: pd.to_datetime(np.minimum(when, end.value)).floor("s"),
            C.quantity: qty_all,
            C.price: items[C.price].to_numpy()[item],
            C.order: order,
        }
    )
    frame = frame.sort_values([C.timestamp, C.user, C.event], kind="stable").reset_index(drop=True)
    public_items = items[[C.item, C.title, C.category, C.brand, C.price, C.in_stock, C.margin]]
    public_users = users[[C.user, C.region, C.age_band, C.signup_date]].copy()
    public_users[C.signup_date] = public_users[C.signup_date].dt.date
    return Shop(events=frame, items=public_items, users=public_users)


@dataclass
class PurchaseOdds:
    """The generator's own odds that a customer's next session ends in each purchase,
    from the hidden tastes no model sees: ranking by them on a holdout scores the ceiling
    any model can reach on this shop (``benchmarks/ceiling.py``). Upsell's pricier redraw
    is taken as always pricier and launch dates are ignored: close, not exact."""

    world: _World

    @property
    def user_ids(self) -> np.ndarray:
        """The generated customers' ids, in the order :meth:`odds` takes positions in."""
        return self.world.users[C.user].to_numpy()

    @property
    def item_ids(self) -> np.ndarray:
        """The generated items' ids, in the order of :meth:`odds`'s columns."""
        return self.world.items[C.item].to_numpy()

    def odds(
        self, users: np.ndarray, favourite_known: np.ndarray, habits: bool = True
    ) -> np.ndarray:
        """(len(users), n_items) purchase odds of the customers at positions ``users``.
        Where ``favourite_known`` is True, the consumable a customer replenishes is their
        own favourite (what a model can know once they bought it); elsewhere it may be
        any consumable they like, by how much they like it. Without ``habits``: the odds
        of a browsing session only (what a customer is open to; replenishing is a habit
        no list changes)."""
        w = self.world
        taste = w.users["_taste"].to_numpy()[users]
        affinity = w.affinity[users]
        family = w.cats["family"].to_numpy()
        sibling = (family[:, None] == family[None, :]) & ~np.eye(len(family), dtype=bool)
        alone = np.flatnonzero(sibling.sum(axis=1) == 0)
        sibling[alone, alone] = True  # a family of one complements itself, as generate()
        complement = sibling / sibling.sum(axis=1, keepdims=True)
        liked = affinity * w.cats["consumable"].to_numpy()
        liked /= np.maximum(liked.sum(axis=1, keepdims=True), 1e-12)
        out = np.zeros((len(users), len(w.items)))
        for t in np.unique(taste):
            rows = np.flatnonzero(taste == t)
            at = self._per_item[:, t]  # (n_categories, n_items): an item given its category
            seen = affinity[rows] @ at
            if t < 4:  # looked one tier up the ladder and took that one instead
                seen = (1 - P_UPSELL) * seen + P_UPSELL * (
                    affinity[rows] @ self._per_item[:, t + 2]
                )
            grown = (affinity[rows] @ complement) @ at  # the basket grew into the family
            browse = P_CART * P_PURCHASE * (seen + P_COMPLEMENT * grown)
            refill = liked[rows] @ at
            own = np.flatnonzero(favourite_known[rows])
            refill[own] = 0.0
            refill[own, w.fav_item[users[rows[own]]]] = 1.0
            cons = w.has_cons[users[rows]][:, None] & habits
            out[rows] = np.where(cons, (1 - P_REPLENISH) * browse + P_REPLENISH * refill, browse)
        return out

    @cached_property
    def _per_item(self) -> np.ndarray:
        """(n_categories, n_tastes, n_items): the odds of drawing an item of a category
        for a customer of a taste."""
        w = self.world
        out = np.zeros((len(w.cats), 6, len(w.items)))
        for (c, t), cdf in w.sampler.cdf.items():
            out[c, t, w.sampler.members[c]] = np.diff(cdf, prepend=0.0)
        return out


def purchase_odds(cfg: ShopConfig) -> PurchaseOdds:
    """The purchase odds of the shop :func:`generate` makes from ``cfg``."""
    return PurchaseOdds(_world(cfg))


def describe(shop: Shop) -> dict[str, float]:
    """Headline figures of a generated shop, for logs and tests."""
    ev = shop.events
    purchases = ev[ev[C.event] == "purchase"]
    return {
        "events": float(len(ev)),
        "users": float(ev[C.user].nunique()),
        "items": float(len(shop.items)),
        "categories": float(shop.items[C.category].nunique()),
        "purchases": float(len(purchases)),
        "orders": float(purchases[C.order].nunique()),
    }


def shift(
    shop: Shop,
    start: pd.Timestamp,
    seed: int,
    launch_share: float = 0.25,
    price_rise: float = 1.3,
) -> Shop:
    """The shop after ``start`` with a market shift: a new category launches and takes
    ``launch_share`` of the traffic (its products never seen before), and one existing
    category's prices rise by ``price_rise``. For drift tests and the drift demo."""
    rng = np.random.default_rng(seed)
    events, items = shop.events.copy(), shop.items.copy()
    after = np.flatnonzero((events[C.timestamp] >= start).to_numpy())
    moved = after[rng.random(len(after)) < launch_share]
    # The launch: copies of the moved events' products under new ids, in a new category,
    # priced like the shop's premium tier.
    originals = events[C.item].to_numpy()[moved]
    launched = items[items[C.item].isin(set(originals))].copy()
    launched[C.item] = "launch-" + launched[C.item].astype(str)
    launched[C.category] = LAUNCH
    launched[C.price] = (launched[C.price] * 1.8).round(2)
    new_price = launched.set_index(C.item)[C.price]
    events.loc[moved, C.item] = "launch-" + events[C.item].to_numpy()[moved].astype(str)
    events.loc[moved, C.price] = new_price.reindex(events.loc[moved, C.item]).to_numpy()
    # The price rise, in the category with the most events after start.
    category = events[C.item].map(items.set_index(C.item)[C.category])
    risen = category.iloc[after].value_counts().index[0]
    hit = (category == risen).to_numpy() & (events[C.timestamp] >= start).to_numpy()
    events.loc[hit, C.price] = (events.loc[hit, C.price] * price_rise).round(2)
    return Shop(
        events=events, items=pd.concat([items, launched], ignore_index=True), users=shop.users
    )
