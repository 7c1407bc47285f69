"""Flow ``monitor``: compare recent data and served answers with the champion's training
window, write the reports, decide whether to retrain, and say so with a Prefect event.

The event (``cartlift.drift.detected``, the reasons in its payload) is what a Prefect
automation on a server turns into a ``pipeline`` run. In the embedded default there is no
server to listen, so given the shop's data the flow runs ``pipeline`` itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from evidently.core.report import Snapshot
from prefect import flow, get_run_logger, task
from prefect.events import emit_event

from flows.pipeline import pipeline
from flows.tasks import settings_for
from infra import registry
from infra.lake import write_json
from infra.settings import Settings
from models.config import RunConfig
from models.data.columns import Columns
from monitoring import dashboard
from monitoring.drift import PREDICTIONS_TAG, Drift, drift
from monitoring.policy import Decision, decide
from monitoring.predictions import CATEGORICAL as SERVED_CATEGORICAL
from monitoring.predictions import NUMERICAL as SERVED_NUMERICAL
from monitoring.predictions import served_items
from monitoring.predlog import read_log
from monitoring.quality import feedback_quality
from monitoring.recsys import quality_report, quality_summary
from monitoring.windows import WindowError, windows

C = Columns
EVENT = "cartlift.drift.detected"


@dataclass
class MonitorResult:
    decision: Decision
    champion: str | None
    report_dir: str | None = None
    drift_share: float | None = None
    drifted: list[str] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    retrained_version: str | None = None


def _state_path(settings: Settings) -> Path:
    return settings.reports_dir / "monitor_state.json"


def _hours_since_retrain(settings: Settings, now: datetime) -> float | None:
    path = _state_path(settings)
    if not path.exists():
        return None
    last = datetime.fromisoformat(json.loads(path.read_text())["last_retrain"])
    return (now - last).total_seconds() / 3600


def _served(
    settings: Settings, version: str, since: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The champion's prediction log records (answers and their feedback): (those since
    ``since``, everything before)."""
    served, _ = read_log(settings.predictions_dir)
    if served.empty or "model_version" not in served or "request_id" not in served:
        return served.iloc[:0], served.iloc[:0]
    mine = served[served["model_version"].astype(str) == version]["request_id"]
    served = served[served["request_id"].isin(set(mine))]
    return served[served["timestamp"] >= since], served[served["timestamp"] < since]


def _prediction_drift(
    settings: Settings, recent: pd.DataFrame, before: pd.DataFrame, items: pd.DataFrame
) -> Drift | str:
    """Drift of what was served (the champion's earlier answers are the reference), or
    why it was not measured. Reported, not a retraining trigger: the data and feedback
    say whether the shop moved; this says how the answers moved with it."""
    cfg = settings.monitor
    cur, ref = served_items(recent, items), served_items(before, items)
    if min(len(cur), len(ref)) < cfg.min_events:
        return (
            f"prediction drift not measured: {len(ref)} earlier and {len(cur)} recent served "
            f"items, at least {cfg.min_events} each are needed"
        )
    return drift(ref, cur, cfg, SERVED_NUMERICAL, SERVED_CATEGORICAL, PREDICTIONS_TAG)


def _save(snapshot: Snapshot, stem: Path) -> None:
    """The Evidently report as HTML (for people) and its JSON snapshot (for tools)."""
    snapshot.save_html(str(stem.with_suffix(".html")))
    snapshot.save_json(str(stem.with_suffix(".json")))


def _quality_reports(
    settings: Settings, champion: dict[str, str], recent: pd.DataFrame, train: pd.DataFrame
) -> tuple[list[Snapshot], dict[str, float], str | None]:
    """Evidently's quality report and summary over the recent served lists, and the
    champion's offline metrics (from its MLflow run) to compare them with; or why the
    reports were not made."""
    k = settings.monitor.k
    offline = registry.run_metrics(
        settings, champion["run_id"], [f"{m}_at_{k}" for m in ("precision", "ndcg", "hit_rate")]
    )
    try:
        snapshots = [
            quality_report(recent, train, k),
            quality_summary(recent, k, offline.get(f"ndcg_at_{k}")),
        ]
    except ValueError as exc:
        return [], offline, f"quality report not made: {exc}"
    return snapshots, offline, None


