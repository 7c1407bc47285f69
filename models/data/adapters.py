"""Adapters from a shop's own layout to the contract tables.

Each adapter takes raw frames (text columns plus the source row number ``_row``) and
returns :class:`RawTables` in contract column names. Rows an adapter refuses on the
source's own terms (a cancellation, a postage line) carry their reason in ``_reason``
and are quarantined by the contract validation with everything else, so the row
accounting of the source file stays whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.data.columns import EVENT_COLUMNS, ITEM_COLUMNS, Columns
from models.data.contract import ContractError, require_columns

C = Columns
FORMATS = ("contract", "online-retail", "csv")


@dataclass
class RawTables:
    """Contract-named raw tables and the file each came from."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    sources: dict[str, str] = field(default_factory=dict)


# --- UCI Online Retail ------------------------------------------------------------------

ONLINE_RETAIL_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
# Product codes are five digits with an optional letter suffix (85123A); everything else
# (POST, DOT, M, C2, BANK CHARGES, AMAZONFEE, gift_0001_20, DCGS...) is a fee, an
# adjustment, a voucher or a sample, not a product.
PRODUCT_CODE = r"^\d{5}[A-Za-z]{0,2}$"
# The dataset has no categories: derive them from the description, first match wins.
# Keep this order stable: it decides the category of every item (docs/data-contract.md).
CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("christmas", r"CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER|SNOWFLAKE|NATIVITY"),
    ("candles & lights", r"CANDLE|T-LIGHT|TEALIGHT|LANTERN|\bLIGHTS?\b|\bLAMP|FAIRY"),
    ("bags", r"\bBAGS?\b|SHOPPER|\bTOTE|PURSE|RUCKSACK|BACKPACK"),
    ("mugs & cups", r"\bMUGS?\b|\bCUPS?\b|SAUCER|TEACUP|BEAKER"),
    ("tableware", r"PLATE|BOWL|NAPKIN|CUTLERY|\bTRAY|DOIL|COASTER|\bJUG\b|TEAPOT|\bGLASS"),
    ("baking", r"\bCAKE|BAKING|CUTTER|MOULD|APRON|CASES\b|CUPCAKE"),
    ("cards & wrap", r"\bCARDS?\b|\bWRAP|GIFT TAG|ENVELOPE|RIBBON|TISSUE"),
    ("stationery", r"NOTEBOOK|PENCIL|\bPENS?\b|ERASER|STICKER|CHALKBOARD|MEMO|JOURNAL|DIARY|STAMP"),
    ("toys & games", r"\bTOY|\bGAME|PUZZLE|\bDOLL|JIGSAW|DOMINO|PLAYHOUSE|SKIPPING|BALLOON"),
    ("party", r"PARTY|BUNTING|BANNER|GARLAND|CONFETTI|STRAWS|PAPER CHAIN"),
    ("clocks & frames", r"CLOCK|FRAME|PHOTO|MIRROR"),
    ("signs", r"\bSIGN\b|PLAQUE|DOORMAT"),
    ("storage", r"\bBOX\b|BOXES|BASKET|STORAGE|\bJAR\b|\bTINS?\b|HOLDER|\bCASE\b|CRATE|DRAWER"),
    ("garden", r"GARDEN|\bPLANT|FLOWER POT|WATERING|\bBIRD|\bHERB|\bSEED"),
    ("textiles", r"CUSHION|BLANKET|THROW|TOWEL|HOT WATER BOTTLE|SCARF|GLOVES|SOCKS|\bHAT\b"),
    ("jewellery", r"NECKLACE|BRACELET|EARRING|\bRING\b|BROOCH|JEWEL|\bCHARM"),
    ("hooks & hangers", r"\bHOOKS?\b|HANGER|\bKNOBS?\b|\bPEGS?\b"),
    ("decorations", r"DECORATION|HANGING|\bHEARTS?\b|ORNAMENT|WREATH|\bBELLS?\b"),
    ("kitchen", r"KITCHEN|SPOON|TIMER|SCALES|BOTTLE|LUNCH|FOOD"),
    ("bath & beauty", r"\bBATH|\bSOAP|SPONGE|TOILET|WASHBAG|MAKE UP|COMPACT"),
)
# Design lines recur across product types and play the role of a brand.
DESIGN_LINES = (
    "RETROSPOT",
    "REGENCY",
    "SPACEBOY",
    "WOODLAND",
    "PAISLEY",
    "POLKADOT",
    "VINTAGE",
    "SKULL",
    "LONDON",
    "DOLLY GIRL",
    "CIRCUS PARADE",
    "SPOTTY",
    "ROSE",
    "BIRD",
    "ENGLISH ROSE",
    "APPLES",
    "JUNGLE",
    "ALPHABET",
    "PANTRY",
    "BAROQUE",
    "ANTIQUE",
)


