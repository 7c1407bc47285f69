"""The served blend: its signals, the search for its weights, and moving its item weights
onto a newer catalogue."""

import numpy as np
import pytest
import scipy.sparse as sp

from models.config import FeatureConfig, RunConfig, TrainConfig, TuneConfig
from models.data.ids import IdMap
from models.evaluation.protocol import slice_means
from models.evaluation.tasks import tasks
from models.evaluation.tuning import choose_mix, coordinate_search
from models.features.build import build
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE
from models.recommenders.blend import (
    Blended,
    Mix,
    Signals,
    realigned,
    repeat_rate,
    standardised,
)
from models.recommenders.hybrid import Hybrid


@pytest.fixture(scope="module")
def fs(tiny_shop):
    return build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))


def test_repeat_rate_leans_on_the_shop_for_items_with_few_buyers():
    # item 0: 10 buyers, all twice; item 1: 1 buyer, once; item 2: no buyer.
    counts = sp.csr_matrix(np.column_stack([np.full(10, 2.0), np.eye(10)[0], np.zeros(10)]))
    rate = repeat_rate(counts)
    shop = 10 / 11
    assert rate[0] == pytest.approx((10 + 5 * shop) / 15)
    assert rate[1] == pytest.approx(5 * shop / 6)
    assert rate[2] == pytest.approx(shop)


def test_repeat_rate_leans_on_the_category_before_the_shop():
    # Category 0 (items 0, 1): bought again; category 1 (items 2, 3): never.
    # Items 1 and 3 have one buyer each, who bought once: alike for the shop alone,
    # apart once their categories speak.
    counts = np.zeros((10, 4))
    counts[:, 0] = 2.0
    counts[:, 2] = 1.0
    counts[0, 1] = counts[1, 3] = 1.0
    categories = np.array([0, 0, 1, 1])
    flat = repeat_rate(sp.csr_matrix(counts))
    rate = repeat_rate(sp.csr_matrix(counts), categories)
    assert flat[1] == pytest.approx(flat[3])
    shop = 10 / 22
    in_0 = (10 + 5 * shop) / (11 + 5)
    in_1 = 5 * shop / (11 + 5)
    assert rate[1] == pytest.approx(5 * in_0 / 6)
    assert rate[3] == pytest.approx(5 * in_1 / 6)
    assert rate[1] > flat[1] == flat[3] > rate[3]


def test_signals_add_what_each_weight_says_and_nothing_for_newcomers(fs):
    signals = Signals.of(fs)
    rows = np.array([0, 1, 2, -1])
    has = np.diff(signals.interest.indptr)[rows[:3]] > 0
    base = np.zeros((4, len(fs.item_ids)), np.float32)
    assert not signals.add(base.copy(), rows, Mix()).any()
    out = signals.add(base.copy(), rows, Mix(again=2.0, interest=0.5, trend=1.5))
    expected = 2.0 * signals.purchases[rows[:3]].toarray() * signals.repeat_rate
    expected += 0.5 * signals.interest[rows[:3]].toarray() + 1.5 * signals.trend
    expected[~has] = 0.0
    np.testing.assert_allclose(out[:3], expected, rtol=1e-5, atol=1e-6)
    assert not out[3].any()  # a customer the window never saw: the model alone


