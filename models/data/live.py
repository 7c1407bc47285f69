"""Live events: what a shop streams to ``/events`` (a view, a cart, a purchase, as it
happens), checked one by one with the rules ingestion applies to a file
(:func:`models.data.contract.validate_events`), plus what a stream needs: an
``event_id`` that makes re-sending a batch harmless, and an optional ``session_id``.

A batch is never refused as a whole for one bad event: each event is accepted or
rejected with its reason, and the caller stores both (the rejected ones in quarantine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.data.columns import EVENT_COLUMNS, Columns
from models.data.contract import validate_events

C = Columns
EVENT_ID = "event_id"
SESSION_ID = "session_id"
LIVE_COLUMNS = (EVENT_ID, *EVENT_COLUMNS, SESSION_ID)
MAX_ID = 128  # characters of an event, customer, item, order or session id
REJECTED_COLUMNS = ("position", EVENT_ID, "reason", "event")


@dataclass(frozen=True)
class LiveBatch:
    """One request's events, checked: accepted rows (:data:`LIVE_COLUMNS`, typed as the
    lake's events), the rejected ones with their position in the batch and reason, and
    the positions that repeat an event id earlier in the same batch (one event sent
    twice: stored once)."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame  # REJECTED_COLUMNS; "event" is the event as sent, as JSON-able dict
    repeated: list[int]

    @property
    def size(self) -> int:
        return len(self.accepted) + len(self.rejected) + len(self.repeated)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # JSON true is not a number nor an id
        return str(value).lower()
    return str(value)


def _shape(event: Any) -> str:
    """What is wrong with an event before its values are read ("" when nothing)."""
    if not isinstance(event, Mapping):
        return "not an object"
    unknown = sorted(set(event) - set(LIVE_COLUMNS))
    if unknown:
        return f"unknown field {unknown[0]!r} (fields: {', '.join(LIVE_COLUMNS)})"
    nested = [k for k, v in event.items() if isinstance(v, Mapping | list)]
    if nested:
        return f"{nested[0]} is not a single value"
    event_id = _as_text(event.get(EVENT_ID))
    if not event_id or not event_id.strip():
        return "missing event_id"
    too_long = [k for k, v in event.items() if k != C.timestamp and len(_as_text(v) or "") > MAX_ID]
    if too_long:
        return f"{too_long[0]} longer than {MAX_ID} characters"
    return ""


def check_events(
    events: Sequence[Any],
    items: pd.DataFrame,
    now: dt.datetime | None = None,
    customer: Callable[[str], str] | None = None,
) -> LiveBatch:
    """Check a batch against the catalogue ``items`` (item_id, price): each event is
    accepted or rejected with a reason; ``customer`` maps a customer id as the lake keeps
    it (a pseudonym), applied to accepted and rejected events alike."""
    rejected: list[tuple[int, str | None, str, dict]] = []
    seen: set[str] = set()
    rows, positions, repeated = [], [], []
    for at, event in enumerate(events):
        wrong = _shape(event)
        if wrong:
            sent = dict(event) if isinstance(event, Mapping) else {"value": repr(event)[:200]}
            event_id = _as_text(sent.get(EVENT_ID))
            rejected.append((at, event_id, wrong, sent))
            continue
        event_id = str(_as_text(event[EVENT_ID])).strip()
        if event_id in seen:
            repeated.append(at)
            continue
        seen.add(event_id)
        rows.append({c: _as_text(event.get(c)) for c in LIVE_COLUMNS} | {EVENT_ID: event_id})
        positions.append(at)
    if customer is not None:  # sessions too: /recommend looks them up by pseudonym
        for row in [*rows, *(r[3] for r in rejected)]:
            for column in (C.user, SESSION_ID):
                if row.get(column):
                    row[column] = customer(str(row[column]))
    raw = pd.DataFrame(rows, columns=list(LIVE_COLUMNS), dtype="string")
    checked = validate_events(raw, "/events", items, now=now, carry=(EVENT_ID, SESSION_ID))
    where: dict[str, int] = dict(zip(raw[EVENT_ID].astype(str), positions, strict=True))
    for _, refused in checked.quarantined.iterrows():
        given = {c: str(refused[c]) for c in LIVE_COLUMNS if pd.notna(refused[c])}
        event_id = str(refused[EVENT_ID])
        rejected.append((where[event_id], event_id, str(refused[C.reason]), given))
    accepted = checked.accepted[list(LIVE_COLUMNS)].reset_index(drop=True)
    rejected.sort(key=lambda r: r[0])
    out = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    out["position"] = out["position"].astype(np.int64)
    return LiveBatch(accepted, out, repeated)


def already_in(live: pd.DataFrame, events: pd.DataFrame) -> np.ndarray:
    """Per live event, whether ``events`` (a file's, the lake's) already hold it: the same
    customer, item, event type and time (a shop that streams and exports the same event)."""
    key = [C.user, C.item, C.event, C.timestamp]
    seen = live[key].merge(events[key].drop_duplicates(), on=key, how="left", indicator=True)
    return (seen["_merge"] == "both").to_numpy()
