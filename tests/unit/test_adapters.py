"""Adapters from other layouts: UCI Online Retail and a generic column mapping."""

import pandas as pd

from models.data.adapters import categorise, design_line, from_mapping, from_online_retail
from models.data.ingest import validate_tables
from tests.conftest import as_raw

LINES = as_raw(
    pd.DataFrame(
        {
            "InvoiceNo": ["1001", "1001", "C1002", "1003", "1004", "1005", "1006"],
            "StockCode": ["85123A", "22423", "85123A", "POST", "22423", "22423", "84029G"],
            "Description": [
                "WHITE HANGING HEART T-LIGHT HOLDER",
                "REGENCY CAKESTAND 3 TIER",
                "x",
                "POSTAGE",
                "REGENCY CAKESTAND 3 TIER",
                "REGENCY CAKESTAND 3 TIER",
                "KNITTED UNION FLAG HOT WATER BOTTLE",
            ],
            "Quantity": ["6", "2", "-6", "1", "1", "3", "4"],
            "InvoiceDate": ["2010-12-01 08:26:00"] * 7,
            "UnitPrice": ["2.55", "12.75", "2.55", "18", "0", "12.75", "3.39"],
            "CustomerID": ["17850.0", "17850.0", "17850.0", "12583.0", "12583.0", None, "13047.0"],
            "Country": [
                "United Kingdom",
                "United Kingdom",
                "United Kingdom",
                "France",
                "France",
                "",
                "United Kingdom",
            ],
        }
    )
)


def test_online_retail_counts_each_refusal():
    raw = from_online_retail(LINES, "online_retail.csv")
    report = validate_tables(raw).report()["events"]
    assert report["read"] == 7 and report["accepted"] == 3
    assert report["reasons"] == {
        "cancellation (InvoiceNo starts with C)": 1,
        "Quantity not positive": 1,
        "non-product stock code": 1,
        "UnitPrice not positive": 1,
        "missing CustomerID": 1,
    }
    assert set(raw.users["user_id"]) == {"17850", "13047"}
    items = raw.items.set_index("item_id")
    assert items.loc["22423", "category"] == "baking" and items.loc["22423", "brand"] == "regency"


def test_categories_are_rule_ordered():
    text = pd.Series(["CHRISTMAS CANDLE", "RED RETROSPOT BAG", "SOMETHING ELSE", None])
    assert categorise(text).tolist() == ["christmas", "bags", "other", "other"]
    assert design_line(text).tolist() == ["unbranded", "retrospot", "unbranded", "unbranded"]


def test_generic_mapping_derives_items_and_users_from_events():
    mapping = {
        "events": {
            "columns": {
                "user_id": "CustomerID",
                "item_id": "StockCode",
                "timestamp": "InvoiceDate",
                "quantity": "Quantity",
                "price": "UnitPrice",
                "order_id": "InvoiceNo",
            },
            "constants": {"event_type": "purchase"},
        },
        "items": {
            "columns": {"title": "Description", "brand": "Country"},
            "constants": {"category": "gifts", "in_stock": "true"},
        },
        "users": {"columns": {"region": "Country"}},
    }
    raw = from_mapping({"events": LINES}, mapping, {"events": "lines.csv"})
    result = validate_tables(raw)
    report = result.report()
    assert report["events"]["read"] == 7
    # Negative quantity, missing customer, zero price each caught by the contract.
    assert report["events"]["reasons"]["quantity not a positive integer"] == 1
    assert report["events"]["reasons"]["missing user_id"] == 1
    assert report["events"]["reasons"]["price not a positive number"] == 1
    assert "POST" in set(result.items.accepted["item_id"])
