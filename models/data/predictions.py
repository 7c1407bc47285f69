"""The prediction log's records: what the service answered, and what customers did with it.

Written by the service (one JSON line per record), read by monitoring; this schema is the
contract between the two processes. ``schema_version`` says which shape a line has: a
reader skips (and counts) lines of a version it does not know instead of misreading them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from models.experiments.assignment import Variant

SCHEMA_VERSION = 1
LIST_ENDPOINTS = ("recommend", "cross_sell", "upsell", "similar_items", "popular")
ListEndpoint = Literal["recommend", "cross_sell", "upsell", "similar_items", "popular", "bundle"]
FeedbackEvent = Literal["click", "add_to_cart", "purchase"]


def _now() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = SCHEMA_VERSION
    request_id: str
    user_id: str | None = None
    timestamp: datetime = Field(default_factory=_now)  # taken at the request


class Served(_Record):
    """One answer of a list endpoint: the items in the order shown, and their scores."""

    endpoint: ListEndpoint
    items: list[str]
    scores: list[float]
    model_version: str
    session_id: str | None = None  # an anonymous visitor's session, when given
    variant: Variant = "champion"  # who answered
    experiment: str | None = None  # the experiment running then (its name), if any
    cold_start: bool = False
    latency_ms: float = 0.0
    cart: list[str] | None = None  # cross_sell, bundle (the anchor)
    anchor: str | None = None  # upsell, similar_items
    category: str | None = None  # popular
    error: str | None = None  # the request failed on the service's side (the error's type)


class Feedback(_Record):
    """What a customer did with an item of an answer (``request_id`` names the answer)."""

    endpoint: Literal["feedback"] = "feedback"
    item_id: str
    event: FeedbackEvent
    quantity: int | None = None  # a purchase: how many
    unit_price: float | None = None  # a purchase: what one cost (attribution needs it)


Record = Annotated[Served | Feedback, Field(discriminator="endpoint")]
_RECORD: TypeAdapter[Served | Feedback] = TypeAdapter(Record)
COLUMNS = (
    "schema_version",
    "request_id",
    "endpoint",
    "user_id",
    "timestamp",
    "items",
    "scores",
    "model_version",
    "session_id",
    "variant",
    "experiment",
    "cold_start",
    "latency_ms",
    "cart",
    "anchor",
    "category",
    "error",
    "item_id",
    "event",
    "quantity",
    "unit_price",
)


def to_line(record: Served | Feedback) -> str:
    """One JSON line (no newline) for the log file."""
    return record.model_dump_json(exclude_none=True)


@dataclass(frozen=True)
class PredictionLogFrame:
    """Records as one frame with every column of :data:`COLUMNS` (timestamps in UTC), and
    how many lines could not be read (torn by a crash, or of an unknown schema version)."""

    frame: pd.DataFrame
    unreadable: int = 0


def parse(lines: Iterable[str]) -> PredictionLogFrame:
    """Records from JSON lines; unreadable lines are counted, never fatal (a torn last line
    from a crash must not stop monitoring)."""
    rows, bad = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if int(data.get("schema_version", 1)) > SCHEMA_VERSION:
                raise ValueError(f"schema version {data['schema_version']} > {SCHEMA_VERSION}")
            rows.append(_RECORD.validate_python(data).model_dump())
        except (ValueError, ValidationError, AttributeError):
            bad += 1
    return PredictionLogFrame(frame(rows), bad)


def frame(rows: list[dict]) -> pd.DataFrame:
    """Record dicts as a frame with the log's columns, in order."""
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out
