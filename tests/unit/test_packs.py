"""Bundles: the pack's price against the margin floor (a property), the pack's rules
(never out of stock, never two substitutes, multi-item co-occurrence) and the offline
protocol that holds packs against pairwise rules and item-kNN."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from models.config import FeatureConfig, RankingConfig, TrainConfig
from models.data.ids import IdMap
from models.evaluation.bundles import (
    Ladders,
    PackCases,
    compare,
    hits,
    pack_cases,
    related_packs,
)
from models.features.build import build
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.ranking.packs import grow, price, substitutes, together
from models.ranking.policies import Filters
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE
from models.recommenders.blend import Mix
from models.recommenders.hybrid import HybridModel

prices_ = st.lists(st.floats(0.01, 5000, allow_nan=False), min_size=1, max_size=5)
share = st.floats(0.0, 0.95, allow_nan=False)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(prices_, st.data(), share, share)
def test_a_bundle_price_never_takes_the_margin_under_the_floor(prices, data, discount, floor):
    n = len(prices)
    margins = data.draw(st.lists(st.one_of(share, st.just(float("nan"))), min_size=n, max_size=n))
    p, m = np.array(prices), np.array(margins)
    got = price(p, m, discount, floor)
    assert got.price <= got.full + 1e-9  # never dearer than the items
    assert got.full == pytest.approx(p.sum(), abs=0.006)
    assert got.price >= got.full * (1 - discount) - 1e-9  # never more than the discount
    assert got.price == round(got.price, 2)  # in cents
    if not np.isfinite(m).all():
        assert got.price == got.full and got.margin is None  # unknown: no discount
        return
    cost = float((p * (1 - m)).sum())
    margin = (got.price - cost) / got.price
    assert margin == pytest.approx(got.margin)
    assert got.discount == 0 or margin >= floor - 1e-9, (got, floor)


def test_the_price_says_what_set_it():
    assert price(np.array([10.0, 20.0]), np.array([0.5, 0.5]), 0.1, 0.15).note == "10% off"
    held = price(np.array([10.0, 20.0]), np.array([0.2, 0.2]), 0.1, 0.15)
    assert held.price == 28.24 and "margin under 15%" in held.note  # 25 x 0.8 / 0.85, up
    unknown = price(np.array([10.0, 20.0]), np.array([0.2, np.nan]), 0.1, 0.15)
    assert unknown.price == 30.0 and "unknown" in unknown.note


def test_orders_holding_the_whole_pack_are_counted():
    # orders x items: 0 holds 0,1,2; 1 holds 0,1,3; 2 holds 0,2; 3 holds 1,2
    rows, cols = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3], [0, 1, 2, 0, 1, 3, 0, 2, 1, 2]
    orders = sp.csc_matrix((np.ones(10), (rows, cols)), shape=(4, 5))
    cand = np.array([1, 2, 3, 4])
    assert together(orders, np.array([0]), cand).tolist() == [2, 2, 1, 0]
    assert together(orders, np.array([0, 1]), cand).tolist() == [2, 1, 1, 0]
    assert together(orders, np.array([0, 4]), cand).tolist() == [0, 0, 0, 0]


def test_the_pack_grows_with_what_goes_with_all_of_it_and_skips_substitutes():
    # 0 is the anchor; 1 and 2 share category 1 and were never bought together
    # (substitutes); 3 was bought with 0 and 1 in the same orders, 4 only ever with 0.
    category = np.array([0, 1, 1, 2, 3])
    lift = sp.csr_matrix(
        np.array(
            [[0, 3, 3, 1, 1], [3, 0, 0, 2, 0], [3, 0, 0, 0, 0], [1, 2, 0, 0, 0], [1, 0, 0, 0, 0]],
            dtype=float,
        )
    )
    rows = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]
    cols = [0, 1, 3, 0, 1, 3, 0, 2, 0, 4]
    orders = sp.csc_matrix((np.ones(10), (rows, cols)), shape=(4, 5))
    cand = np.array([1, 2, 3, 4])
    scores = np.array([3.0, 2.9, 1.0, 1.05])
    assert substitutes(lift, category, np.array([1]), cand[1:]).tolist() == [True, False, False]
    plain, _ = grow(scores, cand, np.array([0]), 3, lift, category, orders, 0.0)
    assert plain.tolist() == [1, 4, 3]  # 2 is 1's substitute: never both
    joint, _ = grow(scores, cand, np.array([0]), 3, lift, category, orders, 1.0)
    assert joint.tolist() == [1, 3, 4]  # 3 was in the orders that held 0 and 1
    short, _ = grow(scores[:2], cand[:2], np.array([0]), 3, lift, category, orders, 1.0)
    assert short.tolist() == [1]  # only substitutes left: a shorter pack


@pytest.fixture(scope="module")
def engine(tiny_shop):
    features = FeatureConfig(holdout_days=14)
    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, features)
    near = EASE(l2=50.0).fit(Interactions.from_features(fs)).strongest(20)
    model = HybridModel.fit(fs, TrainConfig(no_components=8, epochs=3))
    mixes = {True: Mix(interest=1.0), False: Mix(again=10.0)}
    bundle = build_bundle(model, fs, features, RankingConfig(), {}, (mixes, near), "discovery")
    return Engine(bundle)


def test_a_served_pack_is_in_stock_free_of_substitutes_and_priced(engine):
    lift = engine.bundle.lift
    anchors = np.flatnonzero(np.diff(lift.indptr) >= 4)[:30]
    assert len(anchors) >= 10
    # Half the anchors' best complements go out of stock: none may be offered.
    gone = np.unique(lift[anchors].indices)[::2]
    cat = engine.cat
    stock = cat.in_stock.copy()
    stock[gone] = False
    engine = Engine(replace(engine.bundle, catalogue=replace(cat, in_stock=stock)))
    for anchor in anchors:
        item = str(cat.item_ids[anchor])
        pack = engine.pack([item], None, 3, Filters())
        assert pack.anchor == [item] and len(pack.items) == 3, pack.warnings
        added = engine.items.positions([s.item_id for s in pack.items])
        assert stock[added].all()
        members = np.concatenate([[anchor], added])
        assert len(set(members.tolist())) == 4
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if cat.category_code[a] == cat.category_code[b]:
                    assert lift[a, b] > 0 or lift[b, a] > 0, (a, b)  # bought together
        assert pack.prices == pytest.approx(cat.price[members].tolist())
        assert pack.price is not None and pack.price.price <= pack.price.full
    unknown = engine.pack(["no-such-item"], None, 3, Filters())
    assert unknown.items == [] and unknown.price is None and len(unknown.warnings) == 2


def test_the_protocol_counts_hidden_items_and_pairs_the_rules():
    test = pd.DataFrame(
        {
            "user_id": ["a"] * 3 + ["b"] * 4 + ["c"] * 2,
            "item_id": ["x", "y", "z", "x", "y", "w", "v", "x", "y"],
            "event_type": "purchase",
            "order_id": ["o1"] * 3 + ["o2"] * 4 + ["o3"] * 2,
        }
    )
    users, items = IdMap(np.array(["a", "b", "c"])), IdMap(np.array(["v", "w", "x", "y", "z"]))
    cases = pack_cases(test, users, items, seed=3)
    assert len(cases.revealed) == 2  # o3 holds 2 items
    for shown, hidden, basket in zip(
        cases.revealed, cases.hidden, ({2, 3, 4}, {0, 1, 2, 3}), strict=True
    ):
        assert {int(shown), *hidden.tolist()} == basket and shown not in hidden
    oracle = np.full((2, 3), -1)
    for at, hidden in enumerate(cases.hidden):
        oracle[at, : min(3, len(hidden))] = hidden[:3]
    assert hits(oracle, cases).tolist() == [2, 3]
    popularity = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    flat = related_packs(lambda carts: np.zeros(carts.shape), cases, popularity)
    for shown, pack in zip(cases.revealed, flat, strict=True):
        assert pack.tolist() == [i for i in (4, 3, 2, 1) if i != shown][:3]  # best sellers
    got = compare(cases, {"cartlift": oracle, "best sellers": flat}, resamples=200)
    table = got.table.set_index("rule")
    assert table.loc["cartlift", "hits"] == 2.5 and table.loc["cartlift", "hit_rate"] == 1.0
    row = got.differences.iloc[0]
    assert row["rule"] == "best sellers" and row["lower"] <= row["difference"] <= row["upper"]
    again = compare(cases, {"cartlift": oracle, "best sellers": flat}, resamples=200)
    assert again.differences.equals(got.differences)  # deterministic


def test_a_baseline_held_to_the_bundle_rule_never_packs_two_substitutes():
    """The verdict's baselines are valid bundles: down their ranking, an item that is a
    rung of a ladder the pack already holds (same category, never bought with it) is
    skipped; two items of one category the orders show together both stay."""
    cases = PackCases(np.array([0]), np.array([4]), [np.array([1])])
    category = np.array([0, 0, 1, 1, 2])
    pairs = [(2, 3), (3, 2), (4, 0), (4, 1), (4, 2), (4, 3)]
    lift = sp.csr_matrix(
        (np.ones(len(pairs)), ([a for a, _ in pairs], [b for _, b in pairs])), shape=(5, 5)
    )
    related = lambda carts: np.tile([0.9, 0.8, 0.7, 0.6, 0.0], (carts.shape[0], 1))  # noqa: E731
    popularity = np.ones(5)
    assert related_packs(related, cases, popularity).tolist() == [[0, 1, 2]]
    held = related_packs(related, cases, popularity, ladders=Ladders(lift, category))
    assert held.tolist() == [[0, 2, 3]]  # 1 is 0's substitute; 2 and 3 sell together
    assert hits(held, cases).tolist() == [0.0]


def test_a_product_added_without_retraining_can_anchor_a_pack(engine):
    """/admin/items appends items: the orders grow with the catalogue, so a pack built on
    (or around) a new item still answers."""
    from models.ranking.catalogue import apply_items

    cat = engine.cat
    new = pd.DataFrame(
        {"item_id": ["brand-new"], "category": [cat.category[0]], "price": [9.5], "margin": [0.3]}
    )
    updated, applied = apply_items(engine.bundle, new)
    assert applied.added == ("brand-new",)
    assert updated.orders.shape == (engine.bundle.orders.shape[0], len(cat.item_ids) + 1)
    pack = Engine(updated).pack(["brand-new"], None, 3, Filters())
    assert pack.anchor == ["brand-new"] and len(pack.items) == 3 and pack.price is not None


def test_the_pack_weights_are_chosen_where_the_packs_find_the_hidden_items(engine, tiny_shop):
    from models.evaluation.bundles import cases_of, choose_weights

    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))
    assert len(cases_of(fs).revealed) > 20
    grid = ((0.0, 2.0), (1.0, 5.0), (0.0,))
    weights, found = choose_weights(engine.bundle, fs, grid, at_most=200)
    assert set(found) == {(t, a, 0.0) for t in (0.0, 2.0) for a in (1.0, 5.0)}
    best = max(found.values())
    assert found[(weights["bundle_together"], weights["bundle_affinity"], 0.0)] == best
    assert choose_weights(engine.bundle, fs, grid, at_most=200) == (weights, found)


def test_the_pipeline_chooses_the_multi_item_weight_then_the_customer_s(engine, tiny_shop):
    """Two steps: the multi-item weights with the others as configured, then affinity by
    own purchases at the chosen one; in discovery own purchases stay as configured."""
    from models.config import TuneConfig
    from models.evaluation.bundles import choose_pack

    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))
    tune = TuneConfig(bundle_together=(0.0, 3.0), bundle_affinity=(1.0, 6.0))
    ranking = engine.bundle.ranking
    weights, found = choose_pack(engine.bundle, fs, tune, at_most=200)
    history = ranking.bundle_history
    first = {
        (t, ranking.bundle_affinity, history): found[(t, ranking.bundle_affinity, history)]
        for t in (0.0, 3.0)
    }
    together = max(first, key=lambda p: (first[p], -p[0]))[0]
    assert weights["bundle_together"] == together and weights["bundle_history"] == history
    second = {(together, a, history) for a in (1.0, 6.0)}
    assert set(found) == set(first) | second
    assert found[tuple(weights.values())] == max(found[p] for p in second)


def test_where_repeats_count_a_customer_s_usual_items_join_the_pack(engine):
    bundle = engine.bundle
    ranking = bundle.ranking.model_copy(update={"bundle_history": 100.0})
    again = Engine(replace(bundle, objective="replenishment", ranking=ranking))
    bought = bundle.signals.purchases
    row = int(np.argmax(np.diff(bought.indptr)))  # the customer with the most lines
    user = str(bundle.model.user_ids[row])
    theirs = set(again.cat.item_ids[bought[row].indices])
    anchor = str(again.cat.item_ids[np.flatnonzero(np.diff(bundle.lift.indptr) > 0)[0]])
    pack = again.pack([anchor], user, 3, Filters(in_stock_only=False))
    assert {s.item_id for s in pack.items} <= theirs - {anchor}, pack
    assert all(
        s.reason == "you bought this before" or s.reason.startswith("bought together")
        for s in pack.items
    )
    plain = Engine(replace(bundle, ranking=ranking)).pack([anchor], user, 3, Filters())
    assert all(s.reason != "you bought this before" for s in plain.items)  # discovery: none
