"""Live events: checked one by one with ingestion's rules, and added to the files' tables
without duplicates."""

from __future__ import annotations

import pandas as pd

from models.data.ingest import ALREADY_IN_FILES, validate_tables, with_live_events
from models.data.live import check_events

ITEMS = pd.DataFrame({"item_id": ["A", "B"], "price": [10.0, 20.0]})


def sent(n: int, item: str = "A", kind: str = "view", **more) -> dict:
    return {
        "event_id": f"e{n}",
        "user_id": "u1",
        "item_id": item,
        "event_type": kind,
        "timestamp": "2026-11-30T10:00:00",
    } | more


def test_each_event_is_accepted_or_refused_with_ingestion_s_reason():
    batch = check_events(
        [
            sent(1),
            sent(2, "B", "purchase", price=20, quantity=2, order_id="o1", session_id="s1"),
            sent(3, "Z"),
            sent(1),  # the same event again
            {"user_id": "u1"},
            sent(4, colour="red"),
            sent(5, user_id="x" * 200),
            sent(6, quantity=[1]),
            7,
        ],
        ITEMS,
        customer=lambda user: f"p_{user}",
    )
    assert list(batch.accepted["event_id"]) == ["e1", "e2"]
    assert set(batch.accepted["user_id"]) == {"p_u1"}  # pseudonymised before it is kept
    bought = batch.accepted.iloc[1]
    assert (bought["quantity"], bought["price"], bought["session_id"]) == (2, 20.0, "p_s1")
    assert batch.accepted.iloc[0]["price"] == 10.0  # a view's price from the catalogue
    assert batch.repeated == [3]
    reasons = dict(zip(batch.rejected["position"], batch.rejected["reason"], strict=True))
    assert reasons[2] == "unknown item_id; price not a positive number"
    assert reasons[4] == "missing event_id"
    assert reasons[5].startswith("unknown field 'colour'")
    assert reasons[6] == "user_id longer than 128 characters"
    assert reasons[7] == "quantity is not a single value"
    assert reasons[8] == "not an object"
    assert batch.size == 9
    assert batch.rejected.set_index("position").loc[2, "event"]["user_id"] == "p_u1"


def test_live_events_join_the_files_once(tiny_raw):
    files = validate_tables(tiny_raw)
    first = files.events.accepted.iloc[0]
    item = str(first["item_id"])
    live = check_events(
        [
            sent(1, item, user_id="newcomer"),  # a customer the files never saw
            sent(  # the files' own first event, streamed too
                2,
                item,
                str(first["event_type"]),
                user_id=str(first["user_id"]),
                timestamp=str(first["timestamp"]),
                price=float(first["price"]),
                quantity=int(first["quantity"]),
                order_id=None if pd.isna(first["order_id"]) else str(first["order_id"]),
            ),
        ],
        files.items.accepted[["item_id", "price"]],
    ).accepted
    merged = with_live_events(files, live)
    report = merged.report()["events"]
    assert merged.events.accepted.shape[0] == files.events.accepted.shape[0] + 1
    assert report["read"] == report["accepted"] + report["quarantined"]
    assert report["reasons"][ALREADY_IN_FILES] == 1
    assert "newcomer" in set(merged.users.accepted["user_id"])
    assert merged.events.accepted["timestamp"].is_monotonic_increasing
    assert with_live_events(files, live.iloc[:0]) is files
