"""The evaluation protocol against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models.evaluation.protocol import (
    Protocol,
    bootstrap_ci,
    evaluate,
    intra_list_diversity,
    novelty,
    paired,
    rank,
    task,
)

# 4 users x 5 items. User 3 has nothing relevant left after exclusion: not evaluated.
TRUTH = sp.csr_matrix(
    np.array([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]])
)
# User 0 had item 2 already, user 3 item 0.
EXCLUDE = sp.csr_matrix(([1.0, 1.0], ([0, 3], [2, 0])), shape=(4, 5))
# Every user gets the same scores: item 2 > 0 > 1 > 3 > 4.
SCORES = np.array([0.9, 0.5, 1.0, 0.3, 0.1], dtype=np.float32)


def scorer(rows: np.ndarray) -> np.ndarray:
    return np.tile(SCORES, (len(rows), 1))


def test_ranks_leave_out_excluded_items_and_skip_users_with_nothing_to_find():
    t = task(TRUTH, EXCLUDE, {"cold": np.array([True, False, False, True])})
    assert t.users.tolist() == [0, 1, 2]
    assert t.slices["cold"].tolist() == [True, False, False]
    top = rank(scorer, t, 3, batch=2)
    assert top.tolist() == [[0, 1, 3], [2, 0, 1], [2, 0, 1]]
    assert np.array_equal(top, rank(scorer, t, 3, batch=100))


def test_metrics_at_several_k_match_hand_computed_values():
    t = task(TRUTH, EXCLUDE)
    table = evaluate("fixed", scorer, t, Protocol(ks=(1, 3), bootstrap=200)).set_index(
        ["slice", "metric", "k"]
    )["mean"]
    # user 0: list [0, 1, 3], relevant {0, 3}: hits at ranks 1 and 3.
    # user 1: list [2, 0, 1], relevant {1}: hit at rank 3. user 2: relevant {4}: no hit.
    assert table[("all", "precision", 3)] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert table[("all", "recall", 3)] == pytest.approx((1 + 1 + 0) / 3)
    assert table[("all", "hit_rate", 1)] == pytest.approx(1 / 3)
    d = [1 / math.log2(r + 1) for r in (1, 2, 3)]
    ndcg0 = (d[0] + d[2]) / (d[0] + d[1])
    ndcg1 = d[2] / d[0]
    assert table[("all", "ndcg", 3)] == pytest.approx((ndcg0 + ndcg1 + 0) / 3)
    assert table[("all", "map", 3)] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3 + 0) / 3)
    assert table[("all", "coverage", 3)] == pytest.approx(4 / 5)


def test_bootstrap_interval_holds_the_mean_narrows_with_users_and_is_seeded():
    rng = np.random.default_rng(5)
    small = rng.random(50)
    large = rng.random(5_000)
    m, lo, hi = bootstrap_ci(small, 500, 0.95, np.random.default_rng(0))
    assert lo < m < hi
    _, lo2, hi2 = bootstrap_ci(large, 500, 0.95, np.random.default_rng(0))
    assert hi2 - lo2 < (hi - lo) / 5
    assert bootstrap_ci(small, 500, 0.95, np.random.default_rng(0)) == (m, lo, hi)


def test_novelty_and_diversity_by_hand():
    share = np.array([0.5, 0.25, 0.125, 1.0])
    assert novelty(np.array([[0, 1], [2, -1]]), share) == pytest.approx((1 + 2 + 3) / 3)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert intra_list_diversity(np.array([[0, 1]]), vectors) == pytest.approx(1.0)
    assert intra_list_diversity(np.array([[0, 2]]), vectors) == pytest.approx(0.0)
    assert intra_list_diversity(np.array([[0, 3]]), vectors) == pytest.approx(1 - 2**-0.5)


def test_a_paired_interval_sees_a_small_steady_gain_that_separate_intervals_miss():
    rng = np.random.default_rng(0)
    theirs = rng.uniform(0, 1, 400)  # customers differ a lot ...
    ours = theirs + 0.02  # ... and we add a little to each of them
    protocol = Protocol(bootstrap=500, seed=1)
    diff, lo, hi = paired(ours, theirs, protocol)
    assert diff == pytest.approx(0.02) and lo == pytest.approx(0.02) and hi == pytest.approx(0.02)
    _, our_lo, _ = bootstrap_ci(ours, 500, 0.95, np.random.default_rng(1))
    _, _, their_hi = bootstrap_ci(theirs, 500, 0.95, np.random.default_rng(1))
    assert our_lo < their_hi  # the separate intervals overlap
    noisy = theirs + rng.normal(0, 0.2, 400)  # no gain, only noise: the interval holds 0
    _, lo, hi = paired(noisy, theirs, protocol)
    assert lo < 0 < hi
    assert paired(noisy, theirs, protocol) == paired(noisy, theirs, protocol)  # seeded
