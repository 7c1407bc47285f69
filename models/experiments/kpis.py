"""A shop's KPIs per variant of an experiment, with 95% intervals.

Customers (or anonymous sessions) are what the experiment randomises, so each KPI is a
ratio of per-unit sums (answers clicked over answers shown, revenue over answers, ...)
and its interval comes from the spread between units (the delta method for a ratio of
means), not from treating every answer as independent: a customer who sees fifty
answers is still one draw.

Per variant and endpoint, over the answers of the experiment:

- ``click_through``, ``add_to_cart_rate``, ``conversion``: the share of answers with at
  least one click / add to cart (``/feedback``) / attributed purchase;
- ``revenue_per_1000`` and ``margin_per_1000``: attributed revenue (quantity x unit
  price) and margin (revenue x the item's margin share) per 1,000 answers.

Per variant, over the orders of its customers placed while the experiment ran:
``cross_sell_rate`` (the share of orders holding an item attributed to a cross-sell
answer) and ``average_order_value``. Guardrails per variant and endpoint:
``p99_latency_ms``, ``error_rate`` (requests that failed on the service's side, which the
service logs too) and ``empty_share`` (answers with no item), without intervals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from models.data.columns import Columns
from models.experiments.attribution import Attribution

C = Columns
Z95 = float(stats.norm.ppf(0.975))
KPI_COLUMNS = ("variant", "endpoint", "kpi", "value", "low", "high", "units", "answers")


def ratio_interval(num: np.ndarray, den: np.ndarray) -> tuple[float, float, float]:
    """sum(num) / sum(den) over units, with its 95% interval by the delta method."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    n, total = len(num), den.sum()
    if n == 0 or total <= 0:
        return float("nan"), float("nan"), float("nan")
    value = num.sum() / total
    if n < 2:
        return float(value), float("nan"), float("nan")
    spread = np.std(num - value * den, ddof=1) / (den.mean() * np.sqrt(n))
    return float(value), float(value - Z95 * spread), float(value + Z95 * spread)


def answer_table(
    served: pd.DataFrame,
    feedback: pd.DataFrame,
    attribution: Attribution,
    margins: Mapping[str, float],
) -> pd.DataFrame:
    """One row per answer of the experiment: its unit (customer, else session), variant,
    endpoint, whether it was clicked, carted, bought from, and its attributed revenue and
    margin."""
    answers = served[served["experiment"].notna()].drop_duplicates("request_id")
    unit = answers["user_id"].fillna(answers["session_id"])
    out = pd.DataFrame(
        {
            "request_id": answers["request_id"].to_numpy(),
            "unit": unit.to_numpy(),
            "variant": answers["variant"].to_numpy(),
            "endpoint": answers["endpoint"].to_numpy(),
            "timestamp": pd.to_datetime(answers["timestamp"], utc=True).to_numpy(),
            "latency_ms": answers["latency_ms"].astype(float).to_numpy(),
            "empty": (answers["items"].map(len) == 0).to_numpy(),
            "error": (
                answers["error"].notna().to_numpy()
                if "error" in answers
                else np.zeros(len(answers), bool)
            ),
        }
    )
    for event in ("click", "add_to_cart"):
        hit = feedback.loc[feedback["event"] == event, "request_id"]
        out[event] = out["request_id"].isin(hit)
    sold = attribution.attributed.assign(
        revenue=lambda p: p["quantity"] * p["unit_price"],
    )
    sold = sold.assign(margin=sold["revenue"] * sold["item_id"].map(margins).fillna(0.0))
    per = sold.assign(purchases=1).groupby("request_id")[["revenue", "margin", "purchases"]].sum()
    out = out.join(per, on="request_id")
    out[["revenue", "margin", "purchases"]] = out[["revenue", "margin", "purchases"]].fillna(0.0)
    out["purchase"] = out["purchases"] > 0
    return out.dropna(subset=["unit"]).reset_index(drop=True)


def unit_outcomes(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per unit (customer or session) of an :func:`answer_table`: its variant (the first
    it got) and its outcome over the experiment, credited ``purchases`` or ``revenue``."""
    first = table.sort_values("timestamp").groupby("unit", sort=True)
    return pd.DataFrame({"variant": first["variant"].first(), "value": first[metric].sum()})


def kpis(table: pd.DataFrame, attribution: Attribution, orders: pd.DataFrame) -> pd.DataFrame:
    """Every KPI of the module's docstring as rows of :data:`KPI_COLUMNS`, from the
    experiment's :func:`answer_table`, its attribution and the orders since it started."""
    rows = []
    for (arm, endpoint), part in table.groupby(["variant", "endpoint"], sort=True):
        units = part.groupby("unit")
        shown = units.size().to_numpy()
        base = {"variant": arm, "endpoint": endpoint, "units": units.ngroups, "answers": len(part)}
        for kpi, column, scale in (
            ("click_through", "click", 1.0),
            ("add_to_cart_rate", "add_to_cart", 1.0),
            ("conversion", "purchase", 1.0),
            ("revenue_per_1000", "revenue", 1000.0),
            ("margin_per_1000", "margin", 1000.0),
        ):
            value, low, high = ratio_interval(units[column].sum().to_numpy() * scale, shown)
            rows.append(base | {"kpi": kpi, "value": value, "low": low, "high": high})
        for kpi, value in (
            ("p99_latency_ms", float(np.percentile(part["latency_ms"], 99))),
            ("error_rate", float(part["error"].mean())),
            ("empty_share", float((part["empty"] & ~part["error"]).mean())),
        ):
            rows.append(base | {"kpi": kpi, "value": value, "low": np.nan, "high": np.nan})
    rows += _order_kpis(table, attribution, orders)
    return pd.DataFrame(rows, columns=list(KPI_COLUMNS))


def _order_kpis(table: pd.DataFrame, attribution: Attribution, orders: pd.DataFrame) -> list:
    """Cross-sell rate and average order value over the orders each variant's customers
    placed after their first answer of the experiment."""
    if table.empty or orders.empty:
        return []
    first = table.sort_values("timestamp").groupby("unit")[["variant", "timestamp"]].first()
    lines = orders[orders[C.event] == "purchase"] if C.event in orders else orders
    lines = lines[lines[C.user].isin(first.index) & lines[C.order].notna()]
    since = pd.to_datetime(lines[C.user].map(first["timestamp"]), utc=True)
    lines = lines[pd.to_datetime(lines[C.timestamp], utc=True) >= since]
    lines = lines.assign(
        value=lines[C.quantity].fillna(1) * lines[C.price],
        variant=lines[C.user].map(first["variant"]),
    )
    credited = attribution.attributed
    crossed = credited.loc[credited["endpoint"] == "cross_sell", "order_id"].dropna()
    per_order = lines.groupby([C.order, "variant", C.user], as_index=False)["value"].sum()
    per_order["crossed"] = per_order[C.order].isin(crossed)
    rows = []
    for arm, part in per_order.groupby("variant", sort=True):
        units = part.groupby(C.user)
        placed = units.size().to_numpy()
        base = {"variant": arm, "endpoint": "all", "units": units.ngroups, "answers": np.nan}
        for kpi, column in (("cross_sell_rate", "crossed"), ("average_order_value", "value")):
            value, low, high = ratio_interval(units[column].sum().to_numpy(), placed)
            rows.append(base | {"kpi": kpi, "value": value, "low": low, "high": high})
    return rows