def categorise(descriptions: pd.Series) -> pd.Series:
    """Category of each description by the first matching rule, else 'other'."""
    text = descriptions.fillna("").str.upper()
    out = pd.Series("other", index=descriptions.index, dtype="object")
    undecided = pd.Series(True, index=descriptions.index)
    for name, pattern in CATEGORY_RULES:
        hit = undecided & text.str.contains(pattern, regex=True)
        out[hit] = name
        undecided &= ~hit
    return out


def design_line(descriptions: pd.Series) -> pd.Series:
    """Design line of each description (first one named), else 'unbranded'."""
    text = descriptions.fillna("").str.upper()
    pattern = "(" + "|".join(re.escape(d) for d in DESIGN_LINES) + ")"
    return text.str.extract(pattern, expand=False).str.lower().fillna("unbranded")


def from_online_retail(raw: pd.DataFrame, source: str) -> RawTables:
    """Map the UCI Online Retail invoice lines to the contract.

    Each invoice line becomes a purchase event with the invoice as order id. Refused
    with a reason: cancellations (invoice starting with C), non-product stock codes,
    non-positive prices and quantities, lines without a customer. The catalogue is
    derived from the accepted lines: the most frequent description as title, the
    median price, a category and design line derived from the description.
    """
    require_columns(raw, ONLINE_RETAIL_COLUMNS, source)
    invoice = raw["InvoiceNo"].fillna("").str.strip()
    code = raw["StockCode"].fillna("").str.strip().str.upper()
    quantity = pd.to_numeric(raw["Quantity"], errors="coerce")
    price = pd.to_numeric(raw["UnitPrice"], errors="coerce")
    customer = raw["CustomerID"].fillna("").str.strip().str.replace(r"\.0$", "", regex=True)
    checks = {
        "cancellation (InvoiceNo starts with C)": invoice.str.startswith("C"),
        "non-product stock code": ~code.str.match(PRODUCT_CODE),
        "UnitPrice not positive": ~(price > 0),
        "Quantity not positive": ~(quantity > 0),
        "missing CustomerID": customer == "",
    }
    reason = pd.Series("", index=raw.index, dtype="object")
    for text, failed in checks.items():
        reason = reason.where(~failed, reason + np.where(reason == "", "", "; ") + text)
    events = pd.DataFrame(
        {
            C.user: customer,
            C.item: code,
            C.event: "purchase",
            C.timestamp: raw["InvoiceDate"],
            C.quantity: raw["Quantity"],
            C.price: raw["UnitPrice"],
            C.order: invoice,
            C.source_row: raw[C.source_row],
            C.reason: reason,
        }
    )
    ok = reason == ""
    lines = pd.DataFrame(
        {
            C.item: code[ok],
            "description": raw["Description"][ok].fillna("").str.strip(),
            C.price: price[ok],
        }
    )
    items = _catalogue_from_lines(lines)
    users = (
        pd.DataFrame({C.user: customer[ok], C.region: raw["Country"][ok]})
        .drop_duplicates(C.user, keep="last")
        .reset_index(drop=True)
    )
    users[C.source_row] = np.arange(1, len(users) + 1).astype(str)
    return RawTables(
        events=events,
        items=items,
        users=users,
        sources={"events": source, "items": f"{source} (derived)", "users": f"{source} (derived)"},
    )


