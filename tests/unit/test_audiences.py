"""Audiences: item-to-users scores through the served blend's terms, and the offline
protocol that holds them against RFM and category targeting."""

import numpy as np
import pytest

from models.config import FeatureConfig, TrainConfig
from models.evaluation.audiences import baseline_rules, choose, compare, targets
from models.features.build import build
from models.ranking.audience import Affinity, Audiences, Leaning, leading, rank
from models.recommenders.blend import Mix, Signals, standardised
from models.recommenders.hybrid import Hybrid, HybridModel


@pytest.fixture(scope="module")
def fs(tiny_shop):
    return build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))


@pytest.fixture(scope="module")
def hybrid(fs):
    return Hybrid.of(HybridModel.fit(fs, TrainConfig(no_components=8, epochs=3)), fs)


def test_affinity_is_the_model_standardised_per_customer_over_the_catalogue(fs, hybrid):
    vectors = hybrid.vectors
    affinity = Affinity(vectors.items, vectors.item_bias)
    items = np.array([3, 17, 40])
    full = standardised(hybrid.scores(np.arange(len(fs.user_ids))))
    folded = affinity.folded(vectors.users) @ affinity.augmented(items).T
    np.testing.assert_allclose(folded, full[:, items], rtol=1e-4, atol=1e-4)
    mean, spread = affinity.standard(vectors.users[7])
    np.testing.assert_allclose(
        (vectors.users[7] @ vectors.items[items].T + vectors.item_bias[items] - mean) / spread,
        full[7, items],
        rtol=1e-4,
        atol=1e-4,
    )


def test_an_audience_adds_the_blend_s_signals_and_takes_the_best_item(fs, hybrid):
    signals = Signals.of(fs)
    audiences = Audiences(hybrid.vectors, signals, fs.item_categories)
    items = np.array([5, 9])
    z = standardised(hybrid.scores(np.arange(len(fs.user_ids))))[:, items]
    plain = audiences.scores(items, Mix())
    np.testing.assert_allclose(plain, z.max(axis=1), rtol=1e-4, atol=1e-4)
    keen = audiences.scores(items, Mix(interest=3.0, again=10.0))
    interest = signals.interest[:, items].toarray()
    again = signals.purchases[:, items].toarray() * signals.repeat_rate[items]
    expected = (z + 3.0 * interest + 10.0 * again).max(axis=1)
    np.testing.assert_allclose(keen, expected, rtol=1e-4, atol=1e-4)
    assert (keen >= plain - 1e-6).all() and (keen > plain + 1e-3).any()
    # The leaning: log purchase lines at all and in the items' categories.
    lines = signals.purchases.toarray()
    inside = np.isin(fs.item_categories, fs.item_categories[items])
    leaning = audiences.scores(items, Mix(), Leaning(activity=0.5, category=2.0))
    expected = plain + 0.5 * np.log1p(lines.sum(axis=1)) + 2.0 * np.log1p(lines[:, inside].sum(1))
    np.testing.assert_allclose(leaning, expected, rtol=1e-6)
    assert audiences.bought(items).tolist() == (lines[:, items].sum(axis=1) > 0).tolist()
    looked = signals.interest[:, items].toarray().sum(axis=1) > 0
    assert audiences.looked(items).tolist() == looked.tolist()
    # A served baseline has no affinity: the leaning alone.
    alone = Audiences(None, signals, fs.item_categories)
    np.testing.assert_allclose(
        alone.scores(items, Mix(), Leaning(activity=0.5, category=2.0)), expected - plain
    )


def test_rank_leaves_out_the_excluded_and_breaks_ties_by_position():
    scores = np.array([1.0, 3.0, 3.0, 2.0, 5.0])
    assert rank(scores, 3).tolist() == [4, 1, 2]
    assert rank(scores, 10, np.array([False, False, True, False, True])).tolist() == [1, 3, 0]
    assert rank(scores, 2).tolist() == [4, 1]  # a tie at the edge: the lower position
    assert rank(scores, 0).tolist() == [] and rank(scores, 3, np.ones(5, bool)).tolist() == []
    rng = np.random.default_rng(0)
    many = rng.integers(0, 20, 5000).astype(float)  # many ties
    expected = np.lexsort((np.arange(5000), -many))[:137]
    assert rank(many, 137).tolist() == expected.tolist()


def test_the_protocol_scores_an_oracle_at_its_ceiling_and_the_baselines_below(fs, hybrid):
    found = targets(fs, min_buyers=5)
    assert found and {t.kind for t in found} == {"item", "category"}
    audiences = Audiences(hybrid.vectors, Signals.of(fs), fs.item_categories)
    truth = {t.name: t.buyers for t in found}

    def oracle(target):
        scores = np.zeros(len(fs.user_ids))
        scores[truth[target.name]] = 1.0
        return scores

    rules = {
        "cartlift": lambda t: audiences.scores(t.items, Mix(interest=3.0)),
        "oracle": oracle,
        **baseline_rules(fs),
    }
    result = compare(fs, rules, recent_days=0.0, min_buyers=5, resamples=200)
    table = result.table.set_index(["rule", "targets", "n"])
    n_users = len(fs.user_ids)
    for n in (100, max(1, n_users // 100)):
        ceiling = np.mean([min(len(t.buyers), n) / n for t in found])
        assert table.loc[("oracle", "all", n), "precision"] == pytest.approx(ceiling)
        for rule in ("cartlift", "RFM", "category's customers"):
            assert 0 <= table.loc[(rule, "all", n), "precision"] <= ceiling
    paired = result.differences.set_index(["rule", "n"])
    assert set(paired.index.get_level_values(0)) == {"oracle", "RFM", "category's customers"}
    assert (paired["lower"] <= paired["difference"]).all()
    assert (paired["difference"] <= paired["upper"]).all()
    again = compare(fs, rules, recent_days=0.0, min_buyers=5, resamples=200)
    assert again.table.equals(result.table)  # deterministic


def test_the_leaning_is_chosen_where_it_finds_the_buyers(fs):
    found = {t.name: t.buyers for t in targets(fs, min_buyers=5)}

    def buyers(target):
        truth = np.zeros(len(fs.user_ids))
        truth[found[target.name]] = 1.0
        return truth

    flat = np.zeros(len(fs.user_ids))
    (activity, category), value = choose(
        fs, lambda t: flat, lambda t: (flat, buyers(t)), recent_days=0.0, min_buyers=5
    )
    assert activity == 0.0 and category > 0.0  # only the category term knows the buyers
    assert value > 0.5
    (activity, category), _ = choose(
        fs, lambda t: buyers(t), lambda t: (flat, -buyers(t)), recent_days=0.0, min_buyers=5
    )
    assert (activity, category) == (0.0, 0.0)  # a term that hides the buyers stays off


def test_a_category_s_audience_is_scored_over_its_best_sellers():
    popularity = np.array([5.0, 1.0, 9.0, 9.0, 0.0, 3.0])
    items = np.array([0, 1, 2, 3, 4, 5])
    assert leading(items, popularity, 3).tolist() == [0, 2, 3]
    assert leading(items[:2], popularity, 3).tolist() == [0, 1]  # fewer: all of them
