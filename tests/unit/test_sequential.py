"""The always-valid test: few false winners however often it is looked at, and real
lifts found."""

import numpy as np
import pytest

from models.experiments.sequential import always_valid, decide


def spend(rng: np.random.Generator, n: int, buy: float, basket: float = 30.0) -> np.ndarray:
    """Per-customer revenue: most buy nothing, buyers spend a skewed amount."""
    return np.where(rng.random(n) < buy, rng.gamma(2.0, basket / 2, n), 0.0)


def monitored(seed: int, lift: float, looks: int = 40, per_look: int = 100) -> str:
    """Look after every batch, as an hourly flow would; the first promote/stop wins."""
    rng = np.random.default_rng(seed)
    a, b, p = np.empty(0), np.empty(0), 1.0
    for _ in range(looks):
        a = np.append(a, spend(rng, per_look, 0.10 * (1 + lift)))
        b = np.append(b, spend(rng, per_look, 0.10))
        d = decide(a, b, alpha=0.05, min_units=200, days_run=0, max_days=30, previous_p=p)
        p = d.test.p_value
        if d.action != "continue":
            return d.action
    return "continue"


def test_an_a_a_experiment_rarely_declares_a_winner_under_continuous_monitoring():
    outcomes = [monitored(seed, lift=0.0) for seed in range(200)]
    assert sum(o != "continue" for o in outcomes) <= 10  # <= 5% of 200, 40 looks each


def test_a_real_lift_is_promoted_and_a_real_loss_stopped():
    promoted = [monitored(seed, lift=0.5) for seed in range(20)]
    assert promoted.count("promote") >= 18
    stopped = [monitored(seed, lift=-0.5) for seed in range(20)]
    assert stopped.count("stop") >= 18 and "promote" not in stopped


def test_the_p_value_never_rises_and_the_interval_holds_the_difference():
    rng = np.random.default_rng(3)
    a, b = spend(rng, 3000, 0.12), spend(rng, 3000, 0.10)
    first = always_valid(a[:500], b[:500])
    later = always_valid(a, b, previous_p=first.p_value)
    assert later.p_value <= first.p_value
    assert later.low < later.difference < later.high
    assert later.difference == pytest.approx(a.mean() - b.mean())


def test_nothing_is_decided_before_the_minimum_sample_or_after_the_deadline():
    rng = np.random.default_rng(4)
    a, b = spend(rng, 50, 0.5), spend(rng, 50, 0.01)
    early = decide(a, b, alpha=0.05, min_units=100, days_run=1, max_days=30)
    assert early.action == "continue" and "fewer than 100 units" in early.reason
    same = spend(rng, 500, 0.1), spend(rng, 500, 0.1)
    late = decide(*same, alpha=0.05, min_units=100, days_run=30, max_days=30)
    assert late.action == "stop" and "no difference found in 30 days" in late.reason
