"""Attribution and KPIs on a hand-written prediction log and order table, by hand."""

import numpy as np
import pandas as pd
import pytest

from models.config import ExperimentConfig
from models.experiments.attribution import attribute
from models.experiments.kpis import Z95, answer_table, kpis
from models.experiments.readout import read_out

DAY = pd.Timestamp("2026-11-02", tz="UTC")


def at(hours: float) -> pd.Timestamp:
    return DAY + pd.Timedelta(hours=hours)


def answer(request_id, endpoint, user, hours, items, variant="champion", version="1", latency=2.0):
    return {
        "request_id": request_id,
        "endpoint": endpoint,
        "user_id": user,
        "session_id": "s9" if user is None else None,
        "timestamp": at(hours),
        "items": items,
        "variant": variant,
        "experiment": "shop@challenger:2",
        "model_version": version,
        "latency_ms": latency,
    }


SERVED = pd.DataFrame(
    [
        answer("r1", "recommend", "u1", 10, ["A", "B", "C"]),
        answer("r2", "cross_sell", "u1", 12, ["B", "D"]),
        answer("r3", "recommend", "u2", 10, ["A"], "challenger", "2"),
        answer("r4", "popular", None, 10, ["E"]),  # an anonymous visitor
        answer("r5", "recommend", "u3", 9, [], latency=1.0),  # nothing to show
    ]
)


def told(request_id, user, item, hours, event="purchase", quantity=1, unit_price=10.0):
    return {
        "request_id": request_id,
        "user_id": user,
        "item_id": item,
        "timestamp": at(hours),
        "event": event,
        "quantity": quantity,
        "unit_price": unit_price,
    }


FEEDBACK = pd.DataFrame(
    [
        told("r1", "u1", "A", 10.5, quantity=2),  # f1: attributed to r1
        told("r1", "u1", "Z", 10.6, unit_price=5.0),  # Z was not shown
        told("r9", "u1", "A", 10.7),  # no such answer
        told("r3", "u2", "A", 10.1, unit_price=None),  # no price
        told("r1", "u1", "B", 10.2, event="click", unit_price=None),  # not a purchase
        told("r3", "u2", "A", 10.05, event="click", unit_price=None),
        told("r2", "u1", "D", 12.1, event="add_to_cart", unit_price=None),
    ]
)


def line(order, user, item, hours, quantity=1, price=10.0):
    return {
        "order_id": order,
        "user_id": user,
        "item_id": item,
        "event_type": "purchase",
        "timestamp": at(hours),
        "quantity": quantity,
        "price": price,
    }


ORDERS = pd.DataFrame(
    [
        line("o1", "u1", "A", 11, quantity=2),  # f1 arriving by ingestion: the same purchase
        line("o2", "u1", "B", 13, price=20.0),  # shown by r1 (10:00) and r2 (12:00): r2
        line("o3", "u1", "C", 48),  # shown by r1, 38 h before: outside the window
        line("o4", "u2", "A", 10.25),  # r3, the challenger
        line("o5", "u1", "A", 11.5),  # a second A: f1 is taken by o1 (nearer); r1 by last touch
        line("o6", "u3", "E", 10.1),  # E went to an anonymous visitor only
    ]
)


def test_each_purchase_is_credited_once_by_the_documented_rules():
    result = attribute(SERVED, FEEDBACK, ORDERS)
    p = result.purchases
    credit = {
        row.order_id: row.request_id if isinstance(row.request_id, str) else None
        for row in p.itertuples()
    }
    assert credit == {
        "o1": "r1",  # the feedback purchase, matched to its order line
        "o2": "r2",
        "o3": None,
        "o4": "r3",
        "o5": "r1",
        "o6": None,
    }
    assert len(p) == 6  # o1 and f1 are one purchase
    f1 = p[p["order_id"] == "o1"].iloc[0]
    assert f1["source"] == "feedback+order" and f1["quantity"] == 2 and f1["unit_price"] == 10.0
    assert p.loc[p["order_id"] == "o4", "variant"].item() == "challenger"
    assert p.loc[p["order_id"] == "o4", "model_version"].item() == "2"
    assert p.loc[p["order_id"] == "o2", "endpoint"].item() == "cross_sell"
    assert result.counts() == {
        "purchases": 6,
        "attributed": 4,
        "unattributed": 2,
        "matched_feedback_and_order": 1,
        "rejected: item not in the answer": 1,
        "rejected: purchase without a unit price": 1,
        "rejected: unknown request_id": 1,
    }
    assert set(result.rejected["request_id"]) == {"r1", "r9", "r3"}


def test_feedback_without_an_order_still_counts_and_an_empty_log_credits_nothing():
    alone = attribute(SERVED, FEEDBACK, ORDERS.iloc[0:0])
    assert alone.purchases["source"].tolist() == ["feedback"]
    assert alone.purchases["request_id"].tolist() == ["r1"]
    nothing = attribute(SERVED.iloc[0:0], FEEDBACK.iloc[0:0], ORDERS)
    assert len(nothing.purchases) == 6 and nothing.purchases["request_id"].isna().all()


