"""Assigning requests to an experiment's variants: stable, at the share, fresh per salt."""

import numpy as np
import pytest

from models.experiments.assignment import CHALLENGER, CHAMPION, Experiment, assign, bucket

CUSTOMERS = [f"u{i:06d}" for i in range(20_000)]


def test_the_same_customer_always_gets_the_same_side():
    trial = Experiment("7", 0.3, "shop@challenger:7")
    first = [assign(trial, c) for c in CUSTOMERS[:500]]
    assert first == [assign(Experiment("7", 0.3, "shop@challenger:7"), c) for c in CUSTOMERS[:500]]


@pytest.mark.parametrize("share", [0.05, 0.5, 0.9])
def test_the_challenger_answers_its_share(share):
    trial = Experiment("7", share, "shop@challenger:7")
    taken = np.mean([assign(trial, c) == CHALLENGER for c in CUSTOMERS])
    spread = np.sqrt(share * (1 - share) / len(CUSTOMERS))
    assert abs(taken - share) < 4 * spread  # a binomial draw, 4 standard errors


def test_each_experiment_splits_afresh_and_a_larger_share_keeps_its_customers():
    a = {c for c in CUSTOMERS if assign(Experiment("7", 0.5, "x:7"), c) == CHALLENGER}
    b = {c for c in CUSTOMERS if assign(Experiment("8", 0.5, "x:8"), c) == CHALLENGER}
    overlap = len(a & b) / len(a)
    assert 0.45 < overlap < 0.55  # independent of the last split, not the same half
    wider = {c for c in CUSTOMERS if assign(Experiment("7", 0.7, "x:7"), c) == CHALLENGER}
    assert a <= wider  # ramping a share up moves nobody back to the champion


def test_no_experiment_or_no_id_is_the_champion():
    assert assign(None, "u000001") == CHAMPION
    assert assign(Experiment("7", 0.999, "x:7"), None) == CHAMPION
    assert 0.0 <= bucket("x", "") < 1.0


@pytest.mark.parametrize("share", [0.0, 1.0, -0.2, 1.5])
def test_a_share_outside_0_1_is_refused(share):
    with pytest.raises(ValueError, match="share"):
        Experiment("7", share, "x:7")
