"""Id maps: external ids (customers, products) to positions in a model's matrices.

One home for the lookup every part of cartlift needs: features, recommenders, evaluation,
the bundle and the engine all ask an :class:`IdMap` instead of building their own.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

SMALL = 32  # up to this many ids are looked up one by one


class IdMap:
    """Ids in a fixed order; position ``i`` is row (or column) ``i`` of a model's matrices.

    Vectorised lookups go through a hash index (``pandas.Index.get_indexer``); single
    lookups on the request path through a dict, built on first use.
    """

    def __init__(self, ids: Iterable[object]):
        self.ids = _array(ids)
        self._index = pd.Index(self.ids)
        if not self._index.is_unique:
            raise ValueError("an id map needs unique ids")
        self._dict: dict[object, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, values: Iterable[object]) -> np.ndarray:
        """Position of each value, -1 where the map does not know it."""
        values = _array(values)
        if len(values) <= SMALL:  # a cart on the request path: dict lookups beat an index
            lookup = self._lookup()
            return np.fromiter((lookup.get(v, -1) for v in values), np.int64, len(values))
        return self._index.get_indexer(pd.Index(values))

    def has(self, values: Iterable[object]) -> np.ndarray:
        return self.positions(values) >= 0

    def rows(self, values: Iterable[object]) -> np.ndarray:
        """Positions of values the map must know; raises KeyError naming one it does not."""
        values = _array(values)
        pos = self.positions(values)
        if (pos < 0).any():
            raise KeyError(f"id {values[np.argmin(pos)]!r} is not in the map")
        return pos.astype(np.int64)

    def get(self, value: object) -> int | None:
        """One id's position (None when unknown): a dict lookup, for the request path."""
        return self._lookup().get(value)

    def _lookup(self) -> dict[object, int]:
        if self._dict is None:
            self._dict = {v: i for i, v in enumerate(self.ids)}
        return self._dict

    def __contains__(self, value: object) -> bool:
        return self.get(value) is not None

    def __getstate__(self) -> dict:
        return {"ids": self.ids}  # the indexes are rebuilt on load

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["ids"])  # type: ignore[misc]


def _array(values: Iterable[object]) -> np.ndarray:
    if isinstance(values, np.ndarray | pd.Series | pd.Index):
        return np.asarray(values, dtype=object)
    return np.asarray(list(values), dtype=object)
