"""Every model on a small shop's temporal split through the one protocol."""

from __future__ import annotations

import numpy as np
import pytest

from models.config import FeatureConfig, RankingConfig, TrainConfig, excludes_purchased
from models.evaluation.protocol import Protocol
from models.evaluation.tasks import (
    cheapest_pricier,
    compare,
    cross_sell_table,
    engine_cross_sell,
    engine_upsell,
    holdout_metrics,
    tasks,
    upsell_table,
)
from models.features.build import build
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.recommenders.base import Interactions
from models.recommenders.baselines import (
    AssociationRules,
    CategoryPopularity,
    ImplicitALS,
    ItemKNN,
    Popularity,
)
from models.recommenders.blend import PLAIN
from models.recommenders.hybrid import Hybrid, HybridModel


@pytest.fixture(scope="module")
def fitted(tiny_shop):
    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))
    hybrid = HybridModel.fit(fs, TrainConfig(no_components=8, epochs=5))
    data = Interactions.from_features(fs)
    scorers = {"lightfm-hybrid": Hybrid.of(hybrid, fs).scores}
    for model in (
        Popularity(),
        CategoryPopularity(),
        ItemKNN(),
        AssociationRules(),
        ImplicitALS(factors=8, iterations=5),
    ):
        scorers[model.name] = model.fit(data).scores
    return fs, hybrid, scorers


@pytest.mark.parametrize("aim", ["discovery", "replenishment"])
def test_the_gate_reads_the_reports_table(fitted, aim):
    fs, _, scorers = fitted
    exclude = excludes_purchased(aim)
    gate = holdout_metrics(fs, scorers, 10, aim)
    table = compare(fs, scorers, exclude, Protocol(ks=(10,)))
    for model in ("popularity", "lightfm-hybrid"):
        for where, query in (
            ("", "task == 'customers' and slice == 'all'"),
            ("cold_users.", "task == 'customers' and slice == 'cold_users'"),
            ("new_items.", "task == 'new_items' and slice == 'all'"),
        ):
            row = table.query(f"model == @model and {query} and metric == 'ndcg' and k == 10")
            assert row["mean"].item() == pytest.approx(gate[model][f"{where}ndcg_at_10"], abs=1e-9)
            assert row["users"].item() == gate[model][f"{where}users"]


def test_every_model_every_slice_every_k_with_intervals(fitted):
    fs, _, scorers = fitted
    table = compare(fs, scorers, False, Protocol(ks=(5, 10, 20), bootstrap=200))
    assert set(table["model"]) == set(scorers)
    assert set(table["task"]) == {"customers", "new_items"}
    assert set(table["slice"]) == {"all", "warm", "cold_users"}
    assert set(table["k"]) == {5, 10, 20}
    assert {"novelty", "diversity", "coverage"} <= set(table["metric"])
    ranked = table.dropna(subset=["lower"])
    assert (ranked["lower"] <= ranked["mean"] + 1e-12).all()
    assert (ranked["mean"] <= ranked["upper"] + 1e-12).all()


def test_excluding_purchases_removes_them_from_truth_and_lists(fitted):
    fs, _, _ = fitted
    counted, excluded = tasks(fs, False)["customers"], tasks(fs, True)["customers"]
    assert excluded.truth.nnz < counted.truth.nnz and excluded.exclude.nnz > 0
    assert excluded.truth.multiply(excluded.exclude).nnz == 0
    assert counted.exclude.nnz == 0
    assert np.isin(excluded.users, counted.users).all()


def test_cross_sell_and_upsell_tables_judge_the_product_and_the_baselines(fitted):
    fs, hybrid, _ = fitted
    engine = Engine(
        build_bundle(
            hybrid,
            fs,
            FeatureConfig(holdout_days=14),
            RankingConfig(),
            {},
            (PLAIN, None),
            "discovery",
        )
    )
    data = Interactions.from_features(fs)
    rules = AssociationRules().fit(data)
    popular = CategoryPopularity().fit(data)
    cross = cross_sell_table(
        fs,
        {
            "cartlift": engine_cross_sell(engine, fs, 10),
            "association rules": lambda rows, carts: rules.related(carts),
            "popularity": lambda rows, carts: Popularity().fit(data).related(carts),
        },
    ).set_index("model")
    assert cross["cases"].min() > 20
    assert cross["hit_rate_at_10"].between(0, 1).all() and cross["mrr_at_10"].between(0, 1).all()
    assert cross.loc["cartlift", "hit_rate_at_10"] > cross.loc["popularity", "hit_rate_at_10"]
    up = upsell_table(
        fs,
        {
            "cartlift": engine_upsell(engine, fs, 10),
            "cheapest pricier": cheapest_pricier(fs),
            "popularity in category": lambda rows, anchors: popular.related(anchors),
        },
    ).set_index("model")
    assert up["cases"].min() > 20 and up["hit_rate_at_10"].between(0, 1).all()
    assert (up["uplift_of_hits_at_10"].dropna() > 0).all()
