"""Every model on a small shop's temporal split through the one protocol."""

from __future__ import annotations

import numpy as np
import pytest

from models.config import EvaluateConfig, FeatureConfig, TrainConfig
from models.evaluation.holdout import evaluate as gate_evaluate
from models.evaluation.holdout import holdout
from models.evaluation.protocol import Protocol
from models.evaluation.tasks import (
    cheapest_pricier,
    compare,
    cross_sell_table,
    engine_cross_sell,
    engine_upsell,
    interactions,
    lightfm_scorer,
    tasks,
    upsell_table,
)
from models.features.build import build
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.recommenders.baselines import (
    AssociationRules,
    CategoryPopularity,
    GlobalPopularity,
    ImplicitALS,
    ItemKNN,
)
from models.recommenders.hybrid import HybridModel


@pytest.fixture(scope="module")
def fitted(tiny_shop):
    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))
    hybrid = HybridModel.fit(fs, TrainConfig(no_components=8, epochs=5))
    data = interactions(fs)
    scorers = {"lightfm-hybrid": lightfm_scorer(hybrid, fs)}
    for model in (
        GlobalPopularity(),
        CategoryPopularity(),
        ItemKNN(),
        AssociationRules(),
        ImplicitALS(factors=8, iterations=5),
    ):
        scorers[model.name] = model.fit(data).scores
    return fs, hybrid, scorers


def test_the_protocol_agrees_with_the_gates_evaluation(fitted):
    fs, hybrid, scorers = fitted
    gate = gate_evaluate(hybrid, fs, holdout(fs, EvaluateConfig()), EvaluateConfig())
    table = compare(fs, {"lightfm-hybrid": scorers["lightfm-hybrid"]}, True, Protocol(ks=(10,)))
    row = table.query("task == 'customers' and slice == 'all' and metric == 'ndcg' and k == 10")
    assert row["mean"].item() == pytest.approx(gate["ndcg_at_10"], abs=1e-6)
    assert row["users"].item() == gate["users"]


def test_every_model_every_slice_every_k_with_intervals(fitted):
    fs, _, scorers = fitted
    table = compare(fs, scorers, False, Protocol(ks=(5, 10, 20), bootstrap=200))
    assert set(table["model"]) == set(scorers)
    assert set(table["task"]) == {"customers", "new items"}
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
    engine = Engine(build_bundle(hybrid, fs, FeatureConfig(holdout_days=14), {}))
    data = interactions(fs)
    rules = AssociationRules().fit(data)
    popular = CategoryPopularity().fit(data)
    cross = cross_sell_table(
        fs,
        {
            "cartlift": engine_cross_sell(engine, fs, 10),
            "association rules": lambda rows, carts: rules.related(carts),
            "popularity": lambda rows, carts: GlobalPopularity().fit(data).related(carts),
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
