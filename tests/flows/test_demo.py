"""The drift demo's loop on a small shop: the real Prefect engine, MLflow store and
BentoML server, from a first champion to a new one served after the shop shifted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from evidently.ui.workspace import Workspace

from flows.demo import drift_demo
from infra.settings import Settings
from models.config import FeatureConfig, RunConfig, ShopConfig, TrainConfig, TuneConfig
from tests.browser import browser, evidently_ui

# Big enough that two months of a shifted shop separate the models beyond the gate's
# margin on the holdout (the tiny shop's 150 holdout users do not, reliably).
SHOP = ShopConfig(n_users=1200, n_items=480, n_categories=9, days=150, cold_days=14)

FAST = RunConfig(
    dataset="demo-shop",
    features=FeatureConfig(holdout_days=14),
    train=TrainConfig(no_components=16, epochs=10),
    # 1,200 customers: the validation window is noisy, the blend's weights move only for a
    # 1% gain (without it, the weights chosen after the shift ranked worse on the holdout).
    tune=TuneConfig(mix_min_gain=0.01),
)


@pytest.fixture(scope="module")
def demo(home):
    said: list[str] = []
    return drift_demo(SHOP, FAST, later_days=60, requests=240, say=said.append), said


@pytest.mark.usefixtures("prefect_engine")
def test_drift_is_detected_and_a_new_champion_is_served(home, demo):
    result, said = demo
    assert result.before == "1" and result.after == "2"
    assert result.served_after == "2"  # the running service reloaded the new champion
    assert result.reasons and result.reasons[0].startswith("data drift")
    # The old champion could not show the new line; the new one does.
    assert result.launch_share_before == 0 and result.launch_share_after > 0
    day = Path(result.report_dir)
    for kind in ("data-drift", "prediction-drift", "quality"):
        assert list(day.glob(f"{kind}-*.html")) and list(day.glob(f"{kind}-*.json")), kind
    decision = json.loads(next(day.glob("decision-*.json")).read_text())
    assert decision["decision"]["reasons"] == result.reasons  # the trigger reason, on disk
    assert decision["quality"]["offline"]["ndcg_at_10"] > 0
    assert decision["quality"]["current"]["lists"] >= 50
    assert Settings().home == home and any("5/5" in line for line in said)


def test_the_evidently_ui_shows_the_dashboard_and_the_tests_in_a_browser(demo, tmp_path):
    """What a team opens after the loop: `evidently ui` on the workspace, in a real headless
    chromium. Every dashboard panel is drawn with data (drift of the shop and of the served
    answers, quality on feedback); the data-drift run's Tests tab shows the pass/fail of
    every column at the thresholds that decided the retraining."""
    result, _ = demo
    day = Path(result.report_dir)
    decision = json.loads(sorted(day.glob("decision-*.json"))[-1].read_text())
    folder = Settings().reports_dir / "workspace"
    workspace = Workspace.create(str(folder))
    (project,) = workspace.search_project("cartlift monitoring")
    titles = [p.title for p in project.dashboard.model().panels]
    runs = [(workspace.get_run(project.id, i), i) for i in workspace.list_runs(project.id)]
    _, drift_run = max((r.timestamp, i) for r, i in runs if r.name.startswith("data drift"))
    with evidently_ui(folder, tmp_path / "evidently-ui.log") as base, browser() as page:
        page.open(f"{base}/projects/{project.id}")
        shown = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in titles)
        page.wait_for(f"document.body && {shown}")
        # Every panel holds its figure: a number in each counter, points in each line chart
        # (Evidently draws each series' points as SVG circles).
        panels = "[...document.querySelectorAll('.MuiCard-root')]"
        drawn = "c.querySelector('svg circle') || /\\n[0-9.]+\\n/.test(c.innerText)"
        page.wait_for(f"{panels}.length === {len(titles)} && {panels}.every(c => {drawn})")
        page.screenshot("evidently-dashboard", tmp_path)

        page.open(f"{base}/projects/{project.id}/reports/{drift_run}")
        page.wait_for("document.body.innerText.includes('Data Drift Summary')")
        page.click_text("button", "Tests")
        page.wait_for("document.body.innerText.includes('Value Drift for column price')")
        text = page.text()
        passed = sum(t["passed"] for t in decision["tests"])
        counts = {status: n for n, status in re.findall(r"(\d+)\s+(SUCCESS|FAIL)\b", text)}
        assert counts == {"SUCCESS": str(passed), "FAIL": str(len(decision["tests"]) - passed)}
        assert all(t["name"] in text for t in decision["tests"])
        shot = page.screenshot("evidently-tests", tmp_path)
        assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
