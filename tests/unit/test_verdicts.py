"""The report's claims, judged on hand-made tables."""

from __future__ import annotations

import pandas as pd

from models.evaluation.verdicts import personal, shopping


def _rows(slice_name: str, values: dict[str, tuple[float, float, float]], users: int):
    return [
        ("customers", slice_name, model, "ndcg", 10, mean, lo, hi, users)
        for model, (mean, lo, hi) in values.items()
    ]


def _table(all_users, cold_users, new_items=None) -> pd.DataFrame:
    rows = _rows("all", all_users, 900) + _rows("cold_users", cold_users, 50)
    rows += [("new_items", *row[1:]) for row in _rows("all", new_items or {}, 120)]
    columns = ["task", "slice", "model", "metric", "k", "mean", "lower", "upper", "users"]
    return pd.DataFrame(rows, columns=columns)


def _differences(model: str, difference: float, lower: float, upper: float) -> pd.DataFrame:
    columns = ["task", "slice", "model", "metric", "k", "difference", "lower", "upper"]
    return pd.DataFrame(
        [("customers", "all", model, "ndcg", 10, difference, lower, upper)], columns=columns
    )


def test_cartlift_is_judged_against_the_strongest_baseline_by_a_paired_interval():
    table = _table(
        {
            "popularity": (0.030, 0.027, 0.033),
            "item-kNN": (0.050, 0.046, 0.054),
            "personal frequency": (0.048, 0.044, 0.052),
            "lightfm-cf": (0.090, 0.080, 0.100),  # ours, not a baseline
            "cartlift": (0.060, 0.052, 0.068),
        },
        {"popularity": (0.040, 0.030, 0.050), "cartlift": (0.061, 0.050, 0.070)},
        {"popularity": (0.0, 0.0, 0.0), "cartlift": (0.011, 0.007, 0.015)},
    )
    margin, paired, cold, new = personal(table, _differences("item-kNN", 0.01, 0.004, 0.016), "ex")
    assert margin.holds and margin.figure == "0.0600 vs item-kNN 0.0500 (1.20x)"
    assert paired.holds and "minus item-kNN" in paired.claim
    assert paired.figure == "+0.0100 [+0.0040, +0.0160]"
    assert cold.holds and "(1.52x, 50 customers)" in cold.figure
    assert new.holds and new.figure == "0.0110 vs 0.0000 (120 customers)"
    assert "above popularity" in new.claim  # the table has no popularity per category

    # Separate intervals overlap (0.052 < 0.054) but the paired one is above 0: a win.
    # At 1.10x the margin of 1.15x does not hold; an interval holding 0 is no win.
    table.loc[table["model"] == "cartlift", "mean"] = 0.055
    margin, paired, _, _ = personal(table, _differences("item-kNN", 0.005, -0.001, 0.011), "ex")
    assert not margin.holds and margin.figure.endswith("(1.10x)") and not paired.holds
    table.loc[(table["task"] == "new_items") & (table["model"] == "cartlift"), "mean"] = 0.0
    assert not personal(table, _differences("item-kNN", 0.005, -0.001, 0.011), "ex")[3].holds


def test_cross_sell_must_beat_the_best_classic_method_by_the_margin_and_upsell_must_win():
    cross = pd.DataFrame(
        {
            "model": ["cartlift", "association rules", "item-kNN", "popularity"],
            "hit_rate_at_10": [0.23, 0.1, 0.2, 0.05],
        }
    )
    upsell = pd.DataFrame(
        {
            "model": ["cartlift", "cheapest pricier", "popularity per category"],
            "hit_rate_at_10": [0.5, 0.1, 0.5],
        }
    )
    rules, cheapest, category = shopping(cross, upsell)
    assert rules.holds and rules.figure == "0.2300 vs item-kNN 0.2000 (1.15x)"
    assert cheapest.holds and not category.holds  # a tie is no win
    cross.loc[cross["model"] == "item-kNN", "hit_rate_at_10"] = 0.21
    assert not shopping(cross, upsell)[0].holds
