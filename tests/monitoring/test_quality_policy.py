"""Quality from feedback against hand-computed values; the retraining policy; drift."""

import math

import pandas as pd
import pytest

from models.config import MonitorConfig
from models.data.shop import shift
from monitoring.drift import drift
from monitoring.policy import decide
from monitoring.predictions import CATEGORICAL as SERVED_CATEGORICAL
from monitoring.predictions import NUMERICAL as SERVED_NUMERICAL
from monitoring.predictions import served_items
from monitoring.quality import feedback_quality
from monitoring.recsys import quality_report, quality_summary
from monitoring.windows import WindowError, split, windows

HAND_LOG = pd.DataFrame(
    [
        {"request_id": "r1", "endpoint": "recommend", "items": ["a", "b", "c"]},
        {"request_id": "r2", "endpoint": "cross_sell", "items": ["d", "e", "f"]},
        {"request_id": "r3", "endpoint": "upsell", "items": ["g", "h", "i"]},
        {"request_id": "r1", "endpoint": "feedback", "item_id": "b", "event": "click"},
        {"request_id": "r1", "endpoint": "feedback", "item_id": "c", "event": "purchase"},
        {"request_id": "r1", "endpoint": "feedback", "item_id": "c", "event": "click"},
        {"request_id": "r2", "endpoint": "feedback", "item_id": "d", "event": "add_to_cart"},
    ]
)