def _catalogue_from_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """One catalogue row per stock code from its invoice lines."""
    if lines.empty:
        return pd.DataFrame(columns=[*ITEM_COLUMNS, C.source_row])
    titles = (
        lines[lines["description"] != ""]
        .groupby([C.item, "description"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values([C.item, "n", "description"], ascending=[True, False, True])
        .drop_duplicates(C.item)
        .set_index(C.item)["description"]
    )
    price = lines.groupby(C.item)[C.price].median()
    items = pd.DataFrame({C.item: price.index})
    items[C.title] = items[C.item].map(titles).fillna("")
    items[C.category] = categorise(items[C.title])
    items[C.brand] = design_line(items[C.title])
    items[C.price] = price.round(2).astype(str).to_numpy()
    items[C.in_stock] = "true"
    items[C.source_row] = np.arange(1, len(items) + 1).astype(str)
    return items


# --- Generic CSV with a column mapping ------------------------------------------------


def from_mapping(
    frames: dict[str, pd.DataFrame], mapping: dict[str, Any], sources: dict[str, str]
) -> RawTables:
    """Rename a shop's own columns to the contract using a mapping file's content.

    ``mapping`` has a section per table (``events`` required, ``items`` and ``users``
    optional), each with ``columns`` (contract name -> source column) and ``constants``
    (contract name -> value). A table with no file of its own is derived from the events
    file: one row per id, the first non-empty value of each mapped column, and for items
    the median event price when no price column is mapped.
    """
    if "events" not in mapping:
        raise ContractError(
            sources.get("mapping", "mapping"), "no 'events' section", column="events"
        )
    events = _apply_section(frames["events"], mapping["events"], sources["events"])
    require_columns(events, EVENT_COLUMNS, sources["events"])
    tables: dict[str, pd.DataFrame] = {"events": events}
    for table, key in (("items", C.item), ("users", C.user)):
        section = mapping.get(table) or {}
        if table in frames:
            tables[table] = _apply_section(frames[table], section, sources[table])
        else:
            tables[table] = _derive(frames["events"], events, section, key, sources["events"])
            sources = {**sources, table: f"{sources['events']} (derived)"}
    return RawTables(
        events=tables["events"], items=tables["items"], users=tables["users"], sources=sources
    )


def _apply_section(frame: pd.DataFrame, section: dict[str, Any], source: str) -> pd.DataFrame:
    columns: dict[str, str] = section.get("columns") or {}
    missing = [src for src in columns.values() if src not in frame.columns]
    if missing:
        raise ContractError(
            source, "column named in the mapping is not in the file", column=missing[0]
        )
    out = pd.DataFrame({dst: frame[src] for dst, src in columns.items()}, index=frame.index)
    for dst, value in (section.get("constants") or {}).items():
        out[dst] = str(value)
    out[C.source_row] = frame[C.source_row]
    return out


def _derive(
    raw: pd.DataFrame, events: pd.DataFrame, section: dict[str, Any], key: str, source: str
) -> pd.DataFrame:
    """A side table (items or users) built from the columns the events file carries."""
    table = (
        _apply_section(raw, section, source)
        if section.get("columns")
        else pd.DataFrame(index=raw.index)
    )
    for dst, value in (section.get("constants") or {}).items():
        table[dst] = str(value)
    table[key] = events[key].str.strip()
    if key == C.item and C.price not in table:
        table[C.price] = pd.to_numeric(events[C.price], errors="coerce").where(lambda p: p > 0)
    table = table.drop(columns=[C.source_row], errors="ignore")
    table = table[table[key].notna() & (table[key] != "")]
    agg = {
        col: ("median" if col == C.price and key == C.item else "first")
        for col in table.columns
        if col != key
    }
    if C.price in agg:
        table[C.price] = pd.to_numeric(table[C.price], errors="coerce").where(lambda p: p > 0)
    out = (
        table.groupby(key, sort=True).agg(agg).reset_index()
        if agg
        else table[[key]].drop_duplicates()
    )
    if C.price in out:
        out[C.price] = out[C.price].round(2).astype(str)
    out[C.source_row] = np.arange(1, len(out) + 1).astype(str)
    return out.astype("string")
