"""Which answer sold what: purchases attributed to the answers that showed the item.

The rules, in order (each purchase is attributed at most once):

1. A ``purchase`` sent to ``/feedback`` names its answer (``request_id``): it is attributed
   to that answer when the answer exists and showed the item, and carries a unit price.
   Otherwise it is rejected with its reason (unknown request, item not in the answer,
   no unit price) and counted, never attributed.
2. A purchase line that arrives later through ingestion (an order) and matches an
   attributed feedback purchase (same customer and item, within the window either side)
   is that same purchase: it is not counted again. Each feedback purchase matches at
   most one order line (the nearest in time).
3. Any other purchase line is attributed to the last answer that showed that item to that
   customer in the window before it (default 24 h): last touch. None: unattributed.

Answers to anonymous visitors (no customer id) can only be credited through rule 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.data.columns import Columns

C = Columns
WINDOW = pd.Timedelta(hours=24)
ANSWER_COLUMNS = ("request_id", "endpoint", "variant", "experiment", "model_version")
PURCHASE_COLUMNS = (
    "user_id",
    "item_id",
    "timestamp",
    "quantity",
    "unit_price",
    "order_id",
    "source",  # "feedback", "order" or "feedback+order"
    *ANSWER_COLUMNS,  # the answer credited; request_id missing: unattributed
)


@dataclass(frozen=True)
class Attribution:
    """Every purchase with the answer credited (if any), and the feedback refused."""

    purchases: pd.DataFrame  # PURCHASE_COLUMNS
    rejected: pd.DataFrame  # feedback lines refused: request_id, user_id, item_id, reason

    @property
    def attributed(self) -> pd.DataFrame:
        return self.purchases[self.purchases["request_id"].notna()]

    def counts(self) -> dict[str, int]:
        """Purchases by outcome and refused feedback by reason, for logs and reports."""
        p = self.purchases
        out = {
            "purchases": len(p),
            "attributed": int(p["request_id"].notna().sum()),
            "unattributed": int(p["request_id"].isna().sum()),
            "matched_feedback_and_order": int((p["source"] == "feedback+order").sum()),
        }
        for reason, n in self.rejected["reason"].value_counts().sort_index().items():
            out[f"rejected: {reason}"] = int(n)
        return out


def exposures(served: pd.DataFrame) -> pd.DataFrame:
    """One row per item shown to a known customer: user_id, item_id, timestamp and the
    answer's columns."""
    shown = served[served["user_id"].notna()]
    rows = shown[["user_id", "timestamp", "items", *ANSWER_COLUMNS]].explode("items")
    rows = rows.rename(columns={"items": "item_id"}).dropna(subset=["item_id"])
    return rows.reset_index(drop=True)


def attribute(
    served: pd.DataFrame,
    feedback: pd.DataFrame,
    orders: pd.DataFrame,
    window: pd.Timedelta = WINDOW,
) -> Attribution:
    """Apply the module's rules. ``served``: the prediction log's answers (``Served``
    records, with ``items`` lists); ``feedback``: its feedback records (``event``,
    ``quantity``, ``unit_price``); ``orders``: purchase lines in the contract's columns
    (user_id, item_id, timestamp, quantity, price, order_id)."""
    answers = served.drop_duplicates("request_id").set_index("request_id")
    bought = feedback[feedback["event"] == "purchase"].reset_index(drop=True)
    reason = _refusals(bought, answers)
    ok = bought[reason.isna()]
    rejected = bought.loc[reason.notna(), ["request_id", "user_id", "item_id"]].assign(
        reason=reason[reason.notna()].to_numpy()
    )
    told = pd.DataFrame(
        {
            "user_id": ok["user_id"].to_numpy(),
            "item_id": ok["item_id"].to_numpy(),
            "timestamp": _utc(ok["timestamp"]),
            "quantity": ok["quantity"].fillna(1).astype(int).to_numpy(),
            "unit_price": ok["unit_price"].astype(float).to_numpy(),
            "order_id": pd.NA,
            "source": "feedback",
            **{c: answers.loc[ok["request_id"], c].to_numpy() for c in ANSWER_COLUMNS[1:]},
            "request_id": ok["request_id"].to_numpy(),
        }
    )
    lines = _order_lines(orders)
    matched = _match(told, lines, window)
    told.loc[matched["told"], "source"] = "feedback+order"
    told.loc[matched["told"], "order_id"] = lines.loc[matched["line"], "order_id"].to_numpy()
    rest = lines[~lines.index.isin(matched["line"])]
    credited = _last_touch(rest, exposures(served), window)
    purchases = pd.concat([told, credited], ignore_index=True)[list(PURCHASE_COLUMNS)]
    return Attribution(
        purchases.sort_values(["timestamp", "user_id", "item_id"], ignore_index=True),
        rejected.reset_index(drop=True),
    )