def test_feedback_quality_matches_hand_computed_values():
    q = feedback_quality(HAND_LOG, k=3)
    # r1: hits at ranks 2 and 3 of 3; r2: hit at rank 1; r3: nothing.
    assert q["lists"] == 3
    assert q["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert q["hit_rate_at_3"] == pytest.approx(2 / 3)
    dcg_r1 = 1 / math.log2(3) + 1 / math.log2(4)
    idcg_r1 = 1 + 1 / math.log2(3)
    assert q["ndcg_at_3"] == pytest.approx((dcg_r1 / idcg_r1 + 1.0 + 0.0) / 3)


def test_evidently_quality_reports_agree_with_the_hand_computed_values():
    train = pd.DataFrame({"user_id": ["x", "x", "y"], "item_id": ["a", "b", "a"]})
    metrics = {
        m["config"]["type"].split(":")[-1] + m["config"].get("column", ""): m["value"]
        for m in quality_report(HAND_LOG, train, k=3).dict()["metrics"]
    }
    at_3 = lambda name: list(metrics[name]["value"].values())[-1]  # noqa: E731
    q = feedback_quality(HAND_LOG, k=3)
    assert at_3("PrecisionTopK") == pytest.approx(q["precision_at_3"])
    assert at_3("NDCG") == pytest.approx(q["ndcg_at_3"])
    assert at_3("HitRate") == pytest.approx(q["hit_rate_at_3"])
    assert at_3("MRR") == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert {"Novelty", "PopularityBiasMetric", "Personalization"} <= set(metrics)
    summary = {
        m["config"]["column"]: m["value"]
        for m in quality_summary(HAND_LOG, 3, 0.05).dict()["metrics"]
    }
    assert summary["precision"] == pytest.approx(q["precision_at_3"])
    assert summary["ndcg"] == pytest.approx(q["ndcg_at_3"])
    assert summary["offline_ndcg"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="no served lists"):
        quality_report(HAND_LOG[HAND_LOG["endpoint"] == "feedback"], train, k=3)


def test_lists_shorter_than_k_are_judged_at_their_length():
    # A shop asks for 3 items while the monitor judges at 10: a report, not a crash.
    train = pd.DataFrame({"user_id": ["x"], "item_id": ["a"]})
    metrics = {
        m["config"]["type"].split(":")[-1]: m["value"]
        for m in quality_report(HAND_LOG, train, k=10).dict()["metrics"]
    }
    ndcg = list(metrics["NDCG"]["value"].values())
    assert len(ndcg) == 3 and ndcg[-1] == pytest.approx(feedback_quality(HAND_LOG, 3)["ndcg_at_3"])


def test_feedback_quality_of_an_empty_log_is_zero_lists():
    assert feedback_quality(pd.DataFrame(), k=10)["lists"] == 0


def test_policy_triggers_and_cooldown():
    cfg = MonitorConfig(drift_share=0.3, quality_drop=0.2, max_age_days=30, cooldown_hours=12)
    calm = decide(cfg, 0.1, [], 0.05, 0.05, 3.0, None)
    assert not calm.retrain and calm.notes
    drifted = decide(cfg, 0.5, ["price", "category"], None, None, 3.0, None)
    assert drifted.retrain and "price, category" in drifted.reasons[0]
    worse = decide(cfg, 0.0, [], 0.03, 0.05, 3.0, None)
    assert worse.retrain and worse.reasons[0].startswith("quality")
    old = decide(cfg, 0.0, [], None, None, 45.0, None)
    assert old.retrain and old.reasons[0].startswith("age")
    held = decide(cfg, 0.9, ["price"], None, None, 3.0, 2.0)
    assert not held.retrain and "cooldown" in held.notes[-1]


def test_empty_or_malformed_window_is_a_clear_error():
    ts = pd.to_datetime(["2026-01-01", "2026-01-02"])
    events = pd.DataFrame(
        {"user_id": ["u", "v"], "item_id": ["a", "b"], "event_type": "view", "timestamp": ts}
    ).assign(price=1.0)
    with pytest.raises(WindowError, match="no events after the champion's cutoff"):
        split(events, ts[0], pd.Timestamp("2026-02-01"), 7, 1)
    with pytest.raises(WindowError, match="only 1 events in the current window"):
        split(events, ts[0], ts[1], 7, 5)
    with pytest.raises(WindowError, match="column 'price' missing"):
        split(events.drop(columns="price"), ts[0], ts[1], 7, 1)


def test_a_market_shift_is_detected_and_a_stable_week_is_not(tiny_shop):
    cfg = MonitorConfig()
    cutoff = tiny_shop.events["timestamp"].max() - pd.Timedelta(days=35)
    end = cutoff + pd.Timedelta(days=cfg.window_days)

    def share(shop):
        events = shop.events[shop.events["timestamp"] < end]
        w = windows(events, shop.items, events["timestamp"].min(), cutoff, 7, cfg.min_events)
        return drift(w.reference, w.current, cfg)

    stable, moved = share(tiny_shop), share(shift(tiny_shop, cutoff, seed=1))
    assert stable.share < cfg.drift_share, stable.scores
    assert moved.share >= cfg.drift_share and "category" in moved.drifted, moved.scores
    launched = shift(tiny_shop, cutoff, seed=1).events
    after = launched[launched["timestamp"] >= cutoff]
    assert 0.2 < after["item_id"].str.startswith("launch-").mean() < 0.3


def test_served_items_and_prediction_drift():
    items = pd.DataFrame(
        {"item_id": list("abcdef"), "category": list("xxxyyy"), "price": [1, 2, 3, 10, 20, 30]}
    )

    def log(lists, n):
        return pd.DataFrame(
            [
                {
                    "request_id": f"r{i}",
                    "endpoint": "recommend",
                    "items": lists[i % len(lists)],
                    "scores": [0.9, 0.5, 0.1][: len(lists[i % len(lists)])],
                    "cold_start": i % 4 == 0,
                }
                for i in range(n)
            ]
        )

    before = served_items(log([["a", "b", "c"], ["a", "d"]], 200), items)
    assert len(before) == 500 and before["rank"].max() == 3
    assert before.loc[0:2, "price"].tolist() == [1, 2, 3]
    after = served_items(log([["d", "e", "f"]], 200), items)
    moved = drift(before, after, MonitorConfig(), SERVED_NUMERICAL, SERVED_CATEGORICAL)
    assert {"category", "price"} <= set(moved.drifted)
    same = drift(
        before,
        served_items(log([["a", "b", "c"], ["a", "d"]], 100), items),
        MonitorConfig(),
        SERVED_NUMERICAL,
        SERVED_CATEGORICAL,
    )
    assert same.drifted == []
