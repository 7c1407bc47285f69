"""An experiment look's report, for the team: what it decided and why, the KPIs per
variant with their 95% intervals, and how the evidence grew (the challenger's lift over
the champion with its always-valid interval, and the always-valid p-value, replayed
over the experiment by :func:`models.experiments.readout.trajectory`).

One self-contained HTML page (plots inlined, so it opens from MLflow or a mail) and the
Markdown a Prefect artifact shows. Pure rendering; the flow decides where files go.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from infra.reports import html_document, inline_image, md_table
from models.config import ExperimentConfig
from models.experiments.readout import Readout

GUARDRAILS = ("p99_latency_ms", "error_rate", "empty_share")


def kpi_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """Endpoint x KPI rows, one column per variant: "value [low, high]" (guardrails and
    KPIs without an interval: the value alone)."""
    if kpis.empty:
        return pd.DataFrame()

    def shown(r: pd.Series) -> str:
        if pd.isna(r["value"]):
            return ""
        if pd.isna(r["low"]):
            return f"{r['value']:.4g}"
        return f"{r['value']:.4g} [{r['low']:.4g}, {r['high']:.4g}]"

    cells = kpis.assign(cell=kpis.apply(shown, axis=1))
    table = cells.pivot_table(
        index=["endpoint", "kpi"], columns="variant", values="cell", aggfunc="first"
    ).fillna("")
    units = kpis.groupby("variant")["units"].max()
    table.columns = [f"{v} ({int(units[v]):,} units)" for v in table.columns]
    return table


def plot_trajectory(path: pd.DataFrame, rules: ExperimentConfig, out: Path) -> Path:
    """Top: the challenger's cumulative lift over the champion (per unit, in % of the
    champion's mean) with its always-valid interval; bottom: the always-valid p-value
    against the test's level, and the units per variant."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    at = pd.to_datetime(path["at"]).dt.tz_localize(None)
    base = path["champion_mean"].where(path["champion_mean"] > 0)
    lift, low, high = (100 * path[c] / base for c in ("difference", "low", "high"))
    band = f"always-valid {1 - rules.alpha:.0%} interval"
    top.fill_between(at, low, high, alpha=0.25, label=band)
    top.plot(at, lift, marker=".", label="challenger vs champion")
    top.axhline(0, color="grey", lw=1)
    later = slice(len(path) // 4, None)  # the first moments' intervals are very wide
    span = pd.concat([low[later], high[later], pd.Series([0.0])])
    span = span.replace([np.inf, -np.inf], np.nan).dropna()
    pad = 0.1 * max(span.max() - span.min(), 1.0)
    top.set_ylim(span.min() - pad, span.max() + pad)
    top.set_ylabel(f"lift in {rules.metric} per customer (%)")
    top.legend(loc="upper left")
    top.set_title("How the evidence grew (replayed from the prediction log)")
    floor = 1e-8  # smaller p-values are drawn on the floor
    bottom.plot(at, path["p_value"].clip(lower=floor), color="C3", label="always-valid p-value")
    bottom.axhline(rules.alpha, color="C3", ls="--", lw=1, label=f"level {rules.alpha:g}")
    bottom.set_yscale("log")
    bottom.set_ylim(max(min(path["p_value"].min(), rules.alpha) / 10, floor / 2), 1.5)
    bottom.set_ylabel("p-value")
    units = bottom.twinx()
    units.plot(at, path["n_challenger"], color="C1", lw=1, label="challenger units")
    units.plot(at, path["n_champion"], color="C2", lw=1, label="champion units")
    units.set_ylabel("units answered")
    lines = bottom.get_legend_handles_labels()
    more = units.get_legend_handles_labels()
    bottom.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    target = out / "experiment_trajectory.png"
    fig.savefig(target, dpi=90)
    plt.close(fig)
    return target


def sections(
    name: str, action: str, look: Readout, rules: ExperimentConfig
) -> list[tuple[str, str, pd.DataFrame | None]]:
    test = look.decision.test
    counts = pd.DataFrame(
        {"count": pd.Series(look.attribution.counts(), dtype="int64")}
    ).rename_axis("purchases and feedback")
    return [
        ("Decision", f"{action}: {look.decision.reason}", None),
        (
            "The test",
            f"Per {rules.metric} per customer (or session), challenger minus champion: "
            f"{test.difference:+.4g}, always-valid {1 - rules.alpha:.0%} interval "
            f"[{test.low:+.4g}, {test.high:+.4g}], p {test.p_value:.3g} "
            f"(mSPRT, mixing spread {rules.tau_ratio:g} pooled standard deviations); "
            f"{test.n_challenger:,} challenger and {test.n_champion:,} champion units; "
            f"at least {rules.min_units:,} per variant before any decision, at most "
            f"{rules.max_days:g} days. Purchases credited within "
            f"{rules.attribution_hours:g} h of an answer (docs/experiments.md).",
            None,
        ),
        ("Shop KPIs per variant", "Guardrails: " + ", ".join(GUARDRAILS), kpi_table(look.kpis)),
        ("Attribution", "", counts),
    ]


def write(name: str, action: str, look: Readout, rules: ExperimentConfig, out: Path) -> Path:
    """The look's HTML page under ``out`` (with its plot beside it); its path."""
    out.mkdir(parents=True, exist_ok=True)
    title = f"Experiment {name}"
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, text, table in sections(name, action, look, rules):
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if text:
            body.append(f"<p>{html.escape(text)}</p>")
        if table is not None and not table.empty:
            body.append(table.to_html())
    if not look.trajectory.empty:
        body += ["<h2>Over time</h2>", inline_image(plot_trajectory(look.trajectory, rules, out))]
    page = out / "experiment.html"
    page.write_text(html_document(title, body))
    return page


def markdown(name: str, action: str, look: Readout, rules: ExperimentConfig) -> str:
    """The Prefect artifact's text: the same sections, without the plot."""
    lines = [f"## Experiment {name}: {action}", ""]
    for heading, text, table in sections(name, action, look, rules):
        lines += [f"### {heading}", ""] + ([text, ""] if text else [])
        if table is not None and not table.empty:
            lines += [md_table(table), ""]
    return "\n".join(lines)
