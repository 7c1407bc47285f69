"""Simulated shoppers: seeded, and they buy more from lists that match their tastes."""

import numpy as np

from models.config import ShopConfig
from models.experiments.simulator import Shoppers
from tests.conftest import TINY_SHOP


def test_the_same_seed_gives_the_same_shoppers_and_reactions():
    a, b = Shoppers(TINY_SHOP, seed=3), Shoppers(TINY_SHOP, seed=3)
    users = a.arrivals(50)
    assert list(users) == list(b.arrivals(50))
    items = list(a.items.ids[:10])
    assert [a.react(u, items) for u in users] == [b.react(u, items) for u in users]
    assert list(Shoppers(TINY_SHOP, seed=4).arrivals(50)) != list(users)


def test_lists_that_match_tastes_sell_more_in_expectation_and_in_draws():
    shoppers = Shoppers(ShopConfig(n_users=400, n_items=300, n_categories=9), seed=1)
    users = shoppers.arrivals(400)
    rng = np.random.default_rng(0)
    best, random, sold_best, sold_random = 0.0, 0.0, 0, 0
    for user in users:
        odds = shoppers.odds(user)
        top = list(shoppers.items.ids[np.argsort(-odds)[:10]])
        any10 = list(shoppers.items.ids[rng.choice(len(odds), 10, replace=False)])
        best += shoppers.expected_purchases(user, top)
        random += shoppers.expected_purchases(user, any10)
        sold_best += len(shoppers.react(user, top).bought)
        sold_random += len(shoppers.react(user, any10).bought)
    assert best > 3 * random
    assert sold_best > 2 * sold_random
    reaction = shoppers.react(users[0], top)
    assert set(reaction.bought) <= set(reaction.carted) <= set(reaction.clicked) <= set(top)
    assert shoppers.expected_purchases(users[0], ["no-such-item"]) < 0.01  # stray only
