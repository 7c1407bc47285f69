"""The claims a quality report makes about the product's model, checked on its tables.

Each claim is one of issue 5's acceptance points, phrased for a shop: does the tuned
hybrid beat every baseline, by how much, with intervals apart from popularity; does it
serve cold-start customers better than popularity; are its cross-sell and upsell at least
as good as the classic methods. Pure functions over :func:`models.evaluation.tasks.compare` and
the cross-sell / upsell tables, so the report and the tests judge the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

HYBRID = "lightfm-hybrid"
PRODUCT = "cartlift"


@dataclass(frozen=True)
class Verdict:
    claim: str
    figure: str
    holds: bool


def ndcg_by_model(table: pd.DataFrame, slice_name: str, k: int) -> dict[str, dict[str, float]]:
    """model -> mean, lower, upper, users of NDCG@k on a slice of the customers task."""
    rows = table[
        (table["task"] == "customers")
        & (table["slice"] == slice_name)
        & (table["metric"] == "ndcg")
        & (table["k"] == k)
    ]
    fields = ["mean", "lower", "upper", "users"]
    return {
        str(model): {f: float(v) for f, v in zip(fields, values, strict=True)}
        for model, *values in rows[["model", *fields]].itertuples(index=False)
    }


def personal(table: pd.DataFrame, variant: str, k: int = 10, margin: float = 1.1) -> list[Verdict]:
    """Over all customers: the hybrid against the best baseline (and ``margin`` times it),
    intervals apart from popularity; on cold-start customers, 1.5x popularity."""
    rows = ndcg_by_model(table, "all", k)
    baselines = {m: r["mean"] for m, r in rows.items() if not m.startswith("lightfm")}
    best = max(baselines, key=lambda m: baselines[m])
    ours, pop = rows[HYBRID], rows["popularity"]
    ratio = ours["mean"] / max(baselines[best], 1e-12)
    cold = ndcg_by_model(table, "cold_users", k)
    cold_ours, cold_pop = cold[HYBRID]["mean"], cold["popularity"]["mean"]
    cold_ratio = cold_ours / max(cold_pop, 1e-12)
    return [
        Verdict(
            f"{variant}: hybrid NDCG@{k} beats every baseline",
            f"{ours['mean']:.4f} vs {best} {baselines[best]:.4f} ({ratio:.2f}x)",
            ratio > 1.0,
        ),
        Verdict(
            f"{variant}: hybrid NDCG@{k} >= {margin}x the best baseline",
            f"{ratio:.2f}x",
            ratio >= margin,
        ),
        Verdict(
            f"{variant}: hybrid's 95% interval above popularity's",
            f"[{ours['lower']:.4f}, {ours['upper']:.4f}] vs "
            f"[{pop['lower']:.4f}, {pop['upper']:.4f}]",
            ours["lower"] > pop["upper"],
        ),
        Verdict(
            f"{variant}: cold-start customers, hybrid >= 1.5x popularity",
            f"{cold_ours:.4f} vs {cold_pop:.4f} ({cold_ratio:.2f}x, "
            f"{int(cold[HYBRID]['users'])} customers)",
            cold_ratio >= 1.5,
        ),
    ]


def shopping(cross: pd.DataFrame, upsell: pd.DataFrame, k: int = 10) -> list[Verdict]:
    """cartlift's cross-sell against association rules; its upsell against the cheapest
    pricier item and popularity in the category."""
    hit = f"hit_rate_at_{k}"
    c = dict(zip(cross["model"], cross[hit].astype(float), strict=True))
    u = dict(zip(upsell["model"], upsell[hit].astype(float), strict=True))
    verdicts = [
        Verdict(
            f"cross-sell hit rate@{k} at least association rules'",
            f"{c[PRODUCT]:.4f} vs {c['association rules']:.4f}",
            c[PRODUCT] >= c["association rules"],
        )
    ]
    for rival in ("cheapest pricier", "popularity per category"):
        verdicts.append(
            Verdict(
                f"upsell hit rate@{k} beats {rival}",
                f"{u[PRODUCT]:.4f} vs {u[rival]:.4f}",
                u[PRODUCT] > u[rival],
            )
        )
    return verdicts
