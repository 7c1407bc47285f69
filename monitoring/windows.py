"""What the monitor compares: the champion's training window against recent events.

Each event becomes a row of shop-level columns worth watching. Raw ids are never tested:
a Jensen-Shannon distance over thousands of item or user ids raises false alarms on small
windows, so ids are aggregated into what they mean for the model: is the user or item new
to it, and how popular was the item in the reference (rank bands).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.data.columns import Columns

C = Columns
NUMERICAL = ("price", "user_events_per_day", "basket_size")
CATEGORICAL = ("category", "event_type", "user_kind", "item_kind", "popularity_band")
BURN_IN_WINDOWS = 4
REQUIRED = (C.user, C.item, C.event, C.timestamp, C.price)


class WindowError(ValueError):
    """The current window cannot be judged (empty, too small or malformed)."""


@dataclass(frozen=True)
class Windows:
    reference: pd.DataFrame
    current: pd.DataFrame
    reference_span: tuple[str, str]
    current_span: tuple[str, str]


def _check(events: pd.DataFrame, what: str) -> None:
    missing = [c for c in REQUIRED if c not in events.columns]
    if missing:
        raise WindowError(f"{what}: column {missing[0]!r} missing")
    if not pd.api.types.is_datetime64_any_dtype(events[C.timestamp]):
        raise WindowError(f"{what}: column 'timestamp' is not a timestamp")


def split(
    events: pd.DataFrame,
    train_start: pd.Timestamp,
    cutoff: pd.Timestamp,
    window_days: int,
    min_events: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): the champion's training events, and the last ``window_days``
    of events after its cutoff. Raises :class:`WindowError` when there is nothing to judge."""
    _check(events, "events")
    ts = events[C.timestamp]
    reference = events[(ts >= train_start) & (ts < cutoff)]
    later = events[ts >= cutoff]
    if later.empty:
        raise WindowError(f"no events after the champion's cutoff {cutoff}: nothing new to compare")
    end = later[C.timestamp].max()
    current = later[later[C.timestamp] > end - pd.Timedelta(days=window_days)]
    if len(current) < min_events:
        raise WindowError(
            f"only {len(current)} events in the current window (last {window_days} days to "
            f"{end}); at least {min_events} are needed for a verdict"
        )
    if reference.empty:
        raise WindowError(f"no events in the champion's training window {train_start}..{cutoff}")
    return reference, current


def popularity_bands(reference: pd.DataFrame) -> pd.Series:
    """Band of each item by its reference popularity rank: top 1%, top 10%, top 50%, tail."""
    counts = reference[C.item].value_counts(sort=True)
    rank = np.arange(1, len(counts) + 1) / max(len(counts), 1)
    bands = np.select(
        [rank <= 0.01, rank <= 0.10, rank <= 0.50], ["top1", "top10", "top50"], "tail"
    )
    return pd.Series(bands, index=counts.index)


def describe(
    events: pd.DataFrame,
    items: pd.DataFrame,
    first_seen: tuple[pd.Series, pd.Series],
    bands: pd.Series,
    window_days: int,
) -> pd.DataFrame:
    """The watched columns, one row per event of ``events``.

    Every column means the same in any window, whatever its length: a user (item) is
    *new* when its first event (``first_seen``: per user id, per item id) lies less than
    ``window_days`` before this event, activity is events per active day within spans of
    ``window_days``, and popularity bands come from the reference (``bands``), so a stable
    shop looks the same week after week.
    """
    recent = pd.Timedelta(days=window_days)
    first_user = events[C.user].map(first_seen[0])
    first_item = events[C.item].map(first_seen[1])
    # Activity per active day within spans of window_days, so a 90-day reference and a
    # 7-day window measure the same thing.
    span = (events[C.timestamp].max() - events[C.timestamp]).dt.days // window_days
    keys = [events[C.user], span]
    active_days = events[C.timestamp].dt.floor("D").groupby(keys).transform("nunique")
    per_user = events[C.item].groupby(keys).transform("size") / active_days
    category = events[C.item].map(items.set_index(C.item)[C.category])
    basket = pd.Series(0.0, index=events.index)
    if C.order in events:
        buys = events[C.event] == "purchase"
        basket[buys] = events.loc[buys].groupby(C.order)[C.item].transform("size").astype(float)
    return pd.DataFrame(
        {
            "category": category.fillna("unknown").astype(str).to_numpy(),
            "price": events[C.price].to_numpy(dtype=float),
            "event_type": events[C.event].astype(str).to_numpy(),
            "user_events_per_day": per_user.to_numpy(dtype=float),
            "user_kind": np.where(events[C.timestamp] - first_user < recent, "new", "returning"),
            "item_kind": np.where(events[C.timestamp] - first_item < recent, "new", "known"),
            "popularity_band": events[C.item].map(bands).fillna("new").to_numpy(),
            "basket_size": basket.to_numpy(),
        }
    )


def windows(
    events: pd.DataFrame,
    items: pd.DataFrame,
    train_start: pd.Timestamp,
    cutoff: pd.Timestamp,
    window_days: int,
    min_events: int,
) -> Windows:
    """Reference and current windows, described by the watched columns.

    The reference is the whole training window: what the champion learned from.
    """
    reference, current = split(events, train_start, cutoff, window_days, min_events)
    bands = popularity_bands(reference)
    first_seen = (
        events.groupby(C.user)[C.timestamp].min(),
        events.groupby(C.item)[C.timestamp].min(),
    )
    # In the first weeks of the data every customer looks new on their first visit: those
    # events cannot say whether a user is new, so they stay out of the description (not
    # out of the popularity bands).
    known_from = events[C.timestamp].min() + pd.Timedelta(days=BURN_IN_WINDOWS * window_days)
    if (reference[C.timestamp] >= known_from).any():
        reference = reference[reference[C.timestamp] >= known_from]
    span = lambda f: (str(f[C.timestamp].min()), str(f[C.timestamp].max()))  # noqa: E731
    return Windows(
        reference=describe(reference, items, first_seen, bands, window_days),
        current=describe(current, items, first_seen, bands, window_days),
        reference_span=span(reference),
        current_span=span(current),
    )
