"""Flow ``monitor``: compare recent data and served answers with the champion's training
window, write the reports, decide whether to retrain, and say so with a Prefect event.

The event (``cartlift.drift.detected``, the reasons in its payload) is what a Prefect
automation on a server turns into a ``pipeline`` run. In the embedded default there is no
server to listen, so given the shop's data the flow runs ``pipeline`` itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.events import emit_event

from flows.pipeline import pipeline
from flows.publish import show_monitor
from flows.tasks import run_config
from infra import events as live_events
from infra import registry
from infra.settings import Settings
from models.config import RunConfig
from models.data.columns import EVENT_COLUMNS
from models.data.live import already_in
from monitoring import check as checks
from monitoring.check import MonitorResult
from monitoring.policy import RetrainDecision
from monitoring.predlog import read_log

EVENT = "cartlift.drift.detected"


@task(name="read the lake")
def read_lake(dataset: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The dataset's events and items, or (None, None) when the lake cannot be read (the
    monitor then reports that it gave no verdict)."""
    settings = Settings()
    lake = settings.dataset_lake(dataset)
    try:
        events = pd.read_parquet(lake / "events.parquet")
        items = pd.read_parquet(lake / "items.parquet")
    except (OSError, ValueError) as exc:  # missing, or not Parquet (pyarrow: ValueError)
        get_run_logger().warning("the lake at %s cannot be read: %s", lake, exc)
        return None, None
    if live_events.exists(settings.events_url):  # the freshest: not yet in the lake
        live = live_events.read(live_events.connect(settings.events_url))
        new = live.loc[~already_in(live, events), list(EVENT_COLUMNS)]
        if len(new):
            get_run_logger().info(
                "%s live events (/events) not in the lake yet join the current window",
                f"{len(new):,}",
            )
            events = pd.concat([events, new.astype(events.dtypes.to_dict())], ignore_index=True)
    return events, items


@task(name="check drift and quality")
def check(
    champion: dict[str, str], dataset: str, now: datetime, served_since: datetime | None = None
) -> MonitorResult:
    """The monitor's comparison (:func:`monitoring.check.run`) on what the lake, the
    prediction log and the registry hold now."""
    settings = Settings()
    k = settings.monitor.k
    events, items = read_lake(champion.get("dataset", dataset))
    offline = registry.run_metrics(
        settings, champion["run_id"], [f"{m}_at_{k}" for m in ("precision", "ndcg", "hit_rate")]
    )
    return checks.run(
        settings.monitor,
        checks.Champion(
            version=champion["version"],
            created_at=datetime.fromisoformat(champion["created_at"]),
            cutoff=champion.get("cutoff", ""),
            train_start=champion.get("train_start"),
        ),
        events,
        items,
        read_log(settings.predictions_dir),
        offline,
        settings.reports_dir,
        now,
        served_since,
        get_run_logger(),
    )


@flow(name="monitor")
def monitor(
    data: str | None = None,
    fmt: str = "contract",
    mapping: str | None = None,
    config: RunConfig | None = None,
    now: datetime | None = None,
    served_since: datetime | None = None,
    dataset: str | None = None,
    config_file: str | None = None,
) -> MonitorResult:
    """Check the champion; when retraining is due, emit the event and (given ``data``)
    run the pipeline, whose quality gate decides on a new champion.

    Served answers since ``served_since`` (default: the last ``window_days``) are judged
    against the champion's answers before it. Without ``config`` the run config is
    resolved now (:func:`infra.settings.resolve_run_config`), as in every flow."""
    logger = get_run_logger()
    settings = Settings()
    run = run_config(config, config_file, dataset, fmt, data)
    now = now or datetime.now(UTC)
    champion = registry.describe_champion(settings)
    if champion is None:
        logger.warning("No champion in the registry: nothing to monitor")
        return MonitorResult(RetrainDecision(False, [], ["no champion"]), None)
    result = check(champion, run.dataset, now, served_since)
    show_monitor(result, run.dataset)
    for note in result.decision.notes:
        logger.info("%s", note)
    if not result.decision.retrain:
        logger.info("No retraining due (reports in %s)", result.report_dir)
        return result
    logger.warning("Retraining due: %s", "; ".join(result.decision.reasons))
    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"cartlift.model.{settings.registered_model}"},
        payload={"reasons": result.decision.reasons, "champion": champion["version"]},
    )
    checks.record_retrain(settings.reports_dir, now)
    if data is not None:
        registration = pipeline(data, fmt, mapping, run)
        result.retrained_version = registration.version
        logger.info("Retrained: version %s, %s", registration.version, registration.outcome)
    return result
