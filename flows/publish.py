"""What a run shows the people who read it: Prefect artifacts (a table and a Markdown
summary on the flow run's page) and an HTML page per run, kept under
``$CARTLIFT_HOME/reports`` and logged to the run's MLflow record."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.tasks import IO_RETRIES
from flows.train import CHART_METRICS, Registration
from infra import registry
from infra.reports import figure_image, gate_rows, metric_comparison, pipeline_page
from infra.settings import Settings
from models.config import RunConfig, excludes_purchased
from models.evaluation.tasks import variant


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) from ``parts``."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def _table(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows for a Prefect table artifact: numbers rounded, the index as the first column."""
    rows = frame.reset_index().to_dict("records")
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


@task(name="show the run", cache_policy=NO_CACHE, **IO_RETRIES)
def show_pipeline(reg: Registration, config: RunConfig) -> Path:
    """The gate's table and the run's summary as Prefect artifacts; the HTML page of the
    run written under the reports directory and logged to its MLflow run."""
    settings, k = Settings(), config.evaluate.k
    ours = "cartlift (this run)" if reg.served == "cartlift" else "cartlift (trained, not served)"
    scores = {ours: reg.metrics, **reg.baselines}
    if reg.champion_metrics:
        scores["previous champion"] = reg.champion_metrics
    table = gate_rows(scores, k, (*CHART_METRICS, "coverage"))
    link = registry.run_link(settings, reg.run_id)
    facts = {
        "dataset": config.dataset,
        "version": f"{reg.version}: {reg.outcome}",
        "the gate": reg.decision.reason,
        "what the version serves": reg.served,
        "champion now": str(reg.champion_version),
        "objective (the gate's variant)": (
            f"{reg.objective}: {variant(excludes_purchased(reg.objective))}"
        ),
        "the gate's metric": config.gate.metric,
        "MLflow run": link,
    }
    title = f"cartlift pipeline: {config.dataset}, version {reg.version}"
    charts = [
        figure_image(
            metric_comparison(scores, [f"{m}_at_{k}" for m in CHART_METRICS], f"metrics at k={k}"),
            "metrics",
        ),
        figure_image(
            metric_comparison(
                scores,
                [f"{p}ndcg_at_{k}" for p in ("", "cold_users.", "new_items.")],
                f"NDCG@{k} by slice",
            ),
            "ndcg_by_slice",
        ),
    ]
    page = pipeline_page(title, facts, table, charts)
    when = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = settings.reports_dir / "pipeline" / config.dataset / f"{when}-v{reg.version}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    registry.attach_text(settings, reg.run_id, page, "report.html")
    key = artifact_key("pipeline", config.dataset)
    create_table_artifact(
        _table(table),
        key=artifact_key("gate", config.dataset),
        description=f"The gate, version {reg.version} ({config.dataset}): {reg.decision.reason}",
    )
    summary = "\n".join(
        [f"# {title}", "", "| | |", "|---|---|"]
        + [f"| {name} | {value} |" for name, value in facts.items()]
        + ["", f"The run's page: `{out}` (also `report.html` in the MLflow run)."]
    )
    create_markdown_artifact(summary, key=key, description=f"pipeline run on {config.dataset}")
    return out
