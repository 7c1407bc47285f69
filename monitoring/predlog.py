"""Reading the service's prediction log (JSON Lines partitioned by day)."""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path

import pandas as pd

from models.data.predictions import PredictionLogFrame, parse

log = logging.getLogger(__name__)


def read_log(directory: Path, since: pd.Timestamp | None = None) -> PredictionLogFrame:
    """Records from day partitions on or after ``since`` (the schema of
    :mod:`models.data.predictions`); unreadable lines are skipped and counted."""
    parts = []
    for part in sorted(Path(directory).glob("date=*/part-*.jsonl")):
        day = pd.Timestamp(part.parent.name.removeprefix("date="), tz="UTC")
        if since is None or day >= since.floor("D"):
            parts.append(part.read_text(encoding="utf-8", errors="replace").splitlines())
    read = parse(chain.from_iterable(parts))
    if read.unreadable:
        log.warning("prediction log: %d unreadable lines skipped", read.unreadable)
    if since is None:
        return read
    return PredictionLogFrame(read.frame[read.frame["timestamp"] >= since], read.unreadable)
