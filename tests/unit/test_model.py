"""Contract tests every recommender must pass, on the tiny shop."""

import numpy as np
import pytest

from models.config import FeatureConfig, TrainConfig
from models.data.ingest import validate_tables
from models.evaluation.tasks import holdout_metrics
from models.features.build import build
from models.ranking.topk import top_k, top_k_scores
from models.recommenders.base import Interactions
from models.recommenders.baselines import Popularity
from models.recommenders.hybrid import Hybrid, HybridModel

FAST = TrainConfig(no_components=16, epochs=5, num_threads=1)


@pytest.fixture(scope="module")
def fs(tiny_raw):
    r = validate_tables(tiny_raw)
    return build(
        r.events.accepted, r.items.accepted, r.users.accepted, FeatureConfig(holdout_days=14)
    )


@pytest.fixture(scope="module")
def model(fs):
    return HybridModel.fit(fs, FAST)


def test_top_k_excludes_and_orders():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [1.0, 0.0, 0.2, 0.3]], dtype=np.float32)
    idx, _ = top_k_scores(scores, 3)
    assert idx.tolist() == [[1, 3, 2], [0, 3, 2]]  # ties by item index
    import scipy.sparse as sp

    users, items = np.eye(2, dtype=np.float32), np.array([[1, 0], [0, 1], [0.5, 0.5]], np.float32)
    exclude = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    idx, _ = top_k(users, items, np.zeros(3, np.float32), 2, exclude=exclude)
    assert 0 not in idx[0] and idx[1].tolist() == [1, 2]


def test_save_load_gives_identical_scores(model, fs, tmp_path):
    loaded = HybridModel.load(model.save(tmp_path / "m.pkl"))
    users = fs.user_ids[:20]
    a = model.vectors(users, fs.user_tokens, fs.item_ids, fs.item_tokens)
    b = loaded.vectors(users, fs.user_tokens, fs.item_ids, fs.item_tokens)
    assert np.array_equal(a.users @ a.items.T, b.users @ b.items.T)


def test_refit_with_same_seed_is_identical(model, fs):
    again = HybridModel.fit(fs, FAST)
    assert np.array_equal(model.item_emb, again.item_emb)
    assert np.array_equal(model.user_emb, again.user_emb)


def test_unknown_user_with_attributes_is_scored_from_features(model, fs):
    import pandas as pd

    tokens = pd.DataFrame({"id": ["new"], "token": ["age_band=25-34"], "weight": [1.0]})
    vec = model.vectors(
        np.array(["new", "nobody"], dtype=object), tokens, fs.item_ids, fs.item_tokens
    )
    assert np.abs(vec.users[0]).sum() > 0  # represented through its attribute
    assert np.abs(vec.users[1]).sum() == 0  # nothing known: item biases alone rank


def test_diverged_parameters_are_refused_with_advice(model):
    import copy

    from models.recommenders.hybrid import ModelDivergedError, check_finite

    broken = copy.deepcopy(model.model)
    broken.item_embeddings[0, 0] = np.nan
    with pytest.raises(ModelDivergedError, match="learning_rate"):
        check_finite(broken, FAST)
    check_finite(model.model, FAST)


def test_hybrid_beats_popularity_on_tiny_shop(model, fs):
    scorers = {
        "hybrid": Hybrid.of(model, fs).scores,
        "popularity": Popularity().fit(Interactions.from_features(fs)).scores,
    }
    out = holdout_metrics(fs, scorers, 10, "discovery")
    hybrid, pop = out["hybrid"], out["popularity"]
    assert hybrid["users"] == pop["users"] > 0
    assert {"cold_users.ndcg_at_10", "new_items.ndcg_at_10", "coverage_at_10"} <= set(hybrid)
    assert hybrid["coverage_at_10"] > pop["coverage_at_10"]


@pytest.mark.parametrize("n", [1_000, 5_000, 5_121, 30_000])
def test_chunked_top_k_is_exact(n):
    from models.ranking.topk import _select

    rng = np.random.default_rng(n)
    scores = rng.normal(size=(64, n)).astype(np.float32)
    scores[:, rng.integers(0, n, 50)] = -np.inf  # excluded items
    scores[0, :] = -np.inf
    scores[0, 7] = 1.0  # a row with a single allowed item
    idx, val = top_k_scores(scores, 10)
    ref_idx, ref_val = _select(scores, 10)
    assert np.array_equal(val, ref_val)
    assert np.array_equal(idx[1:], ref_idx[1:]) and idx[0, 0] == 7


def test_trend_weight_adds_spreads_of_a_customers_own_scores(model, fs):
    """With the trend on, a customer with a history scores LightFM's score + weight x their
    score spread x the item's standardised trend; with it off, LightFM's alone."""
    from models.recommenders.hybrid import TREND_DIMS, score_moments, score_spreads, trend_scale

    lean = HybridModel.wrap(model.model, fs, FAST.model_copy(update={"trend_weight": 2.0}))
    base = FAST.no_components
    assert lean.user_emb.shape[1] == model.item_emb.shape[1] == base + TREND_DIMS
    assert np.array_equal(lean.taste_emb, model.taste_emb)  # similarity ignores the trend
    assert lean.taste_emb.shape[1] == base
    warm = np.flatnonzero(np.diff(fs.interactions.tocsr().indptr) > 0)[:30]
    plain = lean.user_emb[warm, :base] @ lean.taste_emb.T + lean.item_bias
    spread = score_spreads(
        lean.user_emb[warm, :base], score_moments(lean.taste_emb, lean.item_bias)
    )
    assert np.allclose(plain.std(axis=1), spread, rtol=1e-3)
    expected = plain + 2.0 * spread[:, None] * trend_scale(fs.item_trend)[0]
    assert np.allclose(lean.user_emb[warm] @ lean.item_emb.T + lean.item_bias, expected, atol=1e-4)
    # Off (the default): the extra dimensions are zero for every customer.
    assert np.all(model.user_emb[:, base:] == 0)


