"""Catalogue changes pushed by the shop, kept on disk so every worker and reload sees them.

``POST /admin/items`` appends the changes to ``$CARTLIFT_HOME/serving/catalogue_changes.jsonl``
and applies them at once in the worker that took the call; the other workers notice the
file grew on their next poll. Every model loaded later (a new champion, a restart) gets
the whole log applied: the shop's latest word on price and stock wins, and products added
since the last training stay recommendable through their features.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from models.data.columns import Columns

C = Columns


class ChangeLog:
    def __init__(self, path: Path):
        self.path = path

    def size(self) -> int:
        """Bytes on disk: a cheap test for changes written by another worker."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append and fsync: an acknowledged change survives a crash."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = "".join(json.dumps({**r, "at": at}) + "\n" for r in records)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())

    def read(self) -> pd.DataFrame:
        """Every change so far, the latest per item id last (empty frame when none)."""
        if self.size() == 0:
            return pd.DataFrame(columns=[C.item])
        rows = []
        with self.path.open(encoding="utf-8") as src:
            for line in src:
                if line.endswith("\n"):  # a line still being written by another worker waits
                    rows.append(json.loads(line))
        frame = pd.DataFrame(rows).drop(columns="at")
        # A later change to an item keeps what an earlier one set unless it sets it again.
        return frame.groupby(C.item, sort=False).last().reset_index()
