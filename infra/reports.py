"""Report files: the charts logged with each pipeline run, and the quality report as
Markdown for the repository and MLflow, one self-contained HTML page for people, and PNG
plots with 95% intervals as error bars.

Pure rendering over the tables of :mod:`models.evaluation.tasks` and the verdicts of
:mod:`models.evaluation.verdicts`; the flow decides where the files go and logs them.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.config import RunConfig
from models.evaluation.verdicts import PRODUCT, Verdict, ndcg_by_model

RANKING = ("precision", "recall", "ndcg", "map", "hit_rate")
BEYOND = ("coverage", "novelty", "diversity")


@dataclass
class Report:
    title: str
    context: dict[str, str]  # what was measured: data, window, config, protocol
    verdicts: list[Verdict]
    personal: dict[str, pd.DataFrame]  # variant -> compare() table
    differences: dict[str, pd.DataFrame]  # variant -> compare_paired() differences
    cross: pd.DataFrame
    upsell: pd.DataFrame
    k: int = 10
    sessions: pd.DataFrame | None = None  # model -> hit_rate, mrr, note (session protocol)
    sessions_note: str = ""
    audiences: pd.DataFrame | None = None  # rule -> precision and lift at both N
    audiences_note: str = ""
    bundles: pd.DataFrame | None = None  # rule -> hits per basket, hit_rate, baskets
    bundles_note: str = ""


def run_context(
    source: str, run: RunConfig, summary: dict[str, int | str], origin: str, bootstrap: int
) -> dict[str, str]:
    """What a quality report measured, in words: data, window, config, protocol."""
    train, feats = run.train, run.features
    return {
        "data": source,
        "dataset": run.dataset,
        "training window": f"{summary['interactions']:,} interactions before {summary['cutoff']}",
        "holdout": f"the last {feats.holdout_days} days",
        "customers x items": f"{summary['users']:,} x {summary['items']:,}",
        "run config": origin,
        "hybrid": (
            f"{train.loss}, {train.no_components} components, lr {train.learning_rate:.3g}, "
            f"{train.epochs} epochs, feature weight {feats.user_feature_weight:.3g}, trend "
            f"weight {train.trend_weight:g} (cold-start {train.cold_trend_weight:g})"
        ),
        "protocol": f"k = 5/10/20, {bootstrap} bootstrap samples, seed {train.seed}",
    }


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4f}"
    return str(value)


def md_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (the index becomes the first column)."""
    frame = frame.reset_index()
    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def with_interval(rows: pd.DataFrame) -> pd.Series:
    return rows.apply(
        lambda r: (
            f"{r['mean']:.4f} [{r['lower']:.4f}, {r['upper']:.4f}]"
            if np.isfinite(r["lower"])
            else f"{r['mean']:.4f}"
        ),
        axis=1,
    )


