"""Customer segments: RFM quintiles and grid, clusters named by what sets them apart,
deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.config import SegmentConfig
from models.segments import BROWSERS, migration, quintile, rfm_segment, segment

RULES = SegmentConfig()


def run(events: pd.DataFrame, items: pd.DataFrame, seed: int = 42, **overrides):
    options = {
        "window_days": RULES.window_days,
        "candidates": RULES.clusters,
        "sample": RULES.sample,
        "top_categories": RULES.top_categories,
        "seed": seed,
    } | overrides
    return segment(events, items, **options)


def test_quintiles_are_equal_fifths_and_ties_are_broken_by_order():
    scores = quintile(pd.Series([5.0] * 10, index=[f"c{i}" for i in range(10)]))
    assert scores.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    recency = quintile(pd.Series(np.arange(100.0)), higher_is_better=False)
    assert recency.iloc[0] == 5 and recency.iloc[-1] == 1
    assert recency.value_counts().tolist() == [20] * 5


@pytest.mark.parametrize(
    ("r", "f", "name"),
    [
        (5, 5, "champions"),
        (3, 4, "loyal"),
        (4, 2, "promising"),
        (5, 1, "new"),
        (1, 3, "at risk"),
        (2, 1, "hibernating"),
        (3, 2, "needs attention"),
    ],
)
def test_the_rfm_grid(r, f, name):
    assert rfm_segment(pd.Series([r]), pd.Series([f])).item() == name


def planted() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three kinds of customers a marketer would tell apart: coffee lovers buying two of
    the cheaper bags of beans every week; laptop buyers, twice a year, one at a time; and
    connoisseurs buying one bag of the dearest beans a month. Plus some who only looked."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [f"b{i}" for i in range(10)] + [f"l{i}" for i in range(10)],
            "category": ["coffee beans"] * 10 + ["laptops"] * 10,
            "price": list(np.linspace(5, 20, 10)) + list(np.linspace(400, 2000, 10)),
        }
    ).set_index("item_id", drop=False)
    kinds = {  # customers: (every n days, choices, items per order)
        range(0, 30): (7, [f"b{i}" for i in range(5)], 2),
        range(30, 45): (180, [f"l{i}" for i in range(10)], 1),
        range(45, 60): (30, ["b8", "b9"], 1),
    }
    rows = []
    start = pd.Timestamp("2026-01-01")
    for customers, (every, choices, size) in kinds.items():
        for c in customers:
            for day in range(int(rng.integers(0, 5)), 360, every):
                when = start + pd.Timedelta(days=day)
                for item in rng.choice(choices, size, replace=False):
                    price = items.loc[item, "price"]
                    rows.append((f"c{c:02d}", item, "purchase", when, 1, price, f"o{c}-{day}"))
    for c in range(60, 65):
        rows.append((f"c{c:02d}", "l3", "view", start, 1, 900.0, None))
    columns = ["user_id", "item_id", "event_type", "timestamp", "quantity", "price", "order_id"]
    return pd.DataFrame(rows, columns=columns), items.reset_index(drop=True)


def test_planted_customers_fall_into_named_clusters():
    events, items = planted()
    result = run(events, items, candidates=(2, 3, 4, 5))
    table = result.table.set_index("user_id")
    assert result.k == 3 and set(result.silhouettes) == {2, 3, 4, 5}

    def name(customers: range) -> str:
        names = table.loc[[f"c{c:02d}" for c in customers], "segment"]
        assert names.nunique() == 1, names.value_counts()
        return names.iloc[0]

    # The price tier is against the category's purchase lines, most of them the weekly
    # buyers': they are the shop's middle, the connoisseurs its top.
    assert name(range(0, 30)) == "coffee beans, weekly, large baskets"
    assert name(range(30, 45)) == "laptops, occasional, small baskets"
    assert name(range(45, 60)) == "premium coffee beans, monthly, small baskets"
    # Who only looked has no RFM and no cluster, but is in the table.
    lookers = table.loc[[f"c{c:02d}" for c in range(60, 65)]]
    assert (lookers["segment"] == BROWSERS).all() and (lookers["cluster"] == -1).all()
    assert (lookers["rfm_segment"] == BROWSERS).all()
    weekly = table.loc[[f"c{c:02d}" for c in range(30)], "f"]
    twice_a_year = table.loc[[f"c{c:02d}" for c in range(30, 45)], "f"]
    assert weekly.min() >= 3 and twice_a_year.max() <= 2  # frequency quintiles
    assert result.profiles["customers"].sum() == 60
    bought = events[events["event_type"] == "purchase"]
    assert result.profiles["revenue"].sum() == pytest.approx(bought["price"].sum())


def test_segments_are_deterministic_for_a_seed(tiny_shop):
    first = run(tiny_shop.events, tiny_shop.items)
    again = run(tiny_shop.events, tiny_shop.items)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.silhouettes == again.silhouettes and first.k in RULES.clusters
    names = first.profiles["segment"]
    assert names.is_unique and len(names) == first.k
    assert set(first.table["user_id"]) == set(tiny_shop.events["user_id"].astype(str))
    # Clusters numbered by size, the largest 0.
    assert first.profiles["customers"].is_monotonic_decreasing


def test_migration_counts_customers_in_both_runs():
    before = pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "y"]})
    now = pd.DataFrame({"user_id": ["a", "b", "d"], "segment": ["x", "y", "y"]})
    moved = migration(before, now)
    assert moved.loc["x", "x"] == 1 and moved.loc["x", "y"] == 1 and moved.to_numpy().sum() == 2


def test_no_events_is_a_clear_error():
    events, items = planted()
    with pytest.raises(ValueError, match="no events to segment"):
        run(events.iloc[:0], items)
