"""Progress bars for the long steps (training epochs, tuning trials, the quality report's
models) when a person watches a terminal. A deployed run's log has its log lines instead
(a bar in a log file is noise): the bar shows only when stderr is a terminal, or when
``CARTLIFT_PROGRESS=1`` asks for it (``0`` turns it off)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[..., None]  # advance(steps=1, note="") moves the bar on


def wanted(stream: IO[str]) -> bool:
    """Whether to draw a bar on ``stream``: asked for, or a terminal not told otherwise."""
    asked = os.environ.get("CARTLIFT_PROGRESS", "")
    if asked in ("0", "1"):
        return asked == "1"
    return stream.isatty()


@contextmanager
def progress(
    description: str, total: int | None, stream: IO[str] | None = None
) -> Iterator[Advance]:
    """A bar of ``total`` steps (None: unknown, a counter) on ``stream`` (stderr), or a
    function that does nothing when no one watches. Yields ``advance(steps, note)``."""
    out = stream or sys.stderr
    if not wanted(out):
        yield lambda steps=1, note="": None
        return
    console = Console(file=out, force_terminal=True, width=100)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, note="")

        def advance(steps: int = 1, note: str = "") -> None:
            bar.update(task, advance=steps, note=note)

        yield advance