def ranking_table(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """Model x metric at ``k`` over all customers, mean with its 95% interval."""
    rows = table[
        (table["task"] == "customers")
        & (table["slice"] == "all")
        & (table["k"] == k)
        & table["metric"].isin(RANKING)
    ]
    shown = rows.assign(value=with_interval(rows)).pivot(
        index="model", columns="metric", values="value"
    )
    order = rows[rows["metric"] == "ndcg"].sort_values("mean", ascending=False)["model"]
    return shown.loc[list(order), [m for m in RANKING if m in shown.columns]]


def slice_table(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """NDCG@k per model on warm and cold-start customers and on new items."""
    rows = _ndcg_by_where(table, k)
    rows = rows.assign(value=with_interval(rows))
    users = rows.groupby("where")["users"].max()
    shown = rows.pivot(index="model", columns="where", values="value")
    shown.columns = [f"{c} ({users[c]:,} customers)" for c in shown.columns]
    return shown


def difference_table(differences: pd.DataFrame, personal: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per model: cartlift's NDCG@k minus the model's on the same customers, with the paired
    95% interval, and the ratio of the means; strongest rival first."""
    rows = differences[
        (differences["task"] == "customers")
        & (differences["slice"] == "all")
        & (differences["metric"] == "ndcg")
        & (differences["k"] == k)
    ]
    means = ndcg_by_model(personal, "all", k)
    shown = pd.DataFrame(
        {
            "model": rows["model"],
            f"NDCG@{k}": [means[m]["mean"] for m in rows["model"]],
            "cartlift minus it [paired 95% interval]": [
                f"{r.difference:+.4f} [{r.lower:+.4f}, {r.upper:+.4f}]"
                for r in rows.itertuples(index=False)
            ],
            "cartlift / it": [
                means[PRODUCT]["mean"] / max(means[m]["mean"], 1e-12) for m in rows["model"]
            ],
        }
    )
    return shown.sort_values(f"NDCG@{k}", ascending=False).set_index("model")


def beyond_table(table: pd.DataFrame, k: int) -> pd.DataFrame:
    rows = table[(table["task"] == "customers") & (table["k"] == k)]
    rows = rows[rows["metric"].isin(BEYOND)]
    return rows.pivot(index="model", columns="metric", values="mean")


def _ndcg_by_where(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """NDCG@k rows with ``where``: the customers' slice, or "new items" (all of them)."""
    rows = table[(table["metric"] == "ndcg") & (table["k"] == k)]
    rows = rows.assign(where=np.where(rows["task"] == "customers", rows["slice"], rows["task"]))
    return rows[(rows["task"] == "customers") | (rows["slice"] == "all")]


def _bar_chart(groups: dict[str, pd.DataFrame], names: list[str], k: int, title: str, path: Path):
    """One bar per (model, group) with its 95% interval as the error bar."""
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(groups)
    for i, (label, rows) in enumerate(groups.items()):
        rows = rows.set_index("model").reindex(names)
        err = np.vstack([rows["mean"] - rows["lower"], rows["upper"] - rows["mean"]])
        x = np.arange(len(names)) + i * width
        ax.bar(x, rows["mean"], width, yerr=err, capsize=3, label=label)
    ax.set_xticks(
        np.arange(len(names)) + width * (len(groups) - 1) / 2, names, rotation=30, ha="right"
    )
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title(f"{title} (95% bootstrap intervals)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_models(personal: dict[str, pd.DataFrame], k: int, path: Path) -> Path:
    """NDCG@k by model over all customers, one bar per variant of the truth."""
    names = list(ranking_table(next(iter(personal.values())), k).index)
    groups = {}
    for variant, table in personal.items():
        rows = _ndcg_by_where(table, k)
        groups[variant] = rows[rows["where"] == "all"]
    return _bar_chart(groups, names, k, f"NDCG@{k} by model", path)


def plot_slices(table: pd.DataFrame, k: int, path: Path) -> Path:
    """NDCG@k by model on each slice."""
    rows = _ndcg_by_where(table, k)
    groups = {where: rows[rows["where"] == where] for where in dict.fromkeys(rows["where"])}
    names = list(ranking_table(table, k).index)
    return _bar_chart(groups, names, k, f"NDCG@{k} by slice", path)


def plot_shopping(cross: pd.DataFrame, upsell: pd.DataFrame, k: int, path: Path) -> Path:
    """Hit rate@k of cross-sell and upsell per method: horizontal bars, best on top, so
    the methods' long names stay readable."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (name, table) in zip(axes, (("cross-sell", cross), ("upsell", upsell)), strict=True):
        ordered = table.sort_values(f"hit_rate_at_{k}")
        ax.barh(ordered["model"], ordered[f"hit_rate_at_{k}"])
        ax.set_title(f"{name}: hit rate@{k} ({int(table['cases'].max()):,} cases)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plots(report: Report, out: Path) -> list[Path]:
    first_variant = next(iter(report.personal))
    return [
        plot_models(report.personal, report.k, out / "ndcg_by_model.png"),
        plot_slices(report.personal[first_variant], report.k, out / "ndcg_by_slice.png"),
        plot_shopping(report.cross, report.upsell, report.k, out / "cross_sell_upsell.png"),
    ]


def sections(report: Report) -> list[tuple[str, str, pd.DataFrame | None]]:
    """(heading, text, table) in report order: shared by Markdown and HTML."""
    k = report.k
    verdicts = pd.DataFrame(
        [(v.claim, v.figure, "yes" if v.holds else "NO") for v in report.verdicts],
        columns=["claim", "figure", "holds"],
    ).set_index("claim")
    parts: list[tuple[str, str, pd.DataFrame | None]] = [
        (
            "What was measured",
            "",
            pd.Series(report.context, name="value").rename_axis("measured").to_frame(),
        ),
        ("Verdicts", "Each claim checked on the tables below.", verdicts),
    ]
    for variant, table in report.personal.items():
        parts += [
            (
                f"Recommendations, {variant}",
                f"Every customer who bought after the cutoff; metrics at k = {k}, mean "
                "[95% bootstrap interval over customers].",
                ranking_table(table, k),
            ),
            (
                f"Against cartlift, {variant}",
                f"What cartlift serves against each model on the same customers: the "
                f"difference of NDCG@{k} with a paired bootstrap interval (both resampled "
                "together), and the ratio of the means.",
                difference_table(report.differences[variant], table, k),
            ),
            (f"By slice, {variant}", f"NDCG@{k}.", slice_table(table, k)),
            (
                f"Beyond accuracy, {variant}",
                "Catalogue coverage, novelty (mean -log2 share of customers who had the "
                "item) and intra-list diversity (1 - mean category cosine).",
                beyond_table(table, k),
            ),
        ]
    parts += [
        (
            "Cross-sell",
            "Holdout baskets of two or more items: one item hidden (seeded), the rest "
            "given as the cart. Revenue hit rate weighs hits by the hidden item's price.",
            report.cross.set_index("model"),
        ),
        (
            "Upsell",
            "Holdout purchases pricier than the cheapest item the customer looked at in the "
            "same category before: that item is the anchor; candidates are the category's "
            "pricier items.",
            report.upsell.set_index("model"),
        ),
    ]
    if report.sessions is not None:
        parts.append(("In-session answers", report.sessions_note, report.sessions))
    if report.audiences is not None:
        parts.append(("Audiences", report.audiences_note, report.audiences))
    if report.bundles is not None:
        parts.append(("Bundles", report.bundles_note, report.bundles))
    return parts


def markdown(report: Report, images: list[Path]) -> str:
    lines = [f"# {report.title}", ""]
    for heading, text, table in sections(report):
        lines += [f"## {heading}", ""] + ([text, ""] if text else [])
        if table is not None:
            lines += [md_table(table), ""]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images]
    return "\n".join(lines) + "\n"


def html_page(report: Report, images: list[Path]) -> str:
    """One page with the plots inlined, so it can be mailed or opened from MLflow."""
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    for heading, text, table in sections(report):
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if text:
            body.append(f"<p>{html.escape(text)}</p>")
        if table is not None:
            body.append(table.to_html(float_format=lambda v: f"{v:.4f}", na_rep=""))
    body.append("<h2>Plots</h2>")
    body += [inline_image(p) for p in images]
    return html_document(report.title, body)


def inline_image(path: Path) -> str:
    """A PNG file as an <img> carrying its own bytes: the page needs no other file."""
    return png_tag(path.read_bytes(), path.stem)


def png_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def html_document(title: str, body: list[str]) -> str:
    """The page every cartlift HTML report shares: title, one stylesheet, ``body``."""
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write(report: Report, out: Path) -> dict[str, Path]:
    """Write report.md, report.html, the plots and the full metric table to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    images = plots(report, out)
    files = {"markdown": out / "report.md", "html": out / "report.html"}
    files["markdown"].write_text(markdown(report, images))
    files["html"].write_text(html_page(report, images))
    long = pd.concat([t.assign(variant=v) for v, t in report.personal.items()], ignore_index=True)
    files["metrics"] = out / "metrics.csv"
    long.to_csv(files["metrics"], index=False)
    paired = pd.concat(
        [t.assign(variant=v) for v, t in report.differences.items()], ignore_index=True
    )
    files["differences"] = out / "differences.csv"
    paired.to_csv(files["differences"], index=False)
    return files


def metric_comparison(
    scores: dict[str, dict[str, float]], metrics: list[str], title: str
) -> Figure:
    """Grouped bars: one group per metric, one bar per model."""
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(metrics)), 4))
    width = 0.8 / max(1, len(scores))
    x = np.arange(len(metrics))
    for i, (name, values) in enumerate(scores.items()):
        ax.bar(x + i * width, [values.get(m, np.nan) for m in metrics], width, label=name)
    ax.set_xticks(x + width * (len(scores) - 1) / 2, metrics, rotation=30, ha="right")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def figure_image(fig: Figure, alt: str) -> str:
    """A matplotlib figure as an <img> carrying its own bytes (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return png_tag(buffer.getvalue(), alt)


def gate_rows(
    scores: dict[str, dict[str, float]], k: int, metrics: tuple[str, ...]
) -> pd.DataFrame:
    """One row per model the gate compared (the candidate first), its figures at k."""
    columns = [f"{m}_at_{k}" for m in metrics]
    frame = pd.DataFrame(
        {name: {c: values.get(c, np.nan) for c in columns} for name, values in scores.items()}
    ).T
    frame.index.name = "model"
    return frame


def pipeline_page(title: str, facts: dict[str, str], table: pd.DataFrame, images: list[str]) -> str:
    """A pipeline run as one HTML page: what happened (the gate's decision and why, the
    version, the data), the gate's table and the charts."""
    intro = "Every model on the same holdout, as it is served, on the shop's objective."
    return run_page(title, facts, [("The gate", intro, table)], images)


def run_page(
    title: str,
    facts: dict[str, str],
    tables: list[tuple[str, str, pd.DataFrame]],
    images: list[str],
) -> str:
    """A run as one HTML page: what happened (``facts``), then each (heading, text,
    table), then the charts."""
    body = [f"<h1>{html.escape(title)}</h1>", "<h2>What happened</h2>"]
    body.append(
        pd.Series(facts, name="").rename_axis("").to_frame().to_html(header=False, escape=True)
    )
    for heading, text, table in tables:
        body += [
            f"<h2>{html.escape(heading)}</h2>",
            f"<p>{html.escape(text)}</p>",
            table.to_html(float_format=lambda v: f"{v:.4f}", na_rep=""),
        ]
    body += ["<h2>Charts</h2>", *images]
    return html_document(title, body)


def segment_charts(profiles: pd.DataFrame, moved: pd.DataFrame | None) -> list[Figure]:
    """The segments' sizes and revenue shares, their profiles against the shop (each
    column in the shop's spreads) and, given a previous run, the migration between them."""
    names = profiles["segment"].astype(str)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 1.5), sharey=True)
    axes[0].barh(names, profiles["customers"])
    axes[0].set_title("customers")
    axes[1].barh(names, profiles["revenue"] / profiles["revenue"].sum())
    axes[1].set_title("share of revenue")
    axes[0].invert_yaxis()
    fig.tight_layout()
    figures = [fig]
    behaviour = profiles.drop(columns=["segment", "customers", "revenue"])
    shares = [c for c in behaviour.columns if c.startswith("share: ")]
    top = behaviour[shares].var().sort_values(ascending=False).index[:8].tolist()
    shown = behaviour[["price_tier", "orders_per_30_days", "items_per_order", *top]]
    weights = profiles["customers"] / profiles["customers"].sum()
    mean = shown.mul(weights, axis=0).sum()
    spread = np.sqrt(((shown - mean) ** 2).mul(weights, axis=0).sum()).replace(0, 1.0)
    z = (shown - mean) / spread
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(names) + 2.5))
    image = ax.imshow(z.to_numpy(dtype=float), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(range(len(shown.columns)), shown.columns, rotation=30, ha="right")
    ax.set_title("profiles: each segment against the shop (in spreads between segments)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    figures.append(fig)
    if moved is not None and not moved.empty:
        fig, ax = plt.subplots(figsize=(11, 0.5 * len(moved) + 3))
        ax.imshow(moved.to_numpy(dtype=float), cmap="Blues", aspect="auto")
        ax.set_yticks(range(len(moved.index)), moved.index)
        ax.set_xticks(range(len(moved.columns)), moved.columns, rotation=30, ha="right")
        for (i, j), n in np.ndenumerate(moved.to_numpy()):
            ax.text(j, i, f"{n:,}", ha="center", va="center", fontsize=8)
        ax.set_ylabel("previous run")
        ax.set_xlabel("this run")
        ax.set_title("migration: customers from each previous segment to each segment now")
        fig.tight_layout()
        figures.append(fig)
    return figures
