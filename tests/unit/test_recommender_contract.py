"""The contract every recommender keeps, run on each of them (implicit's
``RecommenderBaseTestMixin`` and RecTools' shared model tests are the model): the same
assertions for the hybrid, LightFM without features and every baseline, on the tiny shop
whose split has warm and cold-start customers, repeat buyers and multi-item baskets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.config import FeatureConfig, TrainConfig
from models.evaluation.tasks import _catalogue
from models.features.build import build
from models.ranking.policies import upsell_candidates
from models.ranking.topk import best_of, without
from models.recommenders.base import Interactions, Recommender, load, save
from models.recommenders.baselines import (
    EASE,
    AssociationRules,
    CategoryPopularity,
    ImplicitALS,
    ItemKNN,
    PersonalFrequency,
    Popularity,
    RecentPopularity,
)
from models.recommenders.blend import Blended, Mix
from models.recommenders.hybrid import Hybrid

FAST = TrainConfig(no_components=8, epochs=3, num_threads=1)
K = 10
MAKERS = {
    "popularity": Popularity,
    "popularity, last days": RecentPopularity,
    "popularity per category": CategoryPopularity,
    "personal frequency": PersonalFrequency,
    "item-kNN": ItemKNN,
    "EASE": lambda: EASE(l2=50.0),
    "association rules": AssociationRules,
    "implicit ALS": lambda: ImplicitALS(factors=8, iterations=3, seed=3),
    "lightfm-hybrid": lambda: Hybrid(FAST),
    "lightfm-cf": lambda: Hybrid(FAST.model_copy(update={"use_features": False})),
    "cartlift": lambda: Blended(Hybrid(FAST), Mix(again=10, interest=1, trend=1)),
}


@pytest.fixture(scope="module")
def data(tiny_shop) -> Interactions:
    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))
    return Interactions.from_features(fs)


@pytest.fixture(scope="module", params=list(MAKERS))
def fitted(request, data) -> tuple[str, Recommender]:
    return request.param, MAKERS[request.param]().fit(data)


def _buyers(data: Interactions) -> np.ndarray:
    assert data.purchased is not None
    return np.flatnonzero(np.diff(data.purchased.indptr) > 0)[:60]


def test_names_and_shapes(fitted, data):
    name, rec = fitted
    assert rec.name == name
    rows = np.arange(7)
    assert rec.scores(rows).shape == (7, data.shape[1])
    carts = data.purchased[_buyers(data)[:5]]
    assert rec.related(carts).shape == (5, data.shape[1])
    assert np.isfinite(rec.scores(rows)).all() and np.isfinite(rec.related(carts)).all()


def test_nothing_bought_is_recommended_when_purchases_are_excluded(fitted, data):
    _, rec = fitted
    rows = _buyers(data)
    top = best_of(without(rec.scores(rows), data.purchased[rows]), K)
    assert top.shape == (len(rows), K)
    bought = data.purchased[rows].tocoo()
    assert not set(zip(bought.row, bought.col, strict=True)) & {
        (r, i) for r in range(len(rows)) for i in top[r] if i >= 0
    }


def test_nothing_in_the_cart_is_suggested_for_it(fitted, data):
    _, rec = fitted
    carts = data.purchased[_buyers(data)]
    top = best_of(without(rec.related(carts), carts), K)
    in_cart = carts.tocoo()
    assert not set(zip(in_cart.row, in_cart.col, strict=True)) & {
        (r, i) for r in range(carts.shape[0]) for i in top[r] if i >= 0
    }


def test_save_then_load_gives_identical_answers(fitted, data, tmp_path):
    _, rec = fitted
    again = load(save(rec, tmp_path / "rec.pkl"))
    rows, carts = np.arange(20), data.purchased[_buyers(data)[:5]]
    assert np.array_equal(again.scores(rows), rec.scores(rows))
    assert np.array_equal(again.related(carts), rec.related(carts))


def test_the_same_seed_gives_the_same_answers(fitted, data):
    name, rec = fitted
    again = MAKERS[name]().fit(data)
    rows, carts = np.arange(20), data.purchased[_buyers(data)[:5]]
    assert np.array_equal(again.scores(rows), rec.scores(rows))
    assert np.array_equal(again.related(carts), rec.related(carts))


def test_an_upsell_is_never_cheaper_than_its_anchor(fitted, data):
    _, rec = fitted
    assert data.features is not None
    prices, category = _catalogue(data.features)
    for anchor in np.argsort(prices)[:: max(1, len(prices) // 25)]:
        one = sp.csr_matrix(([1.0], ([0], [anchor])), shape=(1, len(prices)))
        cand, scores = upsell_candidates(rec.related(one)[0], anchor, prices, category)
        order = cand[np.argsort(-scores, kind="stable")][:K]
        assert (prices[order] > prices[anchor]).all()
        assert (category[order] == category[anchor]).all()
