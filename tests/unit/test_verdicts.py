"""The report's claims, judged on hand-made tables."""

from __future__ import annotations

import pandas as pd

from models.evaluation.verdicts import personal, shopping


def _rows(slice_name: str, values: dict[str, tuple[float, float, float]], users: int):
    return [
        ("customers", slice_name, model, "ndcg", 10, mean, lo, hi, users)
        for model, (mean, lo, hi) in values.items()
    ]


def _table(all_users, cold_users) -> pd.DataFrame:
    rows = _rows("all", all_users, 900) + _rows("cold_users", cold_users, 50)
    columns = ["task", "slice", "model", "metric", "k", "mean", "lower", "upper", "users"]
    return pd.DataFrame(rows, columns=columns)


def test_the_hybrid_is_judged_against_the_best_baseline_and_popularity():
    table = _table(
        {
            "popularity": (0.030, 0.027, 0.033),
            "item-kNN": (0.050, 0.046, 0.054),
            "lightfm-cf": (0.090, 0.080, 0.100),  # not a baseline
            "lightfm-hybrid": (0.056, 0.052, 0.060),
        },
        {"popularity": (0.040, 0.030, 0.050), "lightfm-hybrid": (0.061, 0.050, 0.070)},
    )
    beats, margin, apart, cold = personal(table, "excluded")
    assert beats.holds and "item-kNN 0.0500 (1.12x)" in beats.figure
    assert margin.holds and margin.figure == "1.12x"
    assert apart.holds
    assert cold.holds and "(1.52x, 50 customers)" in cold.figure

    table.loc[table["model"] == "lightfm-hybrid", "lower"] = 0.032  # overlaps popularity
    table.loc[table["model"] == "lightfm-hybrid", "mean"] = 0.054
    beats, margin, apart, _ = personal(table, "excluded")
    assert beats.holds and not margin.holds and not apart.holds


def test_cross_sell_ties_count_as_good_as_rules_and_upsell_must_win():
    cross = pd.DataFrame({"model": ["cartlift", "association rules"], "hit_rate_at_10": [0.2, 0.2]})
    upsell = pd.DataFrame(
        {
            "model": ["cartlift", "cheapest pricier", "popularity per category"],
            "hit_rate_at_10": [0.5, 0.1, 0.5],
        }
    )
    rules, cheapest, category = shopping(cross, upsell)
    assert rules.holds and cheapest.holds and not category.holds