@task(name="check drift and quality")
def check(
    settings: Settings,
    champion: dict[str, str],
    now: datetime,
    served_since: datetime | None = None,
) -> MonitorResult:
    logger = get_run_logger()
    cfg = settings.monitor
    version = champion["version"]
    lake = settings.dataset_lake(champion.get("dataset", settings.run.dataset))
    day_dir = settings.reports_dir / now.strftime("%Y-%m-%d")
    stamp = now.strftime("%H%M%S")
    age = (now - datetime.fromisoformat(champion["created_at"])).total_seconds() / 86_400
    since = _hours_since_retrain(settings, now)
    try:
        events = pd.read_parquet(lake / "events.parquet")
        items = pd.read_parquet(lake / "items.parquet")
        start = pd.Timestamp(champion.get("train_start") or events[C.timestamp].min())
        cutoff = pd.Timestamp(champion["cutoff"])
        w = windows(events, items, start, cutoff, cfg.window_days, cfg.min_events)
    except (WindowError, OSError, KeyError, ValueError) as exc:
        message = f"no drift verdict for champion version {version}: {exc}"
        logger.warning(message)
        decision = decide(cfg, None, [], None, None, age, since)
        decision.notes.insert(0, message)
        path = write_json({"decision": asdict(decision)}, day_dir / f"decision-{stamp}.json")
        return MonitorResult(decision, version, str(path.parent))
    logger.info(
        "Comparing %s reference events (%s .. %s) with %s current events (%s .. %s)",
        f"{len(w.reference):,}",
        *w.reference_span,
        f"{len(w.current):,}",
        *w.current_span,
    )
    result = drift(w.reference, w.current, cfg)
    window_start = served_since or now - timedelta(days=cfg.window_days)
    recent, before = _served(settings, version, pd.Timestamp(window_start))
    now_q, before_q = feedback_quality(recent, cfg.k), feedback_quality(before, cfg.k)
    served = _prediction_drift(settings, recent, before, items)
    trained_on = events[(events[C.timestamp] >= start) & (events[C.timestamp] < cutoff)]
    quality, offline, why_not = _quality_reports(settings, champion, recent, trained_on)
    key = f"precision_at_{cfg.k}"
    enough = lambda q: q and q["lists"] >= cfg.min_feedback_lists  # noqa: E731
    decision = decide(
        cfg,
        result.share,
        result.drifted,
        now_q[key] if enough(now_q) else None,
        before_q[key] if enough(before_q) else None,
        age,
        since,
    )
    day_dir.mkdir(parents=True, exist_ok=True)
    _save(result.snapshot, day_dir / f"data-drift-{stamp}")
    if isinstance(served, Drift):
        _save(served.snapshot, day_dir / f"prediction-drift-{stamp}")
        predictions = {"share": served.share, "scores": served.scores, "drifted": served.drifted}
    else:
        logger.info("%s", served)
        predictions = {"not_measured": served}
    if quality:
        _save(quality[0], day_dir / f"quality-{stamp}")
        logger.info(
            "Feedback on %d served lists: precision@%d %.4f, NDCG@%d %.4f, hit rate %.4f "
            "(the champion's offline NDCG@%d on its holdout: %s)",
            int(now_q["lists"]),
            cfg.k,
            now_q[f"precision_at_{cfg.k}"],
            cfg.k,
            now_q[f"ndcg_at_{cfg.k}"],
            now_q[f"hit_rate_at_{cfg.k}"],
            cfg.k,
            f"{offline[f'ndcg_at_{cfg.k}']:.4f}" if f"ndcg_at_{cfg.k}" in offline else "unknown",
        )
    else:
        logger.info("%s", why_not)
    write_json(
        {
            "champion": version,
            "reference": w.reference_span,
            "current": w.current_span,
            "drift": {"share": result.share, "scores": result.scores, "drifted": result.drifted},
            "thresholds": result.thresholds,
            "methods": {"numerical": cfg.num_method, "categorical": cfg.cat_method},
            "prediction_drift": predictions,
            "quality": {"current": now_q, "baseline": before_q, "offline": offline},
            "decision": asdict(decision),
        },
        day_dir / f"decision-{stamp}.json",
    )
    workspace, project = dashboard.project(settings.reports_dir / "workspace", cfg.k)
    workspace.add_run(project.id, result.snapshot, name=f"data drift {now:%Y-%m-%d %H:%M}")
    if isinstance(served, Drift):
        workspace.add_run(project.id, served.snapshot, name=f"predictions {now:%Y-%m-%d %H:%M}")
    for kind, snapshot in zip(("quality", "quality summary"), quality, strict=False):
        workspace.add_run(project.id, snapshot, name=f"{kind} {now:%Y-%m-%d %H:%M}")
    for column, score in result.scores.items():
        flag = "DRIFT" if column in result.drifted else "ok"
        logger.info(
            "  %-20s %.3f (threshold %.2f) %s", column, score, result.thresholds[column], flag
        )
    return MonitorResult(decision, version, str(day_dir), result.share, result.drifted, now_q or {})


@flow(name="monitor")
def monitor(
    data: str | None = None,
    fmt: str = "contract",
    mapping: str | None = None,
    config: RunConfig | None = None,
    now: datetime | None = None,
    served_since: datetime | None = None,
) -> MonitorResult:
    """Check the champion; when retraining is due, emit the event and (given ``data``)
    run the pipeline, whose quality gate decides on a new champion.

    Served answers since ``served_since`` (default: the last ``window_days``) are judged
    against the champion's answers before it."""
    logger = get_run_logger()
    settings = settings_for(config)
    now = now or datetime.now(UTC)
    champion = registry.describe_champion(settings)
    if champion is None:
        logger.warning("No champion in the registry: nothing to monitor")
        return MonitorResult(Decision(False, [], ["no champion"]), None)
    result = check(settings, champion, now, served_since)
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
    write_json({"last_retrain": now.isoformat()}, _state_path(settings))
    if data is not None:
        registration = pipeline(data, fmt, mapping, config)
        result.retrained_version = registration.version
        logger.info(
            "Retrained: version %s, %s",
            registration.version,
            "now the champion" if registration.decision.promote else "not promoted by the gate",
        )
    return result
