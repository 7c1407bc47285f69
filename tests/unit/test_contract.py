"""Row-level validation: every row accepted or quarantined with its reason."""

import datetime as dt

import pandas as pd
import pytest

from models.data.adapters import RawTables
from models.data.contract import (
    ContractError,
    pseudonymise,
    validate_events,
    validate_items,
    validate_users,
)
from models.data.ingest import validate_tables
from tests.conftest import as_raw

ITEMS = as_raw(
    pd.DataFrame(
        {
            "item_id": ["a", "b", "b", "c", None],
            "title": ["A", "B", "B again", "C", "nameless"],
            "category": ["x", "x", "y", None, "y"],
            "brand": ["p", None, "q", "q", "q"],
            "price": ["10", "20.5", "3", "-1", "4"],
            "in_stock": ["true", "no", "yes", "maybe", "1"],
        }
    )
)
NOW = dt.datetime(2026, 7, 1)


def events(**override):
    base = {
        "user_id": ["u1", "u1", "u2", "u3", "u4", "u5", "u6", "", "u8"],
        "item_id": ["a", "b", "zzz", "a", "a", "b", "a", "a", "b"],
        "event_type": [
            "view",
            "purchase",
            "view",
            "purchase",
            "click",
            "add_to_cart",
            "view",
            "view",
            "purchase",
        ],
        "timestamp": [
            "2026-05-01T10:00:00",
            "2026-05-01 10:05:00",
            "2026-05-02",
            "not a date",
            "2026-05-03",
            "1900-01-01",
            "2031-01-01",
            "2026-05-04",
            "2026-05-05",
        ],
        "quantity": ["1", "2", "1", "1", "1", "0", "", "1", "1.5"],
        "price": ["", "-3", "1", "10", "10", "20.5", "nan", "10", "20.5"],
        "order_id": ["", "o1", "", "o2", "", "", "", "", ""],
    }
    base.update(override)
    return as_raw(pd.DataFrame(base))


def test_items_quarantine_with_reasons():
    v = validate_items(ITEMS, "items.csv")
    assert v.read == 5 and len(v.accepted) == 2 and len(v.quarantined) == 3
    reasons = dict(zip(v.quarantined["_row"], v.quarantined["_reason"], strict=True))
    assert reasons["3"] == "duplicate item_id"
    assert set(reasons["4"].split("; ")) == {
        "missing category",
        "price not a positive number",
        "in_stock not true/false",
    }
    assert reasons["5"] == "missing item_id"
    assert v.accepted["brand"].tolist() == ["p", "unknown"]
    assert v.accepted["in_stock"].tolist() == [True, False]


def test_events_each_rule_names_the_problem():
    items = validate_items(ITEMS, "items.csv").accepted
    v = validate_events(events(), "events.csv", items, now=NOW)
    assert v.read == 9
    reasons = dict(zip(v.quarantined["_row"], v.quarantined["_reason"], strict=True))
    assert "1" not in reasons  # a view without a price takes the catalogue price
    assert set(reasons["2"].split("; ")) == {"price not a positive number"}
    assert reasons["3"] == "unknown item_id"
    assert reasons["4"] == "timestamp not a date"
    assert reasons["5"] == "event_type not one of view/add_to_cart/purchase"
    assert set(reasons["6"].split("; ")) == {
        "timestamp out of range",
        "quantity not a positive integer",
    }
    assert set(reasons["7"].split("; ")) == {
        "timestamp out of range",
        "price not a positive number",
    }
    assert reasons["8"] == "missing user_id"
    assert set(reasons["9"].split("; ")) == {
        "quantity not a positive integer",
        "purchase without order_id",
    }
    assert v.accepted["price"].tolist() == [10.0]
    assert v.accepted["timestamp"].dtype == "datetime64[ns]"


def test_missing_column_stops_with_file_and_column():
    with pytest.raises(ContractError, match=r"events\.csv: column 'price'"):
        validate_events(events().drop(columns=["price"]), "events.csv", ITEMS, now=NOW)
    with pytest.raises(ContractError, match=r"items\.csv: column 'category'"):
        validate_items(ITEMS.drop(columns=["category"]), "items.csv")


def test_users_keep_attributes_and_reject_bad_signup():
    raw = as_raw(
        pd.DataFrame(
            {
                "user_id": ["u1", "u2", "u2"],
                "region": ["north", None, "x"],
                "signup_date": ["2026-01-02", "yesterday", "2026-01-01"],
            }
        )
    )
    v = validate_users(raw, "users.csv")
    assert len(v.accepted) == 1 and v.reasons() == {
        "signup_date not a date": 1,
        "duplicate user_id": 1,
    }
    assert v.accepted.loc[0, "region"] == "north"


def test_pseudonymised_ids_are_stable_keyed_and_everywhere(tiny_raw):
    result = validate_tables(tiny_raw, pseudonymise_key="s3cret")
    raw_ids = set(tiny_raw.users["user_id"])
    for table in (result.users, result.events):
        assert not raw_ids & set(table.accepted["user_id"])
    again = pseudonymise(pd.Series(["u1", "u1", None]), "s3cret")
    assert again[0] == again[1] and pd.isna(again[2])
    assert pseudonymise(pd.Series(["u1"]), "other")[0] != again[0]


def test_accounting_holds_on_a_shop(tiny_raw):
    report = validate_tables(tiny_raw).report()
    for table in ("items", "users", "events"):
        assert report[table]["read"] == report[table]["accepted"] + report[table]["quarantined"]
        assert report[table]["read"] == len(getattr(tiny_raw, table))
    assert report["events"]["quarantined"] == 0


def test_unknown_users_in_events_are_added_without_attributes(tiny_raw):
    users = tiny_raw.users.iloc[:10]
    result = validate_tables(RawTables(tiny_raw.events, tiny_raw.items, users, tiny_raw.sources))
    assert result.users_added_from_events > 0
    assert set(result.events.accepted["user_id"]) <= set(result.users.accepted["user_id"])


def test_items_keep_the_catalogues_other_columns_as_text():
    raw = ITEMS.assign(department=["home", "", "", "toys", "x"], size=["1", "2", "3", "4", "5"])
    accepted = validate_items(raw, "items.csv").accepted
    assert accepted["department"].iloc[0] == "home" and pd.isna(accepted["department"].iloc[1])
    assert accepted["size"].tolist() == ["1", "2"]
    assert "_reason" not in accepted and "_row" not in accepted
