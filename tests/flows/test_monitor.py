"""The monitoring loop through the real Prefect engine: drift -> event -> retrain -> gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from evidently.ui.workspace import Workspace

from flows.monitor import monitor
from flows.pipeline import pipeline
from infra.lake import write_shop
from infra.settings import Settings
from models.config import FeatureConfig, RunConfig, TrainConfig
from tests.conftest import prefect_artifacts

FAST = RunConfig(
    features=FeatureConfig(holdout_days=14), train=TrainConfig(no_components=16, epochs=10)
)
pytestmark = pytest.mark.usefixtures("prefect_engine")


@pytest.fixture(scope="module")
def trained(home, tiny_shop, tmp_path_factory):
    shop = tmp_path_factory.mktemp("shop")
    write_shop(tiny_shop, shop)
    registration = pipeline(str(shop), "contract", None, FAST)
    assert registration.decision.promote
    return shop, Settings().dataset_lake(FAST.dataset)


def shift(lake: Path, cutoff: pd.Timestamp) -> None:
    """A new category launches and takes the recent traffic, at three times the prices."""
    events = pd.read_parquet(lake / "events.parquet")
    items = pd.read_parquet(lake / "items.parquet")
    recent = events["timestamp"] >= cutoff
    launched = "launch-" + events.loc[recent, "item_id"].astype(str)
    events.loc[recent, "item_id"] = launched
    events.loc[recent, "price"] *= 3
    new = items[items["item_id"].isin(events.loc[recent, "item_id"].str[7:])].copy()
    new["item_id"] = "launch-" + new["item_id"].astype(str)
    new["category"] = "launch"
    pd.concat([items, new]).to_parquet(lake / "items.parquet")
    events.to_parquet(lake / "events.parquet")


def test_reports_and_decision_are_written(trained):
    # The generated shop launches its cold-start items and customers in its last days
    # (for the cold-start evaluation), so its recent window already differs in item
    # novelty and popularity; its category mix does not.
    result = monitor(config=FAST)
    day = Path(result.report_dir)
    assert list(day.glob("data-drift-*.html")) and list(day.glob("data-drift-*.json"))
    decision = json.loads(next(day.glob("decision-*.json")).read_text())
    assert set(decision["drift"]["scores"]) == {
        "price",
        "user_events_per_day",
        "basket_size",
        "category",
        "event_type",
        "user_kind",
        "item_kind",
        "popularity_band",
    }
    assert "category" not in result.drifted and decision["decision"]["retrain"] in (True, False)
    # Evidently's tests, at the configured thresholds, in the report itself: one per column
    # and one for the drifted share; a failed one is a drifted column.
    snapshot = json.loads(next(day.glob("data-drift-*.json")).read_text())
    names = {t["name"] for t in snapshot["tests"]}
    assert len(names) == 9 and any(n.startswith("Share of Drifted Columns") for n in names)
    failed = {c.name.removeprefix("Value Drift for column ") for c in result.checks if not c.passed}
    assert set(result.drifted) <= failed and len(decision["tests"]) == 9
    # The decision on the flow run's page, with every column against its threshold.
    shown = prefect_artifacts("monitor-default-shop", "drift-default-shop")
    table = json.loads(shown["drift-default-shop"].data)
    assert {row["column"] for row in table} == set(decision["drift"]["scores"])
    summary = shown["monitor-default-shop"].data
    assert "retraining due" in summary.lower() and "data-drift-" in summary
    assert "Evidently tests:" in summary
    workspace = Settings().reports_dir / "workspace"
    assert any(workspace.rglob("*.json"))  # the run is in the Evidently workspace


def test_workspace_dashboard_plots_drift_over_time(trained):
    monitor(config=FAST)
    workspace = Workspace.create(str(Settings().reports_dir / "workspace"))
    (project,) = workspace.search_project("cartlift monitoring")
    titles = [p.title for p in project.dashboard.model().panels]
    assert "Drift share over time" in titles and len(titles) == 5
    assert any(t.startswith("Quality on feedback over time") for t in titles)
    assert len(workspace.list_runs(project.id)) >= 2  # one data-drift run per monitor call


def test_shift_fires_the_event_retrains_and_cools_down(trained):
    shop, lake = trained
    events = pd.read_parquet(lake / "events.parquet")
    shift(lake, events["timestamp"].max() - pd.Timedelta(days=7))
    later = datetime.now(UTC) + timedelta(days=1)  # past any cooldown from the test before
    result = monitor(str(shop), "contract", None, FAST, now=later)
    assert result.decision.retrain
    assert {"category", "price", "item_kind", "popularity_band"} <= set(result.drifted)
    assert result.decision.reasons[0].startswith("data drift")
    assert result.retrained_version is not None  # the pipeline ran; its gate decided
    # An hour later the same shift (the retrain re-ingested the shop: shift it again) is
    # held back by the cooldown.
    shift(lake, events["timestamp"].max() - pd.Timedelta(days=7))
    again = monitor(config=FAST, now=later + timedelta(hours=1))
    assert not again.decision.retrain and "cooldown" in again.decision.notes[-1]


def test_empty_current_window_gives_a_clear_message_and_no_retrain(trained):
    _, lake = trained
    events = pd.read_parquet(lake / "events.parquet")
    cutoff = events["timestamp"].max() - pd.Timedelta(days=14)
    events[events["timestamp"] < cutoff].to_parquet(lake / "events.parquet")
    result = monitor(config=FAST)
    assert not result.decision.retrain
    assert "no events after the champion's cutoff" in result.decision.notes[0]
