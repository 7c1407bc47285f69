"""Reading the service's prediction log (JSON Lines partitioned by day)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def read_log(directory: Path, since: pd.Timestamp | None = None) -> tuple[pd.DataFrame, int]:
    """Records from day partitions on or after ``since`` and the number of unreadable
    lines (skipped and counted: a torn last line from a crash must not stop monitoring)."""
    records, bad = [], 0
    for part in sorted(Path(directory).glob("date=*/part-*.jsonl")):
        day = pd.Timestamp(part.parent.name.removeprefix("date="), tz="UTC")
        if since is not None and day < since.floor("D"):
            continue
        with part.open(encoding="utf-8", errors="replace") as src:
            for line in src:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    bad += 1
    if bad:
        log.warning("prediction log: %d unreadable lines skipped", bad)
    frame = pd.DataFrame(records)
    if "timestamp" in frame:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce")
        if since is not None:
            frame = frame[frame["timestamp"] >= since]
    return frame, bad
