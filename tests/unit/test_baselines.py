"""Baselines on a small shop with two separate customer groups, against hand values."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from models.evaluation.protocol import Protocol, evaluate, task
from models.ranking.topk import top_per_row
from models.recommenders.base import Interactions
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

# Users 0-2 buy in category 0 (items 0-2), users 3-5 in category 1 (items 3-5); item 6
# (category 1) is everyone's add-on; user 6 has no history. Each user misses one item of
# their group: that is what they buy next.
BOUGHT = [[0, 1, 6], [1, 2, 6], [0, 2, 6], [3, 4, 6], [4, 5, 6], [3, 5, 6], []]
NEXT = [2, 0, 1, 5, 3, 4, 6]


def matrix(rows: list[list[int]], n_items: int = 7) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


DATA = Interactions(
    matrix=matrix(BOUGHT),
    item_category=np.array([0, 0, 0, 1, 1, 1, 1]),
    baskets=matrix([b for b in BOUGHT if b]),  # one basket per customer
)


def best_unseen(scores: np.ndarray, row: int) -> int:
    s = scores.astype(float).copy()
    s[BOUGHT[row]] = -np.inf
    return int(np.argmax(s))


def test_global_popularity_ranks_the_add_on_first():
    model = Popularity().fit(DATA)
    assert model.pop.tolist() == [2, 2, 2, 2, 2, 2, 6]
    assert np.argmax(model.scores(np.array([6]))[0]) == 6


def test_recent_popularity_ranks_last_days_first_and_breaks_ties_by_the_window():
    recent = matrix([[4], [4], [5], [], [], [], []])  # last week: item 4 twice, item 5 once
    model = RecentPopularity().fit(replace(DATA, recent=recent))
    order = np.argsort(-model.scores(np.array([0]))[0], kind="stable")
    assert order[:3].tolist() == [4, 5, 6]  # then the window's best seller, item 6
    with pytest.raises(ValueError, match="last days"):
        RecentPopularity().fit(DATA)


def test_category_popularity_keeps_to_the_customers_categories():
    model = CategoryPopularity().fit(DATA)
    scores = model.scores(np.arange(7))
    # User 0: category 0 has 2 of its 3 items; every category-0 item outranks category 1
    # except the add-on it already holds a share of (item 6 is category 1, share 1/3).
    assert scores[0, [0, 1, 2]].min() > scores[0, [3, 4, 5]].max()
    assert np.argmax(scores[6]) == 6  # no history: the global best seller
    related = model.related(matrix([[0]]))[0]
    assert related[[0, 1, 2]].min() > related[[3, 4, 5]].max()


def test_item_knn_completes_each_group():
    model = ItemKNN(neighbours=3).fit(DATA)
    scores = model.scores(np.arange(6))
    assert [best_unseen(scores[u], u) for u in range(6)] == NEXT[:6]
    assert model.sim is not None and (np.diff(model.sim.T.tocsr().indptr) <= 3).all()


def test_personal_frequency_ranks_purchases_then_interests_then_best_sellers():
    purchases = matrix([[2, 2, 0], [], [], [], [], [], []])  # user 0 bought 2 twice, 0 once
    purchases.sum_duplicates()
    looked = DATA.matrix + matrix([[3], [], [], [], [], [], []]) * 0.5  # and viewed 3
    model = PersonalFrequency().fit(replace(DATA, matrix=looked, purchases=purchases))
    order = np.argsort(-model.scores(np.array([0]))[0], kind="stable")
    assert order[:2].tolist() == [2, 0]  # bought twice, then once
    assert order[2] in (1, 6) and 3 in order[:5]  # then what it touched, before the rest
    assert np.argmax(model.scores(np.array([6]))[0]) == 6  # no history: the best seller
    assert np.argmax(model.related(matrix([[0]]))[0]) == 6
    with pytest.raises(ValueError, match="purchase counts"):
        PersonalFrequency().fit(DATA)


def test_ease_completes_each_group_and_keeps_the_most_popular_items():
    model = EASE(l2=1.0).fit(DATA)
    scores = model.scores(np.arange(6))
    assert [best_unseen(scores[u], u) for u in range(6)] == NEXT[:6]
    assert np.allclose(np.diag(model.weights), 0)
    small = EASE(l2=1.0, max_items=1).fit(DATA)  # only the add-on (item 6) takes part
    assert small.keep.tolist() == [6] and not small.scores(np.arange(6))[:, :6].any()


def test_rules_score_by_summed_confidence():
    model = AssociationRules(min_count=1).fit(DATA)
    # confidence(0 -> 2) = baskets with 0 and 2 / baskets with 0 = 1 / 2; same for 1 -> 2;
    # confidence(6 -> 2) = 2 / 6 (baskets 1 and 2 of six). User 0 holds {0, 1, 6}.
    assert model.scores(np.array([0]))[0, 2] == pytest.approx(1 / 2 + 1 / 2 + 2 / 6)
    assert model.scores(np.array([0]))[0, 3] == pytest.approx(2 / 6)  # only through 6
    assert model.related(matrix([[0, 1]]))[0, 2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need baskets"):
        AssociationRules().fit(Interactions(DATA.matrix, DATA.item_category))


def test_als_learns_the_groups_and_is_seeded():
    model = ImplicitALS(factors=4, iterations=30, regularization=0.1, seed=3).fit(DATA)
    scores = model.scores(np.arange(6))
    assert [best_unseen(scores[u], u) for u in range(6)] == NEXT[:6]
    again = ImplicitALS(factors=4, iterations=30, regularization=0.1, seed=3).fit(DATA)
    assert np.array_equal(again.item_factors, model.item_factors)  # bit for bit


def test_top_per_row_keeps_the_largest():
    m = sp.csr_matrix(np.array([[0.1, 0.5, 0.3, 0.0], [0.0, 0.0, 0.2, 0.9]]))
    assert top_per_row(m, 2).toarray().tolist() == [[0, 0.5, 0.3, 0], [0, 0, 0.2, 0.9]]
    assert top_per_row(m, 1).toarray().tolist() == [[0, 0.5, 0, 0], [0, 0, 0, 0.9]]


def test_every_baseline_runs_through_the_protocol():
    t = task(matrix([[n] for n in NEXT]), DATA.matrix, {"cold": np.arange(7) == 6})
    models = [
        Popularity(),
        CategoryPopularity(),
        ItemKNN(neighbours=3),
        AssociationRules(min_count=1),
        ImplicitALS(factors=4, iterations=30, regularization=0.1, seed=3),
    ]
    hit = {}
    for model in models:
        model.fit(DATA)
        table = evaluate(model.name, model.scores, t, Protocol(ks=(1, 3), bootstrap=50))
        hit[model.name] = table.query("slice == 'all' and metric == 'hit_rate' and k == 1")[
            "mean"
        ].item()
    assert hit["popularity"] < hit["item-kNN"] and hit["popularity"] < hit["implicit ALS"]
