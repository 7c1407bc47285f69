"""The prediction log's schema: what serving writes is what monitoring reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from models.data.predictions import COLUMNS, SCHEMA_VERSION, Feedback, Served, parse, to_line

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_served_and_feedback_round_trip_through_a_line():
    served = Served(
        request_id="r1",
        endpoint="cross_sell",
        user_id="u1",
        items=["i2", "i3"],
        scores=[0.9, 0.5],
        model_version="4",
        cold_start=False,
        latency_ms=1.25,
        cart=["i1"],
        timestamp=AT,
    )
    feedback = Feedback(request_id="r1", user_id="u1", item_id="i3", event="purchase", timestamp=AT)
    read = parse([to_line(served), to_line(feedback)])
    assert read.unreadable == 0 and list(read.frame.columns) == list(COLUMNS)
    first, second = read.frame.to_dict("records")
    assert first["items"] == ["i2", "i3"] and first["cart"] == ["i1"]
    assert first["schema_version"] == SCHEMA_VERSION and first["model_version"] == "4"
    assert second["endpoint"] == "feedback" and second["event"] == "purchase"
    assert read.frame["timestamp"].tolist() == [pd.Timestamp(AT)] * 2


def test_torn_unknown_or_future_lines_are_counted_not_fatal():
    good = to_line(Feedback(request_id="r", item_id="i", event="click", timestamp=AT))
    future = json.loads(good) | {"schema_version": SCHEMA_VERSION + 1}
    lines = [good, good[:20], '{"endpoint": "teleport"}', json.dumps(future), ""]
    read = parse(lines)
    assert len(read.frame) == 1 and read.unreadable == 3


def test_a_line_without_a_version_is_read_as_the_first():
    old = {
        "request_id": "r",
        "endpoint": "popular",
        "items": ["a"],
        "scores": [1.0],
        "model_version": "1",
        "timestamp": "2026-06-01T12:00:00.000+00:00",
    }
    read = parse([json.dumps(old)])
    assert read.unreadable == 0 and read.frame["schema_version"].tolist() == [1]
