"""What a run shows the people who read it: Prefect artifacts (a table and a Markdown
summary on the flow run's page) and an HTML page per run, kept under
``$CARTLIFT_HOME/reports`` and logged to the run's MLflow record."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

import optuna
import pandas as pd
from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.tasks import IO_RETRIES
from flows.train import CHART_METRICS, Registration
from infra import registry
from infra.reports import figure_image, gate_rows, metric_comparison, pipeline_page
from infra.settings import Settings
from models.config import RunConfig, excludes_purchased
from models.evaluation.tasks import variant
from models.evaluation.tuning import TrialResult
from monitoring.check import MonitorResult


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) from ``parts``."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def table_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows for a Prefect table artifact: numbers rounded, the index as the first column."""
    rows = frame.reset_index().to_dict("records")
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def facts_markdown(title: str, facts: dict[str, str], page: str) -> str:
    """A run's summary artifact: its title, its facts as a table, where its page is."""
    return "\n".join(
        [f"# {title}", "", "| | |", "|---|---|"]
        + [f"| {name} | {value} |" for name, value in facts.items()]
        + ["", f"The run's page: {page}."]
    )


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
        table_rows(table),
        key=artifact_key("gate", config.dataset),
        description=f"The gate, version {reg.version} ({config.dataset}): {reg.decision.reason}",
    )
    summary = facts_markdown(title, facts, f"`{out}` (also `report.html` in the MLflow run)")
    create_markdown_artifact(summary, key=key, description=f"pipeline run on {config.dataset}")
    return out


@task(name="show the decision", cache_policy=NO_CACHE)
def show_monitor(result: MonitorResult, dataset: str) -> None:
    """The monitor's decision, every watched column against its threshold and Evidently's
    failed tests as Prefect artifacts, with where the report is."""
    retrain = result.decision.retrain
    lines = [
        f"# cartlift monitor: {dataset}, champion {result.champion}",
        "",
        f"**{'Retraining due' if retrain else 'No retraining due'}**"
        + (f": {'; '.join(result.decision.reasons)}" if result.decision.reasons else ""),
        "",
        *(f"- {note}" for note in result.decision.notes),
    ]
    if result.scores:
        share = f"{result.drift_share:.0%}" if result.drift_share is not None else "unknown"
        lines += ["", f"Drifted columns: {', '.join(result.drifted) or 'none'} ({share})"]
        failed = [c for c in result.checks if not c.passed]
        lines += [
            "",
            f"Evidently tests: {len(result.checks) - len(failed)} passed, {len(failed)} failed",
        ]
        lines += [f"- FAIL {c.name}: {c.description}" for c in failed]
        rows = [
            {
                "column": column,
                "distance": round(score, 4),
                "threshold": result.thresholds.get(column),
                "drifted": column in result.drifted,
            }
            for column, score in result.scores.items()
        ]
        create_table_artifact(
            rows,
            key=artifact_key("drift", dataset),
            description=f"Drift of {dataset}'s data against the champion's training window",
        )
    if result.report_dir:
        workspace = Path(result.report_dir).parent / "workspace"
        lines += [
            "",
            f"The report: `{result.report or result.report_dir}` (dashboard: "
            f"`evidently ui --workspace {workspace}`)",
        ]
    create_markdown_artifact(
        "\n".join(lines), key=artifact_key("monitor", dataset), description="monitor decision"
    )


@task(name="show the search", cache_policy=NO_CACHE)
def show_tune(
    study: optuna.Study, results: list[TrialResult], config_path: str, dataset: str, run_id: str
) -> list[Path]:
    """The best trial and every trial as Prefect artifacts; Optuna's plots (the search's
    history, the parameters' importances) as images under the reports directory and in
    the MLflow run. Returns the images."""
    settings = Settings()
    best = max(range(len(results)), key=lambda i: results[i].score)
    out = settings.reports_dir / "tune" / dataset
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    images = []
    for name, plot in (
        ("history", plot_optimization_history),
        ("importance", plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore")
                figure = plot(study).figure
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. one trial only
            get_run_logger().info("No %s plot: %s", name, exc)
            continue
        figure.set_size_inches(8, 4.5)
        figure.tight_layout()
        path = out / f"{when}-{name}.png"
        figure.savefig(path, dpi=110)
        registry.attach_figure(settings, run_id, figure, f"{name}.png")
        images.append(path)
    rows = [
        {"trial": i, "validation NDCG": round(r.score, 4), "best epoch": r.best_epoch}
        | {key.split(".")[-1]: short(value) for key, value in r.params.items()}
        for i, r in enumerate(results)
    ]
    create_table_artifact(rows, key=artifact_key("trials", dataset), description="every trial")
    winner = results[best]
    lines = [
        f"# cartlift tune: {dataset}",
        "",
        f"Best of {len(results)} trials: trial {best}, validation NDCG "
        f"{winner.score:.4f} at epoch {winner.best_epoch}.",
        "",
        "| parameter | value |",
        "|---|---|",
        *(f"| {key} | {short(value)} |" for key, value in winner.params.items()),
        "",
        f"Written to `{config_path}`: the pipeline's config for {dataset} from now on.",
        f"MLflow run: {registry.run_link(settings, run_id)}",
        *(f"Plot: `{path}`" for path in images),
    ]
    create_markdown_artifact(
        "\n".join(lines), key=artifact_key("tune", dataset), description="tune"
    )
    return images


def short(value: object) -> str:
    """A parameter's value for people: three significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
