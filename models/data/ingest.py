"""Ingestion logic: validate the three tables together and account for every row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.data.adapters import RawTables
from models.data.columns import Columns
from models.data.contract import (
    Validated,
    complete_users,
    pseudonymise,
    validate_events,
    validate_items,
    validate_users,
)

C = Columns


@dataclass
class IngestResult:
    """Accepted and quarantined rows of each table, plus what ingestion did to them."""

    items: Validated
    users: Validated
    events: Validated
    users_added_from_events: int
    pseudonymised: bool

    def tables(self) -> dict[str, Validated]:
        return {"items": self.items, "users": self.users, "events": self.events}

    def report(self) -> dict[str, Any]:
        """Row accounting per table (``read = accepted + quarantined``) and reasons."""
        report: dict[str, Any] = {
            name: {**v.counts(), "reasons": v.reasons()} for name, v in self.tables().items()
        }
        # Customers seen only in events are added to the accepted users after validation:
        # counted on their own, so read = accepted + quarantined holds for the file.
        added = self.users_added_from_events
        report["users"]["read"] -= added
        report["users"]["accepted"] -= added
        report["users"]["added_from_events"] = added
        report["pseudonymised"] = self.pseudonymised
        ev = self.events.accepted
        if len(ev):
            report["window"] = {
                "first": str(ev[C.timestamp].min()),
                "last": str(ev[C.timestamp].max()),
            }
        return report


def validate_tables(
    raw: RawTables, pseudonymise_key: str | None = None, now: dt.datetime | None = None
) -> IngestResult:
    """Validate items, then users, then events against the accepted catalogue.

    With ``pseudonymise_key`` every customer id, accepted or quarantined, is replaced by
    its keyed hash before anything is written, so no raw id leaves ingestion.
    """
    items = validate_items(raw.items, raw.sources.get("items", "items"))
    users = validate_users(raw.users, raw.sources.get("users", "users"))
    events = validate_events(
        raw.events, raw.sources.get("events", "events"), items.accepted, now=now
    )
    if pseudonymise_key:
        for table in (users, events):
            for frame in (table.accepted, table.quarantined):
                if C.user in frame:
                    frame[C.user] = pseudonymise(frame[C.user], pseudonymise_key)
    users.accepted, added = complete_users(users.accepted, events.accepted)
    return IngestResult(items, users, events, added, pseudonymised=bool(pseudonymise_key))


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The row accounting in words, one line per table."""
    lines = []
    for name in ("items", "users", "events"):
        r = report[name]
        line = (
            f"{name}: read {r['read']:,} = accepted {r['accepted']:,}"
            f" + quarantined {r['quarantined']:,}"
        )
        if r["reasons"]:
            top = ", ".join(
                f"{k} ({v:,})" for k, v in sorted(r["reasons"].items(), key=lambda kv: -kv[1])
            )
            line += f" [{top}]"
        if name == "users" and r.get("added_from_events"):
            added = r["added_from_events"]
            line += f"; {added:,} customers seen only in events added without attributes"
        lines.append(line)
    return lines


def as_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The accounting as a small table (for MLflow and tests)."""
    return pd.DataFrame(
        [
            {
                "table": t,
                "read": report[t]["read"],
                "accepted": report[t]["accepted"],
                "quarantined": report[t]["quarantined"],
            }
            for t in ("items", "users", "events")
        ]
    )