def _refusals(bought: pd.DataFrame, answers: pd.DataFrame) -> pd.Series:
    """Per feedback purchase, why it cannot be attributed (missing: it can)."""
    reason = pd.Series(pd.NA, index=bought.index, dtype="object")
    price = pd.to_numeric(bought["unit_price"], errors="coerce")
    reason[~(price > 0)] = "purchase without a unit price"
    known = bought["request_id"].isin(answers.index)
    lists = dict(zip(answers.index, answers["items"], strict=True))
    shown = pd.Series(
        [
            bool(known_) and item in (lists[req] or [])
            for req, item, known_ in zip(
                bought["request_id"], bought["item_id"], known, strict=True
            )
        ],
        index=bought.index,
        dtype=bool,
    )
    reason[known & ~shown] = "item not in the answer"
    reason[~known] = "unknown request_id"
    return reason


def _order_lines(orders: pd.DataFrame) -> pd.DataFrame:
    lines = orders[orders[C.event] == "purchase"] if C.event in orders else orders
    return pd.DataFrame(
        {
            "user_id": lines[C.user].to_numpy(),
            "item_id": lines[C.item].to_numpy(),
            "timestamp": _utc(lines[C.timestamp]),
            "quantity": lines[C.quantity].fillna(1).astype(int).to_numpy(),
            "unit_price": lines[C.price].astype(float).to_numpy(),
            "order_id": lines[C.order].to_numpy() if C.order in lines else pd.NA,
        }
    )


def _match(told: pd.DataFrame, lines: pd.DataFrame, window: pd.Timedelta) -> pd.DataFrame:
    """Pairs (told row, line row) of the same purchase: same customer and item, within
    ``window``, nearest first, each side used once."""
    pairs = (
        told[["user_id", "item_id", "timestamp"]]
        .reset_index(names="told")
        .merge(
            lines[["user_id", "item_id", "timestamp"]].reset_index(names="line"),
            on=["user_id", "item_id"],
            suffixes=("_told", "_line"),
        )
    )
    gap = (pairs["timestamp_line"] - pairs["timestamp_told"]).abs()
    pairs = pairs[gap <= window].assign(gap=gap[gap <= window]).sort_values(["gap", "told", "line"])
    taken_told: set[int] = set()
    taken_line: set[int] = set()
    keep = []
    for t, line in zip(pairs["told"], pairs["line"], strict=True):  # greedy, nearest first
        if t not in taken_told and line not in taken_line:
            taken_told.add(t)
            taken_line.add(line)
            keep.append((t, line))
    return pd.DataFrame(keep, columns=["told", "line"], dtype=np.int64)


def _last_touch(lines: pd.DataFrame, shown: pd.DataFrame, window: pd.Timedelta) -> pd.DataFrame:
    """Each line with the last answer that showed its item to its customer within
    ``window`` before it (none: the answer's columns missing)."""
    out = lines.assign(source="order").reset_index(drop=True)
    if out.empty or shown.empty:
        return out.assign(**{c: pd.Series(dtype="object") for c in ANSWER_COLUMNS})
    left = out.assign(_row=np.arange(len(out))).sort_values("timestamp")
    right = shown.assign(timestamp=pd.to_datetime(shown["timestamp"], utc=True))
    right = right.sort_values("timestamp")
    joined = pd.merge_asof(
        left,
        right,
        on="timestamp",
        by=["user_id", "item_id"],
        direction="backward",
        tolerance=window,
    )
    return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def _utc(times: pd.Series) -> pd.Series:
    """Timestamps in UTC, positionally (index dropped)."""
    return pd.Series(pd.to_datetime(times, utc=True).array)
