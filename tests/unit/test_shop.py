"""The embedded default shop has the structure it promises."""

import numpy as np
import pandas as pd
import pytest

from models.config import ShopConfig
from models.data.shop import CONSUMABLES, FAMILIES, generate
from tests.conftest import TINY_SHOP


@pytest.fixture(scope="module")
def default_shop():
    return generate(ShopConfig())


def test_same_seed_same_shop(tiny_shop):
    again = generate(TINY_SHOP)
    pd.testing.assert_frame_equal(tiny_shop.events, again.events)
    pd.testing.assert_frame_equal(tiny_shop.items, again.items)
    other = generate(TINY_SHOP.model_copy(update={"seed": 8}))
    assert not other.events.equals(tiny_shop.events)


def test_default_sizes(default_shop):
    assert len(default_shop.users) >= 5_000
    assert len(default_shop.items) >= 2_000
    assert default_shop.items["category"].nunique() >= 20
    assert set(default_shop.users.columns) >= {"region", "age_band", "signup_date"}
    ev = default_shop.events
    assert set(ev["event_type"]) == {"view", "add_to_cart", "purchase"}
    span = ev["timestamp"].max() - ev["timestamp"].min()
    assert 170 <= span.days <= 185


def test_price_ladders_within_categories(default_shop):
    items = default_shop.items
    spread = items.groupby("category")["price"].agg(lambda p: p.quantile(0.9) / p.quantile(0.1))
    assert (spread > 2.0).all()  # budget, mid and premium substitutes in every category
    assert (items.groupby("category")["brand"].nunique() >= 4).all()


def test_planted_complements_have_lift(default_shop):
    ev = default_shop.events
    buys = ev[ev["event_type"] == "purchase"].merge(default_shop.items[["item_id", "category"]])
    baskets = buys.groupby("order_id")["category"].apply(set)
    machine, beans = FAMILIES[0][0][0], FAMILIES[0][1][0]
    with_machine = baskets[baskets.map(lambda s: machine in s)]
    p_beans = baskets.map(lambda s: beans in s).mean()
    p_beans_given_machine = with_machine.map(lambda s: beans in s).mean()
    assert p_beans_given_machine / p_beans > 5


def test_zipf_popularity_and_repeat_purchases(default_shop):
    ev = default_shop.events
    counts = ev.groupby("item_id").size().sort_values(ascending=False).to_numpy()
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.3  # the top 10% of items draw far more than 10% of events
    buys = ev[ev["event_type"] == "purchase"].merge(default_shop.items[["item_id", "category"]])
    repeats = buys.groupby(["user_id", "item_id"]).size()
    assert (repeats > 1).sum() > 500
    repeated_items = (
        repeats[repeats > 1].reset_index().merge(default_shop.items[["item_id", "category"]])
    )
    assert repeated_items["category"].isin(CONSUMABLES).mean() > 0.5


def test_sessions_funnel_and_cold_start(default_shop):
    ev = default_shop.events
    n = ev["event_type"].value_counts()
    assert n["view"] > n["add_to_cart"] > n["purchase"]
    cutoff = ev["timestamp"].max() - pd.Timedelta(days=21)
    first_user = ev.groupby("user_id")["timestamp"].min()
    first_item = ev.groupby("item_id")["timestamp"].min()
    assert (first_user >= cutoff).sum() >= 100
    assert (first_item >= cutoff).sum() >= 50


def test_scales_by_config():
    small = generate(ShopConfig(n_users=200, n_items=100, n_categories=6, sessions_per_user=3))
    assert len(small.users) == 200 and len(small.items) == 100
    assert np.isfinite(small.items["price"]).all()


def test_purchase_odds_are_the_odds_the_events_were_drawn_by(default_shop):
    """The generator's odds (benchmarks/ceiling.py's ceiling) read the world the events
    came from: customers buy what their odds favour, far more than best sellers do."""
    from models.data.shop import purchase_odds

    truth = purchase_odds(ShopConfig())
    assert list(truth.user_ids) == list(default_shop.users["user_id"])
    assert list(truth.item_ids) == list(default_shop.items["item_id"])
    users = np.arange(len(truth.user_ids))
    spread = truth.odds(users, np.zeros(len(users), bool))
    own = truth.odds(users, np.ones(len(users), bool))
    assert (spread >= 0).all() and (spread.sum(axis=1) <= 1 + 1e-9).all()
    np.testing.assert_allclose(spread.sum(axis=1), own.sum(axis=1))  # only who gets what
    buys = default_shop.events[default_shop.events["event_type"] == "purchase"]
    row = pd.Index(truth.user_ids).get_indexer(buys["user_id"])
    col = pd.Index(truth.item_ids).get_indexer(buys["item_id"])
    # The rank of each bought item among its buyer's odds, against among best sellers.
    by_odds = (own[row] > own[row, col][:, None]).sum(axis=1)
    sales = np.bincount(col, minlength=own.shape[1])
    by_sales = (sales[None, :] > sales[col][:, None]).sum(axis=1)
    assert np.median(by_odds) < np.median(by_sales) / 2  # a wrong world: ~1,200
    # A customer's favourite consumable is their most likely purchase once known.
    fans = np.flatnonzero(truth.world.has_cons)
    assert (own[fans].argmax(axis=1) == truth.world.fav_item[fans]).mean() > 0.9
    # A browsing session alone (no habit): what a list can sell; smaller, same elsewhere.
    browsing = truth.odds(users, np.ones(len(users), bool), habits=False)
    assert (browsing[fans].sum(axis=1) < own[fans].sum(axis=1)).all()
    others = np.flatnonzero(~truth.world.has_cons)
    np.testing.assert_allclose(browsing[others], own[others])
