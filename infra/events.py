"""The live event store: where ``/events`` writes what a shop streams, durably and once.

One table of accepted events keyed by ``event_id`` and one of rejected ones with their
reason, behind SQLAlchemy, so one code path serves both profiles: embedded, a SQLite
file under ``$CARTLIFT_HOME/events`` (write-ahead log, synced at every commit); in
production the PostgreSQL the profile already runs (``CARTLIFT_EVENTS_URI``).

Why a database and not a flat file: several service workers append at once, and an
event re-sent after a lost acknowledgement must not be stored twice. The primary key
makes the insert idempotent across workers and restarts (``ON CONFLICT DO NOTHING``),
and a batch is acknowledged only once its transaction is committed, which on SQLite
with ``synchronous=FULL`` (and on PostgreSQL by default) means synced to disk.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from models.data.columns import Columns
from models.data.live import EVENT_ID, LIVE_COLUMNS, SESSION_ID

C = Columns
METADATA = sa.MetaData()
EVENTS = sa.Table(
    "live_events",
    METADATA,
    sa.Column(EVENT_ID, sa.String(128), primary_key=True),
    sa.Column(C.user, sa.String(128), nullable=False, index=True),
    sa.Column(C.item, sa.String(128), nullable=False),
    sa.Column(C.event, sa.String(16), nullable=False),
    sa.Column(C.timestamp, sa.DateTime, nullable=False),
    sa.Column(C.quantity, sa.Integer, nullable=False),
    sa.Column(C.price, sa.Float, nullable=False),
    sa.Column(C.order, sa.String(128)),
    sa.Column(SESSION_ID, sa.String(128), index=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
)
REJECTED = sa.Table(
    "live_events_rejected",
    METADATA,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(EVENT_ID, sa.String(128)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),  # as sent, JSON
    sa.Column("received_at", sa.DateTime, nullable=False),
)


def exists(uri: str) -> bool:
    """Whether a store may hold events (a SQLite file that was never written holds none;
    a server is asked)."""
    url = sa.make_url(uri)
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and Path(str(url.database)).exists()
    return True


def connect(uri: str) -> Engine:
    """An engine on the store, its tables created if missing."""
    url = sa.make_url(uri)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _durable(conn: Any, _: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writers
            cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            cursor.close()

    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    METADATA.create_all(engine, checkfirst=True)
    return engine


def _insert(engine: Engine) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(EVENTS).on_conflict_do_nothing(index_elements=[EVENT_ID])


def append(engine: Engine, accepted: pd.DataFrame, rejected: pd.DataFrame) -> int:
    """Store a checked batch in one transaction: accepted events once each (an id already
    stored is skipped) and rejected ones with their reason. Returns how many accepted
    events were new. When it returns, the batch is durable."""
    now = datetime.now(UTC).replace(tzinfo=None)
    frame = accepted[list(LIVE_COLUMNS)].astype(object)
    frame[C.timestamp] = [pd.Timestamp(t).to_pydatetime() for t in accepted[C.timestamp]]
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} | {"received_at": now}
        for r in frame.where(accepted.notna(), None).to_dict("records")
    ]
    bad = [
        {
            EVENT_ID: r.event_id,
            "reason": r.reason,
            "event": json.dumps(r.event, default=str),
            "received_at": now,
        }
        for r in rejected.itertuples(index=False)
    ]
    new = 0
    with engine.begin() as conn:
        if rows:
            ids = conn.execute(_insert(engine).returning(EVENTS.c[EVENT_ID]), rows).all()
            new = len(ids)
        if bad:
            conn.execute(REJECTED.insert(), bad)
    return new


def read(engine: Engine, since: datetime | None = None) -> pd.DataFrame:
    """Accepted events (:data:`LIVE_COLUMNS`) by time; with ``since``, only those whose
    own timestamp is at or after it."""
    query = sa.select(*(EVENTS.c[c] for c in LIVE_COLUMNS)).order_by(
        EVENTS.c[C.timestamp], EVENTS.c[EVENT_ID]
    )
    if since is not None:
        query = query.where(EVENTS.c[C.timestamp] >= since)
    with engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    text = [c for c in LIVE_COLUMNS if c not in (C.timestamp, C.quantity, C.price)]
    return frame.astype(dict.fromkeys(text, "string"))


def counts(engine: Engine) -> dict[str, int]:
    """Events stored and rejected so far."""
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one()
        refused = conn.execute(sa.select(sa.func.count()).select_from(REJECTED)).scalar_one()
    return {"stored": int(stored), "rejected": int(refused)}


def quarantine(engine: Engine) -> pd.DataFrame:
    """The rejected events, oldest first: event_id (when it had one), reason, the event as
    sent (JSON) and when it came."""
    query = sa.select(
        REJECTED.c[EVENT_ID], REJECTED.c.reason, REJECTED.c.event, REJECTED.c.received_at
    ).order_by(REJECTED.c.id)
    with engine.connect() as conn:
        return pd.read_sql(query, conn)


def session_items(engine: Engine, session_id: str, minutes: float, limit: int = 20) -> list[str]:
    """The items of a session's latest events (at most ``limit``, taken in the last
    ``minutes`` by the store's clock), oldest first: what an in-session answer folds in."""
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=minutes)
    query = (
        sa.select(EVENTS.c[C.item])
        .where(EVENTS.c[SESSION_ID] == session_id, EVENTS.c.received_at >= since)
        .order_by(EVENTS.c[C.timestamp].desc(), EVENTS.c.received_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        items = [str(row[0]) for row in conn.execute(query)]
    return items[::-1]
