"""The decision: an always-valid test of challenger against champion.

An experiment is looked at every hour, and stopping the first time a fixed-horizon test
says p < 0.05 declares false winners far more often than 5% of the time. The mixture
sequential probability ratio test (mSPRT; Johari, Pekelis and Walsh, "Always Valid
Inference", 2017) stays valid however often it is looked at: with a normal mixing
distribution N(0, tau^2) over the difference of means,

    Lambda_n = sqrt(V / (V + tau^2)) * exp(tau^2 * d^2 / (2 V (V + tau^2)))

where d is the observed difference and V its variance (s_t^2 / n_t + s_c^2 / n_c). The
always-valid p-value is min over looks of 1 / Lambda, and the always-valid interval is
d +- sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) - 2 log alpha)).

The units are what the experiment randomises (customers or sessions); each unit's value
is its outcome over the experiment (attributed revenue, say), so the test compares
means over units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Action = Literal["promote", "stop", "continue"]


@dataclass(frozen=True)
class AlwaysValid:
    """The challenger's difference from the champion at one look."""

    difference: float  # mean(challenger) - mean(champion)
    low: float  # always-valid interval at level 1 - alpha
    high: float
    p_value: float  # always-valid: the minimum over every look so far
    n_challenger: int
    n_champion: int


def always_valid(
    challenger: np.ndarray,
    champion: np.ndarray,
    alpha: float = 0.05,
    tau_ratio: float = 0.1,
    previous_p: float = 1.0,
) -> AlwaysValid:
    """The mSPRT at this look. ``tau_ratio``: the mixing spread in units of the pooled
    standard deviation (the size of effect the test is most sensitive to);
    ``previous_p``: the p-value of the last look (p only ever goes down)."""
    a, b = np.asarray(challenger, float), np.asarray(champion, float)
    n_a, n_b = len(a), len(b)
    if min(n_a, n_b) < 2:
        return AlwaysValid(float("nan"), -np.inf, np.inf, previous_p, n_a, n_b)
    d = float(a.mean() - b.mean())
    var = float(a.var(ddof=1) / n_a + b.var(ddof=1) / n_b)
    pooled = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
    tau2 = (tau_ratio * pooled) ** 2
    if var <= 0 or tau2 <= 0:  # no spread at all: nothing to learn from
        return AlwaysValid(d, -np.inf, np.inf, previous_p, n_a, n_b)
    log_lr = 0.5 * np.log(var / (var + tau2)) + tau2 * d * d / (2 * var * (var + tau2))
    p = min(previous_p, float(np.exp(-log_lr)) if log_lr > 0 else 1.0)
    half = np.sqrt(var * (var + tau2) / tau2 * (np.log((var + tau2) / var) - 2 * np.log(alpha)))
    return AlwaysValid(d, d - half, d + half, p, n_a, n_b)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    test: AlwaysValid


def decide(
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    alpha: float,
    min_units: int,
    days_run: float,
    max_days: float,
    tau_ratio: float = 0.1,
    previous_p: float = 1.0,
) -> Decision:
    """Promote the challenger once the test says it is better, stop it once it says it
    is worse or the experiment ran out of time, else continue. Nothing is decided before
    each variant has ``min_units`` units."""
    test = always_valid(challenger, champion, alpha, tau_ratio, previous_p)
    few = min(test.n_challenger, test.n_champion)
    said = (
        f"challenger - champion {test.difference:+.4g} "
        f"[{test.low:+.4g}, {test.high:+.4g}], always-valid p {test.p_value:.3g}, "
        f"{test.n_challenger} vs {test.n_champion} units"
    )
    if few < min_units:
        return Decision("continue", f"fewer than {min_units} units per variant yet: {said}", test)
    if test.p_value <= alpha:
        if test.difference > 0:
            return Decision("promote", f"the challenger sells more: {said}", test)
        return Decision("stop", f"the challenger sells less: {said}", test)
    if days_run >= max_days:
        return Decision("stop", f"no difference found in {max_days:g} days: {said}", test)
    return Decision("continue", f"no difference found yet: {said}", test)
