"""Contract tests every recommender must pass, on the tiny shop."""

import numpy as np
import pytest

from models.evaluation import evaluate, holdout
from models.features import build
from models.hybrid import HybridModel, Popularity
from models.ingest import validate_tables
from models.ranking import top_k, top_k_scores
from models.settings import EvaluateConfig, FeatureConfig, TrainConfig

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


@pytest.mark.parametrize("kind", ["hybrid", "popularity"])
def test_recommenders_never_return_excluded_items(fs, model, kind):
    rec = model if kind == "hybrid" else Popularity.fit(fs)
    ho = holdout(fs, EvaluateConfig(exclude_purchased=True))
    vec = rec.vectors(ho.user_ids, fs.user_tokens, fs.item_ids, fs.item_tokens)
    idx, _ = top_k(vec.users, vec.items, vec.item_bias, 10, exclude=ho.exclude)
    assert idx.shape == (len(ho.user_ids), 10)
    excluded = ho.exclude.tocoo()
    banned = set(zip(excluded.row.tolist(), excluded.col.tolist(), strict=True))
    assert not banned & {(u, i) for u in range(idx.shape[0]) for i in idx[u]}


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

    from models.hybrid import ModelDivergedError, check_finite

    broken = copy.deepcopy(model.model)
    broken.item_embeddings[0, 0] = np.nan
    with pytest.raises(ModelDivergedError, match="learning_rate"):
        check_finite(broken, FAST)
    check_finite(model.model, FAST)


def test_hybrid_beats_popularity_on_tiny_shop(model, fs):
    cfg = EvaluateConfig()
    ho = holdout(fs, cfg)
    hybrid = evaluate(model, fs, ho, cfg)
    pop = evaluate(Popularity.fit(fs), fs, ho, cfg)
    assert hybrid["users"] == pop["users"] > 0
    assert {"cold_users.ndcg_at_10", "cold_items.ndcg_at_10", "coverage_at_10"} <= set(hybrid)
    assert hybrid["coverage_at_10"] > pop["coverage_at_10"]


@pytest.mark.parametrize("n", [1_000, 5_000, 5_121, 30_000])
def test_chunked_top_k_is_exact(n):
    from models.ranking import _select

    rng = np.random.default_rng(n)
    scores = rng.normal(size=(64, n)).astype(np.float32)
    scores[:, rng.integers(0, n, 50)] = -np.inf  # excluded items
    scores[0, :] = -np.inf
    scores[0, 7] = 1.0  # a row with a single allowed item
    idx, val = top_k_scores(scores, 10)
    ref_idx, ref_val = _select(scores, 10)
    assert np.array_equal(val, ref_val)
    assert np.array_equal(idx[1:], ref_idx[1:]) and idx[0, 0] == 7
