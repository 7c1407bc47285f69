"""Hostile input to the source adapters (hypothesis): UCI Online Retail invoice lines and
a shop's own CSV through a column mapping, with nearly-right rows carrying NaN/inf
prices, dates out of range, huge fields and duplicate ids; and files in the wrong
encoding. The adapter and validation never crash, and every source row ends up
accepted or quarantined with a reason."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.lake import read_raw
from models.data.adapters import ONLINE_RETAIL_COLUMNS, from_mapping, from_online_retail
from models.data.contract import ContractError
from models.data.ingest import validate_tables
from tests.conftest import as_raw
from tests.unit.test_ingest_fuzz import NOW, SETTINGS, dates, hostile_text, ids, mostly, numbers

INVOICE_LINES = st.lists(
    st.fixed_dictionaries(
        {
            "InvoiceNo": mostly(st.sampled_from(["536365", "536366", "C536379"]), hostile_text),
            "StockCode": mostly(st.sampled_from(["85123A", "71053", "POST", "84406B"]), ids),
            "Description": mostly(st.sampled_from(["WHITE MUG", "RED BAG", ""]), hostile_text),
            "Quantity": mostly(st.integers(-5, 24).map(str), numbers),
            "InvoiceDate": mostly(
                st.datetimes(dt.datetime(2011, 1, 1), dt.datetime(2011, 12, 9)).map(
                    lambda d: d.strftime("%m/%d/%Y %H:%M")
                ),
                dates,
            ),
            "UnitPrice": mostly(st.floats(0, 50).map(lambda x: f"{x:.2f}"), numbers),
            "CustomerID": mostly(st.sampled_from(["17850.0", "13047", ""]), ids),
            "Country": hostile_text,
        }
    ),
    max_size=30,
).map(lambda rows: pd.DataFrame(rows, columns=list(ONLINE_RETAIL_COLUMNS)))

SHOP_COLUMNS = ["customer", "sku", "what", "when", "amount", "group", "basket"]
SHOP_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "customer": mostly(st.sampled_from(["c1", "c2", "c3"]), ids),
            "sku": mostly(st.sampled_from(["s1", "s2"]), ids),
            "what": mostly(st.sampled_from(["view", "purchase"]), hostile_text),
            "when": mostly(
                st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2026, 6, 30)).map(str), dates
            ),
            "amount": mostly(st.floats(0.5, 99).map(lambda x: f"{x:.2f}"), numbers),
            "group": hostile_text,
            "basket": mostly(st.sampled_from(["o1", "o2", ""]), hostile_text),
        }
    ),
    max_size=30,
).map(lambda rows: pd.DataFrame(rows, columns=SHOP_COLUMNS))

MAPPING = {
    "events": {
        "columns": {
            "user_id": "customer",
            "item_id": "sku",
            "event_type": "what",
            "timestamp": "when",
            "price": "amount",
            "order_id": "basket",
        },
        "constants": {"quantity": "1"},
    },
    "items": {
        "columns": {"category": "group", "price": "amount", "title": "sku"},
        "constants": {"brand": "house", "in_stock": "true"},
    },
}


def assert_accounted(result, lines: int) -> None:
    report = result.report()
    events = report["events"]
    assert events["read"] == lines == events["accepted"] + events["quarantined"]
    for name, table in result.tables().items():
        assert report[name]["read"] == report[name]["accepted"] + report[name]["quarantined"]
        assert table.quarantined["_reason"].fillna("").str.len().gt(0).all(), name
    accepted = result.events.accepted
    if len(accepted):
        assert np.isfinite(accepted["price"].to_numpy(float)).all()
        assert (accepted["timestamp"] <= pd.Timestamp(NOW)).all()


@SETTINGS
@given(lines=INVOICE_LINES)
def test_hostile_online_retail_lines_are_accounted_for(lines):
    raw = from_online_retail(as_raw(lines), "retail.csv")
    assert_accounted(validate_tables(raw, now=NOW), len(lines))


@SETTINGS
@given(events=SHOP_EVENTS)
def test_hostile_mapped_csv_rows_are_accounted_for(events):
    raw = from_mapping({"events": as_raw(events)}, MAPPING, {"events": "shop.csv"})
    assert_accounted(validate_tables(raw, now=NOW), len(events))


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "cp1252", "utf-8-sig"])
def test_a_file_in_another_encoding_is_read_or_refused_naming_it(tmp_path, encoding):
    text = "user_id,item_id,event_type,timestamp\nü1,i€1,view,2026-01-01\n"
    path = tmp_path / "events.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    try:
        frame = read_raw(path)
    except ContractError as exc:
        assert "events.csv" in str(exc)
    else:
        assert len(frame) >= 1 and "_row" in frame
