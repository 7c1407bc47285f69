"""Cross-sell and upsell cases and their judging, on hand-made events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.data.ids import IdMap
from models.evaluation.shopping import (
    cross_sell_cases,
    judge_cross_sell,
    judge_upsell,
    upsell_cases,
)

USERS = IdMap(["u1", "u2", "u3"])
ITEMS = IdMap([f"i{n}" for n in range(6)])
CATEGORY = np.array([0, 0, 0, 1, 1, 1])
PRICES = np.array([10.0, 20.0, 30.0, 5.0, 15.0, 25.0])
CUTOFF = pd.Timestamp("2026-01-10")


def events(rows: list[tuple[str, str, str, str, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "timestamp", "order_id"]
    )
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))


HOLDOUT = events(
    [
        ("u1", "i0", "purchase", "2026-01-11", "A"),
        ("u1", "i1", "purchase", "2026-01-11", "A"),
        ("u2", "i3", "purchase", "2026-01-12", "B"),  # a one-item basket: no case
        ("u2", "i3", "purchase", "2026-01-13", "C"),
        ("u2", "i4", "purchase", "2026-01-13", "C"),
        ("u2", "i5", "purchase", "2026-01-13", "C"),
        ("u2", "i9", "purchase", "2026-01-13", "C"),  # unknown item: ignored
    ]
)


def test_each_basket_of_two_or_more_hides_one_item():
    cases = cross_sell_cases(HOLDOUT, USERS, ITEMS, PRICES, seed=1)
    assert len(cases.hidden) == 2 and cases.users.tolist() == [0, 1]
    carts = cases.carts.toarray()
    assert set(np.flatnonzero(carts[0])) | {cases.hidden[0]} == {0, 1}
    assert set(np.flatnonzero(carts[1])) | {cases.hidden[1]} == {3, 4, 5}
    assert carts[np.arange(2), cases.hidden].sum() == 0
    assert np.array_equal(cases.hidden, cross_sell_cases(HOLDOUT, USERS, ITEMS, PRICES, 1).hidden)


def test_a_sample_of_cases_keeps_whole_cases_and_is_seeded():
    cases = cross_sell_cases(HOLDOUT, USERS, ITEMS, PRICES, seed=1)
    one = cases.sample(1, seed=3)
    assert len(one.hidden) == 1 and one.carts.shape == (1, 6)
    row = int(np.flatnonzero(cases.hidden == one.hidden[0])[0])
    assert one.users[0] == cases.users[row] and one.price[0] == cases.price[row]
    assert (one.carts.toarray()[0] == cases.carts.toarray()[row]).all()
    assert one.hidden.tolist() == cases.sample(1, seed=3).hidden.tolist()
    assert cases.sample(5) is cases  # fewer cases than asked: all of them


def test_a_window_of_one_item_baskets_has_no_case():
    single = HOLDOUT[HOLDOUT["order_id"] == "B"]
    cases = cross_sell_cases(single, USERS, ITEMS, PRICES)
    assert len(cases.hidden) == 0 and cases.carts.shape == (0, 6)
    assert judge_cross_sell(np.zeros((0, 6)), cases, 10)["cases"] == 0


def test_cross_sell_judging_by_hand():
    cases = cross_sell_cases(HOLDOUT, USERS, ITEMS, PRICES, seed=1)
    perfect = np.eye(6)[cases.hidden]
    assert judge_cross_sell(perfect, cases, 1) == pytest.approx(
        {"hit_rate_at_1": 1.0, "mrr_at_1": 1.0, "revenue_hit_rate_at_1": 1.0, "cases": 2.0}
    )
    assert judge_cross_sell(np.zeros((2, 6)), cases, 1)["hit_rate_at_1"] == 0.0  # ties lose
    first_only = perfect * np.array([[1.0], [0.0]])
    got = judge_cross_sell(first_only, cases, 1)
    price = PRICES[cases.hidden]
    assert got["revenue_hit_rate_at_1"] == pytest.approx(price[0] / price.sum())


def test_upsell_cases_anchor_on_the_cheapest_earlier_view():
    ev = events(
        [
            ("u1", "i0", "view", "2026-01-05", None),
            ("u1", "i1", "view", "2026-01-06", None),
            ("u1", "i2", "purchase", "2026-01-11", None),  # pricier than i0: a case
            ("u2", "i4", "view", "2026-01-05", None),
            ("u2", "i3", "purchase", "2026-01-11", None),  # cheaper than i4: no case
            ("u3", "i5", "purchase", "2026-01-11", None),  # no earlier view: no case
            ("u3", "i3", "view", "2026-01-12", None),
        ]
    )
    cases = upsell_cases(ev, CUTOFF, USERS, ITEMS, PRICES, CATEGORY)
    assert cases.users.tolist() == [0] and cases.anchor.tolist() == [0]
    assert cases.bought.tolist() == [2] and cases.uplift.tolist() == [pytest.approx(2.0)]
    cheapest_pricier = np.tile(-PRICES, (1, 1))  # i1 (20) before i2 (30)
    assert judge_upsell(cheapest_pricier, cases, PRICES, CATEGORY, 1)["hit_rate_at_1"] == 0.0
    at_2 = judge_upsell(cheapest_pricier, cases, PRICES, CATEGORY, 2)
    assert at_2["hit_rate_at_2"] == 1.0 and at_2["uplift_of_hits_at_2"] == pytest.approx(2.0)


def test_the_repeat_share_counts_lines_that_buy_again_what_was_bought_earlier():
    from models.evaluation.tasks import repeat_share

    t = pd.Timestamp("2026-01-01")
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "b"],
            "item_id": ["x", "x", "y", "x", "x", "z"],
            "event_type": ["purchase", "purchase", "purchase", "view", "purchase", "purchase"],
            "timestamp": [t, t + pd.Timedelta(days=3), t, t, t, t],
        }
    )
    # Five purchase lines; only a's second x (three days later) buys again; b's x is
    # b's first, and the view does not count.
    assert repeat_share(events) == pytest.approx(1 / 5)
    assert repeat_share(events[events["event_type"] == "view"]) == 0.0