def test_the_best_matching_new_arrival_is_lifted_to_its_rank_among_unbought_items():
    # 6 items; 4 and 5 nobody touched (new arrivals). Customer 0 bought item 0.
    purchases = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.float32))
    interest = sp.csr_matrix(np.array([[1, 0.5, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], np.float32))
    signals = Signals(purchases, np.zeros(6, np.float32), interest, np.zeros(6, np.float32))
    signals.arrivals = np.array([False] * 4 + [True, True])
    base = np.array([[5.0, 4.0, 3.0, 2.0, -1.0, -2.0], [0.0, 1.0, 2.0, 3.0, -3.0, -0.5]])
    rows = np.array([0, -1])  # a known customer, and one the window never saw
    out = signals.add(base.astype(np.float32), rows, Mix(arrival=2))
    order = np.argsort(-out, axis=1)
    # Customer 0: item 0 (bought) does not count; item 4 (the model's better arrival) comes
    # second among the rest, just under item 1. The newcomer: item 5 second.
    assert order[0].tolist()[:3] == [0, 1, 4] and out[0, 5] == base[0, 5]
    assert order[1].tolist()[:2] == [3, 5]
    already = np.array([[0.0, 0.0, 0.0, 0.0, 9.0, 0.0]], np.float32)
    assert signals.add(already.copy(), np.array([-1]), Mix(arrival=3))[0, 4] == 9.0
    assert (signals.add(base.astype(np.float32), rows, Mix()) == base).all()  # rank 0: off
    assert signals.grown(8).arrivals.tolist()[-3:] == [True, True, True]


def test_the_blend_is_the_standardised_model_plus_the_signals(fs):
    data = Interactions.from_features(fs)
    model = Hybrid(TrainConfig(no_components=8, epochs=3)).fit(data)
    near = EASE(l2=50.0).fit(data).strongest(10)
    assert near.shape == (len(fs.item_ids),) * 2 and np.diff(near.indptr).max() <= 10
    assert (near.data < 0).any()  # the strongest by magnitude: negative weights kept
    mix = Mix(again=3.0, interest=1.0, trend=0.5, neighbours=1.0)
    rows = np.arange(20)
    signals = Signals.of(fs, near)
    out = Blended(model, mix, signals).scores(rows)
    model_part = standardised(model.scores(rows))
    np.testing.assert_allclose(out, signals.add(model_part.copy(), rows, mix), rtol=1e-6)
    assert not np.allclose(out, model_part)


def test_item_weights_move_onto_a_newer_catalogue():
    old = np.array(["a", "b", "c"], dtype=object)
    weights = sp.csr_matrix(np.array([[0, 1, 2], [3, 0, 4], [5, 6, 0]], dtype=np.float32))
    newer = IdMap(np.array(["c", "new", "a"], dtype=object))  # b gone, one new item
    moved = realigned(weights, old, newer).toarray()
    np.testing.assert_array_equal(moved, [[0, 0, 5], [0, 0, 0], [2, 0, 0]])


def test_coordinate_search_keeps_only_changes_that_score_higher():
    best = Mix(again=3.0, interest=1.0)
    tried: list[Mix] = []

    def value(mix: Mix) -> float:
        tried.append(mix)
        return -abs(mix.again - best.again) - abs(mix.interest - best.interest)

    axes = {"again": (0.0, 1.0, 3.0, 10.0), "interest": (0.0, 1.0, 2.0), "trend": (0.0, 4.0)}
    assert coordinate_search(value, axes, rounds=2) == best
    assert coordinate_search(lambda mix: 0.0, axes, rounds=2) == Mix()  # ties: lightest


def test_the_chosen_mix_is_the_best_the_search_saw_on_validation(fs):
    config = RunConfig(
        features=FeatureConfig(holdout_days=14),
        train=TrainConfig(no_components=8, epochs=3),
        tune=TuneConfig(mix_again=(0.0, 30.0), mix_interest=(0.0, 1.0), mix_trend=(0.0,)),
    )
    model = Hybrid(config.train).fit(Interactions.from_features(fs))
    chosen = choose_mix(model, fs, config)
    signals = Signals.of(fs)
    for exclude, (mix, value) in chosen.items():
        customers = tasks(fs, exclude)["customers"]
        score = slice_means(Blended(model, mix, signals).scores, customers, 10)["all"]
        assert value == pytest.approx(score, abs=1e-6)
        plain = slice_means(Blended(model, Mix(), signals).scores, customers, 10)["all"]
        assert value >= plain
    # Repeats counted: lifting what customers bought before is what ranks best.
    assert chosen[False][0].again > 0 and chosen[False][1] > chosen[True][1]


def test_signals_move_onto_a_newer_window_by_id(fs):
    signals = Signals.of(fs)
    users, items = fs.user_ids, fs.item_ids
    newer_users = IdMap(np.concatenate([users[::-1], np.array(["newcomer"], dtype=object)]))
    newer_items = IdMap(np.concatenate([np.array(["new-item"], dtype=object), items[1:][::-1]]))
    moved = signals.onto(users, items, newer_users, newer_items)
    u, i = 3, 5  # a customer and an item both windows know
    nu, ni = newer_users.get(users[u]), newer_items.get(items[i])
    assert moved.purchases[nu, ni] == signals.purchases[u, i]
    assert moved.interest[nu, ni] == signals.interest[u, i]
    assert moved.trend[ni] == signals.trend[i] and moved.repeat_rate[ni] == signals.repeat_rate[i]
    assert moved.trend[0] == signals.new_item_trend  # the new item
    assert moved.interest[len(users)].nnz == 0  # the newcomer
    assert moved.purchases.shape == (len(users) + 1, len(items))
