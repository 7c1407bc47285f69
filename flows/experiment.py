"""Flow ``experiment``: one look at the running experiment, and what it decides.

It reads the experiment's answers and the feedback from the prediction log, the shop's
purchase lines since the experiment started from the lake, credits purchases to answers,
computes the KPIs and applies the always-valid test
(:func:`models.experiments.readout.read_out`). Then it acts: promote the challenger
(the old champion stays registered for a rollback), stop it, or continue (keeping the
test's p-value for the next look); and it records why in an MLflow run and a Prefect
artifact. Meant to run every hour while an experiment runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from infra import experiment_report, registry
from infra.settings import Settings
from models.data.columns import EVENT_COLUMNS, Columns
from models.experiments.assignment import experiment_name
from models.experiments.readout import Readout, read_out
from monitoring.predlog import read_log

C = Columns


@dataclass
class Look:
    """What one look decided, and the figures it rests on."""

    action: str  # promote | stop | continue | none (no experiment running)
    reason: str
    champion: str | None = None
    challenger: str | None = None
    kpis: pd.DataFrame | None = None
    run_id: str | None = None
    report: str | None = None  # the HTML page's path


@task(name="read the experiment's evidence")
def evidence(
    name: str, started: pd.Timestamp, dataset: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The experiment's answers and the feedback since it started (prediction log), the
    shop's purchase lines since then and the items' margins (lake; none when the lake
    cannot be read: attribution then rests on feedback alone)."""
    logger, settings = get_run_logger(), Settings()
    frame = read_log(settings.predictions_dir, since=started).frame
    served = frame[(frame["endpoint"] != "feedback") & (frame["experiment"] == name)]
    feedback = frame[frame["endpoint"] == "feedback"]
    lake = settings.dataset_lake(dataset)
    try:
        events = pd.read_parquet(lake / "events.parquet")
        items = pd.read_parquet(lake / "items.parquet")
    except (OSError, ValueError) as exc:
        logger.warning("the lake at %s cannot be read (%s): feedback alone is credited", lake, exc)
        events, items = pd.DataFrame(columns=list(EVENT_COLUMNS)), pd.DataFrame()
    when = pd.to_datetime(events[C.timestamp], utc=True)
    orders = events[(events[C.event] == "purchase") & (when >= started)]
    margins = (
        dict(zip(items[C.item], items[C.margin].astype(float), strict=True))
        if C.margin in items
        else {}
    )
    logger.info(
        "Evidence since %s: %d answers of the experiment, %d feedback records, %d purchase lines",
        started.isoformat(),
        len(served),
        len(feedback),
        len(orders),
    )
    return served, feedback, orders, margins


@task(name="record the look")
def record(name: str, look: Readout, action_taken: str, now: pd.Timestamp) -> tuple[str, str]:
    """The look's HTML report (KPI table, lift and p-value over time) under the reports
    directory, an MLflow run with it, the KPIs as metrics and the decision as tags, and a
    Prefect artifact the team reads. (Settings are read here, not passed: they hold
    secrets.)"""
    settings, table = Settings(), look.kpis
    rules = settings.experiments
    metrics = {
        f"{row.variant}.{row.endpoint}.{row.kpi}": float(row.value)
        for row in table.itertuples()
        if pd.notna(row.value)
    }
    test = look.decision.test
    metrics |= {
        "difference": test.difference,
        "p_value": test.p_value,
        "units.challenger": float(test.n_challenger),
        "units.champion": float(test.n_champion),
    } | {f"credited.{k}": float(v) for k, v in look.attribution.counts().items()}
    record = registry.RunRecord(
        params={"experiment": name},
        metrics={k: v for k, v in metrics.items() if pd.notna(v)},
        tags={
            "cartlift.kind": "experiment-look",
            "action": action_taken,
            "reason": look.decision.reason,
        },
        artifacts={},
    )
    out = settings.reports_dir / "experiments" / f"{name}-{now:%Y%m%dT%H%M%S}"
    page = experiment_report.write(name, action_taken, look, rules, out)
    run_id = registry.log_report(settings, f"experiment {name}", record, out, "report")
    create_markdown_artifact(
        markdown=experiment_report.markdown(name, action_taken, look, rules)
        + f"\n\nReport: `{page}` (and in MLflow run `{run_id}`, artifacts `report/`)",
        key="experiment-look",
        description=f"experiment {name}",
    )
    get_run_logger().info("Report: %s", page)
    return run_id, str(page)


@flow(name="experiment")
def experiment(dataset: str | None = None, now: datetime | None = None) -> Look:
    """One look at the running experiment; promote, stop or continue."""
    logger = get_run_logger()
    settings = Settings()
    rules = settings.experiments
    found = registry.experiment(settings)
    if found.challenger is None:
        logger.info("No experiment running: nothing to judge")
        return Look("none", "no experiment running", str(found.champion))
    champion, challenger = str(found.champion), str(found.challenger)
    name = experiment_name(settings.registered_model, settings.challenger_alias, challenger)
    started = pd.Timestamp(found.started_at) if found.started_at else pd.Timestamp(0, tz=UTC)
    now_ts = pd.Timestamp(now or datetime.now(UTC))
    days = max((now_ts - started).total_seconds() / 86_400, 0.0)
    data = dataset or registry.describe_version(settings, champion).get("dataset", "")
    served, feedback, orders, margins = evidence(name, started, data)
    look = read_out(served, feedback, orders, rules, days, found.last_p, margins)
    decision = look.decision
    logger.info(
        "Experiment %s after %.1f days: %s, %s", name, days, decision.action, decision.reason
    )
    if decision.action == "promote":
        registry.promote_challenger(settings, decision.reason)
        logger.info(
            "Version %s is the champion; version %s stays registered for a rollback",
            challenger,
            champion,
        )
    elif decision.action == "stop":
        registry.stop_experiment(settings)
        logger.info("Experiment stopped: version %s keeps answering everyone", champion)
    else:
        registry.record_look(settings, decision.test.p_value)
    run_id, page = record(name, look, decision.action, now_ts)
    return Look(decision.action, decision.reason, champion, challenger, look.kpis, run_id, page)
