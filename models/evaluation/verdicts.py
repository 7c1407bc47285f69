"""The claims a quality report makes about the product's model, checked on its tables.

Each claim is phrased for a shop: does what cartlift serves (the row ``cartlift``) beat
the strongest baseline by the margin, with a paired interval of the difference above 0;
does it serve cold-start customers better than popularity; does it sell new items (which
popularity per category cannot); do its cross-sell and upsell beat the classic methods;
do its in-session answers beat session-kNN. Pure functions over
:func:`models.evaluation.tasks.compare`, the cross-sell / upsell tables and the session
protocol's :class:`~models.evaluation.sessions.Comparison`, so the report and the tests
judge the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.evaluation import audiences, bundles
from models.evaluation.sessions import BLEND, Comparison

HYBRID = "lightfm-hybrid"
PRODUCT = "cartlift"


@dataclass(frozen=True)
class Verdict:
    claim: str
    figure: str
    holds: bool


def ndcg_by_model(
    table: pd.DataFrame, slice_name: str, k: int, task: str = "customers"
) -> dict[str, dict[str, float]]:
    """model -> mean, lower, upper, users of NDCG@k on a slice of a task."""
    rows = table[
        (table["task"] == task)
        & (table["slice"] == slice_name)
        & (table["metric"] == "ndcg")
        & (table["k"] == k)
    ]
    fields = ["mean", "lower", "upper", "users"]
    return {
        str(model): {f: float(v) for f, v in zip(fields, values, strict=True)}
        for model, *values in rows[["model", *fields]].itertuples(index=False)
    }


OURS = (PRODUCT, HYBRID, "lightfm-cf")  # the product and its raw models; the rest are baselines


def strongest(rows: dict[str, dict[str, float]]) -> str:
    """The baseline with the highest mean (the first of equals, by name)."""
    baselines = sorted(m for m in rows if m not in OURS)
    return max(baselines, key=lambda m: rows[m]["mean"])


def personal(
    table: pd.DataFrame,
    differences: pd.DataFrame,
    variant: str,
    k: int = 10,
    margin: float = 1.15,
) -> list[Verdict]:
    """Over all customers: what cartlift serves against the strongest baseline (``margin``
    times it, and the paired interval of the difference above 0); on cold-start
    customers, 1.5x popularity; on new items, above 0 and above popularity per category
    (or popularity, where the report has no categories)."""
    rows = ndcg_by_model(table, "all", k)
    best = strongest(rows)
    ours, theirs = rows[PRODUCT]["mean"], rows[best]["mean"]
    ratio = ours / max(theirs, 1e-12)
    diff = differences[
        (differences["task"] == "customers")
        & (differences["slice"] == "all")
        & (differences["model"] == best)
        & (differences["metric"] == "ndcg")
        & (differences["k"] == k)
    ].iloc[0]
    cold = ndcg_by_model(table, "cold_users", k)
    cold_ours, cold_pop = cold[PRODUCT]["mean"], cold["popularity"]["mean"]
    cold_ratio = cold_ours / max(cold_pop, 1e-12)
    return [
        Verdict(
            f"{variant}: cartlift NDCG@{k} >= {margin}x the strongest baseline",
            f"{ours:.4f} vs {best} {theirs:.4f} ({ratio:.2f}x)",
            ratio >= margin,
        ),
        Verdict(
            f"{variant}: the paired 95% interval of cartlift minus {best} is above 0",
            f"{diff['difference']:+.4f} [{diff['lower']:+.4f}, {diff['upper']:+.4f}]",
            bool(diff["lower"] > 0),
        ),
        Verdict(
            f"{variant}: cold-start customers, cartlift >= 1.5x popularity",
            f"{cold_ours:.4f} vs {cold_pop:.4f} ({cold_ratio:.2f}x, "
            f"{int(cold[PRODUCT]['users'])} customers)",
            cold_ratio >= 1.5,
        ),
        _new_items(table, variant, k),
    ]


def _new_items(table: pd.DataFrame, variant: str, k: int) -> Verdict:
    rows = ndcg_by_model(table, "all", k, "new_items")
    rival = "popularity per category" if "popularity per category" in rows else "popularity"
    claim = f"{variant}: new items, cartlift NDCG@{k} above 0 and above {rival}"
    if PRODUCT not in rows or rival not in rows or not rows[PRODUCT]["users"]:
        return Verdict(claim, "no customer bought a new item after the cutoff", False)
    ours, theirs = rows[PRODUCT]["mean"], rows[rival]["mean"]
    return Verdict(
        claim,
        f"{ours:.4f} vs {theirs:.4f} ({int(rows[PRODUCT]['users'])} customers)",
        ours > 0 and ours > theirs,
    )


CROSS_SELL_RIVALS = ("association rules", "item-kNN", "popularity")


def shopping(
    cross: pd.DataFrame, upsell: pd.DataFrame, k: int = 10, margin: float = 1.1
) -> list[Verdict]:
    """cartlift's cross-sell against the best of association rules, item-kNN and
    popularity (``margin`` times it); its upsell against the cheapest pricier item and
    popularity in the category."""
    hit = f"hit_rate_at_{k}"
    c = dict(zip(cross["model"], cross[hit].astype(float), strict=True))
    u = dict(zip(upsell["model"], upsell[hit].astype(float), strict=True))
    rival = max((r for r in CROSS_SELL_RIVALS if r in c), key=lambda r: c[r])
    ratio = c[PRODUCT] / max(c[rival], 1e-12)
    verdicts = [
        Verdict(
            f"cross-sell hit rate@{k} >= {margin}x the best of "
            + ", ".join(r for r in CROSS_SELL_RIVALS if r in c),
            f"{c[PRODUCT]:.4f} vs {rival} {c[rival]:.4f} ({ratio:.2f}x)",
            ratio >= margin,
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


def in_session(got: Comparison | None, margin: float = 1.2) -> list[Verdict]:
    """Holdout sessions of visitors treated as anonymous: cartlift's session blend against
    the strongest of popularity, SKNN and V-SKNN (``margin`` times its next-item hit rate,
    and the paired interval of the difference above 0). No verdict without sessions."""
    if got is None:
        return []
    d = got.against["hit_rate"]
    rows = got.table.set_index("model")["hit_rate"]
    return [
        Verdict(
            f"in-session: next-item hit rate@{got.k} >= {margin}x the strongest of "
            + ", ".join(m for m in rows.index if m != BLEND),
            f"{rows[BLEND]:.4f} vs {got.strongest} {rows[got.strongest]:.4f} ({d.ratio:.2f}x); "
            f"paired 95% interval {d.difference:+.4f} [{d.low:+.4f}, {d.high:+.4f}]",
            d.ratio >= margin and d.low > 0,
        )
    ]


def audience_table(got: audiences.Comparison) -> pd.DataFrame:
    """Rule -> precision and lift at each N, over every target."""
    rows = got.table[got.table["targets"] == "all"]
    wide = rows.pivot(index="rule", columns="n", values=["precision", "lift"])
    wide.columns = [f"{column[0]}@{column[1]}" for column in wide.columns]
    return wide


def promotions(
    targeted: audiences.Comparison | None,
    packs: bundles.Comparison | None,
    audience_margin: float = 1.5,
    pack_margin: float = 1.1,
) -> list[Verdict]:
    """Audiences: precision@N at both N >= ``audience_margin`` x RFM targeting's; bundles:
    hits per basket >= ``pack_margin`` x the best of pairwise rules and item-kNN packs
    held to a bundle's hard rule (``bundles.VALID``; their packs as they rank are shown
    beside). No verdict where the protocol found nothing to judge."""
    verdicts = []
    if targeted is not None:
        rfm = targeted.differences[targeted.differences["rule"] == "RFM"]
        verdicts.append(
            Verdict(
                f"audiences: precision@N >= {audience_margin}x RFM targeting (N = "
                + " and ".join(str(n) for n in rfm["n"])
                + ")",
                "; ".join(
                    f"N={r.n}: {r.ratio:.2f}x, paired 95% interval {r.difference:+.4f} "
                    f"[{r.lower:+.4f}, {r.upper:+.4f}]"
                    for r in rfm.itertuples()
                ),
                bool((rfm["ratio"] >= audience_margin).all()),
            )
        )
    if packs is not None and len(packs.differences):
        diffs = packs.differences
        valid = diffs["rule"].str.endswith(bundles.VALID)
        judged = diffs[valid] if valid.any() else diffs
        best = judged.sort_values("ratio").iloc[0]
        hits = packs.table.set_index("rule")["hits"]
        raw = diffs[~valid].sort_values("ratio")
        aside = (
            f"; as they rank, two substitutes allowed: {raw['ratio'].iloc[0]:.2f}x "
            f"{raw['rule'].iloc[0]}"
            if valid.any() and len(raw)
            else ""
        )
        verdicts.append(
            Verdict(
                f"bundles: hits per basket >= {pack_margin}x the best of "
                + ", ".join(judged["rule"]),
                f"{hits[PRODUCT]:.4f} vs {best['rule']} {hits[best['rule']]:.4f} "
                f"({best['ratio']:.2f}x); paired 95% interval {best['difference']:+.4f} "
                f"[{best['lower']:+.4f}, {best['upper']:+.4f}]{aside}",
                bool(best["ratio"] >= pack_margin),
            )
        )
    return verdicts
