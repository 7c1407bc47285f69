"""The data contract: typed tables, row-level validation and quarantine.

Every row read is either accepted (typed, in the contract) or quarantined with the
reasons it broke the contract, so ``read == accepted + quarantined`` always holds.
A table that cannot be used at all (a missing required column) raises
:class:`ContractError` naming the file and the column.

Rules are vectorised pandas checks rather than a pandera schema: the reasons of every
failing rule are collected per row in one pass, which pandera's failure cases do not give
cheaply on millions of rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.data.columns import (
    EVENT_COLUMNS,
    EVENT_TYPES,
    ITEM_COLUMNS,
    USER_COLUMNS,
    USER_OPTIONAL,
    Columns,
)

C = Columns
EARLIEST = pd.Timestamp("1990-01-01")
TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f"}


class ContractError(ValueError):
    """A table cannot be used at all; names the file and the column."""

    def __init__(self, source: str, message: str, column: str | None = None):
        self.source = source
        self.column = column
        where = f"{source}: column '{column}'" if column else source
        super().__init__(f"{where}: {message}")


@dataclass
class Validated:
    """Outcome of validating one table."""

    table: str
    source: str
    accepted: pd.DataFrame
    quarantined: pd.DataFrame

    @property
    def read(self) -> int:
        return len(self.accepted) + len(self.quarantined)

    def counts(self) -> dict[str, int | str]:
        return {
            "source": self.source,
            "read": self.read,
            "accepted": len(self.accepted),
            "quarantined": len(self.quarantined),
        }

    def reasons(self) -> dict[str, int]:
        """Rows per quarantine reason (a row may carry several)."""
        if self.quarantined.empty:
            return {}
        split = self.quarantined[C.reason].str.split("; ").explode()
        return {str(k): int(v) for k, v in split.value_counts().items()}


def require_columns(frame: pd.DataFrame, required: Sequence[str], source: str) -> None:
    """Stop with a clear message when a required column is missing."""
    missing = [col for col in required if col not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise ContractError(source, f"required column missing (found: {found})", column=missing[0])


def _text(series: pd.Series) -> pd.Series:
    """Strip strings; empty and missing become <NA>."""
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _given(series: pd.Series) -> pd.Series:
    """True where the file holds a value at all (text or number)."""
    if pd.api.types.is_numeric_dtype(series):
        return series.notna()
    return _text(series).notna()


def _number(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _timestamp(series: pd.Series) -> pd.Series:
    """ISO 8601 (or pandas-parseable) timestamps as naive UTC; unparseable become NaT."""
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = pd.to_datetime(series, utc=True)
    else:
        parsed = pd.to_datetime(_text(series), errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_convert(None).astype("datetime64[ns]")


def _boolean(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse yes/no words; returns (values, is_valid)."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(bool), pd.Series(True, index=series.index)
    words = _text(series).str.lower()
    true = words.isin(TRUE_WORDS)
    valid = true | words.isin(FALSE_WORDS)
    return true.astype(bool), valid.fillna(False).astype(bool)


def _split(
    table: str, source: str, raw: pd.DataFrame, typed: pd.DataFrame, rules: dict[str, pd.Series]
) -> Validated:
    """Accept rows that pass every rule; quarantine the others with their reasons."""
    reason = pd.Series("", index=raw.index, dtype="object")
    for text, failed in rules.items():
        mask = failed.fillna(True).to_numpy(dtype=bool)
        reason = reason.where(~mask, reason + np.where(reason == "", "", "; ") + text)
    # A row an adapter refused on the source's own terms keeps that reason alone.
    if C.reason in raw:
        refused = raw[C.reason].fillna("").astype("object")
        reason = refused.where(refused != "", reason)
    bad = (reason != "").to_numpy()
    quarantined = raw.loc[bad].astype("string").copy()
    quarantined[C.reason] = reason[bad].astype("string")
    if C.source_row not in quarantined:
        quarantined[C.source_row] = (np.flatnonzero(bad) + 1).astype(str)
    accepted = typed.loc[~bad].reset_index(drop=True)
    return Validated(table, source, accepted, quarantined.reset_index(drop=True))


def _duplicated(key: pd.Series) -> pd.Series:
    return key.notna() & key.duplicated(keep="first")


def validate_items(raw: pd.DataFrame, source: str) -> Validated:
    """Catalogue rows: unique id, category, positive price, stock flag, optional margin;
    other columns kept as text."""
    require_columns(raw, ITEM_COLUMNS, source)
    typed = pd.DataFrame(index=raw.index)
    typed[C.item] = _text(raw[C.item])
    typed[C.title] = _text(raw[C.title]).fillna("")
    typed[C.category] = _text(raw[C.category])
    typed[C.brand] = _text(raw[C.brand]).fillna("unknown")
    typed[C.price] = _number(raw[C.price])
    typed[C.in_stock], stock_ok = _boolean(raw[C.in_stock])
    rules = {
        "missing item_id": typed[C.item].isna(),
        "duplicate item_id": _duplicated(typed[C.item]),
        "missing category": typed[C.category].isna(),
        "price not a positive number": ~(np.isfinite(typed[C.price]) & (typed[C.price] > 0)),
        "in_stock not true/false": ~stock_ok,
    }
    if C.margin in raw:
        margin = _number(raw[C.margin])
        given = _text(raw[C.margin]).notna()
        rules["margin not a fraction in [0, 1)"] = given & ~((margin >= 0) & (margin < 1))
        typed[C.margin] = margin
    else:
        typed[C.margin] = np.nan
    # Any other column (department, size, manufacturer, tags...) is kept as text: it
    # becomes an item feature, as extra users columns do.
    for col in raw.columns:
        if col not in typed and col not in (C.source_row, C.reason):
            typed[col] = _text(raw[col])
    return _split("items", source, raw, typed, rules)


def validate_users(raw: pd.DataFrame, source: str) -> Validated:
    """Customers: unique id plus optional attributes kept as text (signup date parsed)."""
    require_columns(raw, USER_COLUMNS, source)
    typed = pd.DataFrame(index=raw.index)
    typed[C.user] = _text(raw[C.user])
    rules = {
        "missing user_id": typed[C.user].isna(),
        "duplicate user_id": _duplicated(typed[C.user]),
    }
    extra = [c for c in raw.columns if c not in (C.user, C.source_row, C.reason)]
    for col in extra:
        if col == C.signup_date:
            signup = _timestamp(raw[col])
            given = _text(raw[col]).notna()
            rules["signup_date not a date"] = given & signup.isna()
            typed[col] = signup
        else:
            typed[col] = _text(raw[col])
    for col in USER_OPTIONAL:
        if col not in typed:
            typed[col] = (
                pd.NaT
                if col == C.signup_date
                else pd.Series(pd.NA, index=raw.index, dtype="string")
            )
    return _split("users", source, raw, typed, rules)


def validate_events(
    raw: pd.DataFrame,
    source: str,
    items: pd.DataFrame,
    now: dt.datetime | None = None,
    carry: tuple[str, ...] = (),
) -> Validated:
    """Events: known item, known type, sane timestamp, positive quantity and price.

    ``items`` is the accepted catalogue: events on unknown items are quarantined.
    A missing price on a view or cart event is taken from the catalogue; a purchase
    must carry its own price and an order id. Columns named in ``carry`` pass through
    to the accepted rows as text (a live event's id and session).
    """
    require_columns(raw, EVENT_COLUMNS + carry, source)
    latest = pd.Timestamp(now or dt.datetime.now(dt.UTC).replace(tzinfo=None)) + pd.Timedelta(
        days=1
    )
    typed = pd.DataFrame(index=raw.index)
    typed[C.user] = _text(raw[C.user])
    typed[C.item] = _text(raw[C.item])
    typed[C.event] = _text(raw[C.event]).str.lower()
    typed[C.timestamp] = _timestamp(raw[C.timestamp])
    quantity = _number(raw[C.quantity])
    quantity_given = _given(raw[C.quantity])
    typed[C.quantity] = quantity.fillna(1.0)
    price = _number(raw[C.price])
    price_given = _given(raw[C.price])
    catalogue_price = typed[C.item].map(items.set_index(C.item)[C.price])
    # Only a price that is absent is filled; "nan" or "inf" written in the file is an error.
    fill = ~price_given & (typed[C.event] != "purchase")
    typed[C.price] = price.where(~fill, catalogue_price)
    typed[C.order] = _text(raw[C.order])
    for column in carry:
        typed[column] = _text(raw[column])
    is_purchase = typed[C.event] == "purchase"
    ts = typed[C.timestamp]
    rules = {
        "missing user_id": typed[C.user].isna(),
        "missing item_id": typed[C.item].isna(),
        "unknown item_id": typed[C.item].notna() & ~typed[C.item].isin(items[C.item]),
        "event_type not one of view/add_to_cart/purchase": ~typed[C.event].isin(EVENT_TYPES),
        "timestamp not a date": ts.isna(),
        "timestamp out of range": ts.notna() & ((ts < EARLIEST) | (ts > latest)),
        "quantity not a positive integer": quantity_given
        & ~(np.isfinite(quantity) & (quantity >= 1) & (quantity == np.floor(quantity))),
        "price not a positive number": ~(np.isfinite(typed[C.price]) & (typed[C.price] > 0)),
        "purchase without order_id": is_purchase & typed[C.order].isna(),
    }
    typed[C.quantity] = typed[C.quantity].where(np.isfinite(typed[C.quantity]), 1).astype("int64")
    typed[C.event] = typed[C.event].astype("string")
    result = _split("events", source, raw, typed, rules)
    result.accepted = result.accepted.sort_values([C.timestamp, C.user], kind="stable").reset_index(
        drop=True
    )
    return result


def complete_users(users: pd.DataFrame, events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Add customers seen in events but absent from the users table (no attributes).

    Returns the completed table and how many were added, so the run can report it.
    """
    seen = pd.Index(events[C.user].unique())
    missing = seen.difference(pd.Index(users[C.user]))
    if missing.empty:
        return users, 0
    extra = pd.DataFrame({C.user: pd.array(missing, dtype="string")})
    return pd.concat([users, extra], ignore_index=True), len(missing)


def pseudonym(customer_id: str, key: str) -> str:
    """One customer id's keyed hash (HMAC-SHA256, 16 hex chars): how serving finds a
    pseudonymised customer from the id the shop sends."""
    return "c_" + hmac.new(key.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:16]


def pseudonymise(ids: pd.Series, key: str) -> pd.Series:
    """Replace customer ids by their :func:`pseudonym`.

    Hashes each distinct id once; the mapping is stable for a given key, so the same
    customer keeps the same pseudonym across runs, and it cannot be reversed without the key.
    """
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    hashed = np.array([pseudonym(str(u), key) for u in uniques], dtype=object)
    out = pd.Series(pd.NA, index=ids.index, dtype="string")
    has = codes >= 0
    out[has] = hashed[codes[has]]
    return out