def test_cold_customers_lean_on_what_newcomers_pick(model, fs):
    from models.recommenders.hybrid import trend_scale

    cfg = FAST.model_copy(update={"trend_weight": 1.0, "cold_trend_weight": 3.0})
    lean = HybridModel.wrap(model.model, fs, cfg)
    base = FAST.no_components
    cold = np.flatnonzero(np.diff(fs.interactions.tocsr().indptr) == 0)
    warm = np.flatnonzero(np.diff(fs.interactions.tocsr().indptr) > 0)
    assert len(cold) and len(warm)
    # Warm customers lean on everyone's trend only, cold ones on newcomers' only.
    assert np.all(lean.user_emb[warm, base + 1] == 0) and np.all(lean.user_emb[warm, base] > 0)
    assert np.all(lean.user_emb[cold, base] == 0) and np.all(lean.user_emb[cold, base + 1] > 0)
    assert np.allclose(lean.item_emb[:, base + 1], trend_scale(fs.newcomer_trend)[0])
    # A customer the model never saw, with a cold customer's tokens, is encoded the same.
    tokens = fs.user_tokens[fs.user_tokens["id"] == fs.user_ids[cold[0]]]
    new = lean.vectors(
        np.array(["someone new"], dtype=object),
        tokens.assign(id="someone new"),
        np.array(["brand new"], dtype=object),
        None,
    )
    assert np.allclose(new.users[0], lean.user_emb[cold[0]], atol=1e-6)
    # An item nobody bought sits at the bottom of both trends.
    assert np.all(new.items[0, base:] <= lean.item_emb[:, base:].min(axis=0) + 1e-6)
    nobody = (fs.item_trend == 0) & (fs.newcomer_trend == 0)
    if nobody.any():
        assert np.allclose(new.items[0, base:], lean.item_emb[nobody, base:][0])


def test_lean_on_trend_chooses_the_best_of_the_grid_per_slice(model, fs):
    from dataclasses import replace

    from models.config import RunConfig, excludes_purchased
    from models.evaluation.protocol import slice_means
    from models.evaluation.tasks import objective, tasks
    from models.evaluation.tuning import lean_on_trend
    from models.features.build import trends

    config = RunConfig(features=FeatureConfig(holdout_days=14), train=FAST)
    customers = tasks(fs, excludes_purchased(objective(config.evaluate, fs)))["customers"]
    tuned, scores = lean_on_trend(model.model, fs, config)

    def ndcg(half_life: float, w: float) -> tuple[float, float]:
        feats = config.features.model_copy(
            update={"trend_half_life_days": half_life, "newcomer_half_life_days": half_life}
        )
        item_trend, newcomer_trend = trends(fs.split.train, fs.item_ids, fs.split.cutoff, feats)
        at = replace(fs, item_trend=item_trend, newcomer_trend=newcomer_trend)
        cfg = FAST.model_copy(update={"trend_weight": w, "cold_trend_weight": w})
        scorer = Hybrid.of(HybridModel.wrap(model.model, at, cfg), at).scores
        m = slice_means(scorer, customers, 10)
        return m["warm"], m["cold_users"]

    grid = {
        (h, w): ndcg(h, w) for h in config.tune.trend_half_lives for w in config.tune.trend_weights
    }
    warm = (tuned.features.trend_half_life_days, tuned.train.trend_weight)
    cold = (tuned.features.newcomer_half_life_days, tuned.train.cold_trend_weight)
    assert grid[warm][0] == max(v[0] for v in grid.values()) == scores["val_warm_ndcg_at_10"]
    if scores["val_cold_users"] < config.tune.min_cold_users:  # too few to choose on
        assert cold == (config.features.newcomer_half_life_days, config.train.cold_trend_weight)
    else:
        assert grid[cold][1] == max(v[1] for v in grid.values())


@pytest.mark.parametrize("n", [300, 30_000])
def test_top_k_breaks_ties_by_index_even_at_the_kth_place(n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 4, size=(50, n)).astype(np.float32)  # many ties everywhere
    scores[:, :5] = -np.inf
    for k in (10, 20):
        idx, _ = top_k_scores(scores, k)
        for r in range(len(scores)):
            ref = np.lexsort((np.arange(n), -scores[r]))[:k]
            assert idx[r].tolist() == ref.tolist()
    assert np.array_equal(top_k_scores(scores, 10)[0], top_k_scores(scores, 20)[0][:, :10])


def test_a_baselines_knob_is_chosen_on_the_validation_window_per_variant(fs):
    from models.evaluation.tuning import choose_on_validation
    from models.recommenders.baselines import EASE

    validation = build(fs.split.train, fs.items, fs.users, FeatureConfig(holdout_days=14))
    assert validation.split.cutoff < fs.split.cutoff  # the holdout stays unseen
    chosen = choose_on_validation(lambda l2: EASE(l2=l2), (1.0, 100.0, 1e6), validation, 10)
    grid = (1.0, 100.0, 1e6)
    for exclude in (True, False):
        best, scores = chosen[exclude]
        assert len(scores) == 3 and scores[grid.index(best)] == max(scores)
    assert chosen[True][1][2] < chosen[True][1][1]  # regularised to nothing: worse
