"""Cross-sell and upsell as evaluation tasks, judged the same way for every model.

- Cross-sell: a holdout basket with two or more items loses one item (chosen with a
  seed); the model sees the rest of the basket and the customer, and should rank the
  missing item high. Hit rate@k, MRR@k, and a revenue-weighted hit rate (hits weighted
  by the hidden item's price: the shop cares about basket value).
- Upsell: a holdout purchase in a category the customer viewed before buying; the
  anchor is the cheapest item they viewed there. Only cases where the purchase was
  pricier than the anchor count. Candidates are the category's items pricier than the
  anchor; the model should rank the purchased one high. Hit rate@k and the mean price
  uplift of hits (purchase price / anchor price - 1).

Ranks are pessimistic: items with the same score as the target count as ranked before
it, so a model that scores everything alike gets no credit.
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
class CrossSellCases:
    users: np.ndarray  # (n,) user rows
    carts: sp.csr_matrix  # (n, n_items) the basket without the hidden item
    hidden: np.ndarray  # (n,) item index to find
    price: np.ndarray  # (n,) the hidden item's price

    def sample(self, at_most: int, seed: int = 0) -> CrossSellCases:
        """At most ``at_most`` of these cases, drawn without replacement (seeded), in
        their order."""
        if len(self.hidden) <= at_most:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.hidden), at_most, replace=False))
        return CrossSellCases(
            self.users[keep], self.carts[keep], self.hidden[keep], self.price[keep]
        )


@dataclass
class UpsellCases:
    users: np.ndarray  # (n,) user rows
    anchor: np.ndarray  # (n,) cheapest viewed item in the category
    bought: np.ndarray  # (n,) the pricier item bought
    uplift: np.ndarray  # (n,) bought price / anchor price - 1


def indexed(frame: pd.DataFrame, users: IdMap, items: IdMap) -> pd.DataFrame:
    out = frame.assign(row=users.positions(frame[C.user]), col=items.positions(frame[C.item]))
    return out[(out["row"] >= 0) & (out["col"] >= 0)]


def cross_sell_cases(
    test: pd.DataFrame, users: IdMap, items: IdMap, prices: np.ndarray, seed: int = 0
) -> CrossSellCases:
    """One case per holdout basket (order) with at least two distinct known items."""
    bought = indexed(test[(test[C.event] == "purchase") & test[C.order].notna()], users, items)
    lines = bought.drop_duplicates([C.order, "col"])
    lines = lines[lines.groupby(C.order)["col"].transform("size") >= 2]
    rng = np.random.default_rng(seed)
    lines = lines.assign(draw=rng.random(len(lines))).sort_values([C.order, "draw"])
    basket = pd.factorize(lines[C.order])[0]
    first = np.r_[True, basket[1:] != basket[:-1]][: len(basket)]  # hidden: first after shuffle
    n, n_items = int(basket.max()) + 1 if len(basket) else 0, len(items)
    rest = ~first
    carts = sp.csr_matrix(
        (np.ones(rest.sum(), np.float32), (basket[rest], lines["col"].to_numpy()[rest])),
        shape=(n, n_items),
    )
    hidden = lines["col"].to_numpy()[first]
    return CrossSellCases(
        users=lines["row"].to_numpy()[first], carts=carts, hidden=hidden, price=prices[hidden]
    )


def upsell_cases(
    events: pd.DataFrame,
    cutoff: pd.Timestamp,
    users: IdMap,
    items: IdMap,
    prices: np.ndarray,
    category: np.ndarray,
) -> UpsellCases:
    """Holdout purchases pricier than the cheapest item the customer looked at in the same
    category before buying: viewed, carted or bought (shops that export only orders, like
    Online Retail, have no views; an item bought was an item seen)."""
    ev = indexed(events, users, items).assign(cat=lambda f: category[f["col"]])
    buys = ev[(ev[C.event] == "purchase") & (ev[C.timestamp] >= cutoff)]
    views = ev[["row", "cat", "col", C.timestamp]]
    pairs = buys[["row", "cat", "col", C.timestamp]].merge(
        views, on=["row", "cat"], suffixes=("", "_view")
    )
    pairs = pairs[pairs[f"{C.timestamp}_view"] < pairs[C.timestamp]]
    pairs = pairs.assign(anchor_price=prices[pairs["col_view"].to_numpy()])
    cheapest = pairs.sort_values(["anchor_price", "col_view"]).drop_duplicates(
        ["row", "col", C.timestamp]
    )
    bought_price = prices[cheapest["col"].to_numpy()]
    pricier = bought_price > cheapest["anchor_price"].to_numpy()
    cases = cheapest[pricier]
    return UpsellCases(
        users=cases["row"].to_numpy(),
        anchor=cases["col_view"].to_numpy(),
        bought=cases["col"].to_numpy(),
        uplift=bought_price[pricier] / cases["anchor_price"].to_numpy() - 1,
    )


def pessimistic_rank(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target item, ties counted against it."""
    own = scores[np.arange(len(target)), target][:, None]
    return (scores >= own).sum(axis=1) - 1


def judge_cross_sell(scores: np.ndarray, cases: CrossSellCases, k: int) -> dict[str, float]:
    """Hit rate@k, MRR@k and revenue-weighted hit rate@k; cart items are never counted."""
    scores = np.array(scores, dtype=np.float64)
    cart = cases.carts.tocoo()
    scores[cart.row, cart.col] = -np.inf
    rank = pessimistic_rank(scores, cases.hidden)
    hit = rank < k
    return {
        f"hit_rate_at_{k}": float(hit.mean()) if len(hit) else float("nan"),
        f"mrr_at_{k}": float(np.where(hit, 1 / (rank + 1), 0).mean()) if len(hit) else float("nan"),
        f"revenue_hit_rate_at_{k}": float(
            (hit * cases.price).sum() / max(cases.price.sum(), 1e-12)
        ),
        "cases": float(len(hit)),
    }


def judge_upsell(
    scores: np.ndarray, cases: UpsellCases, prices: np.ndarray, category: np.ndarray, k: int
) -> dict[str, float]:
    """Hit rate@k among the anchor's pricier same-category items, and mean uplift of hits."""
    scores = np.array(scores, dtype=np.float64)
    allowed = (category[None, :] == category[cases.anchor][:, None]) & (
        prices[None, :] > prices[cases.anchor][:, None]
    )
    scores[~allowed] = -np.inf
    hit = pessimistic_rank(scores, cases.bought) < k
    return {
        f"hit_rate_at_{k}": float(hit.mean()) if len(hit) else float("nan"),
        f"uplift_of_hits_at_{k}": float(cases.uplift[hit].mean()) if hit.any() else float("nan"),
        "cases": float(len(hit)),
    }
