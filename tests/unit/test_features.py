"""Split, weights and features."""

import numpy as np
import pandas as pd
import pytest

from models.config import FeatureConfig
from models.data.ingest import validate_tables
from models.features.build import (
    build,
    encode,
    interaction_weights,
    item_tokens,
    temporal_split,
    title_similarity,
    trend,
    trends,
)


@pytest.fixture(scope="module")
def tables(tiny_raw):
    result = validate_tables(tiny_raw)
    return result.events.accepted, result.items.accepted, result.users.accepted


def test_temporal_split_holds_out_whole_last_days(tables):
    events = tables[0]
    split = temporal_split(events, 14)
    assert split.train["timestamp"].max() < split.cutoff <= split.test["timestamp"].min()
    assert split.cutoff == events["timestamp"].max().normalize() - pd.Timedelta(days=13)
    with pytest.raises(ValueError, match="holdout_days"):
        temporal_split(events, 10_000)


def test_weights_prefer_purchases_and_recent_events():
    cutoff = pd.Timestamp("2026-01-31")
    train = pd.DataFrame(
        {
            "user_id": ["u", "u", "v", "w"],
            "item_id": ["a", "a", "a", "a"],
            "event_type": ["view", "purchase", "purchase", "purchase"],
            "timestamp": pd.to_datetime(["2026-01-30", "2026-01-30", "2026-01-30", "2025-12-01"]),
        }
    )
    cfg = FeatureConfig(
        event_weights={"view": 1, "add_to_cart": 3, "purchase": 6}, half_life_days=61
    )
    w = interaction_weights(train, cutoff, cfg).set_index("user_id")["weight"]
    assert w["u"] == pytest.approx(7 * 2 ** (-1 / 61))
    assert w["w"] == pytest.approx(6 * 0.5)  # 61 days old: half the weight


def test_encode_normalises_rows_and_ignores_unknown_tokens():
    tokens = pd.DataFrame(
        {
            "id": ["a", "a", "b", "b"],
            "token": ["x", "y", "x", "unseen"],
            "weight": [1.0, 3.0, 2.0, 5.0],
        }
    )
    mat = encode(
        tokens, np.array(["a", "b"], dtype=object), {"x": 2, "y": 3}, np.array([0, -1]), 4
    ).toarray()
    assert mat[0].tolist() == pytest.approx([0.2, 0, 0.2, 0.6])
    assert mat[1].tolist() == pytest.approx([0, 0, 1.0, 0])


def test_item_tokens_price_bands_and_new_items():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "category": ["x", "x", "x", "y"],
            "brand": ["p", "p", "q", "q"],
            "price": [1.0, 5.0, 9.0, 3.0],
        }
    )
    tok = item_tokens(items, pd.Series({"a": 3.0, "b": 1.0}), FeatureConfig())
    by_item = tok.groupby("id")["token"].apply(set)
    assert "price=budget" in by_item["a"] and "price=premium" in by_item["c"]
    # An item nobody interacted with is known by what it is: no "never bought" band.
    assert not any(t.startswith("popularity=") for t in by_item["c"])
    assert any(t.startswith("popularity=") for t in by_item["a"])


def test_every_other_items_column_and_the_titles_words_become_features():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "title": [
                "Red Mug 330ml",
                "Blue mug, large",
                "Red TEA pot 2",
                "Tea cosy",
                "Mug Mug red mug",
            ],
            "category": "kitchen",
            "brand": "p",
            "price": [1.0, 2.0, 3.0, 4.0, 5.0],
            "department": ["home", "home", None, "", "gifts"],
        }
    )
    tok = item_tokens(items, pd.Series(dtype=float), FeatureConfig(title_words=2))
    by_item = tok.groupby("id")["token"].apply(set)
    assert "department=home" in by_item["a"] and "department=gifts" in by_item["e"]
    assert not {t for t in by_item["c"] | by_item["d"] if t.startswith("department=")}
    # "mug" and "red" are in 3 of 5 titles (more than half: they tell nothing), "blue",
    # "large", "pot" and "cosy" in one only; "tea" (2 titles) is kept.
    words = {t for t in tok["token"] if t.startswith("word=")}
    assert words == {"word=tea"}
    assert by_item["c"] >= {"word=tea"} and "word=tea" in by_item["d"]
    everything = item_tokens(items, pd.Series(dtype=float), FeatureConfig(title_words=100))
    assert not everything["token"].str.contains(r"\d").any()  # no "330ml", no "2"
    shares = everything[everything["token"].str.startswith("word=")].groupby("id")["weight"]
    assert np.allclose(shares.sum(), FeatureConfig().item_feature_weight)
    off = item_tokens(items, pd.Series(dtype=float), FeatureConfig(title_words=0))
    assert not off["token"].str.startswith("word=").any()


