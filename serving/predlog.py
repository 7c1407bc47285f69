"""The prediction log: every response and feedback event, appended off the request path.

Requests put a record on an in-memory queue (microseconds); a daemon thread appends the
records to JSON Lines files partitioned by day,
``$CARTLIFT_HOME/predictions/date=YYYY-MM-DD/part-<pid>.jsonl``, one file per worker
process. Records that cannot be written (disk full, read-only home) are counted as lost
and reported (an error log line, ``/metadata`` and the ``on_write`` callback, which the
service turns into a Prometheus counter), never silently dropped.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from models.data.predictions import Feedback, Served, to_line

log = logging.getLogger(__name__)


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        flush_seconds: float = 1.0,
        on_write: Callable[[str, int], None] | None = None,
    ):
        """``on_write(outcome, n)`` hears of every batch: outcome "written" or "lost"."""
        self.directory = Path(directory)
        self.flush_seconds = flush_seconds
        self.on_write = on_write
        self._queue: queue.SimpleQueue[Served | Feedback] = queue.SimpleQueue()
        self.written = 0
        self.lost = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, record: Served | Feedback) -> None:
        """Queue a record (its timestamp was taken when it was made, at the request)."""
        self._queue.put(record)

    def _drain(self) -> list[Served | Feedback]:
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch

    def _write(self, batch: list[Served | Feedback]) -> None:
        by_day: dict[str, list[str]] = {}
        for record in batch:
            by_day.setdefault(record.timestamp.strftime("%Y-%m-%d"), []).append(to_line(record))
        for day, lines in by_day.items():
            path = self.directory / f"date={day}" / f"part-{os.getpid()}.jsonl"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as fh:
                    fh.write("\n".join(lines) + "\n")
                self.written += len(lines)
                outcome = "written"
            except OSError as exc:
                self.lost += len(lines)
                outcome = "lost"
                log.error(
                    "prediction log: %d records lost writing %s: %s (lost so far: %d)",
                    len(lines),
                    path,
                    exc,
                    self.lost,
                )
            if self.on_write is not None:
                self.on_write(outcome, len(lines))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            batch = self._drain()
            if batch:
                self._write(batch)

    def flush(self) -> None:
        """Write everything queued so far (used at shutdown and by tests)."""
        batch = self._drain()
        if batch:
            self._write(batch)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
