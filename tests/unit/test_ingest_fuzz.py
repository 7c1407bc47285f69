"""Hostile input to ingestion (hypothesis): random bytes as a source file, and tables of
hostile values (wrong types, NaN/inf and negative prices, dates out of range, huge
fields, control characters, duplicate ids). Ingestion never crashes; every row read is
either accepted or quarantined with a reason; what is accepted is sane."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.lake import read_raw
from models.data.adapters import RawTables
from models.data.contract import ContractError
from models.data.ingest import validate_tables
from tests.conftest import as_raw

NOW = dt.datetime(2026, 7, 1)
SEEN = {"accepted events": 0, "quarantined events": 0}
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

hostile_text = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(["", " ", "NaN", "nan", "inf", "-inf", "1e309", "-0", "0", "null", "None"]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=2_000, max_size=5_000),  # huge
    st.sampled_from(["\x00", "\ufeffa", "a\nb", "'; DROP TABLE events; --", "ü€𝄞"]),
)
numbers = st.one_of(
    hostile_text,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
)
dates = st.one_of(
    hostile_text,
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(str),
    st.sampled_from(["2026-02-30", "2026-06-01T25:00:00", "1677-09-21", "2262-04-12", "0"]),
)
ids = st.one_of(hostile_text, st.sampled_from(["a", "b", "u1", "u2"]))  # duplicates likely


def mostly(valid: st.SearchStrategy, hostile: st.SearchStrategy, p: float = 0.85):
    """Valid with probability ``p``, else hostile: rows that are nearly right, where one
    bad field must quarantine the row and the rest must pass."""
    return st.tuples(st.floats(0, 1), valid, hostile).map(lambda t: t[1] if t[0] < p else t[2])


GOOD_ITEMS = pd.DataFrame(
    {
        "item_id": ["good-1", "good-2"],
        "title": ["A", "B"],
        "category": ["x", "y"],
        "brand": ["p", "q"],
        "price": ["9.99", "25"],
        "in_stock": ["true", "false"],
    }
)


def table(columns: dict[str, st.SearchStrategy[str | None]], max_rows: int = 25):
    return st.lists(st.fixed_dictionaries(columns), max_size=max_rows).map(
        lambda rows: pd.DataFrame(rows, columns=list(columns))
    )


ITEMS = table(
    {
        "item_id": ids,
        "title": hostile_text,
        "category": hostile_text,
        "brand": hostile_text,
        "price": numbers,
        "in_stock": hostile_text,
    }
)
USERS = table(
    {"user_id": ids, "region": hostile_text, "age_band": hostile_text, "signup_date": dates}
)
EVENTS = table(
    {
        "user_id": mostly(st.sampled_from(["u1", "u2", "u3"]), ids),
        "item_id": mostly(st.sampled_from(["good-1", "good-2"]), ids),
        "event_type": mostly(st.sampled_from(["view", "add_to_cart", "purchase"]), hostile_text),
        "timestamp": mostly(
            st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2026, 6, 30)).map(str), dates
        ),
        "quantity": mostly(st.integers(1, 5).map(str), numbers),
        "price": mostly(st.floats(0.5, 500).map(lambda x: f"{x:.2f}"), numbers),
        "order_id": mostly(st.sampled_from(["o1", "o2", ""]), hostile_text),
    }
)


@SETTINGS
@given(items=ITEMS, users=USERS, events=EVENTS)
def test_hostile_tables_are_accounted_for_row_by_row(items, users, events):
    items = pd.concat([GOOD_ITEMS, items], ignore_index=True)
    raw = RawTables(
        events=as_raw(events),
        items=as_raw(items),
        users=as_raw(users),
        sources={"events": "events.csv", "items": "items.csv", "users": "users.csv"},
    )
    result = validate_tables(raw, now=NOW)
    report = result.report()
    for name, frame in (("items", items), ("users", users), ("events", events)):
        counts = report[name]
        assert counts["read"] == len(frame) == counts["accepted"] + counts["quarantined"]
        quarantined = result.tables()[name].quarantined
        assert quarantined["_reason"].fillna("").str.len().gt(0).all()  # each says why
    accepted = result.events.accepted
    SEEN["accepted events"] += len(accepted)
    SEEN["quarantined events"] += len(result.events.quarantined)
    if len(accepted):
        assert np.isfinite(accepted["price"].to_numpy(float)).all()
        assert (accepted["timestamp"] <= pd.Timestamp(NOW)).all()
    assert result.items.accepted["item_id"].is_unique


@SETTINGS
@given(content=st.binary(max_size=4_000))
def test_random_bytes_as_a_source_file_give_a_table_or_a_clear_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "events.csv"
    path.write_bytes(content)
    try:
        frame = read_raw(path)
    except ContractError as exc:
        assert "events.csv" in str(exc)  # the message names the file
    else:
        assert frame["_row"].tolist() == [str(i) for i in range(1, len(frame) + 1)]


def test_the_fuzzer_reached_both_outcomes():
    """Runs after the fuzz test above (file order): hostile tables must not all be
    rejected wholesale, or the checks on accepted rows would never run."""
    assert SEEN["accepted events"] > 0 and SEEN["quarantined events"] > 0, SEEN
