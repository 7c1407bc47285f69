"""One look at a running experiment: credit the purchases, compute the KPIs, decide.

The ``experiment`` flow reads the prediction log and the shop's orders and hands them
here; everything below is a function of those tables, so a look can be replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from models.config import ExperimentConfig
from models.experiments.assignment import CHALLENGER
from models.experiments.attribution import Attribution, attribute
from models.experiments.kpis import answer_table, kpis, unit_outcomes
from models.experiments.sequential import Decision, decide


@dataclass(frozen=True)
class Readout:
    attribution: Attribution
    kpis: pd.DataFrame  # models.experiments.kpis.KPI_COLUMNS
    outcomes: pd.DataFrame  # per unit: variant, value (the metric the decision compares)
    decision: Decision


def read_out(
    served: pd.DataFrame,
    feedback: pd.DataFrame,
    orders: pd.DataFrame,
    rules: ExperimentConfig,
    days_run: float,
    previous_p: float = 1.0,
    margins: Mapping[str, float] | None = None,
) -> Readout:
    """The experiment's answers (``served``, already limited to it), the feedback and
    order lines since it started, judged by ``rules`` after ``days_run`` days."""
    credited = attribute(served, feedback, orders, pd.Timedelta(hours=rules.attribution_hours))
    table = kpis(served, feedback, credited, orders, margins)
    outcomes = unit_outcomes(answer_table(served, feedback, credited, margins or {}), rules.metric)
    on = outcomes["variant"] == CHALLENGER
    decision = decide(
        outcomes.loc[on, "value"].to_numpy(),
        outcomes.loc[~on, "value"].to_numpy(),
        alpha=rules.alpha,
        min_units=rules.min_units,
        days_run=days_run,
        max_days=rules.max_days,
        tau_ratio=rules.tau_ratio,
        previous_p=previous_p,
    )
    return Readout(credited, table, outcomes, decision)