def test_feature_set_shapes_and_cold_rows(tables):
    events, items, users = tables
    fs = build(events, items, users, FeatureConfig(holdout_days=14))
    n_u, n_i = fs.interactions.shape
    assert n_i == len(items) and n_u >= len(users)
    assert fs.user_features.shape[0] == n_u and fs.item_features.shape[0] == n_i
    assert np.allclose(fs.user_features.sum(axis=1), 1.0)
    assert (fs.weights.tocsr() > 0).nnz == fs.interactions.nnz
    # Cold items (no training event) carry no identity feature: metadata only.
    cold = np.flatnonzero(fs.item_weight == 0)
    assert cold.size > 0
    identity = fs.item_features[cold][:, :n_i]
    assert identity.nnz == 0
    assert set(fs.summary()) >= {"users", "items", "interactions", "cutoff"}


def test_trend_counts_each_customer_once_halved_by_age():
    cutoff = pd.Timestamp("2026-01-10")
    train = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["a", "a", "a", "b"],
            "timestamp": pd.to_datetime(["2026-01-01", "2026-01-10", "2026-01-07", "2026-01-04"]),
        }
    )
    got = trend(train, np.array(["a", "b", "c"], dtype=object), cutoff, half_life_days=3.0)
    # a: u1 last touched it at the cutoff (1), u2 3 days before (1/2); b: 6 days (1/4).
    assert got.tolist() == pytest.approx([1.5, 0.25, 0.0])


def test_newcomers_trend_counts_only_each_customers_first_day():
    cutoff = pd.Timestamp("2026-01-10")
    train = pd.DataFrame(
        {
            "user_id": ["old", "old", "new", "new"],
            "item_id": ["a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                ["2025-06-01 00:00", "2026-01-09 00:00", "2026-01-09 10:00", "2026-01-09 20:00"]
            ),
        }
    )
    cfg = FeatureConfig(trend_half_life_days=1.0, newcomer_half_life_days=1.0)
    everyone, newcomers = trends(train, np.array(["a", "b", "c"], dtype=object), cutoff, cfg)
    # "old" bought b a day before the cutoff, long after arriving: everyone's trend only.
    new_b, new_c = 2 ** (-14 / 24), 2 ** (-4 / 24)  # "new" bought b 14 h, c 4 h before
    assert everyone.tolist() == pytest.approx([2.0**-222, 0.5 + new_b, new_c])
    assert newcomers.tolist() == pytest.approx([2.0**-222, new_b, new_c])


def test_title_similarity_relates_items_by_the_words_their_titles_share():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "title": [
                "Red Alarm Clock",
                "Green Alarm Clock",
                "Jumbo Bag Red",
                "Jumbo Bag Pink",
                None,
            ],
        }
    )
    order = np.array(["e", "a", "b", "c", "d"])  # the matrix follows the ids asked for
    sim = title_similarity(items, order, vocabulary=100, per_item=1, chunk=2).toarray()
    assert sim.diagonal().tolist() == [0, 0, 0, 0, 0]  # an item is not its own neighbour
    assert sim[1].argmax() == 2 and sim[3].argmax() == 4  # clock to clock, bag to bag
    assert (sim > 0).sum(axis=1).tolist() == [0, 1, 1, 1, 1]  # one kept; no title, nothing
    assert title_similarity(items.drop(columns="title"), order, 100).nnz == 0
