"""Association rules and ranking policies on a catalogue with known answers.

Fifteen items in three categories, each a price ladder (budget, mid, premium, ...);
baskets pair every coffee machine with beans, so beans are the planted complement.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from models.ranking.catalogue import Catalogue
from models.ranking.policies import (
    Filters,
    allowed,
    anchors,
    best,
    cosine,
    cross_sell,
    popular,
    sparse_rows,
    upsell,
)
from models.recommenders.rules import mine

ITEMS = pd.DataFrame(
    {
        "item_id": [f"m{i}" for i in range(5)]
        + [f"b{i}" for i in range(5)]
        + [f"t{i}" for i in range(5)],
        "title": [""] * 15,
        "category": ["machines"] * 5 + ["beans"] * 5 + ["tents"] * 5,
        "brand": ["x"] * 15,
        "price": [100, 150, 200, 300, 400, 5, 7, 9, 12, 15, 80, 120, 160, 240, 320],
        "in_stock": [True] * 14 + [False],
        "margin": [0.1, 0.2, 0.3, 0.3, 0.4] + [np.nan] * 10,
    }
)
IDS = ITEMS["item_id"].to_numpy(dtype=object)
CAT = Catalogue.from_items(ITEMS, IDS)


def positions(ids: list[str]) -> np.ndarray:
    return np.array([int(np.flatnonzero(i == IDS)[0]) for i in ids if i in set(IDS)])


# 20 orders: machine i with beans i; 5 orders of tents alone; one order m0 + t0.
ORDERS = pd.DataFrame(
    [(f"o{n}", f"m{n % 5}") for n in range(20)]
    + [(f"o{n}", f"b{n % 5}") for n in range(20)]
    + [(f"p{n}", f"t{n}") for n in range(5)]
    + [("q", "m0"), ("q", "t0")],
    columns=["order_id", "item_id"],
)


def test_rules_by_hand():
    rules = mine(ORDERS, IDS, min_count=1)
    m0, b0, t0 = 0, 5, 10
    assert rules.n_baskets == 26
    assert rules.item_counts[m0] == 5 and rules.item_counts[b0] == 4
    assert rules.pair_counts[m0, b0] == 4 and rules.pair_counts[m0, m0] == 0
    assert rules.support()[m0, b0] == pytest.approx(4 / 26)
    assert rules.confidence()[m0, b0] == pytest.approx(4 / 5)
    assert rules.confidence()[b0, m0] == pytest.approx(1.0)
    assert rules.lift()[m0, b0] == pytest.approx((4 / 5) / (4 / 26))
    assert mine(ORDERS, IDS, min_count=2).pair_counts[m0, t0] == 0  # a single co-purchase is noise


def test_filters():
    mask = allowed(CAT, Filters(include_categories=("tents",), max_price=300))
    assert IDS[mask].tolist() == ["t0", "t1", "t2", "t3"]
    mask = allowed(CAT, Filters(exclude_categories=("machines", "beans"), in_stock_only=False))
    assert IDS[mask].tolist() == ["t0", "t1", "t2", "t3", "t4"]
    assert allowed(CAT, Filters(include_categories=("no-such",))).sum() == 0
    assert CAT.codes(["tents", "zzz", "beans"]).tolist() == [2, 0]


def test_cross_sell_completes_the_cart_with_complements():
    lift = mine(ORDERS, IDS, min_count=1).lift()
    cart = positions(["m2", "unknown"])
    scores = cross_sell(lift, cart, CAT, affinity_z=None)
    idx, _ = best(scores, 3)
    assert IDS[idx[0]] == "b2" and IDS[anchors(lift, cart, idx)[0]] == "m2"
    assert "m2" not in IDS[idx]
    assert not any(IDS[i].startswith("m") for i in idx[:1])  # substitutes come last


def test_cross_sell_adds_what_the_same_customers_bought_by_the_neighbours_weight():
    lift = mine(ORDERS, IDS, min_count=1).lift()
    cart = positions(["m0"])
    # Customers who buy m0 also buy tent t3, though never in the same order.
    near = sp.lil_matrix((15, 15), dtype=np.float32)
    near[positions(["m0"])[0], positions(["t3"])[0]] = 1.0
    plain = cross_sell(lift, cart, CAT, None)
    leaned = cross_sell(lift, cart, CAT, None, neighbours=near.tocsr(), neighbours_weight=3.0)
    t3 = positions(["t3"])[0]
    assert np.argsort(-plain).tolist().index(t3) > 2
    assert set(IDS[best(leaned, 2)[0]]) == {"b0", "t3"}  # beside the planted complement
    ignored = cross_sell(lift, cart, CAT, None, neighbours=near.tocsr(), neighbours_weight=0.0)
    np.testing.assert_array_equal(ignored, plain)


def test_upsell_only_pricier_same_category_and_capped():
    emb = np.random.default_rng(0).normal(size=(15, 4))
    anchor = positions(["m1"])[0]
    cand, _ = upsell(anchor, emb, CAT, user_vec=None)
    assert set(IDS[cand]) == {"m2", "m3", "m4"}
    capped, _ = upsell(anchor, emb, CAT, user_vec=None, max_price_ratio=2.0)
    assert set(IDS[capped]) == {"m2", "m3"}
    top, _ = upsell(positions(["m4"])[0], emb, CAT, None)
    assert top.size == 0  # nothing pricier than the most expensive item


def test_margin_breaks_ties_in_upsell():
    emb = np.ones((15, 4))  # every item equally similar
    cand, scores = upsell(0, emb, CAT, None)
    assert IDS[cand[np.argmax(scores)]] == "m4"  # highest margin first


def test_similar_and_popular():
    emb = np.eye(15)
    emb[1] = emb[0] + 0.1
    sims = cosine(emb, 0)
    assert np.argmax(sims) == 1 and sims[0] == -np.inf
    pop = popular(np.arange(15, dtype=float), CAT, "beans")
    idx, _ = best(pop, 3)
    assert IDS[idx].tolist() == ["b4", "b3", "b2"]


def test_rules_ignore_unknown_items_and_empty_baskets():
    rules = mine(pd.DataFrame({"order_id": ["o", "o"], "item_id": ["zz", "m0"]}), IDS)
    assert rules.n_baskets == 1 and rules.pair_counts.nnz == 0
    empty = mine(pd.DataFrame({"order_id": [], "item_id": []}), IDS)
    assert empty.n_baskets == 0 and isinstance(empty.lift(), sp.csr_matrix)


def test_sparse_rows_and_anchors_match_scipy_indexing():
    rng = np.random.default_rng(3)
    mat = sp.random(300, 300, density=0.05, format="csr", random_state=4)
    rows = np.array([7, 0, 299, 7, 150])
    row, col, val = sparse_rows(mat, rows)
    dense = np.zeros((len(rows), 300))
    np.add.at(dense, (row, col), val)
    np.testing.assert_allclose(dense, mat[rows].toarray())
    chosen = rng.choice(300, 40, replace=False)
    block = mat[rows][:, chosen].toarray()
    expected = np.where(block.max(axis=0) > 0, rows[block.argmax(axis=0)], -1)
    np.testing.assert_array_equal(anchors(mat, rows, chosen), expected)
