"""Association rules from baskets: the classic cross-sell signal.

For items ``i`` and ``j`` over ``N`` baskets with counts ``n_i``, ``n_j`` and ``n_ij``
(baskets holding both):

- support(i, j) = n_ij / N
- confidence(i -> j) = n_ij / n_i
- lift(i, j) = confidence(i -> j) / (n_j / N)  (> 1: bought together more than by chance)

Computed at once as a sparse product ``B.T @ B`` of the basket-item incidence matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.data.columns import Columns
from models.data.ids import IdMap

C = Columns


@dataclass
class Rules:
    """Pairwise rules over a catalogue, in the catalogue's item order."""

    n_baskets: int
    item_counts: np.ndarray  # (n_items,) baskets holding each item
    pair_counts: sp.csr_matrix  # (n_items, n_items) baskets holding both; zero diagonal

    def support(self) -> sp.csr_matrix:
        return (self.pair_counts / max(self.n_baskets, 1)).tocsr()

    def confidence(self) -> sp.csr_matrix:
        """Row i, column j: confidence(i -> j)."""
        inv = 1.0 / np.maximum(self.item_counts, 1)
        return sp.csr_matrix(sp.diags(inv) @ self.pair_counts)

    def lift(self) -> sp.csr_matrix:
        inv_share = self.n_baskets / np.maximum(self.item_counts, 1)
        return sp.csr_matrix(self.confidence() @ sp.diags(inv_share))


def mine(baskets: pd.DataFrame, item_ids: np.ndarray, min_count: int = 2) -> Rules:
    """Rules from (order_id, item_id) rows; pairs seen in fewer than ``min_count`` baskets
    are dropped as noise."""
    return from_incidence(incidence(baskets, item_ids), min_count)


def incidence(baskets: pd.DataFrame, item_ids: np.ndarray) -> sp.csr_matrix:
    """(n_baskets, n_items) 0/1: which items each order (``order_id``) held, in the
    catalogue's item order; items it does not know are left out."""
    rows = baskets[[C.order, C.item]].dropna().drop_duplicates()
    mapped = IdMap(item_ids).positions(rows[C.item])
    rows, cols = rows[mapped >= 0], mapped[mapped >= 0]
    order_codes, _ = pd.factorize(rows[C.order])
    n_baskets = int(order_codes.max()) + 1 if len(order_codes) else 0
    return sp.csr_matrix(
        (np.ones(len(cols), np.float32), (order_codes, cols)), shape=(n_baskets, len(item_ids))
    )


def recent_orders(lines: pd.DataFrame, at_most: int) -> pd.DataFrame:
    """The lines of the ``at_most`` orders placed last (by their last line's time)."""
    placed = lines.groupby(C.order)[C.timestamp].max()
    if len(placed) <= at_most:
        return lines
    keep = placed.sort_values(kind="stable").index[-at_most:]
    return lines[lines[C.order].isin(keep)]


def from_incidence(incidence: sp.spmatrix, min_count: int = 2) -> Rules:
    """Rules from a (n_baskets, n_items) basket-item incidence matrix."""
    incidence = sp.csr_matrix(incidence, dtype=np.float32)
    incidence.data[:] = 1.0  # an item twice in a basket is one basket
    pairs = (incidence.T @ incidence).tocsr()
    counts = pairs.diagonal().astype(np.float64)
    pairs.setdiag(0)
    pairs.data[pairs.data < min_count] = 0
    pairs.eliminate_zeros()
    return Rules(
        n_baskets=incidence.shape[0], item_counts=counts, pair_counts=pairs.astype(np.float64)
    )
