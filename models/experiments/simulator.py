"""Simulated shoppers of the default shop, for experiments: the customers that generate the
shop arrive, look at an answer, click, add to cart and buy with probabilities from their
true tastes (:class:`models.data.shop.PurchaseOdds`, a browsing session's: a habit like
re-buying a favourite consumable happens whatever a list shows), so a better list sells
more, by an amount the simulator knows exactly.

A shopper examines the item at rank r (0-based) with probability 1 / log2(r + 2) (the
position bias of click models), clicks an examined item with probability
min(1, ``click`` x its purchase odds + ``stray``), adds a clicked item to the cart with
min(1, ``cart`` x odds + ``stray``), and buys what is in the cart with ``buy``.
Everything is drawn from one seeded generator: the same seed and answers give the same
shoppers and the same reactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.config import ShopConfig
from models.data.ids import IdMap
from models.data.shop import PurchaseOdds, purchase_odds


@dataclass(frozen=True)
class Reaction:
    """What one shopper did with one answer: item ids clicked, carted and bought."""

    clicked: list[str]
    carted: list[str]
    bought: list[str]


@dataclass(frozen=True)
class Behaviour:
    click: float = 6.0  # per unit of purchase odds
    cart: float = 4.0
    stray: float = 0.01  # clicks and carts that taste does not explain
    buy: float = 0.68  # a carted item bought (the shop's own cart-to-purchase rate)


class Shoppers:
    """The default shop's customers as simulated shoppers."""

    def __init__(self, cfg: ShopConfig, seed: int, behaviour: Behaviour | None = None):
        self.truth: PurchaseOdds = purchase_odds(cfg)
        self.items = IdMap(self.truth.item_ids)
        self.users = IdMap(self.truth.user_ids)
        self.behaviour = behaviour or Behaviour()
        self.rng = np.random.default_rng(seed)
        activity = self.truth.world.users["_activity"].to_numpy()
        self._arrival = activity / activity.sum()
        self._odds: dict[int, np.ndarray] = {}

    @property
    def user_ids(self) -> np.ndarray:
        return self.truth.user_ids

    def arrivals(self, n: int) -> np.ndarray:
        """``n`` customer ids, drawn by how active each customer is."""
        at = self.rng.choice(len(self._arrival), size=n, p=self._arrival)
        return self.truth.user_ids[at]

    def odds(self, user_id: str) -> np.ndarray:
        """What the customer is open to buying in a browsing session, over the generated
        catalogue. Their habit (replenishing a favourite consumable) is left out: it
        happens whatever a list shows, so showing it would sell nothing more."""
        row = self.users.get(user_id)
        if row is None:
            raise KeyError(f"{user_id!r} is not a customer of the simulated shop")
        found = self._odds.get(row)
        if found is None:
            found = self.truth.odds(np.array([row]), np.ones(1, bool), habits=False)[0]
            self._odds[row] = found
        return found

    @property
    def arrival_odds(self) -> np.ndarray:
        """Per customer (in :attr:`user_ids` order), the odds the next arrival is theirs."""
        return self._arrival

    def buy_odds(self, user_id: str, items: list[str]) -> np.ndarray:
        """Per item of an answer, the odds this customer buys it from the answer: the
        simulator's own truth, to print a challenger's real lift."""
        p = self._shown_odds(user_id, items)
        b = self.behaviour
        exam = 1 / np.log2(np.arange(len(p)) + 2)
        return (
            exam
            * np.minimum(1, b.click * p + b.stray)
            * np.minimum(1, b.cart * p + b.stray)
            * b.buy
        )

    def expected_purchases(self, user_id: str, items: list[str]) -> float:
        """Purchases this answer sells to this customer, in expectation."""
        return float(self.buy_odds(user_id, items).sum())

    def react(self, user_id: str, items: list[str]) -> Reaction:
        """One shopper's clicks, carts and purchases on one answer."""
        p = self._shown_odds(user_id, items)
        b = self.behaviour
        exam = 1 / np.log2(np.arange(len(p)) + 2)
        draws = self.rng.random((3, len(p)))
        clicked = draws[0] < exam * np.minimum(1, b.click * p + b.stray)
        carted = clicked & (draws[1] < np.minimum(1, b.cart * p + b.stray))
        bought = carted & (draws[2] < b.buy)
        shown = np.asarray(items, dtype=object)
        return Reaction(list(shown[clicked]), list(shown[carted]), list(shown[bought]))

    def _shown_odds(self, user_id: str, items: list[str]) -> np.ndarray:
        at = self.items.positions(items)
        odds = self.odds(user_id)
        return np.where(at >= 0, odds[np.maximum(at, 0)], 0.0)  # unknown items: no taste
