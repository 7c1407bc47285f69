"""Progress bars: drawn for a person at a terminal (or when asked), never into a log."""

from __future__ import annotations

import io

from flows.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_that_counts_the_steps(monkeypatch):
    monkeypatch.delenv("CARTLIFT_PROGRESS", raising=False)
    out = Terminal()
    with progress("training epochs", 3, out) as advance:
        for epoch in range(3):
            advance(note=f"epoch {epoch + 1}: 0.1 s")
    shown = out.getvalue()
    assert "training epochs" in shown and "3/3" in shown and "epoch 3: 0.1 s" in shown


def test_a_log_gets_no_bar_unless_asked(monkeypatch):
    monkeypatch.delenv("CARTLIFT_PROGRESS", raising=False)
    log = io.StringIO()  # not a terminal: a deployed run's log
    with progress("tuning trials", 2, log) as advance:
        advance()
    assert log.getvalue() == ""
    monkeypatch.setenv("CARTLIFT_PROGRESS", "1")
    with progress("tuning trials", 2, log) as advance:
        advance(2)
    assert "2/2" in log.getvalue()
    monkeypatch.setenv("CARTLIFT_PROGRESS", "0")
    terminal = Terminal()
    with progress("scoring models", None, terminal) as advance:
        advance()
    assert terminal.getvalue() == ""
