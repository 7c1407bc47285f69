"""Ingestion logic: validate the three tables together and account for every row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.data.adapters import RawTables
from models.data.columns import EVENT_COLUMNS, Columns
from models.data.contract import (
    Validated,
    complete_users,
    pseudonymise,
    validate_events,
    validate_items,
    validate_users,
)
from models.data.live import already_in

C = Columns
LIVE_SOURCE = "live events (/events)"
ALREADY_IN_FILES = "already in the files (same customer, item, event and time)"


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


def with_live_events(
    result: IngestResult, live: pd.DataFrame, now: dt.datetime | None = None
) -> IngestResult:
    """The files' tables with the live events the service stored (``infra.events``)
    added: checked again with the same rules against the files' catalogue (an item the
    files do not list is quarantined, as in a file), and an event the files also hold
    (same customer, item, event type and time) kept once, from the files, the live copy
    quarantined with its reason. Customer ids arrive as the store keeps them (already
    pseudonymised when that is on) and are not hashed again."""
    if live.empty:
        return result
    raw = live[list(EVENT_COLUMNS)].astype("string")
    checked = validate_events(raw, LIVE_SOURCE, result.items.accepted, now=now)
    files = result.events
    again = already_in(checked.accepted, files.accepted)
    copies = checked.accepted.loc[again].astype("string")
    copies[C.reason] = ALREADY_IN_FILES
    copies[C.source_row] = "live"
    accepted = pd.concat([files.accepted, checked.accepted.loc[~again]], ignore_index=True)
    accepted = accepted.sort_values([C.timestamp, C.user], kind="stable").reset_index(drop=True)
    quarantined = pd.concat(
        [files.quarantined, checked.quarantined, copies], ignore_index=True
    ).astype("string")
    events = Validated("events", f"{files.source} + {LIVE_SOURCE}", accepted, quarantined)
    users, added = complete_users(result.users.accepted, accepted)
    return IngestResult(
        result.items,
        Validated(result.users.table, result.users.source, users, result.users.quarantined),
        events,
        result.users_added_from_events + added,
        result.pseudonymised,
    )


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
