"""One look at a running experiment: credit the purchases, compute the KPIs, decide.

The ``experiment`` flow reads the prediction log and the shop's orders and hands them
here; everything below is a function of those tables, so a look can be replayed, and
:func:`trajectory` replays it at earlier moments for the report's plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.config import ExperimentConfig
from models.experiments.assignment import CHALLENGER
from models.experiments.attribution import Attribution, attribute
from models.experiments.kpis import answer_table, kpis, unit_outcomes
from models.experiments.sequential import Decision, always_valid, decide

TRAJECTORY_COLUMNS = (
    "at",  # the moment replayed (UTC)
    "n_challenger",
    "n_champion",
    "champion_mean",  # per unit, of the metric the decision compares
    "difference",  # challenger minus champion, per unit
    "low",  # the always-valid interval at the test's level
    "high",
    "p_value",  # always-valid, the minimum over the replayed moments so far
)


@dataclass(frozen=True)
class Readout:
    attribution: Attribution
    kpis: pd.DataFrame  # models.experiments.kpis.KPI_COLUMNS
    outcomes: pd.DataFrame  # per unit: variant, value (the metric the decision compares)
    decision: Decision
    trajectory: pd.DataFrame  # TRAJECTORY_COLUMNS: how the evidence grew


def read_out(
    served: pd.DataFrame,
    feedback: pd.DataFrame,
    orders: pd.DataFrame,
    rules: ExperimentConfig,
    days_run: float,
    previous_p: float = 1.0,
    margins: Mapping[str, float] | None = None,
    moments: int = 40,
) -> Readout:
    """The experiment's answers (``served``, already limited to it), the feedback and
    order lines since it started, judged by ``rules`` after ``days_run`` days; the
    evidence replayed at ``moments`` moments from the first answer to the last."""
    credited = attribute(served, feedback, orders, pd.Timedelta(hours=rules.attribution_hours))
    table = answer_table(served, feedback, credited, margins or {})
    outcomes = unit_outcomes(table, rules.metric)
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
    path = trajectory(table, credited, rules, moments)
    return Readout(credited, kpis(table, credited, orders), outcomes, decision, path)


def trajectory(
    table: pd.DataFrame, attribution: Attribution, rules: ExperimentConfig, moments: int
) -> pd.DataFrame:
    """The decision's figures as they stood at ``moments`` evenly spaced moments of the
    experiment: the units answered by then and what was credited to them by then (an
    answer's credit only comes from purchases after it, so cutting the credited purchases
    at a moment gives that moment's attribution)."""
    if table.empty:
        return pd.DataFrame(columns=list(TRAJECTORY_COLUMNS))
    shown = pd.to_datetime(table["timestamp"], utc=True)
    sold = attribution.attributed
    sold = pd.DataFrame(
        {
            "unit": sold["request_id"].map(table.set_index("request_id")["unit"]).to_numpy(),
            "at": pd.to_datetime(sold["timestamp"], utc=True).array,
            "value": (
                np.ones(len(sold))
                if rules.metric == "purchases"
                else (sold["quantity"] * sold["unit_price"]).to_numpy(float)
            ),
        }
    ).dropna(subset=["unit"])
    stamps = shown.dt.tz_localize(None).to_numpy()  # UTC, naive: numpy compares them
    order = np.argsort(stamps, kind="stable")
    units, first_seen = np.unique(table["unit"].to_numpy()[order], return_index=True)
    first_at = stamps[order][first_seen]
    arm = table["variant"].to_numpy()[order][first_seen] == CHALLENGER
    where = pd.Index(units)
    end = shown.max() if sold.empty else max(shown.max(), sold["at"].max())
    cuts = pd.date_range(shown.min(), end, periods=moments)
    rows, p = [], 1.0
    for at in cuts:
        known = first_at <= at.tz_localize(None).to_datetime64()
        got = sold[sold["at"] <= at]
        value = np.zeros(len(units))
        np.add.at(value, where.get_indexer(got["unit"]), got["value"].to_numpy(float))
        test = always_valid(
            value[known & arm], value[known & ~arm], rules.alpha, rules.tau_ratio, p
        )
        p = test.p_value
        champion = value[known & ~arm]
        rows.append(
            (
                at,
                test.n_challenger,
                test.n_champion,
                float(champion.mean()) if len(champion) else np.nan,
                test.difference,
                test.low,
                test.high,
                p,
            )
        )
    return pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