def test_kpis_per_variant_and_endpoint_match_the_hand_computed_values():
    failed = answer("r6", "recommend", "u2", 11, [], "challenger", "2") | {"error": "ValueError"}
    served = pd.concat([SERVED, pd.DataFrame([failed])], ignore_index=True)
    credited = attribute(served, FEEDBACK, ORDERS)
    table = kpis(answer_table(served, FEEDBACK, credited, {"A": 0.25}), credited, ORDERS)
    got = {(r.variant, r.endpoint, r.kpi): r for r in table.itertuples()}

    def value(arm, endpoint, kpi):
        return got[(arm, endpoint, kpi)].value

    # champion, /recommend: r1 (u1: clicked; f1 2 x 10 and o5 1 x 10 attributed) and r5 (u3)
    assert value("champion", "recommend", "click_through") == 0.5
    assert value("champion", "recommend", "conversion") == 0.5
    assert value("champion", "recommend", "revenue_per_1000") == 30 * 1000 / 2
    assert value("champion", "recommend", "margin_per_1000") == 30 * 0.25 * 1000 / 2
    assert value("champion", "recommend", "empty_share") == 0.5
    assert value("champion", "recommend", "p99_latency_ms") == pytest.approx(1.99)
    # per-customer spread: units (1 of 1) and (0 of 1); ratio 0.5, deviations +-0.5
    half = np.std([0.5, -0.5], ddof=1) / np.sqrt(2)
    ctr = got[("champion", "recommend", "click_through")]
    assert (ctr.low, ctr.high) == pytest.approx((0.5 - Z95 * half, 0.5 + Z95 * half))
    assert ctr.units == 2 and ctr.answers == 2
    # champion, /cross_sell: r2 (u1: carted D; o2's B, 20, by last touch)
    assert value("champion", "cross_sell", "add_to_cart_rate") == 1.0
    assert value("champion", "cross_sell", "revenue_per_1000") == 20_000
    assert np.isnan(got[("champion", "cross_sell", "revenue_per_1000")].low)  # one customer
    assert value("champion", "recommend", "error_rate") == 0.0
    # challenger, /recommend: r3 (u2: clicked; o4, 10) and r6 (u2: failed, not empty)
    assert value("challenger", "recommend", "click_through") == 0.5
    assert value("challenger", "recommend", "revenue_per_1000") == 10_000 / 2
    assert value("challenger", "recommend", "error_rate") == 0.5
    assert value("challenger", "recommend", "empty_share") == 0.0
    # an anonymous visitor is a unit too (by session), with nothing credited
    assert value("champion", "popular", "conversion") == 0.0
    # orders after each customer's first answer: champion u1 o1 20, o2 20 (crossed), o3 10,
    # o5 10; u3 o6 10. Challenger u2 o4 10.
    assert value("champion", "all", "cross_sell_rate") == pytest.approx(1 / 5)
    assert value("champion", "all", "average_order_value") == pytest.approx(70 / 5)
    assert value("challenger", "all", "cross_sell_rate") == 0.0
    assert value("challenger", "all", "average_order_value") == 10.0


def test_the_trajectory_replays_the_evidence_and_ends_at_the_decision():
    """Forty customers an hour for ten hours, challengers buying twice as often: the
    replayed units only grow, the p-value only falls, and the last moment is the look."""
    rng = np.random.default_rng(3)
    served, told_ = [], []
    for n in range(400):
        arm = "challenger" if n % 2 else "champion"
        hours = n / 40
        served.append(answer(f"q{n}", "recommend", f"c{n}", hours, ["A", "B"], arm))
        if rng.random() < (0.6 if n % 2 else 0.3):
            told_.append(told(f"q{n}", f"c{n}", "A", hours + 0.2))
    served_, feedback = pd.DataFrame(served), pd.DataFrame(told_)
    rules = ExperimentConfig(min_units=50)
    look = read_out(served_, feedback, ORDERS.iloc[:0], rules, days_run=0.5, moments=12)
    path, test = look.trajectory, look.decision.test
    assert len(path) == 12 and path["at"].is_monotonic_increasing
    assert path["n_challenger"].is_monotonic_increasing and path["n_champion"].iloc[0] >= 1
    assert (path["p_value"].diff().dropna() <= 0).all()
    last = path.iloc[-1]
    assert (last["n_challenger"], last["n_champion"]) == (test.n_challenger, test.n_champion)
    assert last["difference"] == pytest.approx(test.difference)
    assert last["low"] == pytest.approx(test.low) and last["p_value"] == pytest.approx(test.p_value)
    assert last["champion_mean"] == pytest.approx(
        look.outcomes.query("variant == 'champion'")["value"].mean()
    )
    assert look.decision.action == "promote"
