"""Sessions: a customer's events with no pause longer than ``gap`` (30 minutes), as the
sequence of items they touched, consecutive repeats folded. On a shop that exports only
orders, an invoice's lines in file order are one (its lines share a time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.data.columns import Columns
from models.data.ids import IdMap

C = Columns
GAP = pd.Timedelta(minutes=30)


@dataclass(frozen=True)
class Sessions:
    """Item sequences, CSR-style: session s touched ``items[starts[s]:starts[s + 1]]``
    in that order, beginning at ``began[s]``."""

    starts: np.ndarray  # (n_sessions + 1,)
    items: np.ndarray  # positions in the item map
    began: np.ndarray  # (n_sessions,) datetime64
    n_items: int

    def __len__(self) -> int:
        return len(self.starts) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    def matrix(self) -> sp.csr_matrix:
        """(n_sessions, n_items) 1 where the session touched the item."""
        rows = np.repeat(np.arange(len(self)), self.lengths)
        out = sp.csr_matrix(
            (np.ones(len(self.items), np.float32), (rows, self.items)),
            shape=(len(self), self.n_items),
        )
        out.data[:] = 1.0
        return out

    def take(self, keep: np.ndarray) -> Sessions:
        """The sessions ``keep`` (a boolean mask or positions), in that order."""
        chosen = np.arange(len(self))[keep]
        lengths = self.lengths[chosen]
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        at = np.repeat(self.starts[chosen], lengths) + (
            np.arange(lengths.sum()) - np.repeat(starts[:-1], lengths)
        )
        return Sessions(starts, self.items[at], self.began[chosen], self.n_items)


def sessionize(events: pd.DataFrame, items: IdMap, gap: pd.Timedelta = GAP) -> Sessions:
    """Each customer's events split where they pause longer than ``gap``; items the map
    does not know are dropped, then consecutive repeats folded."""
    known = events[items.has(events[C.item])]
    frame = known.sort_values([C.user, C.timestamp], kind="stable")
    user = frame[C.user].to_numpy()
    when = frame[C.timestamp].to_numpy()
    item = items.rows(frame[C.item])
    new = np.ones(len(frame), bool)
    if len(frame):
        new[1:] = (user[1:] != user[:-1]) | ((when[1:] - when[:-1]) > gap.to_timedelta64())
    session = np.cumsum(new) - 1
    repeat = np.zeros(len(frame), bool)
    if len(frame):
        repeat[1:] = (item[1:] == item[:-1]) & ~new[1:]
    item, session, when = item[~repeat], session[~repeat], when[~repeat]
    counts = np.bincount(session, minlength=int(session.max()) + 1 if len(session) else 0)
    starts = np.concatenate([[0], np.cumsum(counts)])
    first = starts[:-1]
    return Sessions(starts, item.astype(np.int64), when[first], len(items))
