"""One monitor run: compare recent data and served answers with the champion's training
window, write the reports, and decide whether to retrain.

Everything the run needs arrives as arguments (the lake's tables, the prediction log, the
champion's offline metrics, the clock), so the flow only fetches and wires; the files it
writes go under ``reports_dir``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from evidently.core.report import Snapshot

from infra.lake import write_json
from models.config import MonitorConfig
from models.data.columns import Columns
from models.data.predictions import PredictionLogFrame
from monitoring import dashboard
from monitoring.drift import PREDICTIONS_TAG, Check, Drift, drift
from monitoring.policy import RetrainDecision, decide
from monitoring.predictions import CATEGORICAL as SERVED_CATEGORICAL
from monitoring.predictions import NUMERICAL as SERVED_NUMERICAL
from monitoring.predictions import served_items
from monitoring.quality import feedback_quality
from monitoring.recsys import quality_report, quality_summary
from monitoring.windows import WindowError, windows

log = logging.getLogger(__name__)
C = Columns


@dataclass
class MonitorResult:
    decision: RetrainDecision
    champion: str | None
    report_dir: str | None = None
    drift_share: float | None = None
    drifted: list[str] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    retrained_version: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # column -> distance
    thresholds: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)  # Evidently's tests in the report
    report: str | None = None  # the data drift report (HTML)


@dataclass(frozen=True)
class Champion:
    """What the monitor needs to know of the champion (from its registry tags)."""

    version: str
    created_at: datetime
    cutoff: str
    train_start: str | None = None


def hours_since_retrain(state: Path, now: datetime) -> float | None:
    if not state.exists():
        return None
    last = datetime.fromisoformat(json.loads(state.read_text())["last_retrain"])
    return (now - last).total_seconds() / 3600


def served_by(log_frame: pd.DataFrame, version: str, since: pd.Timestamp):
    """The champion's prediction log records (answers and their feedback): (those since
    ``since``, everything before)."""
    if log_frame.empty:
        return log_frame, log_frame
    mine = log_frame[log_frame["model_version"].astype(str) == version]["request_id"]
    served = log_frame[log_frame["request_id"].isin(set(mine))]
    return served[served["timestamp"] >= since], served[served["timestamp"] < since]


def _prediction_drift(
    cfg: MonitorConfig, recent: pd.DataFrame, before: pd.DataFrame, items: pd.DataFrame
) -> Drift | str:
    """Drift of what was served (the champion's earlier answers are the reference), or
    why it was not measured. Reported, not a retraining trigger: the data and feedback
    say whether the shop moved; this says how the answers moved with it."""
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


def run(
    cfg: MonitorConfig,
    champion: Champion,
    events: pd.DataFrame | None,
    items: pd.DataFrame | None,
    predictions: PredictionLogFrame,
    offline: dict[str, float],
    reports_dir: Path,
    now: datetime,
    served_since: datetime | None = None,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> MonitorResult:
    """Drift of the shop's data, quality on feedback and prediction drift for one champion;
    the reports under ``reports_dir/<day>``, the run in the Evidently workspace. ``events``
    and ``items`` are None when the lake could not be read (then: no drift verdict).
    ``logger``: where to say what was compared (a flow passes its run logger)."""
    version = champion.version
    day_dir = reports_dir / now.strftime("%Y-%m-%d")
    stamp = now.strftime("%H%M%S")
    age = (now - champion.created_at).total_seconds() / 86_400
    since = hours_since_retrain(reports_dir / "monitor_state.json", now)
    try:
        if events is None or items is None:
            raise WindowError("the lake's events or items table could not be read")
        start = pd.Timestamp(champion.train_start or events[C.timestamp].min())
        cutoff = pd.Timestamp(champion.cutoff)
        w = windows(events, items, start, cutoff, cfg.window_days, cfg.min_events)
    except (WindowError, KeyError, ValueError) as exc:
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
    recent, before = served_by(predictions.frame, version, pd.Timestamp(window_start))
    now_q, before_q = feedback_quality(recent, cfg.k), feedback_quality(before, cfg.k)
    served = _prediction_drift(cfg, recent, before, items)
    trained_on = events[(events[C.timestamp] >= start) & (events[C.timestamp] < cutoff)]
    try:
        quality = [
            quality_report(recent, trained_on, cfg.k),
            quality_summary(recent, cfg.k, offline.get(f"ndcg_at_{cfg.k}")),
        ]
        why_not = ""
    except ValueError as exc:
        quality, why_not = [], f"quality report not made: {exc}"
    key = f"precision_at_{cfg.k}"

    def enough(q: dict[str, float]) -> bool:
        return bool(q) and q["lists"] >= cfg.min_feedback_lists

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
        served_summary: dict[str, Any] = {
            "share": served.share,
            "scores": served.scores,
            "drifted": served.drifted,
        }
    else:
        logger.info("%s", served)
        served_summary = {"not_measured": served}
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
            "tests": [asdict(c) for c in result.checks],
            "thresholds": result.thresholds,
            "methods": {"numerical": cfg.num_method, "categorical": cfg.cat_method},
            "prediction_drift": served_summary,
            "prediction_log": {"unreadable_lines": predictions.unreadable},
            "quality": {"current": now_q, "baseline": before_q, "offline": offline},
            "decision": asdict(decision),
        },
        day_dir / f"decision-{stamp}.json",
    )
    workspace, project = dashboard.project(reports_dir / "workspace", cfg.k)
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
    return MonitorResult(
        decision,
        version,
        str(day_dir),
        result.share,
        result.drifted,
        now_q or {},
        scores=result.scores,
        thresholds=result.thresholds,
        checks=result.checks,
        report=str(day_dir / f"data-drift-{stamp}.html"),
    )


def record_retrain(reports_dir: Path, now: datetime) -> None:
    """Remember when retraining was last asked for (the cooldown starts here)."""
    write_json({"last_retrain": now.isoformat()}, reports_dir / "monitor_state.json")
