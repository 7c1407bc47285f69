"""Metric functions against values computed by hand."""

import numpy as np
import pytest

from models.evaluation.metrics import (
    coverage,
    hit_rate_at_k,
    hits_from_pairs,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_report,
    recall_at_k,
)

# User 0: hits at ranks 1 and 3 of 4, 3 relevant items. User 1: no hit, 1 relevant.
HITS = np.array([[True, False, True, False], [False, False, False, False]])
N_REL = np.array([3, 1])


def test_precision_recall_hit_rate():
    assert precision_at_k(HITS).tolist() == [0.5, 0.0]
    assert recall_at_k(HITS, N_REL).tolist() == pytest.approx([2 / 3, 0.0])
    assert hit_rate_at_k(HITS).tolist() == [1.0, 0.0]


def test_ndcg_by_hand():
    dcg = 1 / np.log2(2) + 1 / np.log2(4)  # ranks 1 and 3
    idcg = 1 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)  # three relevant on top
    assert ndcg_at_k(HITS, N_REL)[0] == pytest.approx(dcg / idcg)
    assert ndcg_at_k(HITS, N_REL)[1] == 0.0
    # Perfect list: NDCG is 1 even when more items are relevant than k.
    assert ndcg_at_k(np.ones((1, 4), bool), np.array([10]))[0] == pytest.approx(1.0)


def test_map_by_hand():
    # precision@1 = 1, precision@3 = 2/3; divided by min(3 relevant, k=4) = 3
    assert map_at_k(HITS, N_REL)[0] == pytest.approx((1 + 2 / 3) / 3)
    assert map_at_k(HITS, N_REL)[1] == 0.0


def test_hits_from_pairs_and_coverage():
    top = np.array([[4, 2, 7], [1, 0, 3]])
    hits = hits_from_pairs(top, np.array([0, 0, 1]), np.array([7, 5, 0]), n_items=10)
    assert hits.tolist() == [[False, False, True], [False, True, False]]
    assert coverage(top, 12) == pytest.approx(6 / 12)


def test_report_means_per_user_values():
    report = ranking_report(HITS, N_REL)
    assert report["precision_at_4"] == pytest.approx(0.25)
    assert report["hit_rate_at_4"] == pytest.approx(0.5)
    assert set(report) == {f"{m}_at_4" for m in ("precision", "recall", "ndcg", "map", "hit_rate")}
